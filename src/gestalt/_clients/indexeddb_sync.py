"""The sync IndexedDB handles: object stores, indexes, cursors and transactions.

Made by :class:`gestalt._clients.indexeddb.IndexedDB` (see that module for the API and the choices
made where the reference behaves differently). Every handle holds the client's
:class:`Session`: the generated stub, the relay metadata, the default timeout and the set of
open streams that closing the client cancels.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, TypeVar

from gestalt._clients.errors import HostServiceError, TransactionError
from gestalt._clients.indexeddb_codec import (
    CURSOR_NEXT,
    KeyRange,
    check_direction,
    check_id,
    check_name,
    cursor_open,
    decode_record,
    decode_records,
    index_request,
    range_request,
    record_request,
)
from gestalt._clients.indexeddb_streams import (
    CURSOR_CLOSE_FRAME,
    CURSOR_DELETE_FRAME,
    CURSOR_NEXT_FRAME,
    TRANSACTION_COMMIT_FRAME,
    CursorState,
    SyncExchange,
    TransactionState,
    abort_frame,
    advance_frame,
    begin_frame,
    check_scope,
    interrupted_error,
    open_values,
    seek_frame,
    update_frame,
)
from gestalt._clients.transport import SyncConnection, check_timeout
from gestalt.gen.support import Metadata
from gestalt.gen.v1 import datastore_pb2 as pb
from gestalt.gen.v1.datastore_clients import IndexedDBClient

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

# -- shared plumbing -------------------------------------------------------------------------


class Session:
    """What the handles of one client share: the stub, metadata, default timeout, streams."""

    __slots__ = ("_client", "_conn", "metadata", "streams", "timeout")

    def __init__(
        self,
        *,
        conn: SyncConnection[IndexedDBClient] | None = None,
        client: IndexedDBClient | None = None,
        metadata: Metadata | None = None,
        timeout: float | None = None,
    ) -> None:
        self._conn = conn
        self._client = client
        self.metadata = metadata
        self.timeout = timeout
        self.streams: set[SyncExchange] = set()

    @property
    def stub(self) -> IndexedDBClient:
        """The generated client; ``ValueError`` once the IndexedDB client is closed."""
        conn = self._conn
        if conn is not None:
            return conn.stub
        assert self._client is not None
        return self._client

    def pick(self, timeout: float | None) -> float | None:
        """A call's timeout: its own when given, else the client's default."""
        return self.timeout if timeout is None else check_timeout(timeout)

    def close(self) -> None:
        """Cancel the open streams and give up the channel."""
        for exchange in tuple(self.streams):
            exchange.cancel()
        if self._conn is not None:
            self._conn.close()


def session_of(stub: object) -> Session:
    """The session behind a handle's ``stub`` argument: a client, a session or a stub."""
    if isinstance(stub, Session):
        return stub
    session = getattr(stub, "_session", None)
    if isinstance(session, Session):  # an IndexedDB client
        return session
    if isinstance(stub, IndexedDBClient):
        return Session(client=stub)
    raise TypeError(
        f"stub must be an IndexedDB client (or a generated IndexedDBClient), "
        f"not {type(stub).__name__}"
    )


def _check_bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be a bool, not {type(value).__name__}")
    return value


# -- store and index calls (shared by plain and transactional handles) -----------------------


