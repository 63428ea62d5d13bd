"""Access to the IndexedDB database for one RPC: the database-wide lock and error statuses.

Storage failures (SQLite errors and anything else unexpected) are logged and answered
``INTERNAL`` with a message of our own: no SQLite text reaches a client.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from gestalt.local._idle import IdleWatch
from gestalt.local._indexeddb_engine import Database
from gestalt.local._indexeddb_keys import DatastoreError

__all__ = ["STORAGE_FAILURE", "AccessLock", "Gate", "call_alive", "client_frames", "opening_frame"]

#: The message of ``INTERNAL`` answers for storage failures (the cause is only logged).
STORAGE_FAILURE = "datastore: storage failure in the local IndexedDB service"

_log = logging.getLogger("gestalt.local.indexeddb")

T = TypeVar("T")
M = TypeVar("M", bound=Message)


def call_alive(context: Any) -> Callable[[], bool]:
    """Whether the RPC behind ``context`` is still running and within its deadline.

    Works with sync and grpc.aio contexts. The deadline is checked too because the
    cancellation that follows an expired deadline reaches the server a little later.
    """
    is_active = getattr(context, "is_active", None)
    done = getattr(context, "done", None)
    time_remaining = getattr(context, "time_remaining", None)

    def alive() -> bool:
        if callable(is_active) and not is_active():
            return False
        if not callable(is_active) and callable(done) and done():
            return False
        remaining = time_remaining() if callable(time_remaining) else None
        return remaining is None or remaining > 0

    return alive


def client_frames(requests: Iterator[T]) -> Iterator[T]:
    """Client frames until the client half-closes or the call is cancelled."""
    while True:
        try:
            yield next(requests)
        except StopIteration:
            return
        except grpc.RpcError:
            return  # cancelled or broken: the caller's cleanup runs


def opening_frame(
    frames: Iterator[M], context: grpc.ServicerContext, kind: str, stream: str
) -> M | None:
    """The first of ``frames``, which must be a ``kind`` frame (``INVALID_ARGUMENT`` naming
    the ``stream`` otherwise); None when the client half-closed before sending one."""
    first = next(frames, None)
    if first is not None and first.WhichOneof("msg") != kind:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"first {stream} frame must be {kind}")
    return first


class AccessLock:
    """Database-wide readers/writer lock: one writer, or any number of readers.

    Waiting writers block new readers, so a stream of reads cannot starve a writer, except
    while a reader holding the lock has been waiting for its client for more than
    ``IDLE_GRACE`` seconds (:meth:`set_idle`): the writer cannot go ahead before that reader
    acts anyway, so new readers are let in rather than queued behind both. Waiters poll
    ``alive`` so a caller whose RPC was cancelled stops waiting instead of hanging.
    """

    _POLL_SECONDS = 0.05
    #: How long a reader must have idled before new readers may pass a waiting writer.
    IDLE_GRACE = 0.25

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._idle_since: dict[object, float] = {}

    def acquire(self, exclusive: bool, alive: Callable[[], bool]) -> bool:
        """Take the lock; False (lock not taken) once ``alive()`` turns False while waiting."""
        with self._cond:
            if exclusive:
                self._writers_waiting += 1
            try:
                while self._writer or (
                    self._readers > 0
                    if exclusive
                    else self._writers_waiting > 0 and not self._reader_idles()
                ):
                    if not alive():
                        return False
                    self._cond.wait(self._POLL_SECONDS)
                if exclusive:
                    self._writer = True
                else:
                    self._readers += 1
                return True
            finally:
                if exclusive:
                    self._writers_waiting -= 1

    def set_idle(self, holder: object, idle: bool) -> None:
        """Reader ``holder`` starts (True) or stops (False) waiting for its client."""
        with self._cond:
            if idle:
                self._idle_since[holder] = time.monotonic()
            else:
                self._idle_since.pop(holder, None)

    def _reader_idles(self) -> bool:
        if not self._idle_since:
            return False
        return time.monotonic() - min(self._idle_since.values()) >= self.IDLE_GRACE

    def release(self, exclusive: bool) -> None:
        """Give back a lock taken with :meth:`acquire`."""
        with self._cond:
            if exclusive:
                self._writer = False
            else:
                self._readers -= 1
            self._cond.notify_all()


class Gate:
    """The database behind its lock, as RPC handlers use it.

    :meth:`run` takes the lock for one piece of work and turns datastore and storage errors
    into the call's status; streams take the lock themselves with :meth:`acquire`.
    ``idle`` ends transactions that keep the lock without using it for ``idle_timeout``
    seconds.
    """

    def __init__(self, db: Database, idle_timeout: float = 60.0) -> None:
        self.db = db
        self.lock = AccessLock()
        self.idle = IdleWatch(idle_timeout, "indexeddb")
        self.closed = False

    def close(self) -> None:
        """Refuse new work and close the database."""
        self.closed = True
        self.idle.close()
        self.db.close()

    def acquire(self, context: grpc.ServicerContext, exclusive: bool) -> None:
        """Take the lock for the call behind ``context``, or end the call with a status."""
        if self.closed:
            context.abort(grpc.StatusCode.UNAVAILABLE, "the IndexedDB service is closed")
        rpc_alive = call_alive(context)

        def alive() -> bool:
            return not self.closed and rpc_alive()

        if self.lock.acquire(exclusive, alive):
            if alive():
                return
            self.lock.release(exclusive)  # it ended just as the lock came free
        remaining = getattr(context, "time_remaining", lambda: None)()
        if remaining is not None and remaining <= 0:
            context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded waiting for the database"
            )
        context.abort(grpc.StatusCode.CANCELLED, "call ended while waiting for the database")

    def release(self, exclusive: bool) -> None:
        """Give back the lock taken with :meth:`acquire`."""
        self.lock.release(exclusive)

    def run(self, context: grpc.ServicerContext, exclusive: bool, fn: Callable[[], T]) -> T:
        """Run ``fn`` under the lock (exclusive work atomically); errors become statuses."""
        self.acquire(context, exclusive)
        try:
            if not exclusive:
                return fn()
            with self.db.atomic():
                return fn()
        except DatastoreError as exc:
            context.abort(exc.code, exc.message)
        except Exception as exc:  # storage failures; their text stays in the log
            _log.warning("IndexedDB storage error: %s", exc)
            context.abort(grpc.StatusCode.INTERNAL, STORAGE_FAILURE)
        finally:
            self.lock.release(exclusive)
