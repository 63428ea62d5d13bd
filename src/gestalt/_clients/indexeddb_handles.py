"""What the sync and asyncio IndexedDB handles share, written once and free of I/O.

* :class:`Call`: one store or index method as data (the RPC, its checked request, the
  transaction result field, the decoder), built by the handle bases' ``_<method>_call``
  methods. A sync handle runs it with a blocking call, an asyncio handle awaits it; in a
  transaction it travels as an operation frame.
* :class:`SessionBase`: what the handles of one client share (stub, metadata, timeout,
  open streams).
* Handle bases: names, reprs, ``index()`` and ``open_cursor()`` / ``open_key_cursor()``,
  generic in the cursor and index classes they build.
* :class:`CursorBase` and :class:`TransactionBase`: argument checks, state, properties and
  the bookkeeping around a failed step. The subclasses in :mod:`.indexeddb_sync`
  and :mod:`.indexeddb_aio` only move frames.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypedDict, TypeVar, Unpack

from gestalt._clients.errors import INDEXEDDB_ERRORS, HostServiceError
from gestalt._clients.indexeddb_codec import (
    CURSOR_NEXT,
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
    CursorState,
    TransactionState,
    begin_frame,
    check_scope,
    interrupted_error,
    open_values,
)
from gestalt._clients.transport import INDEXEDDB, check_timeout
from gestalt.gen.support import Metadata
from gestalt.gen.v1 import datastore_pb2 as pb

if TYPE_CHECKING:
    from gestalt._clients.indexeddb_types import KeyRange, ObjectStoreSchema

__all__ = [
    "Call",
    "CursorBase",
    "DatabaseBase",
    "IndexCursors",
    "IndexHandle",
    "SessionBase",
    "StoreCursors",
    "StoreHandle",
    "TransactionBase",
    "TransactionIndexHandle",
    "TransactionStoreHandle",
    "find_session",
]

T = TypeVar("T")
_Client = TypeVar("_Client")
_Cursor = TypeVar("_Cursor")
_Index = TypeVar("_Index")
_Store = TypeVar("_Store")


# -- calls -----------------------------------------------------------------------------------


class Call(Generic[T]):
    """One store or index request without I/O.

    ``op`` is the RPC (and the transaction operation), ``request`` the checked message,
    ``result`` the field of a transaction's operation answer that holds the response, and
    ``decode`` turns the response into what the method returns. (A plain class: a NamedTuple
    costs ~0.4 ms to define at import.)
    """

    __slots__ = ("decode", "op", "request", "result")

    def __init__(self, op: str, request: Any, result: str, decode: Callable[[Any], T]) -> None:
        self.op = op
        self.request = request
        self.result = result
        self.decode = decode


def _record(response: Any) -> dict[str, Any]:
    return decode_record(response.record)


def _records(response: Any) -> list[dict[str, Any]]:
    return decode_records(response.records)


def _keys(response: Any) -> list[str]:
    return list(response.keys)


def _nothing(response: Any) -> None:
    return None


def _key(response: Any) -> str:
    key: str = response.key
    return key


def _count(response: Any) -> int:
    return int(response.count)


def _deleted(response: Any) -> int:
    return int(response.deleted)


def create_store(name: str, schema: ObjectStoreSchema | None) -> Call[None]:
    """``IndexedDB.create_object_store``."""
    request = schema_request(check_name(name, "store name"), schema)
    return Call("create_object_store", request, "", _nothing)


def delete_store(name: str) -> Call[None]:
    """``IndexedDB.delete_object_store``."""
    request = pb.DeleteObjectStoreRequest(name=check_name(name, "store name"))
    return Call("delete_object_store", request, "", _nothing)


# -- sessions and handles --------------------------------------------------------------------


class SessionBase(Generic[_Client]):
    """What the handles of one client share: the stub, metadata, default timeout, streams.

    ``conn`` is the client's connection, or ``client`` a generated client (of
    ``client_type``) given directly. ``streams`` lists the open cursor and transaction
    exchanges that closing cancels.
    """

    __slots__ = ("_client", "_conn", "metadata", "streams", "timeout")

    client_type: ClassVar[type]

    def __init__(
        self,
        *,
        conn: Any = None,
        client: _Client | None = None,
        metadata: Metadata | None = None,
        timeout: float | None = None,
    ) -> None:
        self._conn = conn
        self._client = client
        self.metadata = metadata
        self.timeout = timeout
        self.streams: set[Any] = set()

    def pick(self, timeout: float | None) -> float | None:
        """A call's timeout: its own when given, else the client's default."""
        return self.timeout if timeout is None else check_timeout(timeout)

    def _cancel_streams(self) -> None:
        for exchange in tuple(self.streams):
            exchange.cancel()


_Session = TypeVar("_Session", bound=SessionBase[Any])


def find_session(stub: object, session_type: type[_Session]) -> _Session:
    """The session behind a handle's ``stub`` argument: a client, a session or a stub."""
    if isinstance(stub, session_type):
        return stub
    for attribute in ("_session", "_owner"):  # the ergonomic client, a store or index handle
        session = getattr(stub, attribute, None)
        if isinstance(session, session_type):
            return session
    client_type = session_type.client_type
    if isinstance(stub, client_type):
        return session_type(client=stub)
    client = client_type.__name__.removesuffix("Client")
    raise TypeError(
        f"stub must be an {client} client (or a generated {client_type.__name__}), "
        f"not {type(stub).__name__}"
    )


