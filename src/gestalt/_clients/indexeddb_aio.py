"""Asyncio IndexedDB client: the methods of :mod:`.indexeddb` as coroutines.

``AsyncIndexedDB(name=None)`` discovers its host exactly like ``IndexedDB`` and calls it
through the generated :class:`~gestalt.gen.v1.datastore_clients.AsyncIndexedDBClient` over
``grpc.aio``. Every method of ``IndexedDB``, ``ObjectStore``, ``Index``, ``Cursor`` and
``Transaction`` exists here under the same name as a coroutine, with the same arguments,
checks, errors and quirk decisions (listed in :mod:`.indexeddb`): requests,
decoding, checks and state live once in :mod:`.indexeddb_handles`.

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
from collections.abc import AsyncIterator, Callable, Generator
from typing import TYPE_CHECKING, Any, Self, TypeVar

from gestalt._clients import indexeddb_handles as core
from gestalt._clients import indexeddb_streams as frames
from gestalt._clients.closing import AsyncClosing, AsyncContext
from gestalt._clients.errors import HostServiceError, TransactionError
from gestalt._clients.indexeddb_streams import AioExchange
from gestalt._clients.transport import AioConnection
from gestalt.gen.v1 import datastore_pb2 as pb
from gestalt.gen.v1.datastore_clients import AsyncIndexedDBClient

if TYPE_CHECKING:
    from gestalt._clients.indexeddb_types import KeyRange, ObjectStoreSchema

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
_I = TypeVar("_I")


def _session_of(stub: object) -> _AioSession:
    return core.find_session(stub, _AioSession)


class _AioSession(core.SessionBase[AsyncIndexedDBClient]):
    """What the handles of one async client share: stubs, metadata, timeout, open streams."""

    __slots__ = ()

    client_type = AsyncIndexedDBClient

    def stub(self) -> AsyncIndexedDBClient:
        """The generated client for the running loop; ``ValueError`` once closed."""
        if self._conn is not None:
            stub: AsyncIndexedDBClient = self._conn.stub()
            return stub
        assert self._client is not None
        return self._client

    async def _call(self, call: core.Call[_T], timeout: float | None) -> _T:
        """Make ``call`` as a unary RPC and decode its response."""
        method = getattr(self.stub(), call.op)
        response = await method(call.request, timeout=self.pick(timeout), metadata=self.metadata)
        return call.decode(response)

    async def close(self) -> None:
        """Cancel the open streams and give up the channels."""
        self._cancel_streams()
        if self._conn is not None:
            await self._conn.close()


# -- store and index calls -------------------------------------------------------------------


class _AsyncStoreCalls(core.StoreHandle[_I]):
    """The object-store coroutines; subclasses say how a call travels."""

    __slots__ = ()

    async def _run(self, call: core.Call[_T], timeout: float | None) -> _T:
        owner: _AioSession | AsyncTransaction = self._owner
        return await owner._call(call, timeout)

    async def get(self, id: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Fetch a record by primary key; ``NotFoundError`` when missing."""
        return await self._run(self._get_call(id), timeout)

    async def get_key(self, id: str, *, timeout: float | None = None) -> str:
        """Return the canonical key for a primary key lookup; ``NotFoundError`` if absent."""
        return await self._run(self._get_key_call(id), timeout)

    async def add(self, record: dict[str, Any], *, timeout: float | None = None) -> None:
        """Insert a new record; ``AlreadyExistsError`` when its id or a unique key is taken."""
        await self._run(self._write_call("add", record), timeout)

    async def put(self, record: dict[str, Any], *, timeout: float | None = None) -> None:
        """Insert or replace a record."""
        await self._run(self._write_call("put", record), timeout)

    async def delete(self, id: str, *, timeout: float | None = None) -> None:
        """Delete a record by primary key (a missing record is not an error)."""
        await self._run(self._delete_call(id), timeout)

    async def clear(self, *, timeout: float | None = None) -> None:
        """Delete every record in the store."""
        await self._run(self._clear_call(), timeout)

    async def get_all(
        self, key_range: KeyRange | None = None, *, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Return all records that fall within ``key_range`` (every record for None)."""
        return await self._run(self._get_all_call(key_range), timeout)

    async def get_all_keys(
        self, key_range: KeyRange | None = None, *, timeout: float | None = None
    ) -> list[str]:
        """Return all primary keys that fall within ``key_range``."""
        return await self._run(self._get_all_keys_call(key_range), timeout)

    async def count(
        self, key_range: KeyRange | None = None, *, timeout: float | None = None
    ) -> int:
        """Return the number of matching records."""
        return await self._run(self._count_call(key_range), timeout)

    async def delete_range(self, key_range: KeyRange, *, timeout: float | None = None) -> int:
        """Delete all records within ``key_range`` (required) and return how many."""
        return await self._run(self._delete_range_call(key_range), timeout)


class _AsyncIndexCalls(core.IndexHandle):
    """The index coroutines; subclasses say how a call travels."""

    __slots__ = ()

    async def _run(self, call: core.Call[_T], timeout: float | None) -> _T:
        owner: _AioSession | AsyncTransaction = self._owner
        return await owner._call(call, timeout)

    async def get(self, *values: Any, timeout: float | None = None) -> dict[str, Any]:
        """Fetch the first matching record for the values; ``NotFoundError`` if none."""
        return await self._run(self._get_call(values), timeout)

    async def get_key(self, *values: Any, timeout: float | None = None) -> str:
        """Fetch the first matching primary key for the indexed values."""
        return await self._run(self._get_key_call(values), timeout)

    async def get_all(
        self, *values: Any, key_range: KeyRange | None = None, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Return all records matching the indexed values and key range."""
        return await self._run(self._get_all_call(values, key_range), timeout)

    async def get_all_keys(
        self, *values: Any, key_range: KeyRange | None = None, timeout: float | None = None
    ) -> list[str]:
        """Return all primary keys matching the indexed values and key range."""
        return await self._run(self._get_all_keys_call(values, key_range), timeout)

    async def count(
        self, *values: Any, key_range: KeyRange | None = None, timeout: float | None = None
    ) -> int:
        """Return the number of records matching the indexed values."""
        return await self._run(self._count_call(values, key_range), timeout)

    async def delete(self, *values: Any, timeout: float | None = None) -> int:
        """Delete records matching the indexed values and return how many."""
        return await self._run(self._delete_call(values), timeout)


# -- cursors ---------------------------------------------------------------------------------


class _OpensLazily:
    """Cursors and transactions open their stream on first use, or when awaited or entered."""

    __slots__ = ()

    _lock: asyncio.Lock

    async def _prepare(self) -> Any:
        """Open the stream unless it is open already; the lock is held."""
        raise NotImplementedError

    async def _ready(self) -> Self:
        async with self._lock:
            await self._prepare()
        return self

    def __await__(self) -> Generator[Any, None, Self]:
        """``await`` it to open its stream now (once); gives the object back."""
        return self._ready().__await__()

    async def __aenter__(self) -> Self:
        """Open the stream now (once) and return the object for ``async with``."""
        return await self._ready()


class AsyncCursor(core.CursorBase, _OpensLazily, AsyncClosing):
    """Asyncio cursor over object store or index results (see ``Cursor``).

    Built without I/O; the stream opens when the cursor is awaited, entered with
    ``async with``, iterated with ``async for`` or first moved. Iterating yields the cursor on
    each entry. Close it with ``await cursor.close()`` or ``async with``.
    """

    __slots__ = ()

    _session_type = _AioSession
    _lock_type = asyncio.Lock
    _exchange: AioExchange | None

    async def _command(
        self, frame: pb.CursorClientMessage, apply: Callable[[pb.CursorResponse | None], _T]
    ) -> _T:
        exchange = self._exchange
        assert exchange is not None
        try:
            answer = await exchange.request(frame, self._timeout)
        except BaseException as exc:
            self._failed(exc, exchange)
            raise
        return self._apply(apply, answer, exchange)

    async def _prepare(self) -> None:
        frame = self._open_frame
        if frame is None:
            return
        self._open_frame = None
        session = self._session
        stream = session.stub().open_cursor(metadata=session.metadata)
        self._watch(AioExchange(stream, session.streams, "cursor"))
        await self._command(frame, self._s.opened)

    async def open(self) -> AsyncCursor:
        """Open the stream now (once) and return the cursor."""
        return await self._ready()

    async def _move(self, frame: pb.CursorClientMessage) -> bool:
        async with self._lock:
            await self._prepare()
            if not self._s.check_movable():
                return False
            if await self._command(frame, self._s.moved):
                return True
            # Nothing can follow the end but close: release the host's stream now.
            self._detach()
            assert self._exchange is not None
            await self._exchange.close(frames.CURSOR_CLOSE_FRAME, self._timeout)
            return False

    async def continue_(self) -> bool:
        """Advance to the next matching cursor entry; False once there is none."""
        return await self._move(frames.CURSOR_NEXT_FRAME)

    async def continue_to_key(self, key: Any) -> bool:
        """Advance to ``key`` or the next greater entry (smaller for PREV directions)."""
        return await self._move(frames.seek_frame(key, index=bool(self._s.index)))

    async def advance(self, count: int) -> bool:
        """Skip ``count`` entries and land on the one after them (host semantics)."""
        return await self._move(frames.advance_frame(count))

    async def delete(self) -> None:
        """Delete the current cursor entry (the cursor stays where it is).

        :class:`NotFoundError` once the cursor is exhausted, before anything is sent.
        """
        async with self._lock:
            self._s.check_on_entry("delete", mutation=True)
            await self._command(frames.CURSOR_DELETE_FRAME, self._s.deleted)

    async def update(self, value: dict[str, Any]) -> None:
        """Replace the current cursor entry with ``value`` (its primary key is kept).

        :class:`NotFoundError` once the cursor is exhausted, before anything is sent.
        """
        frame = frames.update_frame(value)
        async with self._lock:
            self._s.check_on_entry("update", mutation=True)
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
                await exchange.close(frames.CURSOR_CLOSE_FRAME, self._timeout)

    async def __aiter__(self) -> AsyncIterator[AsyncCursor]:
        """Move with :meth:`continue_` and yield the cursor on each entry until the end."""
        while await self.continue_():
            yield self


# -- transactions ----------------------------------------------------------------------------


class AsyncTransactionIndex(_AsyncIndexCalls, core.TransactionIndexHandle["AsyncTransaction"]):
    """An index whose calls run in an :class:`AsyncTransaction`."""

    __slots__ = ()


class AsyncTransactionObjectStore(
    _AsyncStoreCalls[AsyncTransactionIndex],
    core.TransactionStoreHandle[AsyncTransactionIndex, "AsyncTransaction"],
):
    """An object store whose calls run in an :class:`AsyncTransaction`."""

    __slots__ = ()

    _index_type = AsyncTransactionIndex


class AsyncTransaction(
    core.TransactionBase[AsyncTransactionObjectStore], _OpensLazily, AsyncContext
):
    """Asyncio IndexedDB transaction (see ``Transaction``).

    Built without I/O; it begins when awaited, entered with ``async with`` or at its first
    operation. ``async with`` commits when the block succeeds and aborts when it raises.
    """

    __slots__ = ()

    _session_type = _AioSession
    _lock_type = asyncio.Lock
    _store_type = AsyncTransactionObjectStore
    _exchange: AioExchange | None

    async def _prepare(self) -> AioExchange:
        exchange = self._exchange
        if exchange is not None:
            return exchange
        begin = self._begin
        assert begin is not None
        self._s.check_open()
        self._begin = None
        session = self._session
        exchange = AioExchange(
            session.stub().transaction(metadata=session.metadata), session.streams, "transaction"
        )
        self._watch(exchange)
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
        return await self._ready()

    async def _call(self, call: core.Call[_T], timeout: float | None) -> _T:
        """Run ``call`` as the transaction's next operation and decode its result."""
        async with self._lock:
            exchange = await self._prepare()
            frame = self._s.operation(call.op, call.request)
            try:
                answer = await exchange.request(frame, self._step_timeout(timeout))
                return call.decode(self._s.result(answer, call.result))
            except BaseException as exc:
                if self._failed(exc):
                    await exchange.close(timeout=self._timeout)
                else:
                    exchange.cancel()
                raise

    async def _end(
        self, frame: pb.TransactionClientMessage, step: str, timeout: float | None
    ) -> None:
        exchange = await self._prepare()
        self._s.finished = True
        self._detach()
        try:
            self._s.ended(await exchange.request(frame, self._step_timeout(timeout)), step)
        except BaseException as exc:
            self._s.fail(exc)
            exchange.cancel()
            raise
        await exchange.close(timeout=self._timeout)

    async def commit(self, *, timeout: float | None = None) -> None:
        """Commit the transaction; ``TransactionError`` if it has already finished."""
        async with self._lock:
            self._s.check_open()
            await self._end(frames.TRANSACTION_COMMIT_FRAME, "commit", timeout)

    async def abort(self, reason: str = "", *, timeout: float | None = None) -> None:
        """Abort the transaction (no-op once finished); ``reason`` is passed to the host."""
        frame = frames.abort_frame(reason)
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

    async def _aexit(self, exc: BaseException | None) -> None:
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


# -- the handles and the client --------------------------------------------------------------


class AsyncIndex(_AsyncIndexCalls, core.IndexCursors[AsyncCursor]):
    """Asyncio client bound to a secondary index on an object store."""

    __slots__ = ()

    _session_type = _AioSession
    _cursor_type = AsyncCursor


class AsyncObjectStore(_AsyncStoreCalls[AsyncIndex], core.StoreCursors[AsyncCursor]):
    """Asyncio client bound to a single IndexedDB object store."""

    __slots__ = ()

    _session_type = _AioSession
    _cursor_type = AsyncCursor
    _index_type = AsyncIndex


AsyncTransactionObjectStore._tx_type = AsyncTransactionIndex._tx_type = AsyncTransaction


class AsyncIndexedDB(core.DatabaseBase[AsyncObjectStore, AsyncTransaction], AsyncClosing):
    """Asyncio client for a host-provided IndexedDB-compatible store.

    Arguments as for :class:`~.indexeddb.IndexedDB`. Close it with
    ``await db.close()`` or ``async with``.
    """

    __slots__ = ()

    _connection_type = AioConnection
    _session_type = _AioSession
    _store_type = AsyncObjectStore
    _transaction_type = AsyncTransaction

    async def close(self) -> None:
        """Close the client: cancel its open cursors and transactions; idempotent."""
        await self._session.close()

    async def create_object_store(
        self, name: str, schema: ObjectStoreSchema | None = None, *, timeout: float | None = None
    ) -> None:
        """Create an object store with an optional schema (its indexes)."""
        await self._session._call(core.create_store(name, schema), timeout)

    async def delete_object_store(self, name: str, *, timeout: float | None = None) -> None:
        """Delete an object store by name, with its records."""
        await self._session._call(core.delete_store(name), timeout)
