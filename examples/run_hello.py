"""Run the hello example end to end: start ``gestalt dev``, invoke an operation, stop.

``python examples/run_hello.py`` (what ``make example`` runs) starts the dev host on
``examples/hello`` as a user would, waits until it is ready, calls ``greet`` with
``gestalt invoke``, prints the result and the time from start to that first answer, and stops
the dev host with Ctrl-C (SIGINT).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

HELLO = Path(__file__).resolve().parent / "hello"
STATE = HELLO / ".gestalt" / "dev.json"


def main() -> int:
    STATE.unlink(missing_ok=True)
    started = time.perf_counter()
    dev = subprocess.Popen([sys.executable, "-m", "gestalt", "dev", str(HELLO)])
    try:
        while not STATE.exists():
            if dev.poll() is not None:
                print("gestalt dev exited early", file=sys.stderr)
                return 1
            if time.perf_counter() - started > 60:
                print("gestalt dev did not become ready within 60 s", file=sys.stderr)
                return 1
            time.sleep(0.02)
        call = subprocess.run(
            [
                sys.executable,
                "-m",
                "gestalt",
                "--json",
                "invoke",
                "greet",
                "name=World",
                "--root",
                str(HELLO),
            ],
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - started
        print(call.stdout.strip() or call.stderr.strip())
        if call.returncode != 0:
            return 1
        body = json.loads(call.stdout)["body"]
        print(f"{body['message']}  (first answer {elapsed:.2f} s after starting gestalt dev)")
        return 0
    finally:
        dev.send_signal(signal.SIGINT)
        dev.wait(timeout=15)


if __name__ == "__main__":
    raise SystemExit(main())