_InTx = TypeVar("_InTx", bound="TransactionBase[Any]")


def _in_scope(tx: object, tx_type: type[TransactionBase[Any]], store: str) -> str:
    if not isinstance(tx, tx_type):
        name = tx_type.__name__
        article = "an" if name[0] in "AEIOU" else "a"
        raise TypeError(f"tx must be {article} {name}, not {type(tx).__name__}")
    return check_scope(store, tx.stores)


class StoreHandle(Generic[_Index]):
    """An object store handle: its name, its repr and ``index()``.

    ``_owner`` is what its calls go through: the client's session (found from ``stub`` as
    a ``_session_type``), or a transaction (:class:`TransactionStoreHandle`).
    """

    __slots__ = ("_owner", "_store")

    _session_type: type[SessionBase[Any]]
    _index_type: Callable[[Any, str, str], _Index]

    def __init__(self, stub: Any, store: str) -> None:
        self._owner: Any = find_session(stub, self._session_type)
        self._store = check_name(store, "store name")

    @property
    def name(self) -> str:
        """The object store's name."""
        return self._store

    def index(self, name: str) -> _Index:
        """Return a handle for a named index on this store (no call is made)."""
        return self._index_type(self._owner, self._store, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._store!r})"

    # The store's requests as calls (run by the subclasses' methods of the same name).

    def _by_id(self, id: str) -> pb.ObjectStoreRequest:
        return pb.ObjectStoreRequest(store=self._store, id=check_id(id))

    def _range(self, key_range: KeyRange | None, required: bool = False) -> Any:
        return range_request(self._store, key_range, required=required)

    def _get_call(self, id: str) -> Call[dict[str, Any]]:
        return Call("get", self._by_id(id), "record", _record)

    def _get_key_call(self, id: str) -> Call[str]:
        return Call("get_key", self._by_id(id), "key", _key)

    def _write_call(self, op: str, record: dict[str, Any]) -> Call[None]:
        return Call(op, record_request(self._store, record), "empty", _nothing)

    def _delete_call(self, id: str) -> Call[None]:
        return Call("delete", self._by_id(id), "empty", _nothing)

    def _clear_call(self) -> Call[None]:
        return Call("clear", pb.ObjectStoreNameRequest(store=self._store), "empty", _nothing)

    def _get_all_call(self, key_range: KeyRange | None) -> Call[list[dict[str, Any]]]:
        return Call("get_all", self._range(key_range), "records", _records)

    def _get_all_keys_call(self, key_range: KeyRange | None) -> Call[list[str]]:
        return Call("get_all_keys", self._range(key_range), "keys", _keys)

    def _count_call(self, key_range: KeyRange | None) -> Call[int]:
        return Call("count", self._range(key_range), "count", _count)

    def _delete_range_call(self, key_range: KeyRange) -> Call[int]:
        return Call("delete_range", self._range(key_range, True), "delete", _deleted)


class IndexHandle:
    """An index handle: its name, its store's name and its repr."""

    __slots__ = ("_index", "_owner", "_store")

    _session_type: type[SessionBase[Any]]

    def __init__(self, stub: Any, store: str, index: str) -> None:
        self._owner: Any = find_session(stub, self._session_type)
        self._store = check_name(store, "store name")
        self._index = check_name(index, "index name")

    @property
    def name(self) -> str:
        """The index's name."""
        return self._index

    @property
    def store_name(self) -> str:
        """The name of the object store the index belongs to."""
        return self._store

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._store!r}, {self._index!r})"

    # The index's requests as calls (run by the subclasses' methods of the same name).

    def _query(self, values: tuple[Any, ...], key_range: KeyRange | None = None) -> Any:
        return index_request(self._store, self._index, values, key_range)

    def _get_call(self, values: tuple[Any, ...]) -> Call[dict[str, Any]]:
        return Call("index_get", self._query(values), "record", _record)

    def _get_key_call(self, values: tuple[Any, ...]) -> Call[str]:
        return Call("index_get_key", self._query(values), "key", _key)

    def _get_all_call(
        self, values: tuple[Any, ...], key_range: KeyRange | None
    ) -> Call[list[dict[str, Any]]]:
        return Call("index_get_all", self._query(values, key_range), "records", _records)

    def _get_all_keys_call(
        self, values: tuple[Any, ...], key_range: KeyRange | None
    ) -> Call[list[str]]:
        return Call("index_get_all_keys", self._query(values, key_range), "keys", _keys)

    def _count_call(self, values: tuple[Any, ...], key_range: KeyRange | None) -> Call[int]:
        return Call("index_count", self._query(values, key_range), "count", _count)

    def _delete_call(self, values: tuple[Any, ...]) -> Call[int]:
        return Call("index_delete", self._query(values), "delete", _deleted)


