"""The sync IndexedDB handles: object stores, indexes, cursors and transactions.

Made by :class:`gestalt._clients.indexeddb.IndexedDB` (see that module for the API and the choices
made where the reference behaves differently). Requests, decoding, checks and state live
once in :mod:`.indexeddb_handles`; the classes here run them with blocking calls.
Every handle holds the client's :class:`Session`: the generated stub, the relay metadata,
the default timeout and the set of open streams that closing the client cancels.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from gestalt._clients import indexeddb_handles as core
from gestalt._clients import indexeddb_streams as frames
from gestalt._clients.closing import Closing, Context
from gestalt._clients.errors import HostServiceError, TransactionError
from gestalt._clients.indexeddb_streams import SyncExchange
from gestalt.gen.v1 import datastore_pb2 as pb
from gestalt.gen.v1.datastore_clients import IndexedDBClient

if TYPE_CHECKING:
    from gestalt._clients.indexeddb_types import KeyRange

__all__ = [
    "Cursor",
    "Index",
    "ObjectStore",
    "Session",
    "Transaction",
    "TransactionIndex",
    "TransactionObjectStore",
    "session_of",
]

_T = TypeVar("_T")
_I = TypeVar("_I")


class Session(core.SessionBase[IndexedDBClient]):
    """What the handles of one client share: the stub, metadata, default timeout, streams."""

    __slots__ = ()

    client_type = IndexedDBClient

    @property
    def stub(self) -> IndexedDBClient:
        """The generated client; ``ValueError`` once the IndexedDB client is closed."""
        if self._conn is not None:
            stub: IndexedDBClient = self._conn.stub
            return stub
        assert self._client is not None
        return self._client

    def _call(self, call: core.Call[_T], timeout: float | None) -> _T:
        """Make ``call`` as a unary RPC and decode its response."""
        method = getattr(self.stub, call.op)
        return call.decode(method(call.request, timeout=self.pick(timeout), metadata=self.metadata))

    def close(self) -> None:
        """Cancel the open streams and give up the channel."""
        self._cancel_streams()
        if self._conn is not None:
            self._conn.close()


def session_of(stub: object) -> Session:
    """The session behind a handle's ``stub`` argument: a client, a session or a stub."""
    return core.find_session(stub, Session)


# -- store and index calls (shared by plain and transactional handles) -----------------------


