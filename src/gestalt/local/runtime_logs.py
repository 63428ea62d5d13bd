"""An embedded runtime log host: ``PluginRuntimeLogHost`` keeping session logs in memory.

:class:`RuntimeLogService` records what a plugin runtime provider appends, per session, in
order. Each entry keeps the runtime's ``source_seq`` when it has one; an entry without one
(``0``) gets the next number after the session's last. An entry whose ``source_seq`` is not
above the session's last is a repeat of something already recorded (a retried batch) and is
skipped. ``AppendLogs`` answers the session's last sequence number.

:func:`serve_runtime_logs` serves it on a unix socket (or ``tcp://host:port``), optionally
checking a relay token like the host's public relay; the handle's ``target`` goes into
``GESTALT_RUNTIME_LOG_SOCKET``.
"""

from __future__ import annotations

import threading
import time
from typing import Unpack

import grpc

from gestalt.gen.v1 import pluginruntime_pb2 as pb
from gestalt.gen.v1.pluginruntime_mirrors import PluginRuntimeLogEntry
from gestalt.gen.v1.pluginruntime_servicers import add_plugin_runtime_log_host_to_server
from gestalt.local._serving import LocalServer, Served, ServeOptions, Where

__all__ = ["RuntimeLogServer", "RuntimeLogService", "serve_runtime_logs"]


class RuntimeLogService:
    """In-memory ``PluginRuntimeLogHost``; thread-safe."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._sessions: dict[str, list[pb.PluginRuntimeLogEntry]] = {}
        self._last: dict[str, int] = {}
        #: Number of ``AppendLogs`` calls answered.
        self.calls = 0

    def append_logs(
        self, request: pb.AppendPluginRuntimeLogsRequest, context: grpc.ServicerContext
    ) -> pb.AppendPluginRuntimeLogsResponse:
        """Record a batch for one session; answer the session's last sequence number."""
        if not request.session_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "session_id is required")
        with self._changed:
            kept = self._sessions.setdefault(request.session_id, [])
            last = self._last.get(request.session_id, 0)
            for entry in request.logs:
                if entry.source_seq == 0:
                    last += 1
                    recorded = pb.PluginRuntimeLogEntry()
                    recorded.CopyFrom(entry)
                    recorded.source_seq = last
                    kept.append(recorded)
                elif entry.source_seq > last:
                    last = entry.source_seq
                    kept.append(entry)
            self._last[request.session_id] = last
            self.calls += 1
            self._changed.notify_all()
        return pb.AppendPluginRuntimeLogsResponse(last_seq=last)

    def entries(self, session_id: str) -> list[PluginRuntimeLogEntry]:
        """What was recorded for ``session_id`` so far, in order."""
        with self._changed:
            return [PluginRuntimeLogEntry.from_pb(e) for e in self._sessions.get(session_id, [])]

    def sessions(self) -> list[str]:
        """The sessions that have logs."""
        with self._changed:
            return list(self._sessions)

    def wait_for(self, session_id: str, count: int, timeout: float = 10.0) -> bool:
        """Wait until ``session_id`` has at least ``count`` entries; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._sessions.get(session_id, ())) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True


class RuntimeLogServer(LocalServer[RuntimeLogService]):
    """A running embedded runtime log host: ``target``, ``service``, ``stop()``."""


_SERVED = Served(
    "runtime log", "runtime-log", add_plugin_runtime_log_host_to_server, RuntimeLogServer
)


def serve_runtime_logs(address: Where, **options: Unpack[ServeOptions]) -> RuntimeLogServer:
    """Serve a new :class:`RuntimeLogService` at ``address`` until ``stop()``; ``options`` are
    those of every local server (:class:`~gestalt.local.ServeOptions`, 8 threads).
    """
    return _SERVED.serve(address, RuntimeLogService, options)