class TransactionStoreHandle(StoreHandle[_Index], Generic[_Index, _InTx]):
    """A store handle whose calls run in ``tx``, an instance of ``_tx_type``."""

    __slots__ = ()

    _tx_type: type[TransactionBase[Any]]

    def __init__(self, tx: _InTx, store: str) -> None:
        self._store = _in_scope(tx, self._tx_type, store)
        self._owner = tx


class TransactionIndexHandle(IndexHandle, Generic[_InTx]):
    """An index handle whose calls run in ``tx``, an instance of ``_tx_type``."""

    __slots__ = ()

    _tx_type: type[TransactionBase[Any]]

    def __init__(self, tx: _InTx, store: str, index: str) -> None:
        self._store = _in_scope(tx, self._tx_type, store)
        self._index = check_name(index, "index name")
        self._owner = tx


class _CursorOptions(TypedDict, total=False):
    """The keyword arguments of a cursor's constructor that the open methods pass on."""

    key_range: KeyRange | None
    direction: int
    keys_only: bool
    values: tuple[Any, ...]
    timeout: float | None


class _Opens(Generic[_Cursor]):
    __slots__ = ()

    _owner: Any
    _store: str
    _index: str
    _cursor_type: Callable[..., _Cursor]

    def _open(self, **options: Unpack[_CursorOptions]) -> _Cursor:
        return self._cursor_type(self._owner, self._store, index=self._index, **options)


class StoreCursors(_Opens[_Cursor]):
    """``open_cursor`` and ``open_key_cursor`` of a plain object store handle.

    A sync cursor opens at once; an asyncio one when it is awaited, entered or first moved.
    """

    __slots__ = ()

    _index = ""  # a store's cursors walk the store itself

    def open_cursor(
        self,
        key_range: KeyRange | None = None,
        direction: int = CURSOR_NEXT,
        *,
        timeout: float | None = None,
    ) -> _Cursor:
        """Open a record cursor over the store, positioned before the first entry."""
        return self._open(key_range=key_range, direction=direction, timeout=timeout)

    def open_key_cursor(
        self,
        key_range: KeyRange | None = None,
        direction: int = CURSOR_NEXT,
        *,
        timeout: float | None = None,
    ) -> _Cursor:
        """Open a key-only cursor over the store, positioned before the first entry."""
        return self._open(key_range=key_range, direction=direction, keys_only=True, timeout=timeout)


class IndexCursors(_Opens[_Cursor]):
    """``open_cursor`` and ``open_key_cursor`` of a plain index handle."""

    __slots__ = ()

    _index: str

    def open_cursor(
        self,
        *values: Any,
        key_range: KeyRange | None = None,
        direction: int = CURSOR_NEXT,
        timeout: float | None = None,
    ) -> _Cursor:
        """Open a record cursor over the indexed results (before the first entry)."""
        return self._open(values=values, key_range=key_range, direction=direction, timeout=timeout)

    def open_key_cursor(
        self,
        *values: Any,
        key_range: KeyRange | None = None,
        direction: int = CURSOR_NEXT,
        timeout: float | None = None,
    ) -> _Cursor:
        """Open a key-only cursor over the indexed results (before the first entry)."""
        return self._open(
            values=values, key_range=key_range, direction=direction, keys_only=True, timeout=timeout
        )


# -- cursors and transactions ----------------------------------------------------------------


class _Exchange(Protocol):
    def cancel(self) -> None: ...


class _Stream:
    """What cursors and transactions share: session, lock, exchange and its finalizer.

    ``_start`` runs at the end of the constructor (a sync object opens its stream there).
    """

    __slots__ = ("__weakref__", "_exchange", "_finalizer", "_lock", "_session", "_timeout")

    _session_type: type[SessionBase[Any]]
    _lock_type: Callable[[], Any]

    def _setup(self, stub: Any, timeout: float | None) -> None:
        self._session: Any = find_session(stub, self._session_type)
        session = self._session
        self._timeout = session.pick(timeout)
        self._lock = self._lock_type()
        self._exchange: Any = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def _start(self) -> None:
        """Called at the end of the constructor."""

    def _watch(self, exchange: _Exchange) -> None:
        """Cancel ``exchange`` when the object is collected with its stream open."""
        self._exchange = exchange
        self._finalizer = weakref.finalize(self, exchange.cancel)
        self._finalizer.atexit = False

    def _detach(self) -> None:
        if self._finalizer is not None:
            self._finalizer.detach()


