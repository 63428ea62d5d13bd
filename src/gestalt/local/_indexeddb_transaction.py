"""The ``Transaction`` stream of the embedded IndexedDB service (contract section 3.9).

A transaction holds the database-wide lock from begin to its end: exclusive (with an open
SQLite transaction) for readwrite, shared for readonly. Operations run the same engine
methods as the unary RPCs, so they see the transaction's earlier writes.

A transaction whose client sends nothing for the service's idle timeout (60 s unless
configured) is rolled back and its lock released; the client's next frame is answered
``FAILED_PRECONDITION`` "datastore: transaction is already finished: ..." saying why. A
client that never comes back has its call cancelled after a second timeout.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final

import grpc
from google.protobuf.message import Message
from google.rpc import status_pb2

from gestalt.gen.v1 import datastore_pb2 as pb
from gestalt.local._idle import Watched
from gestalt.local._indexeddb_access import STORAGE_FAILURE, Gate, client_frames, opening_frame
from gestalt.local._indexeddb_engine import Database
from gestalt.local._indexeddb_keys import DatastoreError, invalid, not_found, quoted

__all__ = ["serve_transaction"]

_log = logging.getLogger("gestalt.local.indexeddb")

_READ_ONLY = "datastore: transaction is readonly"

# Operation -> (engine method, writes?, TransactionOperationResponse result field).
_OPERATIONS: Final[dict[str, tuple[Callable[[Database, Any], Message], bool, str]]] = {
    "get": (Database.get, False, "record"),
    "get_key": (Database.get_key, False, "key"),
    "add": (Database.add, True, "empty"),
    "put": (Database.put, True, "empty"),
    "delete": (Database.delete, True, "empty"),
    "clear": (Database.clear, True, "empty"),
    "get_all": (Database.get_all, False, "records"),
    "get_all_keys": (Database.get_all_keys, False, "keys"),
    "count": (Database.count, False, "count"),
    "delete_range": (Database.delete_range, True, "delete"),
    "index_get": (Database.index_get, False, "record"),
    "index_get_key": (Database.index_get_key, False, "key"),
    "index_get_all": (Database.index_get_all, False, "records"),
    "index_get_all_keys": (Database.index_get_all_keys, False, "keys"),
    "index_count": (Database.index_count, False, "count"),
    "index_delete": (Database.index_delete, True, "delete"),
}


def _status(error: DatastoreError) -> status_pb2.Status:
    code: int = error.code.value[0]
    return status_pb2.Status(code=code, message=error.message)


def _internal() -> DatastoreError:
    return DatastoreError(grpc.StatusCode.INTERNAL, STORAGE_FAILURE)


class _Held:
    """The lock a transaction holds, given back once by whoever ends it first: the stream
    itself or the idle watch (which rolls back and marks the transaction expired)."""

    def __init__(self, gate: Gate, readwrite: bool) -> None:
        self.gate = gate
        self.readwrite = readwrite
        self.mutex = threading.Lock()
        self.held = True
        self.idle = False  # a readonly holder waiting for its client (see AccessLock)
        self.expired = False
        self.cancel_watch: Watched | None = None

    def set_idle(self, idle: bool) -> None:
        """Mark the wait for the client's next frame (readonly holders only)."""
        if self.held and not self.readwrite and idle != self.idle:
            self.idle = idle
            self.gate.lock.set_idle(self, idle)

    def end(self) -> None:
        """Roll back (readwrite) and release the lock unless already done; under ``mutex``."""
        if not self.held:
            return
        self.held = False
        self.set_idle_off()
        try:
            if self.readwrite:
                self.gate.db.rollback()
        finally:
            self.gate.release(self.readwrite)

    def set_idle_off(self) -> None:
        if self.idle:
            self.idle = False
            self.gate.lock.set_idle(self, False)


def _expire(held: _Held, watched: Watched, context: grpc.ServicerContext) -> None:
    """Idle watch callback: end a transaction whose client went quiet."""
    with held.mutex:
        if watched.busy or not held.held:
            return
        held.expired = True
        held.end()
    _log.info("IndexedDB transaction idle for %.0f s: rolled back", held.gate.idle.timeout)
    # Frees the worker if the client never comes back.
    held.cancel_watch = held.gate.idle.watch(lambda: _cancel(context))


def _cancel(context: grpc.ServicerContext) -> None:
    context.cancel()


