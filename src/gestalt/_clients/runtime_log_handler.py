"""A ``logging.Handler`` that ships records to the runtime log host, in batches, off-thread.

``RuntimeLogHandler(session_id)`` formats each record in the logging thread, numbers it and
puts it on a bounded queue; one daemon thread sends what has queued with
``PluginRuntimeLogHost/AppendLogs`` when ``batch_size`` records wait or ``flush_interval``
seconds pass. So logging never waits on the network: ``emit`` only formats and appends.

What it never does: raise into the code that logs (a record that cannot be formatted goes to
``logging``'s own ``handleError``; a failed send is reported once per failure streak on
stderr, its batch dropped), grow without bound (past ``max_pending`` queued records new ones
are dropped and counted in :attr:`~RuntimeLogHandler.dropped`), or send a huge line (a message
over ``max_message_bytes`` of UTF-8 is cut and marked). Records logged by the sending thread
itself (gRPC's own warnings while sending) are ignored, so the handler cannot feed itself.

``flush()`` waits (up to ``flush_timeout``) until everything queued before it was sent;
``close()`` flushes, stops the thread and closes a client it created. ``logging.shutdown``,
run at interpreter exit, does both.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
from typing import Protocol

from gestalt.gen.v1 import pluginruntime_pb2 as pb
from gestalt.gen.v1.pluginruntime_mirrors import PluginRuntimeLogStream

__all__ = ["LogSink", "RuntimeLogHandler", "truncate_message"]

_MARK = " \u2026 [truncated {} bytes]"


class LogSink(Protocol):
    """What the handler sends through: :class:`~gestalt.RuntimeLogHost` or a look-alike."""

    def append_logs(
        self, session_id: str, entries: list[pb.PluginRuntimeLogEntry], *, timeout: float | None
    ) -> int:
        """Append ``entries`` to session ``session_id``."""
        ...


def truncate_message(message: str, limit: int) -> str:
    """``message`` cut to at most ``limit`` bytes of UTF-8, with a marker saying how much went."""
    data = message.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return message
    # The marker's own size, with the largest number it can show (the cut is never larger).
    keep = max(0, limit - len(_MARK.format(len(data)).encode("utf-8")))
    head = data[:keep].decode("utf-8", "ignore")
    return head + _MARK.format(len(data) - len(head.encode("utf-8", "surrogatepass")))


class RuntimeLogHandler(logging.Handler):
    """Ship ``logging`` records to the host as log entries of session ``session_id``.

    ``host`` is the client to send through; without it a :class:`~gestalt.RuntimeLogHost` is
    built from ``GESTALT_RUNTIME_LOG_SOCKET`` (``RuntimeError`` when unset) and closed with the
    handler. Entries go on ``stream`` (``RUNTIME`` unless given) and are numbered from
    ``first_seq`` in the order they were logged.
    """

    def __init__(
        self,
        session_id: str,
        *,
        host: LogSink | None = None,
        stream: PluginRuntimeLogStream = PluginRuntimeLogStream.RUNTIME,
        level: int = logging.NOTSET,
        batch_size: int = 200,
        flush_interval: float = 0.25,
        max_pending: int = 10_000,
        max_message_bytes: int = 32 * 1024,
        send_timeout: float = 5.0,
        flush_timeout: float = 5.0,
        first_seq: int = 1,
    ) -> None:
        if not isinstance(session_id, str) or not session_id.strip():
            raise ValueError("session_id must be a non-empty str")
        for name, value in (
            ("batch_size", batch_size),
            ("max_pending", max_pending),
            ("max_message_bytes", max_message_bytes),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if max_message_bytes < 64:
            raise ValueError(f"max_message_bytes must be at least 64, got {max_message_bytes}")
        for name, seconds in (
            ("flush_interval", flush_interval),
            ("send_timeout", send_timeout),
            ("flush_timeout", flush_timeout),
        ):
            if not seconds > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {seconds!r}")
        super().__init__(level)
        if host is None:
            from gestalt._clients.runtime_logs import RuntimeLogHost

            host = RuntimeLogHost()
            self._owned: RuntimeLogHost | None = host
        else:
            self._owned = None
        self.session_id = session_id
        self._host = host
        self._stream = pb.PluginRuntimeLogStream.ValueType(int(stream))
        self._batch_size = batch_size
        self._interval = flush_interval
        self._max_pending = max_pending
        self._max_bytes = max_message_bytes
        self._send_timeout = send_timeout
        self._flush_timeout = flush_timeout
        self._next_seq = first_seq
        #: Records dropped because the queue was full or their batch could not be sent.
        self.dropped = 0
        self._pending: collections.deque[pb.PluginRuntimeLogEntry] = collections.deque()
        self._state = threading.Condition()
        self._queued = 0  # records queued so far
        self._done = 0  # records sent or dropped by the sender so far
        self._stopping = False
        self._flushing = False
        self._failing = False
        self._sender = threading.Thread(target=self._run, name="gestalt-runtime-log", daemon=True)
        self._sender.start()

    # -- logging thread --------------------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        """Queue ``record``; returns at once, whatever the host is doing."""
        if threading.current_thread() is self._sender:
            return
        try:
            message = truncate_message(self.format(record), self._max_bytes)
        except Exception:
            self.handleError(record)
            return
        entry = pb.PluginRuntimeLogEntry(stream=self._stream, message=message)
        entry.observed_at.FromNanoseconds(int(record.created * 1e9))
        with self._state:
            if self._stopping or len(self._pending) >= self._max_pending:
                self.dropped += 1
                return
            entry.source_seq = self._next_seq
            self._next_seq += 1
            self._pending.append(entry)
            self._queued += 1
            if len(self._pending) >= self._batch_size:
                self._state.notify_all()

    def flush(self) -> None:
        """Wait until every record queued so far was sent or dropped (``flush_timeout`` at most)."""
        with self._state:
            target = self._queued
            self._flushing = True
            self._state.notify_all()
            self._state.wait_for(
                lambda: self._done >= target or not self._sender.is_alive(),
                self._flush_timeout,
            )

    def close(self) -> None:
        """Flush, stop the sending thread and close the client the handler built; idempotent."""
        with self._state:
            already = self._stopping
        if not already:
            self.flush()
            with self._state:
                self._stopping = True
                self._state.notify_all()
            self._sender.join(self._flush_timeout)
            if self._owned is not None:
                self._owned.close()
        super().close()

    # -- sending thread --------------------------------------------------------------------

    def _due(self) -> bool:
        return self._stopping or self._flushing or len(self._pending) >= self._batch_size

    def _run(self) -> None:
        while True:
            with self._state:
                if not self._due():
                    self._state.wait_for(self._due, self._interval)
                # A full batch, a flush or close, or the interval passed: send one batch.
                count = min(self._batch_size, len(self._pending))
                batch = [self._pending.popleft() for _ in range(count)]
                if not self._pending:
                    self._flushing = False
                stopping = self._stopping and not self._pending
            if batch:
                self._send(batch)
            if stopping:
                return

    def _send(self, batch: list[pb.PluginRuntimeLogEntry]) -> None:
        try:
            self._host.append_logs(self.session_id, batch, timeout=self._send_timeout)
        except Exception as exc:
            with self._state:
                self.dropped += len(batch)
                first = not self._failing
                self._failing = True
            if first:
                _report(f"cannot ship {len(batch)} log records to the runtime log host: {exc}")
        else:
            with self._state:
                self._failing = False
        with self._state:
            self._done += len(batch)
            self._state.notify_all()


def _report(text: str) -> None:
    # Never through logging: the handler may be attached to the logger that would carry it.
    try:
        sys.stderr.write(f"gestalt: {text}\n")
    except Exception:  # stderr closed or broken: nothing left to tell
        return
