"""The ``python -m gestalt.local.<service>`` entry points: serve until SIGINT or SIGTERM.

Each prints the service's target on stdout once it listens. A problem starting it (a
socket path too long for ``AF_UNIX``, a missing directory, a socket already served, data
used by another service) is one line on stderr naming the address and the reason, and
exit status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any


def run(
    module: str,
    description: str,
    serve: Callable[..., Any],
    argv: Sequence[str] | None = None,
    option: tuple[str, str, str] | None = None,
) -> int:
    """``python -m <module>``: parse ``argv`` (address, ``--relay-token`` and the ``option``
    ``(flag, keyword of serve, help)``, if any), ``serve(address, relay_token=…)`` a server
    handle (a context manager with ``target``) and serve until a signal; the exit status."""
    prog = f"python -m {module}"
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("address", help="unix socket path, unix://PATH or tcp://HOST:PORT")
    parser.add_argument("--relay-token", default=None, help="require this relay token")
    if option is not None:
        parser.add_argument(option[0], dest="extra", default=None, help=option[2])
    args = parser.parse_args(argv)
    extra = {} if option is None else {option[1]: args.extra}
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        server = serve(args.address, relay_token=args.relay_token, **extra)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"{prog}: cannot serve on {args.address}: {exc}", file=sys.stderr)
        return 2
    with server:
        print(server.target, flush=True)
        stop.wait()
    return 0
