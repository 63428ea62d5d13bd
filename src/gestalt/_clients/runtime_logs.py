"""Runtime log host client: how a plugin runtime provider hands session logs to the host.

``RuntimeLogHost()`` finds the host through ``GESTALT_RUNTIME_LOG_SOCKET`` (plus the optional
``GESTALT_RUNTIME_LOG_SOCKET_TOKEN`` relay token) and calls
``gestalt.provider.v1.PluginRuntimeLogHost/AppendLogs``; ``AsyncRuntimeLogHost`` is the same
over ``grpc.aio``. Both build their requests with :func:`append_request` and read the answer
with :func:`last_seq`, so the two differ only in how the call is made.

An entry is a :class:`~gestalt.gen.v1.pluginruntime_mirrors.PluginRuntimeLogEntry` mirror,
its pb2 message, or a plain ``str`` (a ``RUNTIME`` line observed now, numbered by the host's
order of arrival: ``source_seq`` 0). ``append_logs`` returns the host's ``last_seq``, the
sequence number of the last entry it recorded for the session.

Failures raise :class:`~gestalt.HostServiceError` (``.code``, ``.message``);
a deadline that passes raises :class:`~gestalt.HostServiceTimeoutError`.
:class:`~gestalt.RuntimeLogHandler` ships ``logging`` records
through this client without blocking the code that logs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TypeAlias

from gestalt._clients.closing import AsyncClosing, Closing
from gestalt._clients.errors import ErrorMap
from gestalt._clients.transport import RUNTIME_LOG, AioConnection, SyncConnection, check_timeout
from gestalt.gen.v1 import pluginruntime_pb2 as pb
from gestalt.gen.v1.pluginruntime_clients import (
    AsyncPluginRuntimeLogHostClient,
    PluginRuntimeLogHostClient,
)
from gestalt.gen.v1.pluginruntime_mirrors import PluginRuntimeLogEntry

__all__ = [
    "RUNTIME_LOG_ERRORS",
    "AsyncRuntimeLogHost",
    "LogEntryLike",
    "RuntimeLogHost",
    "append_request",
    "last_seq",
]

#: The runtime log host names no condition: every failure is a plain HostServiceError.
RUNTIME_LOG_ERRORS = ErrorMap("runtime log", {})

#: What ``append_logs`` takes for one entry.
LogEntryLike: TypeAlias = PluginRuntimeLogEntry | pb.PluginRuntimeLogEntry | str


def _entry(item: object, now_ns: int) -> pb.PluginRuntimeLogEntry:
    if isinstance(item, pb.PluginRuntimeLogEntry):
        return item
    if isinstance(item, PluginRuntimeLogEntry):
        return item.to_pb()
    if isinstance(item, str):
        entry = pb.PluginRuntimeLogEntry(stream=pb.PLUGIN_RUNTIME_LOG_STREAM_RUNTIME, message=item)
        entry.observed_at.FromNanoseconds(now_ns)
        return entry
    raise TypeError(
        "a log entry must be a PluginRuntimeLogEntry (mirror or pb2) or a str, "
        f"not {type(item).__name__}"
    )


def append_request(
    session_id: str, entries: Iterable[LogEntryLike]
) -> pb.AppendPluginRuntimeLogsRequest:
    """The ``AppendLogs`` request for ``entries`` of session ``session_id``, checked."""
    if not isinstance(session_id, str):
        raise TypeError(f"session_id must be a str, not {type(session_id).__name__}")
    if not session_id.strip():
        raise ValueError("session_id must not be empty")
    if isinstance(entries, str | bytes) or not isinstance(entries, Iterable):
        raise TypeError("entries must be an iterable of log entries; wrap a single line in a list")
    now_ns = time.time_ns()
    return pb.AppendPluginRuntimeLogsRequest(
        session_id=session_id, logs=[_entry(item, now_ns) for item in entries]
    )


def last_seq(response: pb.AppendPluginRuntimeLogsResponse) -> int:
    """The host's answer: the sequence number of the last entry it recorded."""
    return int(response.last_seq)


class RuntimeLogHost(Closing):
    """Client for the host's runtime log service (``GESTALT_RUNTIME_LOG_SOCKET``).

    ``timeout`` is the default deadline in seconds for every call (None: no deadline).
    Raises ``RuntimeError`` when the variable is not set. Use as a context manager or call
    :meth:`close`.
    """

    __slots__ = ("_conn",)

    def __init__(self, *, timeout: float | None = None) -> None:
        default = check_timeout(timeout)  # checked before the environment is read
        self._conn = SyncConnection(
            RUNTIME_LOG.endpoint(), PluginRuntimeLogHostClient, RUNTIME_LOG_ERRORS, default
        )

    def close(self) -> None:
        """Close the client (the shared channel closes with its last client); idempotent."""
        self._conn.close()

    def append_logs(
        self, session_id: str, entries: Iterable[LogEntryLike], *, timeout: float | None = None
    ) -> int:
        """Append ``entries`` to the logs of session ``session_id``; return the host's last_seq."""
        request = append_request(session_id, entries)
        return last_seq(self._conn.stub.append_logs(request, **self._conn.options(timeout)))


class AsyncRuntimeLogHost(AsyncClosing):
    """Asyncio client for the host's runtime log service; see :class:`RuntimeLogHost`."""

    __slots__ = ("_conn",)

    def __init__(self, *, timeout: float | None = None) -> None:
        default = check_timeout(timeout)  # checked before the environment is read
        self._conn = AioConnection(
            RUNTIME_LOG.endpoint(), AsyncPluginRuntimeLogHostClient, RUNTIME_LOG_ERRORS, default
        )

    async def close(self) -> None:
        """Close the client (a shared channel closes with its last client); idempotent."""
        await self._conn.close()

    async def append_logs(
        self, session_id: str, entries: Iterable[LogEntryLike], *, timeout: float | None = None
    ) -> int:
        """Append ``entries`` to the logs of session ``session_id``; return the host's last_seq."""
        request = append_request(session_id, entries)
        stub = self._conn.stub()
        return last_seq(await stub.append_logs(request, **self._conn.options(timeout)))