def serve_transaction(
    gate: Gate, requests: Iterator[pb.TransactionClientMessage], context: grpc.ServicerContext
) -> Iterator[pb.TransactionServerMessage]:
    """Serve one transaction stream.

    ``begin`` takes the database lock (exclusive for readwrite) and is acknowledged;
    operations run in order and see earlier writes; ``commit`` applies them atomically;
    ``abort``, a failed operation, a half-close or a cancelled call rolls them back. After
    a failed operation the answer carries the error, an ``abort`` frame follows, the lock is
    released and further frames are ignored until the client half-closes.
    """
    frames = client_frames(requests)
    first = opening_frame(frames, context, "begin", "transaction")
    if first is None:
        return
    begin = first.begin
    if not begin.stores:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "datastore: invalid transaction")
    readwrite = begin.mode == pb.TRANSACTION_READWRITE
    gate.acquire(context, readwrite)
    held = _Held(gate, readwrite)
    watched = gate.idle.watch(lambda: _expire(held, watched, context))
    watched.busy = True
    try:
        if readwrite:
            try:
                gate.db.begin(begin.durability_hint)
            except Exception as exc:
                _log.warning("IndexedDB could not begin a transaction: %s", exc)
                context.abort(grpc.StatusCode.INTERNAL, STORAGE_FAILURE)
        yield pb.TransactionServerMessage(begin=pb.TransactionBeginResponse())
        scope = frozenset(begin.stores)
        while True:
            with held.mutex:
                watched.touch()
                watched.busy = False
                held.set_idle(True)
            frame = next(frames, None)
            with held.mutex:
                watched.busy = True
                held.set_idle_off()
            if frame is None:
                return
            if held.expired:
                context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    "datastore: transaction is already finished: it was rolled back after"
                    f" {gate.idle.timeout:g} s without a request",
                )
            which = frame.WhichOneof("msg")
            if which == "operation":
                response, failure = _operate(gate.db, frame.operation, scope, readwrite)
                yield pb.TransactionServerMessage(operation=response)
                if failure is None:
                    continue
                with held.mutex:
                    held.end()
                # The host repeats a readonly violation in the abort frame, no other error.
                repeat = failure.message == _READ_ONLY
                abort = pb.TransactionAbortResponse(error=_status(failure) if repeat else None)
                yield pb.TransactionServerMessage(abort=abort)
                for _ in frames:
                    pass
                return
            if which == "commit":
                yield pb.TransactionServerMessage(commit=_commit(gate.db, readwrite))
                return
            if which == "abort":
                gate.db.rollback()
                yield pb.TransactionServerMessage(abort=pb.TransactionAbortResponse())
                return
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the transaction has already begun")
    finally:
        watched.done()
        with held.mutex:
            held.end()
            if held.cancel_watch is not None:
                held.cancel_watch.done()


def _commit(db: Database, readwrite: bool) -> pb.TransactionCommitResponse:
    if not readwrite:
        return pb.TransactionCommitResponse()
    try:
        db.commit()
    except Exception as exc:
        _log.warning("IndexedDB commit failed: %s", exc)
        return pb.TransactionCommitResponse(error=_status(_internal()))
    return pb.TransactionCommitResponse()


def _operate(
    db: Database, op: pb.TransactionOperation, scope: frozenset[str], readwrite: bool
) -> tuple[pb.TransactionOperationResponse, DatastoreError | None]:
    kind = op.WhichOneof("operation")
    try:
        if kind is None:
            raise invalid("unknown transaction operation")
        method, writes, result_field = _OPERATIONS[kind]
        request = getattr(op, kind)
        if writes and not readwrite:
            raise DatastoreError(grpc.StatusCode.FAILED_PRECONDITION, _READ_ONLY)
        if request.store not in scope:
            raise not_found(
                f"object store {quoted(request.store)} is outside the transaction's scope"
            )
        result = method(db, request)
    except DatastoreError as exc:
        failure = exc
    except Exception as exc:  # storage failures; their text stays in the log
        _log.warning("IndexedDB storage error in a transaction: %s", exc)
        failure = _internal()
    else:
        response = pb.TransactionOperationResponse(request_id=op.request_id)
        getattr(response, result_field).CopyFrom(result)
        return response, None
    error = _status(failure)
    return pb.TransactionOperationResponse(request_id=op.request_id, error=error), failure