class _StoreCalls:
    """The object-store methods; subclasses say how a call travels (unary or in a transaction)."""

    __slots__ = ("_store",)

    _store: str

    def _call(self, op: str, request: Any, result: str, timeout: float | None) -> Any:
        raise NotImplementedError

    @property
    def name(self) -> str:
        """The object store's name."""
        return self._store

    def get(self, id: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Fetch a record by primary key; :class:`NotFoundError` when missing."""
        request = pb.ObjectStoreRequest(store=self._store, id=check_id(id))
        return decode_record(self._call("get", request, "record", timeout).record)

    def get_key(self, id: str, *, timeout: float | None = None) -> str:
        """Return the canonical key for a primary key lookup; :class:`NotFoundError` if absent."""
        request = pb.ObjectStoreRequest(store=self._store, id=check_id(id))
        key: str = self._call("get_key", request, "key", timeout).key
        return key

    def add(self, record: dict[str, Any], *, timeout: float | None = None) -> None:
        """Insert a new record; :class:`AlreadyExistsError` when its id or a unique key is taken."""
        self._call("add", record_request(self._store, record), "empty", timeout)

    def put(self, record: dict[str, Any], *, timeout: float | None = None) -> None:
        """Insert or replace a record."""
        self._call("put", record_request(self._store, record), "empty", timeout)

    def delete(self, id: str, *, timeout: float | None = None) -> None:
        """Delete a record by primary key (a missing record is not an error)."""
        request = pb.ObjectStoreRequest(store=self._store, id=check_id(id))
        self._call("delete", request, "empty", timeout)

    def clear(self, *, timeout: float | None = None) -> None:
        """Delete every record in the store."""
        self._call("clear", pb.ObjectStoreNameRequest(store=self._store), "empty", timeout)

    def get_all(
        self, key_range: KeyRange | None = None, *, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Return all records that fall within ``key_range`` (every record for None)."""
        request = range_request(self._store, key_range)
        return decode_records(self._call("get_all", request, "records", timeout).records)

    def get_all_keys(
        self, key_range: KeyRange | None = None, *, timeout: float | None = None
    ) -> list[str]:
        """Return all primary keys that fall within ``key_range``."""
        request = range_request(self._store, key_range)
        return list(self._call("get_all_keys", request, "keys", timeout).keys)

    def count(self, key_range: KeyRange | None = None, *, timeout: float | None = None) -> int:
        """Return the number of matching records."""
        request = range_request(self._store, key_range)
        return int(self._call("count", request, "count", timeout).count)

    def delete_range(self, key_range: KeyRange, *, timeout: float | None = None) -> int:
        """Delete all records within ``key_range`` (required) and return how many."""
        request = range_request(self._store, key_range, required=True)
        return int(self._call("delete_range", request, "delete", timeout).deleted)


class _IndexCalls:
    """The index methods; subclasses say how a call travels."""

    __slots__ = ("_index", "_store")

    _store: str
    _index: str

    def _call(self, op: str, request: Any, result: str, timeout: float | None) -> Any:
        raise NotImplementedError

    @property
    def name(self) -> str:
        """The index's name."""
        return self._index

    @property
    def store_name(self) -> str:
        """The name of the object store the index belongs to."""
        return self._store

    def get(self, *values: Any, timeout: float | None = None) -> dict[str, Any]:
        """Fetch the first matching record for the values; :class:`NotFoundError` if none."""
        request = index_request(self._store, self._index, values)
        return decode_record(self._call("index_get", request, "record", timeout).record)

    def get_key(self, *values: Any, timeout: float | None = None) -> str:
        """Fetch the first matching primary key for the indexed values."""
        request = index_request(self._store, self._index, values)
        key: str = self._call("index_get_key", request, "key", timeout).key
        return key

    def get_all(
        self, *values: Any, key_range: KeyRange | None = None, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Return all records matching the indexed values and key range."""
        request = index_request(self._store, self._index, values, key_range)
        return decode_records(self._call("index_get_all", request, "records", timeout).records)

    def get_all_keys(
        self, *values: Any, key_range: KeyRange | None = None, timeout: float | None = None
    ) -> list[str]:
        """Return all primary keys matching the indexed values and key range."""
        request = index_request(self._store, self._index, values, key_range)
        return list(self._call("index_get_all_keys", request, "keys", timeout).keys)

    def count(
        self, *values: Any, key_range: KeyRange | None = None, timeout: float | None = None
    ) -> int:
        """Return the number of records matching the indexed values."""
        request = index_request(self._store, self._index, values, key_range)
        return int(self._call("index_count", request, "count", timeout).count)

    def delete(self, *values: Any, timeout: float | None = None) -> int:
        """Delete records matching the indexed values and return how many."""
        request = index_request(self._store, self._index, values)
        return int(self._call("index_delete", request, "delete", timeout).deleted)


class ObjectStore(_StoreCalls):
    """Client bound to a single IndexedDB object store.

    Built by :meth:`IndexedDB.object_store`; ``stub`` is the ``IndexedDB`` client. No call is
    made until a method is used.
    """

    __slots__ = ("_session",)

    def __init__(self, stub: Any, store: str) -> None:
        self._session = session_of(stub)
        self._store = check_name(store, "store name")

    def _call(self, op: str, request: Any, result: str, timeout: float | None) -> Any:
        session = self._session
        return getattr(session.stub, op)(
            request, timeout=session.pick(timeout), metadata=session.metadata
        )

    def open_cursor(
        self,
        key_range: KeyRange | None = None,
        direction: int = CURSOR_NEXT,
        *,
        timeout: float | None = None,
    ) -> Cursor:
        """Open a record cursor over the store (positioned before the first entry)."""
        return Cursor(
            self._session, self._store, key_range=key_range, direction=direction, timeout=timeout
        )

    def open_key_cursor(
        self,
        key_range: KeyRange | None = None,
        direction: int = CURSOR_NEXT,
        *,
        timeout: float | None = None,
    ) -> Cursor:
        """Open a key-only cursor over the store (positioned before the first entry)."""
        return Cursor(
            self._session,
            self._store,
            key_range=key_range,
            direction=direction,
            keys_only=True,
            timeout=timeout,
        )

    def index(self, name: str) -> Index:
        """Return a client for a named index on this store (no call is made)."""
        return Index(self._session, self._store, name)

    def __repr__(self) -> str:
        return f"ObjectStore({self._store!r})"


class Index(_IndexCalls):
    """Client bound to a secondary index on an object store.

    Built by :meth:`ObjectStore.index`. Methods take the index key as positional values,
    matched in order against the index's key path (fewer values match a prefix).
    """

    __slots__ = ("_session",)

    def __init__(self, stub: Any, store: str, index: str) -> None:
        self._session = session_of(stub)
        self._store = check_name(store, "store name")
        self._index = check_name(index, "index name")

    def _call(self, op: str, request: Any, result: str, timeout: float | None) -> Any:
        session = self._session
        return getattr(session.stub, op)(
            request, timeout=session.pick(timeout), metadata=session.metadata
        )

    def open_cursor(
        self,
        *values: Any,
        key_range: KeyRange | None = None,
        direction: int = CURSOR_NEXT,
        timeout: float | None = None,
    ) -> Cursor:
        """Open a record cursor over the indexed results."""
        return Cursor(
            self._session,
            self._store,
            key_range=key_range,
            direction=direction,
            index=self._index,
            values=values,
            timeout=timeout,
        )

    def open_key_cursor(
        self,
        *values: Any,
        key_range: KeyRange | None = None,
        direction: int = CURSOR_NEXT,
        timeout: float | None = None,
    ) -> Cursor:
        """Open a key-only cursor over the indexed results."""
        return Cursor(
            self._session,
            self._store,
            key_range=key_range,
            direction=direction,
            keys_only=True,
            index=self._index,
            values=values,
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"Index({self._store!r}, {self._index!r})"


# -- cursors ---------------------------------------------------------------------------------


class Cursor:
    """Stateful cursor over object store or index results.

    Made by ``open_cursor`` / ``open_key_cursor``; the constructor opens the stream and
    waits for the host to acknowledge it. The cursor starts before the first entry: move
    with :meth:`continue_`, :meth:`continue_to_key` or :meth:`advance` (each True on an
    entry, False at the end), or iterate it. ``timeout`` bounds each step. Close it (or use
    ``with``); a cursor garbage collected while open is cancelled.
    """

    __slots__ = ("__weakref__", "_exchange", "_finalizer", "_lock", "_s", "_timeout")

    def __init__(
        self,
        stub: Any,
        store: str,
        *,
        key_range: KeyRange | None = None,
        direction: int = CURSOR_NEXT,
        keys_only: bool = False,
        index: str = "",
        values: tuple[Any, ...] = (),
        timeout: float | None = None,
    ) -> None:
        session = session_of(stub)
        index, values = open_values(values, index)
        frame = cursor_open(
            check_name(store, "store name"),
            key_range=key_range,
            direction=check_direction(direction),
            keys_only=_check_bool(keys_only, "keys_only"),
            index=index,
            values=values,
        )
        self._timeout = session.pick(timeout)
        self._s = CursorState(index, keys_only)
        self._lock = threading.Lock()
        grpc_stub, metadata = session.stub, session.metadata
        exchange = self._exchange = SyncExchange(
            lambda requests: grpc_stub.open_cursor(requests, metadata=metadata),
            session.streams,
            "cursor",
        )
        self._finalizer = weakref.finalize(self, exchange.cancel)
        self._finalizer.atexit = False
        self._command(frame, self._s.opened)

    def _command(
        self, frame: pb.CursorClientMessage, apply: Callable[[pb.CursorResponse | None], _T]
    ) -> _T:
        """Send ``frame``, read the answer and apply it to the state; a failure ends the stream."""
        try:
            answer = self._exchange.request(frame, self._timeout)
        except HostServiceError as exc:
            self._s.fail(exc)
            self._finalizer.detach()
            raise
        except BaseException:
            self._s.fail(interrupted_error())
            self._finalizer.detach()
            self._exchange.cancel()
            raise
        try:
            return apply(answer)
        except HostServiceError:
            self._finalizer.detach()
            self._exchange.cancel()
            raise

    def _move(self, frame: pb.CursorClientMessage) -> bool:
        with self._lock:
            if not self._s.check_movable():
                return False
            if self._command(frame, self._s.moved):
                return True
            # Nothing can follow the end but close: release the host's stream now.
            self._finalizer.detach()
            self._exchange.close(CURSOR_CLOSE_FRAME, self._timeout)
            return False

    def continue_(self) -> bool:
        """Advance to the next matching cursor entry; False once there is none."""
        return self._move(CURSOR_NEXT_FRAME)

    def continue_to_key(self, key: Any) -> bool:
        """Advance the cursor to ``key`` or the next greater entry (smaller for PREV).

        On an index cursor a list or tuple gives one value per key-path field.
        """
        return self._move(seek_frame(key, index=bool(self._s.index)))

    def advance(self, count: int) -> bool:
        """Skip ``count`` entries and land on the one after them (host semantics)."""
        return self._move(advance_frame(count))

    @property
    def key(self) -> Any:
        """Current key for the cursor entry.

        The primary key on a store cursor; on an index cursor a list with one value per
        key-path field. None when the cursor is not on an entry.
        """
        return self._s.key

    @property
    def primary_key(self) -> str | None:
        """Current primary key for the cursor entry (None when not on an entry)."""
        return self._s.primary_key

    @property
    def value(self) -> dict[str, Any]:
        """Current record value for the cursor entry.

        ``TypeError`` on a key cursor; ``ValueError`` when the cursor is not on an entry.
        """
        return self._s.record()

    def delete(self) -> None:
        """Delete the current cursor entry (the cursor stays where it is)."""
        with self._lock:
            self._s.check_on_entry("delete")
            self._command(CURSOR_DELETE_FRAME, self._s.deleted)

    def update(self, value: dict[str, Any]) -> None:
        """Replace the current cursor entry with ``value`` (its primary key is kept)."""
        frame = update_frame(value)
        with self._lock:
            self._s.check_on_entry("update")
            self._command(frame, self._s.updated)

    def close(self) -> None:
        """Close the cursor stream (the host has ended it when this returns); idempotent."""
        with self._lock:
            failed = self._s.close()
            if failed is None:
                return
            self._finalizer.detach()
            if failed:
                self._exchange.cancel()
            else:
                self._exchange.close(CURSOR_CLOSE_FRAME, self._timeout)

    def __iter__(self) -> Iterator[Cursor]:
        """Move with :meth:`continue_` and yield the cursor on each entry until the end."""
        while self.continue_():
            yield self

    def __enter__(self) -> Cursor:
        """Return the cursor for with statements."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the cursor at the end of a context manager block."""
        self.close()


# -- transactions ----------------------------------------------------------------------------


class Transaction:
    """An explicit IndexedDB transaction (from :meth:`IndexedDB.transaction`).

    The constructor opens the stream and waits for the host to begin. Operations on
    :meth:`object_store` handles (and their indexes) run in the transaction, one at a time,
    and see its earlier writes. :meth:`commit` applies them atomically, :meth:`abort`
    discards them. Any failed operation (a missing record included) rolls the whole
    transaction back and ends it. As a context manager it commits when the block succeeds
    and aborts when it raises. ``timeout`` bounds each step. A transaction dropped
    unfinished is cancelled, so the host rolls it back.
    """

    __slots__ = (
        "__weakref__",
        "_exchange",
        "_finalizer",
        "_lock",
        "_s",
        "_timeout",
        "mode",
        "stores",
    )

    def __init__(
        self,
        stub: Any,
        stores: list[str],
        mode: str = "readonly",
        *,
        durability_hint: str = "default",
        timeout: float | None = None,
    ) -> None:
        session = session_of(stub)
        begin = begin_frame(stores, mode, durability_hint)
        #: The stores in the transaction's scope, in the given order.
        self.stores: tuple[str, ...] = tuple(begin.begin.stores)
        #: ``"readonly"`` or ``"readwrite"``.
        self.mode = "readwrite" if begin.begin.mode == pb.TRANSACTION_READWRITE else "readonly"
        self._timeout = session.pick(timeout)
        self._lock = threading.Lock()
        self._s = TransactionState()
        grpc_stub, metadata = session.stub, session.metadata
        exchange = self._exchange = SyncExchange(
            lambda requests: grpc_stub.transaction(requests, metadata=metadata),
            session.streams,
            "transaction",
        )
        self._finalizer = weakref.finalize(self, exchange.cancel)
        self._finalizer.atexit = False
        try:
            self._s.began(exchange.request(begin, self._timeout))
        except BaseException:
            self._finalizer.detach()
            exchange.cancel()
            raise

    @property
    def finished(self) -> bool:
        """Whether the transaction was committed, aborted or ended by a failure."""
        return self._s.finished

    def object_store(self, name: str) -> TransactionObjectStore:
        """Return a handle whose calls run in this transaction."""
        return TransactionObjectStore(self, name)

    def _end_stream(self) -> None:
        """After a failure: close if the host rolled back and waits for that, else cancel."""
        self._finalizer.detach()
        if self._s.rolled_back:
            self._exchange.close(timeout=self._timeout)
        else:
            self._exchange.cancel()

    def _operate(self, op: str, request: Any, result: str, timeout: float | None) -> Any:
        with self._lock:
            frame = self._s.operation(op, request)
            try:
                answer = self._exchange.request(
                    frame, self._timeout if timeout is None else check_timeout(timeout)
                )
                return self._s.result(answer, result)
            except BaseException as exc:
                self._s.fail(exc)
                self._end_stream()
                raise

    def _end(self, frame: pb.TransactionClientMessage, step: str, timeout: float | None) -> None:
        """Send commit or abort, check its answer and close the stream."""
        self._s.finished = True
        self._finalizer.detach()
        try:
            self._s.ended(
                self._exchange.request(
                    frame, self._timeout if timeout is None else check_timeout(timeout)
                ),
                step,
            )
        except BaseException as exc:
            self._s.fail(exc)
            self._exchange.cancel()
            raise
        self._exchange.close(timeout=self._timeout)

    def commit(self, *, timeout: float | None = None) -> None:
        """Commit the transaction; ``TransactionError`` if it has already finished."""
        with self._lock:
            self._s.check_open()
            self._end(TRANSACTION_COMMIT_FRAME, "commit", timeout)

    def abort(self, reason: str = "", *, timeout: float | None = None) -> None:
        """Abort the transaction (no-op once finished); ``reason`` is passed to the host."""
        frame = abort_frame(reason)
        with self._lock:
            if not self._s.finished:
                self._end(frame, "abort", timeout)

    def _cancel(self) -> None:
        with self._lock:
            if not self._s.finished:
                self._s.fail(TransactionError("transaction was cancelled"))
                self._finalizer.detach()
                self._exchange.cancel()

    def __enter__(self) -> Transaction:
        """Return the transaction for with statements."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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


class TransactionObjectStore(_StoreCalls):
    """An object store whose calls run in a transaction (from :meth:`Transaction.object_store`)."""

    __slots__ = ("_tx",)

    def __init__(self, tx: Transaction, store: str) -> None:
        if not isinstance(tx, Transaction):
            raise TypeError(f"tx must be a Transaction, not {type(tx).__name__}")
        self._tx = tx
        self._store = check_scope(store, tx.stores)

    def _call(self, op: str, request: Any, result: str, timeout: float | None) -> Any:
        return self._tx._operate(op, request, result, timeout)

    def index(self, name: str) -> TransactionIndex:
        """Return a handle for a named index whose calls run in the transaction."""
        return TransactionIndex(self._tx, self._store, name)

    def __repr__(self) -> str:
        return f"TransactionObjectStore({self._store!r})"


class TransactionIndex(_IndexCalls):
    """An index whose calls run in a transaction (from :meth:`TransactionObjectStore.index`)."""

    __slots__ = ("_tx",)

    def __init__(self, tx: Transaction, store: str, index: str) -> None:
        if not isinstance(tx, Transaction):
            raise TypeError(f"tx must be a Transaction, not {type(tx).__name__}")
        self._tx = tx
        self._store = check_scope(store, tx.stores)
        self._index = check_name(index, "index name")

    def _call(self, op: str, request: Any, result: str, timeout: float | None) -> Any:
        return self._tx._operate(op, request, result, timeout)

    def __repr__(self) -> str:
        return f"TransactionIndex({self._store!r}, {self._index!r})"
