"""Asyncio IndexedDB client: the methods of :mod:`gestalt._clients.indexeddb` as coroutines.

``AsyncIndexedDB(name=None)`` discovers its host exactly like ``IndexedDB`` and calls it
through the generated :class:`~gestalt.gen.v1.datastore_clients.AsyncIndexedDBClient` over
``grpc.aio``. Every method of ``IndexedDB``, ``ObjectStore``, ``Index``, ``Cursor`` and
``Transaction`` exists here under the same name as a coroutine, with the same arguments,
checks, errors and quirk decisions (listed in :mod:`gestalt._clients.indexeddb`).

Cursors and transactions open without blocking the caller's hand: ``open_cursor`` and
``transaction`` return the object at once, and it opens on first use. Either await it
(``cursor = await store.open_cursor()``), enter it (``async with store.open_cursor() as
cursor``), iterate it (``async for entry in store.open_cursor()``) or just call a method. A
transaction used with ``async with`` commits when the block succeeds and aborts when it raises
(a cancelled task cancels it without waiting for the host).

The client may be built outside a running loop and used from any loop; each cursor or
transaction belongs to the loop that opened it. Close the client with ``await db.close()``
or ``async with``; open cursors and transactions are cancelled then, and when they are
garbage collected unfinished.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable, Generator
from types import TracebackType
from typing import Any, TypeVar

from gestalt._clients.errors import INDEXEDDB_ERRORS, HostServiceError, TransactionError
from gestalt._clients.indexeddb_codec import (
    CURSOR_NEXT,
    KeyRange,
    ObjectStoreSchema,
    check_direction,
    check_id,
    check_name,
    cursor_open,
    decode_record,
    decode_records,
    index_request,
    range_request,
    record_request,
    schema_request,
)
from gestalt._clients.indexeddb_streams import (
    CURSOR_CLOSE_FRAME,
    CURSOR_DELETE_FRAME,
    CURSOR_NEXT_FRAME,
    TRANSACTION_COMMIT_FRAME,
    AioExchange,
    CursorState,
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
from gestalt._clients.transport import INDEXEDDB, AioConnection, check_timeout
from gestalt.gen.support import Metadata
from gestalt.gen.v1 import datastore_pb2 as pb
from gestalt.gen.v1.datastore_clients import AsyncIndexedDBClient

__all__ = [
    "AsyncCursor",
    "AsyncIndex",
    "AsyncIndexedDB",
    "AsyncObjectStore",
    "AsyncTransaction",
    "AsyncTransactionIndex",
    "AsyncTransactionObjectStore",
]

_T = TypeVar("_T")


class _AioSession:
    """What the handles of one async client share: stubs, metadata, timeout, open streams."""

    __slots__ = ("_client", "_conn", "metadata", "streams", "timeout")

    def __init__(
        self,
        *,
        conn: AioConnection[AsyncIndexedDBClient] | None = None,
        client: AsyncIndexedDBClient | None = None,
        metadata: Metadata | None = None,
        timeout: float | None = None,
    ) -> None:
        self._conn = conn
        self._client = client
        self.metadata = metadata
        self.timeout = timeout
        self.streams: set[AioExchange] = set()

    def stub(self) -> AsyncIndexedDBClient:
        """The generated client for the running loop; ``ValueError`` once closed."""
        conn = self._conn
        if conn is not None:
            return conn.stub()
        assert self._client is not None
        return self._client

    def pick(self, timeout: float | None) -> float | None:
        """A call's timeout: its own when given, else the client's default."""
        return self.timeout if timeout is None else check_timeout(timeout)

    async def close(self) -> None:
        """Cancel the open streams and give up the channels."""
        for exchange in tuple(self.streams):
            exchange.cancel()
        if self._conn is not None:
            await self._conn.close()


def _session_of(stub: object) -> _AioSession:
    if isinstance(stub, AsyncIndexedDB):
        return stub._session
    if isinstance(stub, _AioSession):
        return stub
    if isinstance(stub, AsyncIndexedDBClient):
        return _AioSession(client=stub)
    raise TypeError(
        f"stub must be an AsyncIndexedDB client (or a generated AsyncIndexedDBClient), "
        f"not {type(stub).__name__}"
    )


class AsyncIndexedDB:
    """Asyncio client for a host-provided IndexedDB-compatible store.

    Arguments as for :class:`~gestalt._clients.indexeddb.IndexedDB`. Close it with
    ``await db.close()`` or ``async with``.
    """

    __slots__ = ("_session",)

    def __init__(self, name: str | None = None, *, timeout: float | None = None) -> None:
        default = check_timeout(timeout)
        conn: AioConnection[AsyncIndexedDBClient] = AioConnection(
            INDEXEDDB.endpoint(name), AsyncIndexedDBClient, INDEXEDDB_ERRORS
        )
        self._session = _AioSession(conn=conn, metadata=conn.metadata, timeout=default)

    async def close(self) -> None:
        """Close the client: cancel its open cursors and transactions; idempotent."""
        await self._session.close()

    async def create_object_store(
        self, name: str, schema: ObjectStoreSchema | None = None, *, timeout: float | None = None
    ) -> None:
        """Create an object store with an optional schema (its indexes)."""
        session = self._session
        await session.stub().create_object_store(
            schema_request(check_name(name, "store name"), schema),
            timeout=session.pick(timeout),
            metadata=session.metadata,
        )

    async def delete_object_store(self, name: str, *, timeout: float | None = None) -> None:
        """Delete an object store by name, with its records."""
        session = self._session
        await session.stub().delete_object_store(
            pb.DeleteObjectStoreRequest(name=check_name(name, "store name")),
            timeout=session.pick(timeout),
            metadata=session.metadata,
        )

    def object_store(self, name: str) -> AsyncObjectStore:
        """Return a client bound to an object store (no call is made)."""
        return AsyncObjectStore(self._session, name)

    def transaction(
        self,
        stores: list[str],
        mode: str = "readonly",
        *,
        durability_hint: str = "default",
        timeout: float | None = None,
    ) -> AsyncTransaction:
        """Start an explicit transaction: await it, or use it with ``async with``."""
        return AsyncTransaction(
            self._session, stores, mode, durability_hint=durability_hint, timeout=timeout
        )

    async def __aenter__(self) -> AsyncIndexedDB:
        """Return the client for ``async with`` statements."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the client at the end of an ``async with`` block."""
        await self.close()