class CursorBase(_Stream):
    """What sync and asyncio cursors share: checks, state, entry properties, failures.

    The constructor checks every argument and prepares the open frame.
    """

    __slots__ = ("_open_frame", "_s")

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
        self._setup(stub, timeout)
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
        self._s = CursorState(index, keys_only)
        self._start()

    def _failed(self, error: BaseException, exchange: _Exchange) -> None:
        """A step's request failed: remember why; cancel the stream unless the host ended it."""
        if isinstance(error, HostServiceError):
            self._s.fail(error)
            self._detach()
            return
        self._s.fail(interrupted_error())
        self._detach()
        exchange.cancel()

    def _apply(
        self,
        apply: Callable[[pb.CursorResponse | None], T],
        answer: pb.CursorResponse | None,
        exchange: _Exchange,
    ) -> T:
        """Apply a step's answer to the state; a broken answer cancels the stream."""
        try:
            return apply(answer)
        except HostServiceError:
            self._detach()
            exchange.cancel()
            raise

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


class TransactionBase(_Stream, Generic[_Store]):
    """What sync and asyncio transactions share: checks, scope, state, failure handling.

    The constructor checks the arguments and prepares the begin frame.
    """

    __slots__ = ("_begin", "_s", "mode", "stores")

    _store_type: Callable[[Any, str], _Store]

    def __init__(
        self,
        stub: Any,
        stores: list[str],
        mode: str = "readonly",
        *,
        durability_hint: str = "default",
        timeout: float | None = None,
    ) -> None:
        self._setup(stub, timeout)
        begin = begin_frame(stores, mode, durability_hint)
        #: The stores in the transaction's scope, in the given order.
        self.stores = tuple(begin.begin.stores)
        #: ``"readonly"`` or ``"readwrite"``.
        self.mode = "readwrite" if begin.begin.mode == pb.TRANSACTION_READWRITE else "readonly"
        self._begin: pb.TransactionClientMessage | None = begin
        self._s = TransactionState()
        self._start()

    @property
    def finished(self) -> bool:
        """Whether the transaction was committed, aborted or ended by a failure."""
        return self._s.finished

    def object_store(self, name: str) -> _Store:
        """Return a handle whose calls run in this transaction.

        A store outside the transaction's scope raises :class:`NotFoundError` (also a
        ``ValueError``) without any call; the transaction stays usable.
        """
        return self._store_type(self, name)

    def _step_timeout(self, timeout: float | None) -> float | None:
        return self._timeout if timeout is None else check_timeout(timeout)

    def _failed(self, error: BaseException) -> bool:
        """An operation failed: the transaction ends. True when the host rolled back and
        waits for the stream to be closed, False when the stream must be cancelled."""
        self._s.fail(error)
        self._detach()
        return self._s.rolled_back


_Tx = TypeVar("_Tx", bound=TransactionBase[Any])


class DatabaseBase(Generic[_Store, _Tx]):
    """The constructor, ``object_store()`` and ``transaction()`` of both clients."""

    __slots__ = ("_session",)

    _connection_type: Callable[..., Any]
    _session_type: type[SessionBase[Any]]
    _store_type: Callable[[Any, str], _Store]
    _transaction_type: type[_Tx]

    def __init__(self, name: str | None = None, *, timeout: float | None = None) -> None:
        default = check_timeout(timeout)  # checked before the environment is read
        endpoint = INDEXEDDB.endpoint(name)
        client_type = self._session_type.client_type
        conn = self._connection_type(endpoint, client_type, INDEXEDDB_ERRORS)
        self._session: Any = self._session_type(conn=conn, metadata=conn.metadata, timeout=default)

    def object_store(self, name: str) -> _Store:
        """Return a client bound to an object store (no call is made)."""
        return self._store_type(self._session, name)

    def transaction(
        self,
        stores: list[str],
        mode: str = "readonly",
        *,
        durability_hint: str = "default",
        timeout: float | None = None,
    ) -> _Tx:
        """Start an explicit IndexedDB transaction over ``stores``.

        ``mode`` is ``"readonly"`` or ``"readwrite"``; ``durability_hint`` ``"default"``,
        ``"strict"`` or ``"relaxed"``. A sync transaction returns once the host has begun it;
        an asyncio one begins when awaited, entered with ``async with`` or at its first
        operation.
        """
        return self._transaction_type(
            self._session, stores, mode, durability_hint=durability_hint, timeout=timeout
        )
