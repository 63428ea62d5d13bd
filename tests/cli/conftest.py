"""Run the ``gestalt`` command the way a user runs it, for the CLI tests.

* :func:`gestalt` runs ``python -m gestalt ARGS`` to completion in a given working directory,
  with the user's environment minus any ``GESTALT_*`` variable a harness may have exported;
* :func:`one_line_error` checks the CLI's error contract (exit status 1, one
  ``gestalt: error: ...`` line on stderr, no traceback) and returns the message;
* :class:`DevRun` is a running ``gestalt dev`` in its own session (so a Ctrl-C can reach its
  whole process group, as a terminal's does), read line by line; the ``dev`` fixture starts
  them and makes sure none outlives its test;
* ``hello_copy`` is a copy of ``examples/hello`` in the test's ``tmp_path``, for tests that
  edit files or write ``.gestalt/``.

The ``build`` marker (PyInstaller builds, slow) is registered here.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from tests.conftest import REPO

EXAMPLES = REPO / "examples"
HELLO = EXAMPLES / "hello"
ERROR_PREFIX = "gestalt: error: "


def user_env() -> dict[str, str]:
    """This process's environment without ``GESTALT_*`` variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GESTALT_")}


def gestalt(*args: str | Path, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """``python -m gestalt ARGS`` in ``cwd``, run to completion."""
    return subprocess.run(
        [sys.executable, "-m", "gestalt", *map(str, args)],
        cwd=cwd,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def one_line_error(run: subprocess.CompletedProcess[str]) -> str:
    """The message of a one-line CLI error (exit status 1, no traceback)."""
    assert run.returncode == 1, run
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(ERROR_PREFIX), run.stderr
    return lines[0].removeprefix(ERROR_PREFIX)


def invoke_json(root: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """``gestalt --json invoke ARGS --root ROOT``: exit status and the JSON document."""
    run = gestalt("--json", "invoke", *args, "--root", root, cwd=root.parent)
    assert run.stdout, run.stderr
    document: dict[str, Any] = json.loads(run.stdout)
    return run.returncode, document


def state_file(root: Path) -> Path:
    """Where ``gestalt dev`` says where its provider listens."""
    return root / ".gestalt" / "dev.json"


@pytest.fixture
def hello_copy(tmp_path: Path) -> Path:
    """A fresh copy of ``examples/hello`` (without caches or dev state)."""
    target = tmp_path / "hello"
    shutil.copytree(HELLO, target, ignore=shutil.ignore_patterns("__pycache__", ".gestalt"))
    return target


class DevRun:
    """A ``gestalt dev`` process started for a test, its output read line by line."""

    def __init__(self, root: Path, *args: str, json_output: bool = False) -> None:
        command = [sys.executable, "-m", "gestalt", *(["--json"] if json_output else [])]
        self.root = root
        self.proc = subprocess.Popen(
            [*command, "dev", str(root), *args],
            cwd=root.parent,
            env=user_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str], is_stdout: bool) -> None:
        for line in stream:
            (self.stdout if is_stdout else self.stderr).append(line.rstrip("\n"))
            if is_stdout:
                self._lines.put(line.rstrip("\n"))
        if is_stdout:
            self._lines.put(None)

    def output(self) -> str:
        """Everything printed so far, for failure messages."""
        return "\n".join(["-- stdout:", *self.stdout, "-- stderr:", *self.stderr])

    def wait_for(self, text: str, timeout: float = 45) -> str:
        """The next stdout line containing ``text``; fails on timeout or exit."""
        return self.lines_until(text, timeout)[-1]

    def lines_until(self, text: str, timeout: float = 45) -> list[str]:
        """The stdout lines not read yet, up to and including the next one containing
        ``text``; fails on timeout or exit."""
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line with {text!r} in time\n{self.output()}") from None
            if line is None:
                self._lines.put(None)
                self.proc.wait(timeout=10)
                raise AssertionError(
                    f"gestalt dev exited ({self.proc.returncode}) before printing {text!r}\n"
                    f"{self.output()}"
                )
            lines.append(line)
            if text in line:
                return lines

    def wait_ready(self) -> dict[str, str]:
        """Wait for the announcement; return its ``name value`` lines as a dict."""
        lines = self.lines_until("ready:")
        info: dict[str, str] = {}
        for line in lines:
            if line.startswith("  ") and not line.startswith("  operation"):
                name, _, value = line.strip().partition(" ")
                info[name] = value.strip()
        info["operations"] = "\n".join(
            " ".join(line.split()[1:3]) for line in lines if line.startswith("  operation")
        )
        return info

    def wait_json(self) -> dict[str, Any]:
        """Wait for the announcement of ``--json dev`` and parse it."""
        start = len(self.stdout)
        self.wait_for("}")
        while self.stdout[-1] != "}":
            self.wait_for("}")
        document: dict[str, Any] = json.loads("\n".join(self.stdout[start:]))
        return document

    def interrupt(self, *, group: bool = False, timeout: float = 20) -> int:
        """Ctrl-C: SIGINT to ``gestalt dev`` (or its whole process group); the exit status."""
        if group:
            os.killpg(self.proc.pid, signal.SIGINT)
        else:
            self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        return code

    def kill(self) -> None:
        """SIGKILL whatever of the process group still runs (the provider may outlive us)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


StartDev = Callable[..., DevRun]


@pytest.fixture
def dev() -> Iterator[StartDev]:
    """Start ``gestalt dev ROOT ARGS``; whatever still runs at the end is interrupted."""
    runs: list[DevRun] = []

    def start(root: Path, *args: str, json_output: bool = False) -> DevRun:
        """Start ``gestalt [--json] dev ROOT ARGS``."""
        run = DevRun(root, *args, json_output=json_output)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                run.interrupt(group=True, timeout=10)
        run.kill()
