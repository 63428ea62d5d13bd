"""Launch providers exactly the way the Gestalt host does, for the runtime tests.

``python -m gestalt._runtime ROOT TARGET KIND`` in a subprocess with the host's reduced
environment (contract 1.3), ``GESTALT_PLUGIN_SOCKET`` in a fresh temporary directory, the
test process as ``GESTALT_PLUGIN_PARENT_PID``, and SIGTERM to stop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc

from tests.conftest import REPO, shared_dir

EXAMPLES = shared_dir() / "contract" / "examples" / "provider"
#: Variables the host copies from its own environment (contract 1.3).
INHERITED = ("PATH", "HOME", "TMPDIR", "LANG", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR")


def host_env(**extra: str) -> dict[str, str]:
    """The environment the host gives a provider, plus ``extra``.

    ``PYTHONPATH`` points at this checkout, as the host does when it runs from source.
    """
    env = {k: os.environ[k] for k in INHERITED if k in os.environ}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO / "generated")])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def run_cli(args: list[str], timeout: float = 30, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the runtime to completion (error paths, catalog export)."""
    return subprocess.run(
        [sys.executable, "-m", "gestalt._runtime", *args],
        env=host_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Provider:
    """One provider process serving on a unix socket in a fresh temporary directory."""

    def __init__(
        self,
        root: Path | str,
        target: str,
        kind: str = "integration",
        *,
        socket_value: str | None = None,
        parent_pid: int | None = None,
        **env: str,
    ) -> None:
        self.dir = tempfile.mkdtemp(prefix="gstp-")
        self.socket = os.path.join(self.dir, "plugin.sock")
        self.stderr_path = os.path.join(self.dir, "stderr.txt")
        environment = host_env(
            GESTALT_PLUGIN_SOCKET=socket_value or self.socket,
            GESTALT_PLUGIN_PARENT_PID=str(parent_pid or os.getpid()),
            **env,
        )
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gestalt._runtime", str(root), target, kind],
                env=environment,
                stdout=err,
                stderr=err,
            )
        self.channel = self._connect()

    def _connect(self) -> grpc.Channel:
        deadline = time.monotonic() + 30
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None:
                raise RuntimeError(f"provider exited early:\n{self.stderr()}")
            if time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"provider socket did not appear:\n{self.stderr()}")
            time.sleep(0.01)
        channel = grpc.insecure_channel(
            f"unix:{self.socket}",
            options=[
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ],
        )
        grpc.channel_ready_future(channel).result(timeout=10)
        return channel

    def stderr(self) -> str:
        """Everything the provider wrote to stdout and stderr so far."""
        with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        """Send ``sig`` and wait for the exit status."""
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def __enter__(self) -> Provider:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc.poll() is None:
            self.stop()


def stub(provider: Provider, stub_type: Any) -> Any:
    """A generated client of ``stub_type`` on the provider's channel."""
    return stub_type(provider.channel)