class _StoreCalls(core.StoreHandle[_I]):
    """The object-store methods, run through the owner: a session or a transaction."""

    __slots__ = ()

    def _run(self, call: core.Call[_T], timeout: float | None) -> _T:
        owner: Session | Transaction = self._owner
        return owner._call(call, timeout)

    def get(self, id: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Fetch a record by primary key; :class:`NotFoundError` when missing."""
        return self._run(self._get_call(id), timeout)

    def get_key(self, id: str, *, timeout: float | None = None) -> str:
        """Return the canonical key for a primary key lookup; :class:`NotFoundError` if absent."""
        return self._run(self._get_key_call(id), timeout)

    def add(self, record: dict[str, Any], *, timeout: float | None = None) -> None:
        """Insert a new record; :class:`AlreadyExistsError` when its id or a unique key is taken."""
        self._run(self._write_call("add", record), timeout)

    def put(self, record: dict[str, Any], *, timeout: float | None = None) -> None:
        """Insert or replace a record."""
        self._run(self._write_call("put", record), timeout)

    def delete(self, id: str, *, timeout: float | None = None) -> None:
        """Delete a record by primary key (a missing record is not an error)."""
        self._run(self._delete_call(id), timeout)

    def clear(self, *, timeout: float | None = None) -> None:
        """Delete every record in the store."""
        self._run(self._clear_call(), timeout)

    def get_all(
        self, key_range: KeyRange | None = None, *, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Return all records that fall within ``key_range`` (every record for None)."""
        return self._run(self._get_all_call(key_range), timeout)

    def get_all_keys(
        self, key_range: KeyRange | None = None, *, timeout: float | None = None
    ) -> list[str]:
        """Return all primary keys that fall within ``key_range``."""
        return self._run(self._get_all_keys_call(key_range), timeout)

    def count(self, key_range: KeyRange | None = None, *, timeout: float | None = None) -> int:
        """Return the number of matching records."""
        return self._run(self._count_call(key_range), timeout)

    def delete_range(self, key_range: KeyRange, *, timeout: float | None = None) -> int:
        """Delete all records within ``key_range`` (required) and return how many."""
        return self._run(self._delete_range_call(key_range), timeout)


class _IndexCalls(core.IndexHandle):
    """The index methods, run through the owner: a session or a transaction."""

    __slots__ = ()

    def _run(self, call: core.Call[_T], timeout: float | None) -> _T:
        owner: Session | Transaction = self._owner
        return owner._call(call, timeout)

    def get(self, *values: Any, timeout: float | None = None) -> dict[str, Any]:
        """Fetch the first matching record for the values; :class:`NotFoundError` if none."""
        return self._run(self._get_call(values), timeout)

    def get_key(self, *values: Any, timeout: float | None = None) -> str:
        """Fetch the first matching primary key for the indexed values."""
        return self._run(self._get_key_call(values), timeout)

    def get_all(
        self, *values: Any, key_range: KeyRange | None = None, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Return all records matching the indexed values and key range."""
        return self._run(self._get_all_call(values, key_range), timeout)

    def get_all_keys(
        self, *values: Any, key_range: KeyRange | None = None, timeout: float | None = None
    ) -> list[str]:
        """Return all primary keys matching the indexed values and key range."""
        return self._run(self._get_all_keys_call(values, key_range), timeout)

    def count(
        self, *values: Any, key_range: KeyRange | None = None, timeout: float | None = None
    ) -> int:
        """Return the number of records matching the indexed values."""
        return self._run(self._count_call(values, key_range), timeout)

    def delete(self, *values: Any, timeout: float | None = None) -> int:
        """Delete records matching the indexed values and return how many."""
        return self._run(self._delete_call(values), timeout)


# -- cursors ---------------------------------------------------------------------------------


class Cursor(core.CursorBase, Closing):
    """Stateful cursor over object store or index results.

    Made by ``open_cursor`` / ``open_key_cursor``; the constructor opens the stream and
    waits for the host to acknowledge it. The cursor starts before the first entry: move
    with :meth:`continue_`, :meth:`continue_to_key` or :meth:`advance` (each True on an
    entry, False at the end), or iterate it. ``timeout`` bounds each step. Close it (or use
    ``with``); a cursor garbage collected while open is cancelled.
    """

    __slots__ = ()

    _session_type = Session
    _lock_type = threading.Lock
    _exchange: SyncExchange

    def _start(self) -> None:
        grpc_stub, metadata = self._session.stub, self._session.metadata
        self._watch(
            SyncExchange(
                lambda requests: grpc_stub.open_cursor(requests, metadata=metadata),
                self._session.streams,
                "cursor",
            )
        )
        frame, self._open_frame = self._open_frame, None
        assert frame is not None
        self._command(frame, self._s.opened)

    def _command(
        self, frame: pb.CursorClientMessage, apply: Callable[[pb.CursorResponse | None], _T]
    ) -> _T:
        """Send ``frame``, read the answer and apply it to the state; a failure ends the stream."""
        exchange = self._exchange
        try:
            answer = exchange.request(frame, self._timeout)
        except BaseException as exc:
            self._failed(exc, exchange)
            raise
        return self._apply(apply, answer, exchange)

    def _move(self, frame: pb.CursorClientMessage) -> bool:
        with self._lock:
            if not self._s.check_movable():
                return False
            if self._command(frame, self._s.moved):
                return True
            # Nothing can follow the end but close: release the host's stream now.
            self._detach()
            self._exchange.close(frames.CURSOR_CLOSE_FRAME, self._timeout)
            return False

    def continue_(self) -> bool:
        """Advance to the next matching cursor entry; False once there is none."""
        return self._move(frames.CURSOR_NEXT_FRAME)

    def continue_to_key(self, key: Any) -> bool:
        """Advance the cursor to ``key`` or the next greater entry (smaller for PREV).

        On an index cursor a list or tuple gives one value per key-path field.
        """
        return self._move(frames.seek_frame(key, index=bool(self._s.index)))

    def advance(self, count: int) -> bool:
        """Skip ``count`` entries and land on the one after them (host semantics)."""
        return self._move(frames.advance_frame(count))

    def delete(self) -> None:
        """Delete the current cursor entry (the cursor stays where it is).

        :class:`NotFoundError` once the cursor is exhausted, before anything is sent.
        """
        with self._lock:
            self._s.check_on_entry("delete", mutation=True)
            self._command(frames.CURSOR_DELETE_FRAME, self._s.deleted)

    def update(self, value: dict[str, Any]) -> None:
        """Replace the current cursor entry with ``value`` (its primary key is kept).

        :class:`NotFoundError` once the cursor is exhausted, before anything is sent.
        """
        frame = frames.update_frame(value)
        with self._lock:
            self._s.check_on_entry("update", mutation=True)
            self._command(frame, self._s.updated)

    def close(self) -> None:
        """Close the cursor stream (the host has ended it when this returns); idempotent."""
        with self._lock:
            failed = self._s.close()
            if failed is None:
                return
            self._detach()
            if failed:
                self._exchange.cancel()
            else:
                self._exchange.close(frames.CURSOR_CLOSE_FRAME, self._timeout)

    def __iter__(self) -> Iterator[Cursor]:
        """Move with :meth:`continue_` and yield the cursor on each entry until the end."""
        while self.continue_():
            yield self


# -- transactions ----------------------------------------------------------------------------


class TransactionIndex(_IndexCalls, core.TransactionIndexHandle["Transaction"]):
    """An index whose calls run in a transaction (from :meth:`TransactionObjectStore.index`)."""

    __slots__ = ()


class TransactionObjectStore(
    _StoreCalls[TransactionIndex], core.TransactionStoreHandle[TransactionIndex, "Transaction"]
):
    """An object store whose calls run in a transaction (from :meth:`Transaction.object_store`)."""

    __slots__ = ()

    _index_type = TransactionIndex


class Transaction(core.TransactionBase["TransactionObjectStore"], Context):
    """An explicit IndexedDB transaction (from :meth:`IndexedDB.transaction`).

    The constructor opens the stream and waits for the host to begin. Operations on
    :meth:`object_store` handles (and their indexes) run in the transaction, one at a time,
    and see its earlier writes. :meth:`commit` applies them atomically, :meth:`abort`
    discards them. Any failed operation (a missing record included) rolls the whole
    transaction back and ends it. As a context manager it commits when the block succeeds
    and aborts when it raises. ``timeout`` bounds each step. A transaction dropped
    unfinished is cancelled, so the host rolls it back.
    """

    __slots__ = ()

    _session_type = Session
    _lock_type = threading.Lock
    _store_type = TransactionObjectStore
    _exchange: SyncExchange

    def _start(self) -> None:
        grpc_stub, metadata = self._session.stub, self._session.metadata
        exchange = SyncExchange(
            lambda requests: grpc_stub.transaction(requests, metadata=metadata),
            self._session.streams,
            "transaction",
        )
        self._watch(exchange)
        begin, self._begin = self._begin, None
        try:
            self._s.began(exchange.request(begin, self._timeout))
        except BaseException:
            self._detach()
            exchange.cancel()
            raise

    def _call(self, call: core.Call[_T], timeout: float | None) -> _T:
        """Run ``call`` as the transaction's next operation and decode its result."""
        with self._lock:
            frame = self._s.operation(call.op, call.request)
            try:
                answer = self._exchange.request(frame, self._step_timeout(timeout))
                return call.decode(self._s.result(answer, call.result))
            except BaseException as exc:
                if self._failed(exc):
                    self._exchange.close(timeout=self._timeout)
                else:
                    self._exchange.cancel()
                raise

    def _end(self, frame: pb.TransactionClientMessage, step: str, timeout: float | None) -> None:
        """Send commit or abort, check its answer and close the stream."""
        self._s.finished = True
        self._detach()
        try:
            self._s.ended(self._exchange.request(frame, self._step_timeout(timeout)), step)
        except BaseException as exc:
            self._s.fail(exc)
            self._exchange.cancel()
            raise
        self._exchange.close(timeout=self._timeout)

    def commit(self, *, timeout: float | None = None) -> None:
        """Commit the transaction; ``TransactionError`` if it has already finished."""
        with self._lock:
            self._s.check_open()
            self._end(frames.TRANSACTION_COMMIT_FRAME, "commit", timeout)

    def abort(self, reason: str = "", *, timeout: float | None = None) -> None:
        """Abort the transaction (no-op once finished); ``reason`` is passed to the host."""
        frame = frames.abort_frame(reason)
        with self._lock:
            if not self._s.finished:
                self._end(frame, "abort", timeout)

    def _cancel(self) -> None:
        with self._lock:
            if not self._s.finished:
                self._s.fail(TransactionError("transaction was cancelled"))
                self._detach()
                self._exchange.cancel()

    def _exit(self, exc: BaseException | None) -> None:
        """Commit when the block succeeded, abort when it raised (never suppressing it)."""
        if exc is None:
            self.commit()
        elif not isinstance(exc, Exception):
            self._cancel()  # KeyboardInterrupt and friends: do not wait for the host
        else:
            try:
                self.abort()
            except HostServiceError as abort_error:
                exc.add_note(f"aborting the IndexedDB transaction failed too: {abort_error}")


# -- the handles -----------------------------------------------------------------------------


class Index(_IndexCalls, core.IndexCursors[Cursor]):
    """Client bound to a secondary index on an object store.

    Built by :meth:`ObjectStore.index`. Methods take the index key as positional values,
    matched in order against the index's key path (fewer values match a prefix).
    """

    __slots__ = ()

    _session_type = Session
    _cursor_type = Cursor


class ObjectStore(_StoreCalls[Index], core.StoreCursors[Cursor]):
    """Client bound to a single IndexedDB object store.

    Built by :meth:`IndexedDB.object_store`; ``stub`` is the ``IndexedDB`` client. No call is
    made until a method is used.
    """

    __slots__ = ()

    _session_type = Session
    _cursor_type = Cursor
    _index_type = Index


TransactionObjectStore._tx_type = TransactionIndex._tx_type = Transaction
