"""The ``Transaction`` stream of the embedded IndexedDB service (contract section 3.9).

A transaction holds the database-wide lock from begin to its end: exclusive (with an open
SQLite transaction) for readwrite, shared for readonly. Operations run the same engine
methods as the unary RPCs, so they see the transaction's earlier writes.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any, Final

import grpc
from google.protobuf.message import Message
from google.rpc import status_pb2

from gestalt.gen.v1 import datastore_pb2 as pb
from gestalt.local._indexeddb_access import Gate, client_frames
from gestalt.local._indexeddb_engine import Database
from gestalt.local._indexeddb_keys import DatastoreError, invalid, not_found

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


def _internal(exc: sqlite3.Error) -> DatastoreError:
    return DatastoreError(grpc.StatusCode.INTERNAL, f"datastore: {exc}")


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
    first = next(frames, None)
    if first is None:
        return
    if first.WhichOneof("msg") != "begin":
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "first transaction frame must be begin")
    begin = first.begin
    if not begin.stores:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "datastore: invalid transaction")
    readwrite = begin.mode == pb.TRANSACTION_READWRITE
    gate.acquire(context, readwrite)
    held = True
    try:
        if readwrite:
            try:
                gate.db.begin(begin.durability_hint)
            except sqlite3.Error as exc:
                context.abort(grpc.StatusCode.INTERNAL, f"datastore: {exc}")
        yield pb.TransactionServerMessage(begin=pb.TransactionBeginResponse())
        scope = frozenset(begin.stores)
        for frame in frames:
            which = frame.WhichOneof("msg")
            if which == "operation":
                response, failure = _operate(gate.db, frame.operation, scope, readwrite)
                yield pb.TransactionServerMessage(operation=response)
                if failure is None:
                    continue
                gate.db.rollback()
                gate.release(readwrite)
                held = False
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
        if held:
            if readwrite:
                gate.db.rollback()
            gate.release(readwrite)


def _commit(db: Database, readwrite: bool) -> pb.TransactionCommitResponse:
    if not readwrite:
        return pb.TransactionCommitResponse()
    try:
        db.commit()
    except sqlite3.Error as exc:
        _log.warning("IndexedDB commit failed: %s", exc)
        return pb.TransactionCommitResponse(error=_status(_internal(exc)))
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
            raise not_found()
        result = method(db, request)
    except DatastoreError as exc:
        failure = exc
    except sqlite3.Error as exc:
        _log.warning("IndexedDB storage error in a transaction: %s", exc)
        failure = _internal(exc)
    else:
        response = pb.TransactionOperationResponse(request_id=op.request_id)
        getattr(response, result_field).CopyFrom(result)
        return response, None
    error = _status(failure)
    return pb.TransactionOperationResponse(request_id=op.request_id, error=error), failure
