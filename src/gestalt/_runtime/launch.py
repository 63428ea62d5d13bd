"""Launch a provider the way the Gestalt host does, and perform the host's start-up handshake.

Shared by ``gestalt dev``, ``gestalt invoke`` and ``gestalt.testing``: one subprocess running
``python -m gestalt._runtime ROOT TARGET KIND`` with the host's reduced environment (contract
1.3) plus the provider's own variables (host-service sockets, config), ``GESTALT_PLUGIN_SOCKET``
in a fresh directory, and the handshake the host performs once the socket answers
(contract 1.5): ``GetMetadata`` + ``StartProvider`` for integrations,
``GetProviderIdentity`` + ``ConfigureProvider`` + ``GetProviderIdentity`` for other kinds.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from gestalt._authoring.kinds import ProviderKind

#: Variables the host copies from its own environment into a provider's.
INHERITED_ENV = ("PATH", "HOME", "TMPDIR", "LANG", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR")
START_TIMEOUT = 45.0
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: How the runtime starts the one line of a failure it reports.
RUNTIME_PREFIX = "gestalt runtime: "


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

    For the dev host: ``on_line`` is also given every line the provider prints, as it prints
    it; ``on_call`` turns on the runtime's call reports (``gestalt._runtime.devcalls``) and is given
    each one as a dict, after the lines the provider printed during the call. Call logs asked
    for by ``gestalt invoke`` land in :attr:`calls_dir`.
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
        on_line: Callable[[str], None] | None = None,
        on_call: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        from gestalt._runtime.devcalls import CALLS_DIR_ENV, EVENTS_FD_ENV

        self.root = root
        self.target = target
        self.kind = kind
        self.dir = Path(tempfile.mkdtemp(prefix="gstp-"))
        self.socket = self.dir / "plugin.sock"
        self.calls_dir = self.dir / "calls"
        self._log_path = self.dir / "provider.log"
        self._log = output or open(self._log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._owns_log = output is None
        self._kept_output = ""
        environment = provider_env(env)
        environment["GESTALT_PLUGIN_SOCKET"] = socket_value or str(self.socket)
        environment["GESTALT_PLUGIN_PARENT_PID"] = str(parent_pid or os.getpid())
        events_read, events_write = -1, -1
        if on_call is not None:
            self.calls_dir.mkdir()
            events_read, events_write = os.pipe()
            environment[EVENTS_FD_ENV] = str(events_write)
            environment[CALLS_DIR_ENV] = str(self.calls_dir)
        try:
            self.proc = subprocess.Popen(
                [python or sys.executable, "-m", "gestalt._runtime", str(root), target, kind.value],
                env=environment,
                stdout=subprocess.PIPE if on_line else self._log,
                stderr=subprocess.STDOUT if on_line else self._log,
                stdin=subprocess.DEVNULL,
                pass_fds=(events_write,) if on_call else (),
            )
        finally:
            if on_call is not None:
                os.close(events_write)
        self.channel: Any = None
        self._pump: threading.Thread | None = None
        if on_line is not None or on_call is not None:
            output_fd = self.proc.stdout.fileno() if self.proc.stdout is not None else -1
            self._pump = threading.Thread(
                target=self._relay,
                args=(output_fd, events_read, on_line, on_call),
                name="gestalt-provider-output",
                daemon=True,
            )
            self._pump.start()

    def _relay(
        self,
        output_fd: int,
        events_fd: int,
        on_line: Callable[[str], None] | None,
        on_call: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        """Hand output lines and call reports on, in the order the provider wrote them.

        A call is reported after it ends, so whatever the provider printed during it is
        already in the output pipe: that pipe is always read first.
        """
        pending: dict[int, bytes] = {}
        with selectors.DefaultSelector() as selector:
            for fd in (output_fd, events_fd):
                if fd >= 0:
                    selector.register(fd, selectors.EVENT_READ)
                    pending[fd] = b""
            while selector.get_map():
                ready = sorted((key.fd for key, _ in selector.select()), key=events_fd.__eq__)
                for fd in ready:
                    chunk = os.read(fd, 65536)
                    if fd == output_fd:
                        self._log.write(chunk)
                        self._log.flush()
                    *lines, pending[fd] = (pending[fd] + chunk).split(b"\n")
                    if not chunk:  # end of file; an unterminated last line still counts
                        selector.unregister(fd)
                        if fd == events_fd:
                            os.close(fd)
                        if pending[fd]:
                            lines.append(pending[fd])
                    for raw in lines:
                        text = raw.decode("utf-8", errors="replace")
                        try:
                            if fd == events_fd and on_call is not None:
                                on_call(json.loads(text))
                            elif fd == output_fd and on_line is not None:
                                on_line(text)
                        except OSError:
                            # Our own output is gone (a closed terminal or pipe): keep
                            # draining, or the provider would block on a full pipe.
                            on_line = on_call = None

    def output_text(self) -> str:
        """What the provider printed so far (when no ``output`` stream was given)."""
        try:
            return self._log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return self._kept_output

    def failure(self, what: str) -> LaunchError:
        """Stop the provider; a ``LaunchError`` saying ``what`` happened and why (its output)."""
        self.stop()
        lines = [line for line in self.output_text().strip().splitlines() if line.strip()]
        last = runtime_reason(lines[-1]) if lines else ""
        cause = f": {last}" if last else ""
        return LaunchError(f"{what}{cause}", "\n".join(lines[-25:]))

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait for the socket, connect, and return once gRPC is ready."""
        import grpc

        deadline = time.monotonic() + timeout
        while not self.socket.exists():
            if self.proc.poll() is not None:
                raise self.failure(f"the provider exited with status {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise self.failure(f"the provider did not listen within {timeout:.0f} s")
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
            raise self.failure("the provider's socket never became ready") from None

    def handshake(self, name: str, config: Mapping[str, Any] | None = None) -> Any:
        """The host's start-up calls; returns ``ProviderMetadata`` or ``ProviderIdentity``."""
        from gestalt.gen.support import RPCError

        try:
            return handshake(self.channel, self.kind, name, config)
        except RPCError as exc:
            raise self.failure(f"the provider failed the start-up handshake ({exc})") from None

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
        if self._pump is not None:
            # Until the end of its output (a child of the provider may keep the pipe open).
            self._pump.join(timeout=2.0)
            if not self._pump.is_alive() and self.proc.stdout is not None:
                self.proc.stdout.close()
        if self._owns_log and not self._log.closed and not self._pump_alive():
            self._log.close()
        return self.proc.returncode

    def _pump_alive(self) -> bool:
        return self._pump is not None and self._pump.is_alive()

    def cleanup(self) -> None:
        """Stop the provider and remove its directory (its output stays readable)."""
        self.stop()
        self.remove_dir()

    def remove_dir(self) -> None:
        """Remove the socket directory, keeping the output in memory."""
        self._kept_output = self.output_text()
        shutil.rmtree(self.dir, ignore_errors=True)


def runtime_reason(line: str) -> str:
    """The reason in the runtime's last line of output, without its prefix and pointer."""
    return line.strip().removeprefix(RUNTIME_PREFIX).removesuffix(" (traceback above)")


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
