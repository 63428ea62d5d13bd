"""Launch a provider the way the Gestalt host does, and perform the host's start-up handshake.

Shared by ``gestalt dev``, ``gestalt invoke`` and ``gestalt.testing``: one subprocess running
``python -m gestalt._runtime ROOT TARGET KIND`` with the host's reduced environment (contract
1.3) plus the provider's own variables (host-service sockets, config), ``GESTALT_PLUGIN_SOCKET``
in a fresh directory, and the handshake the host performs once the socket answers
(contract 1.5): ``GetMetadata`` + ``StartProvider`` for integrations,
``GetProviderIdentity`` + ``ConfigureProvider`` + ``GetProviderIdentity`` for other kinds.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from gestalt._providers import ProviderKind

#: Variables the host copies from its own environment into a provider's.
INHERITED_ENV = ("PATH", "HOME", "TMPDIR", "LANG", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR")
START_TIMEOUT = 45.0
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class LaunchError(RuntimeError):
    """The provider did not come up.

    ``str()`` is one line naming the cause (the last line the provider printed, e.g. its
    exception); ``details`` holds the end of its output (a traceback, say).
    """

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


def provider_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The host's reduced environment plus ``extra``.

    ``PYTHONPATH`` is kept so that a provider run from a source checkout finds the SDK, as the
    host does for development builds.
    """
    env = {k: os.environ[k] for k in (*INHERITED_ENV, "PYTHONPATH") if k in os.environ}
    env.update(extra or {})
    return env


class ProviderProcess:
    """A running provider: ``python -m gestalt._runtime ROOT TARGET KIND`` on a unix socket.

    ``output`` receives the provider's stdout and stderr (both go to the host's log); by
    default they are kept in a file readable with :meth:`output_text`. ``socket_value`` and
    ``parent_pid`` override what ``GESTALT_PLUGIN_SOCKET`` (the socket in a fresh directory)
    and ``GESTALT_PLUGIN_PARENT_PID`` (this process) say.
    """

    def __init__(
        self,
        root: Path,
        target: str,
        kind: ProviderKind = ProviderKind.INTEGRATION,
        *,
        env: Mapping[str, str] | None = None,
        python: str | None = None,
        output: IO[bytes] | None = None,
        socket_value: str | None = None,
        parent_pid: int | None = None,
    ) -> None:
        self.root = root
        self.target = target
        self.kind = kind
        self.dir = Path(tempfile.mkdtemp(prefix="gstp-"))
        self.socket = self.dir / "plugin.sock"
        self._log_path = self.dir / "provider.log"
        self._log = output or open(self._log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._owns_log = output is None
        self._kept_output = ""
        environment = provider_env(env)
        environment["GESTALT_PLUGIN_SOCKET"] = socket_value or str(self.socket)
        environment["GESTALT_PLUGIN_PARENT_PID"] = str(parent_pid or os.getpid())
        self.proc = subprocess.Popen(
            [python or sys.executable, "-m", "gestalt._runtime", str(root), target, kind.value],
            env=environment,
            stdout=self._log,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
        )
        self.channel: Any = None

    def output_text(self) -> str:
        """What the provider printed so far (when no ``output`` stream was given)."""
        try:
            return self._log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return self._kept_output

    def _fail(self, what: str) -> LaunchError:
        lines = [line for line in self.output_text().strip().splitlines() if line.strip()]
        self.stop()
        last = lines[-1].strip().removesuffix(" (traceback above)") if lines else ""
        cause = f": {last}" if last else ""
        return LaunchError(f"{what}{cause}", "\n".join(lines[-25:]))

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait for the socket, connect, and return once gRPC is ready."""
        import grpc

        deadline = time.monotonic() + timeout
        while not self.socket.exists():
            if self.proc.poll() is not None:
                raise self._fail(f"the provider exited with status {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise self._fail(f"the provider did not listen within {timeout:.0f} s")
            time.sleep(0.01)
        self.channel = grpc.insecure_channel(
            f"unix:{self.socket}",
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        try:
            grpc.channel_ready_future(self.channel).result(
                timeout=max(0.1, deadline - time.monotonic())
            )
        except grpc.FutureTimeoutError:
            raise self._fail("the provider's socket never became ready") from None

    def handshake(self, name: str, config: Mapping[str, Any] | None = None) -> Any:
        """The host's start-up calls; returns ``ProviderMetadata`` or ``ProviderIdentity``."""
        from gestalt.gen.support import RPCError

        try:
            return handshake(self.channel, self.kind, name, config)
        except RPCError as exc:
            raise self._fail(f"the provider failed the start-up handshake ({exc})") from None

    def stop(self, sig: int = signal.SIGTERM, grace: float = 10.0) -> int | None:
        """Send ``sig``, then SIGKILL after ``grace`` seconds; return the exit status."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._owns_log and not self._log.closed:
            self._log.close()
        return self.proc.returncode

    def cleanup(self) -> None:
        """Stop the provider and remove its directory (its output stays readable)."""
        self.stop()
        self.remove_dir()

    def remove_dir(self) -> None:
        """Remove the socket directory, keeping the output in memory."""
        self._kept_output = self.output_text()
        shutil.rmtree(self.dir, ignore_errors=True)


def handshake(channel: Any, kind: ProviderKind, name: str, config: Mapping[str, Any] | None) -> Any:
    """What the host calls once a provider answers (contract 1.5), on ``channel``.

    Integrations: ``GetMetadata`` then ``StartProvider``; other kinds: ``GetProviderIdentity``,
    ``ConfigureProvider``, ``GetProviderIdentity``. Returns the metadata or final identity;
    a refused call raises ``gestalt.gen.support.RPCError``.
    """
    from google.protobuf import empty_pb2, struct_pb2

    struct = struct_pb2.Struct()
    struct.update(dict(config or {}))
    if kind is ProviderKind.INTEGRATION:
        from gestalt.gen.v1 import plugin_clients, plugin_pb2

        client = plugin_clients.IntegrationProviderClient(channel)
        metadata = client.get_metadata(empty_pb2.Empty(), timeout=30)
        client.start_provider(
            plugin_pb2.StartProviderRequest(name=name, config=struct, protocol_version=3),
            timeout=30,
        )
        return metadata
    from gestalt.gen.v1 import runtime_clients, runtime_pb2

    lifecycle = runtime_clients.ProviderLifecycleClient(channel)
    lifecycle.get_provider_identity(empty_pb2.Empty(), timeout=30)
    lifecycle.configure_provider(
        runtime_pb2.ConfigureProviderRequest(name=name, config=struct, protocol_version=3),
        timeout=30,
    )
    return lifecycle.get_provider_identity(empty_pb2.Empty(), timeout=30)