# -- store and index calls -------------------------------------------------------------------


class _AsyncStoreCalls:
    """The object-store coroutines; subclasses say how a call travels."""

    __slots__ = ("_store",)

    _store: str

    async def _call(self, op: str, request: Any, result: str, timeout: float | None) -> Any:
        raise NotImplementedError

    @property
    def name(self) -> str:
        """The object store's name."""
        return self._store

    async def get(self, id: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Fetch a record by primary key; ``NotFoundError`` when missing."""
        request = pb.ObjectStoreRequest(store=self._store, id=check_id(id))
        return decode_record((await self._call("get", request, "record", timeout)).record)

    async def get_key(self, id: str, *, timeout: float | None = None) -> str:
        """Return the canonical key for a primary key lookup; ``NotFoundError`` if absent."""
        request = pb.ObjectStoreRequest(store=self._store, id=check_id(id))
        key: str = (await self._call("get_key", request, "key", timeout)).key
        return key

    async def add(self, record: dict[str, Any], *, timeout: float | None = None) -> None:
        """Insert a new record; ``AlreadyExistsError`` when its id or a unique key is taken."""
        await self._call("add", record_request(self._store, record), "empty", timeout)

    async def put(self, record: dict[str, Any], *, timeout: float | None = None) -> None:
        """Insert or replace a record."""
        await self._call("put", record_request(self._store, record), "empty", timeout)

    async def delete(self, id: str, *, timeout: float | None = None) -> None:
        """Delete a record by primary key (a missing record is not an error)."""
        request = pb.ObjectStoreRequest(store=self._store, id=check_id(id))
        await self._call("delete", request, "empty", timeout)

    async def clear(self, *, timeout: float | None = None) -> None:
        """Delete every record in the store."""
        await self._call("clear", pb.ObjectStoreNameRequest(store=self._store), "empty", timeout)

    async def get_all(
        self, key_range: KeyRange | None = None, *, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Return all records that fall within ``key_range`` (every record for None)."""
        request = range_request(self._store, key_range)
        return decode_records((await self._call("get_all", request, "records", timeout)).records)

    async def get_all_keys(
        self, key_range: KeyRange | None = None, *, timeout: float | None = None
    ) -> list[str]:
        """Return all primary keys that fall within ``key_range``."""
        request = range_request(self._store, key_range)
        return list((await self._call("get_all_keys", request, "keys", timeout)).keys)

    async def count(
        self, key_range: KeyRange | None = None, *, timeout: float | None = None
    ) -> int:
        """Return the number of matching records."""
        request = range_request(self._store, key_range)
        return int((await self._call("count", request, "count", timeout)).count)

    async def delete_range(self, key_range: KeyRange, *, timeout: float | None = None) -> int:
        """Delete all records within ``key_range`` (required) and return how many."""
        request = range_request(self._store, key_range, required=True)
        return int((await self._call("delete_range", request, "delete", timeout)).deleted)


class _AsyncIndexCalls:
    """The index coroutines; subclasses say how a call travels."""

    __slots__ = ("_index", "_store")

    _store: str
    _index: str

    async def _call(self, op: str, request: Any, result: str, timeout: float | None) -> Any:
        raise NotImplementedError

    @property
    def name(self) -> str:
        """The index's name."""
        return self._index

    @property
    def store_name(self) -> str:
        """The name of the object store the index belongs to."""
        return self._store

    async def get(self, *values: Any, timeout: float | None = None) -> dict[str, Any]:
        """Fetch the first matching record for the values; ``NotFoundError`` if none."""
        request = index_request(self._store, self._index, values)
        return decode_record((await self._call("index_get", request, "record", timeout)).record)

    async def get_key(self, *values: Any, timeout: float | None = None) -> str:
        """Fetch the first matching primary key for the indexed values."""
        request = index_request(self._store, self._index, values)
        key: str = (await self._call("index_get_key", request, "key", timeout)).key
        return key

    async def get_all(
        self, *values: Any, key_range: KeyRange | None = None, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Return all records matching the indexed values and key range."""
        request = index_request(self._store, self._index, values, key_range)
        response = await self._call("index_get_all", request, "records", timeout)
        return decode_records(response.records)

    async def get_all_keys(
        self, *values: Any, key_range: KeyRange | None = None, timeout: float | None = None
    ) -> list[str]:
        """Return all primary keys matching the indexed values and key range."""
        request = index_request(self._store, self._index, values, key_range)
        return list((await self._call("index_get_all_keys", request, "keys", timeout)).keys)

    async def count(
        self, *values: Any, key_range: KeyRange | None = None, timeout: float | None = None
    ) -> int:
        """Return the number of records matching the indexed values."""
        request = index_request(self._store, self._index, values, key_range)
        return int((await self._call("index_count", request, "count", timeout)).count)

    async def delete(self, *values: Any, timeout: float | None = None) -> int:
        """Delete records matching the indexed values and return how many."""
        request = index_request(self._store, self._index, values)
        return int((await self._call("index_delete", request, "delete", timeout)).deleted)


class AsyncObjectStore(_AsyncStoreCalls):
    """Asyncio client bound to a single IndexedDB object store."""

    __slots__ = ("_session",)

    def __init__(self, stub: Any, store: str) -> None:
        self._session = _session_of(stub)
        self._store = check_name(store, "store name")

    async def _call(self, op: str, request: Any, result: str, timeout: float | None) -> Any:
        session = self._session
        return await getattr(session.stub(), op)(
            request, timeout=session.pick(timeout), metadata=session.metadata
        )

    def open_cursor(
        self,
        key_range: KeyRange | None = None,
        direction: int = CURSOR_NEXT,
        *,
        timeout: float | None = None,
    ) -> AsyncCursor:
        """A record cursor over the store; it opens when awaited, entered or first used."""
        return AsyncCursor(
            self._session, self._store, key_range=key_range, direction=direction, timeout=timeout
        )

    def open_key_cursor(
        self,
        key_range: KeyRange | None = None,
        direction: int = CURSOR_NEXT,
        *,
        timeout: float | None = None,
    ) -> AsyncCursor:
        """A key-only cursor over the store; it opens when awaited, entered or first used."""
        return AsyncCursor(
            self._session,
            self._store,
            key_range=key_range,
            direction=direction,
            keys_only=True,
            timeout=timeout,
        )

    def index(self, name: str) -> AsyncIndex:
        """Return a client for a named index on this store (no call is made)."""
        return AsyncIndex(self._session, self._store, name)

    def __repr__(self) -> str:
        return f"AsyncObjectStore({self._store!r})"


class AsyncIndex(_AsyncIndexCalls):
    """Asyncio client bound to a secondary index on an object store."""

    __slots__ = ("_session",)

    def __init__(self, stub: Any, store: str, index: str) -> None:
        self._session = _session_of(stub)
        self._store = check_name(store, "store name")
        self._index = check_name(index, "index name")

    async def _call(self, op: str, request: Any, result: str, timeout: float | None) -> Any:
        session = self._session
        return await getattr(session.stub(), op)(
            request, timeout=session.pick(timeout), metadata=session.metadata
        )

    def open_cursor(
        self,
        *values: Any,
        key_range: KeyRange | None = None,
        direction: int = CURSOR_NEXT,
        timeout: float | None = None,
    ) -> AsyncCursor:
        """A record cursor over the indexed results; opens when awaited, entered or used."""
        return AsyncCursor(
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
    ) -> AsyncCursor:
        """A key-only cursor over the indexed results; opens when awaited, entered or used."""
        return AsyncCursor(
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
        return f"AsyncIndex({self._store!r}, {self._index!r})"


# -- cursors ---------------------------------------------------------------------------------


class AsyncCursor:
    """Asyncio cursor over object store or index results (see ``Cursor``).

    Built without I/O; the stream opens when the cursor is awaited, entered with
    ``async with``, iterated with ``async for`` or first moved. Iterating yields the cursor on
    each entry. Close it with ``await cursor.close()`` or ``async with``.
    """

    __slots__ = (
        "__weakref__",
        "_exchange",
        "_finalizer",
        "_lock",
        "_open_frame",
        "_s",
        "_session",
        "_timeout",
    )

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
        session = _session_of(stub)
        index, values = open_values(values, index)
        if not isinstance(keys_only, bool):
            raise TypeError(f"keys_only must be a bool, not {type(keys_only).__name__}")
        self._open_frame: pb.CursorClientMessage | None = cursor_open(
            check_name(store, "store name"),
            key_range=key_range,
            direction=check_direction(direction),
            keys_only=keys_only,
            index=index,
            values=values,
        )
        self._session = session
        self._timeout = session.pick(timeout)
        self._s = CursorState(index, keys_only)
        self._lock = asyncio.Lock()
        self._exchange: AioExchange | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    async def _command(
        self, frame: pb.CursorClientMessage, apply: Callable[[pb.CursorResponse | None], _T]
    ) -> _T:
        exchange = self._exchange
        assert exchange is not None
        try:
            answer = await exchange.request(frame, self._timeout)
        except HostServiceError as exc:
            self._s.fail(exc)
            self._detach()
            raise
        except BaseException:
            self._s.fail(interrupted_error())
            self._detach()
            exchange.cancel()
            raise
        try:
            return apply(answer)
        except HostServiceError:
            self._detach()
            exchange.cancel()
            raise

    def _detach(self) -> None:
        if self._finalizer is not None:
            self._finalizer.detach()

    async def _open_locked(self) -> None:
        frame = self._open_frame
        if frame is None:
            return
        self._open_frame = None
        session = self._session
        stream = session.stub().open_cursor(metadata=session.metadata)
        exchange = self._exchange = AioExchange(stream, session.streams, "cursor")
        self._finalizer = weakref.finalize(self, exchange.cancel)
        self._finalizer.atexit = False
        await self._command(frame, self._s.opened)

    async def open(self) -> AsyncCursor:
        """Open the stream now (once) and return the cursor."""
        async with self._lock:
            await self._open_locked()
        return self

    def __await__(self) -> Generator[Any, None, AsyncCursor]:
        """``await cursor`` opens it and gives the cursor back."""
        return self.open().__await__()

    async def _move(self, frame: pb.CursorClientMessage) -> bool:
        async with self._lock:
            await self._open_locked()
            if not self._s.check_movable():
                return False
            if await self._command(frame, self._s.moved):
                return True
            # Nothing can follow the end but close: release the host's stream now.
            self._detach()
            assert self._exchange is not None
            await self._exchange.close(CURSOR_CLOSE_FRAME, self._timeout)
            return False

    async def continue_(self) -> bool:
        """Advance to the next matching cursor entry; False once there is none."""
        return await self._move(CURSOR_NEXT_FRAME)

    async def continue_to_key(self, key: Any) -> bool:
        """Advance to ``key`` or the next greater entry (smaller for PREV directions)."""
        return await self._move(seek_frame(key, index=bool(self._s.index)))

    async def advance(self, count: int) -> bool:
        """Skip ``count`` entries and land on the one after them (host semantics)."""
        return await self._move(advance_frame(count))

    @property
    def key(self) -> Any:
        """Current key: the primary key on store cursors, a list on index cursors, or None."""
        return self._s.key

    @property
    def primary_key(self) -> str | None:
        """Current primary key for the cursor entry (None when not on an entry)."""
        return self._s.primary_key

    @property
    def value(self) -> dict[str, Any]:
        """Current record (``TypeError`` on key cursors, ``ValueError`` off an entry)."""
        return self._s.record()

    async def delete(self) -> None:
        """Delete the current cursor entry (the cursor stays where it is)."""
        async with self._lock:
            self._s.check_on_entry("delete")
            await self._command(CURSOR_DELETE_FRAME, self._s.deleted)

    async def update(self, value: dict[str, Any]) -> None:
        """Replace the current cursor entry with ``value`` (its primary key is kept)."""
        frame = update_frame(value)
        async with self._lock:
            self._s.check_on_entry("update")
            await self._command(frame, self._s.updated)

    async def close(self) -> None:
        """Close the cursor stream (the host has ended it when this returns); idempotent."""
        async with self._lock:
            failed = self._s.close()
            self._open_frame = None
            exchange = self._exchange
            if failed is None or exchange is None:
                return
            self._detach()
            if failed:
                exchange.cancel()
            else:
                await exchange.close(CURSOR_CLOSE_FRAME, self._timeout)

    async def __aiter__(self) -> AsyncIterator[AsyncCursor]:
        """Move with :meth:`continue_` and yield the cursor on each entry until the end."""
        while await self.continue_():
            yield self

    async def __aenter__(self) -> AsyncCursor:
        """Open the cursor and return it for ``async with`` statements."""
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the cursor at the end of an ``async with`` block."""
        await self.close()


# -- transactions ----------------------------------------------------------------------------


class AsyncTransaction:
    """Asyncio IndexedDB transaction (see ``Transaction``).

    Built without I/O; it begins when awaited, entered with ``async with`` or at its first
    operation. ``async with`` commits when the block succeeds and aborts when it raises.
    """

    __slots__ = (
        "__weakref__",
        "_begin",
        "_exchange",
        "_finalizer",
        "_lock",
        "_s",
        "_session",
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
        session = _session_of(stub)
        begin = begin_frame(stores, mode, durability_hint)
        #: The stores in the transaction's scope, in the given order.
        self.stores: tuple[str, ...] = tuple(begin.begin.stores)
        #: ``"readonly"`` or ``"readwrite"``.
        self.mode = "readwrite" if begin.begin.mode == pb.TRANSACTION_READWRITE else "readonly"
        self._begin: pb.TransactionClientMessage | None = begin
        self._session = session
        self._timeout = session.pick(timeout)
        self._lock = asyncio.Lock()
        self._s = TransactionState()
        self._exchange: AioExchange | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    @property
    def finished(self) -> bool:
        """Whether the transaction was committed, aborted or ended by a failure."""
        return self._s.finished

    def object_store(self, name: str) -> AsyncTransactionObjectStore:
        """Return a handle whose calls run in this transaction."""
        return AsyncTransactionObjectStore(self, name)

    def _detach(self) -> None:
        if self._finalizer is not None:
            self._finalizer.detach()

    async def _begin_locked(self) -> AioExchange:
        exchange = self._exchange
        if exchange is not None:
            return exchange
        begin = self._begin
        assert begin is not None
        self._s.check_open()
        self._begin = None
        session = self._session
        stream = session.stub().transaction(metadata=session.metadata)
        exchange = self._exchange = AioExchange(stream, session.streams, "transaction")
        self._finalizer = weakref.finalize(self, exchange.cancel)
        self._finalizer.atexit = False
        try:
            self._s.began(await exchange.request(begin, self._timeout))
        except BaseException as exc:
            self._s.fail(exc)
            self._detach()
            exchange.cancel()
            raise
        return exchange

    async def begin(self) -> AsyncTransaction:
        """Begin now (once) and return the transaction."""
        async with self._lock:
            await self._begin_locked()
        return self

    def __await__(self) -> Generator[Any, None, AsyncTransaction]:
        """``await tx`` begins it and gives the transaction back."""
        return self.begin().__await__()

    async def _operate(self, op: str, request: Any, result: str, timeout: float | None) -> Any:
        async with self._lock:
            exchange = await self._begin_locked()
            frame = self._s.operation(op, request)
            try:
                answer = await exchange.request(
                    frame, self._timeout if timeout is None else check_timeout(timeout)
                )
                return self._s.result(answer, result)
            except BaseException as exc:
                self._s.fail(exc)
                self._detach()
                if self._s.rolled_back:
                    await exchange.close(timeout=self._timeout)
                else:
                    exchange.cancel()
                raise

    async def _end(
        self, frame: pb.TransactionClientMessage, step: str, timeout: float | None
    ) -> None:
        exchange = await self._begin_locked()
        self._s.finished = True
        self._detach()
        try:
            answer = await exchange.request(
                frame, self._timeout if timeout is None else check_timeout(timeout)
            )
            self._s.ended(answer, step)
        except BaseException as exc:
            self._s.fail(exc)
            exchange.cancel()
            raise
        await exchange.close(timeout=self._timeout)

    async def commit(self, *, timeout: float | None = None) -> None:
        """Commit the transaction; ``TransactionError`` if it has already finished."""
        async with self._lock:
            self._s.check_open()
            await self._end(TRANSACTION_COMMIT_FRAME, "commit", timeout)

    async def abort(self, reason: str = "", *, timeout: float | None = None) -> None:
        """Abort the transaction (no-op once finished); ``reason`` is passed to the host."""
        frame = abort_frame(reason)
        async with self._lock:
            if self._s.finished:
                return
            if self._exchange is None:  # never begun: nothing to tell the host
                self._s.finished = True
                self._begin = None
                return
            await self._end(frame, "abort", timeout)

    def _cancel(self) -> None:
        if not self._s.finished:
            self._s.fail(TransactionError("transaction was cancelled"))
            self._detach()
            if self._exchange is not None:
                self._exchange.cancel()

    async def __aenter__(self) -> AsyncTransaction:
        """Begin the transaction and return it for ``async with`` statements."""
        return await self.begin()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Commit when the block succeeded, abort when it raised (never suppressing it)."""
        if exc is None:
            await self.commit()
        elif not isinstance(exc, Exception):
            self._cancel()  # a cancelled task: do not wait for the host
        else:
            try:
                await self.abort()
            except HostServiceError as abort_error:
                exc.add_note(f"aborting the IndexedDB transaction failed too: {abort_error}")


class AsyncTransactionObjectStore(_AsyncStoreCalls):
    """An object store whose calls run in an :class:`AsyncTransaction`."""

    __slots__ = ("_tx",)

    def __init__(self, tx: AsyncTransaction, store: str) -> None:
        if not isinstance(tx, AsyncTransaction):
            raise TypeError(f"tx must be an AsyncTransaction, not {type(tx).__name__}")
        self._tx = tx
        self._store = check_scope(store, tx.stores)

    async def _call(self, op: str, request: Any, result: str, timeout: float | None) -> Any:
        return await self._tx._operate(op, request, result, timeout)

    def index(self, name: str) -> AsyncTransactionIndex:
        """Return a handle for a named index whose calls run in the transaction."""
        return AsyncTransactionIndex(self._tx, self._store, name)

    def __repr__(self) -> str:
        return f"AsyncTransactionObjectStore({self._store!r})"


class AsyncTransactionIndex(_AsyncIndexCalls):
    """An index whose calls run in an :class:`AsyncTransaction`."""

    __slots__ = ("_tx",)

    def __init__(self, tx: AsyncTransaction, store: str, index: str) -> None:
        if not isinstance(tx, AsyncTransaction):
            raise TypeError(f"tx must be an AsyncTransaction, not {type(tx).__name__}")
        self._tx = tx
        self._store = check_scope(store, tx.stores)
        self._index = check_name(index, "index name")

    async def _call(self, op: str, request: Any, result: str, timeout: float | None) -> Any:
        return await self._tx._operate(op, request, result, timeout)

    def __repr__(self) -> str:
        return f"AsyncTransactionIndex({self._store!r}, {self._index!r})"
