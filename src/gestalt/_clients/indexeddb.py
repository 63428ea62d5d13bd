"""IndexedDB client: object stores of records keyed by their ``"id"``, indexes, cursors and
transactions on the host's ``gestalt.provider.v1.IndexedDB`` service.

``IndexedDB(name=None)`` finds its host through ``GESTALT_INDEXEDDB_SOCKET[_<NAME>]`` (plus the
optional ``_TOKEN`` variable) and calls it through the generated
:class:`~gestalt.gen.v1.datastore_clients.IndexedDBClient` on plain pb2 messages.
:class:`~.indexeddb_aio.AsyncIndexedDB` has the same methods as coroutines over
``grpc.aio``. Transport and channel sharing are described in :mod:`.transport`, the
exceptions in :mod:`.errors`, record encoding in :mod:`.indexeddb_codec`, the
stream plumbing in :mod:`.indexeddb_streams`, the value types (``KeyRange``,
``ObjectStoreSchema``, ``IndexSchema``) in :mod:`.indexeddb_types`.

Shape of the API (the reference's): ``db.object_store(name)`` and ``store.index(name)`` are
plain handles with no I/O; cursors come from ``open_cursor`` / ``open_key_cursor`` and start
*before* the first entry (``continue_()`` moves onto it); ``db.transaction(stores, mode)``
begins a transaction whose ``object_store(name)`` / ``index(name)`` handles run their calls in
it, one at a time. A transaction used as a context manager commits when the block succeeds
and aborts when it raises. Iterating a cursor moves it with ``continue_()`` and yields the
cursor itself on each entry, so ``key``, ``primary_key``, ``value``, ``update`` and
``delete`` apply to the entry of that round.

Choices where the reference (gestalt-sdk 0.0.1a18) behaves differently, each deliberate:

* Q2: nothing leaks. A cursor or transaction dropped without ``close()``/``commit()``/
  ``abort()`` cancels its call when garbage collected, which releases grpc's request thread
  and the host's stream (and the host transaction's lock); ``IndexedDB.close()`` cancels the
  streams the client still has open.
* Q5 [compat]: one mapping for every call, cursors included: ``NOT_FOUND`` ->
  :class:`NotFoundError`, ``ALREADY_EXISTS`` -> :class:`AlreadyExistsError`,
  ``INVALID_ARGUMENT``/``FAILED_PRECONDITION`` -> :class:`TransactionError`, anything else
  -> :class:`~.errors.HostServiceError` (``.code``, ``.message``, the
  ``grpc.RpcError`` as ``__cause__``) instead of the raw ``grpc.RpcError``. Inside a
  transaction a failed operation is always a ``TransactionError`` unless it is
  ``NOT_FOUND``/``ALREADY_EXISTS``, as in the reference, now with its status code.
* Q6 [compat]: cursor misuse says what is wrong, as a ``ValueError``: a closed cursor
  (``"cursor is closed"``, for moves too, which the reference answered with ``False``), no
  current entry before the first move or after the end (``value``, ``update``, ``delete``;
  the reference raised ``TypeError``/``NotFoundError``, or sent the command and lost the
  stream). ``update``/``delete`` after the end raise :class:`NotFoundError` as the reference
  did, as an instance that is also a ``ValueError``. ``value`` on a key cursor stays a
  ``TypeError``. A failed stream is never taken
  for the end of the data: every later move raises the failure again.
* Q7: a transaction remembers why it ended. After a failed operation every later call,
  ``commit()`` and the ``with`` block's exit raise ``TransactionError("transaction is
  already finished: ...")`` naming the first failure and chained to it, instead of a bare
  "already finished" that hid the cause when it had been caught.
* Closing a stream waits (briefly, bounded) for the host to end it, so the host has released
  it when ``close()``/``commit()``/``abort()`` return. Once a cursor reaches the end (the host
  answers ``done``), it closes itself, since nothing but ``close()`` can follow: the host's
  stream and grpc's request thread are released even if the cursor object lives on (as the
  last value of a ``for`` loop does). The frames sent are the reference's, only earlier.
* Q8: records, ``get_all`` results and cursor entries up to 64 MiB can be read back.
* Q9: timestamps are decoded from their integer seconds and nanos, truncated to the
  microsecond (the reference went through a float and could round into the next second).
* Q10: values nested in dicts and lists travel as ``google.protobuf.Value``, so their
  numbers come back as floats (wire shape kept for interoperability); a nested int that a
  double cannot hold exactly (beyond 2**53) is refused with ``ValueError`` instead of being
  silently rounded. Top-level ints are int64 and come back as ints.
* Q16: arguments are checked before any call: a ``str`` given as ``stores`` is a
  ``TypeError`` (the reference split it into characters), a store outside a transaction's
  scope a :class:`NotFoundError` that is also a ``ValueError`` (the host's ``NOT_FOUND`` would
  end the transaction; this one leaves it usable), ids and names must be ``str``, store and
  index names non-empty, records dicts with ``str`` keys, ``add``/``put`` records must carry
  a ``str`` ``"id"``, directions one of the four ``CURSOR_*`` values, ``advance`` counts
  positive, key ranges ``KeyRange`` objects, schemas ``ObjectStoreSchema`` with non-empty
  key paths. Calls the host would refuse with ``INVALID_ARGUMENT`` are
  refused locally with ``TypeError``/``ValueError``: ``delete_range(None)``, an empty
  transaction scope, ``advance(0)`` (which also killed the reference's cursor).
* Q18: calls take an optional ``timeout`` in seconds; the constructor's ``timeout`` is the
  default (None: wait as long as it takes, as the reference did). A cursor's ``timeout``
  (given to ``open_cursor``) and a transaction's (given to ``transaction``; operations,
  ``commit`` and ``abort`` may pass their own) bound each step (open, each move or
  command, each operation), not the life of the stream; a step that runs out cancels the
  stream and raises :class:`~.errors.HostServiceTimeoutError`.
* Q19: ``ObjectStore``, ``Index``, ``Cursor`` and ``Transaction`` keep the reference's
  constructors (``stub`` first), where ``stub`` is the ``IndexedDB`` client (or a generated
  ``IndexedDBClient``). As in the reference, opening a cursor or a transaction waits for the
  host's acknowledgement, so a bad store or index fails at the open.
* Q21: ``abort(reason)`` sends its reason to the host, and the frames the host sends after
  a failed operation (its ``abort``) are read before the call returns.
* A host that disappears mid-stream fails the waiting step with ``UNAVAILABLE`` (a
  ``HostServiceError``), never a hang; a host that breaks the stream protocol raises a
  ``HostServiceError`` with code ``INTERNAL``.
* Use after ``close()`` raises ``ValueError("IndexedDB client is closed")``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gestalt._clients import indexeddb_handles as core
from gestalt._clients.closing import Closing
from gestalt._clients.errors import (
    AlreadyExistsError,
    NotFoundError,
    TransactionError,
)
from gestalt._clients.indexeddb_sync import (
    Cursor,
    Index,
    ObjectStore,
    Session,
    Transaction,
    TransactionIndex,
    TransactionObjectStore,
)
from gestalt._clients.transport import (
    SyncConnection,
    indexeddb_socket_env,
    indexeddb_socket_token_env,
)

if TYPE_CHECKING:
    from gestalt._clients.indexeddb_types import ObjectStoreSchema

__all__ = [
    "AlreadyExistsError",
    "Cursor",
    "Index",
    "IndexedDB",
    "NotFoundError",
    "ObjectStore",
    "Transaction",
    "TransactionError",
    "TransactionIndex",
    "TransactionObjectStore",
    "indexeddb_socket_env",
    "indexeddb_socket_token_env",
]


# -- the client ------------------------------------------------------------------------------


class IndexedDB(core.DatabaseBase[ObjectStore, Transaction], Closing):
    """Client for a host-provided IndexedDB-compatible store.

    ``name`` selects the binding (``GESTALT_INDEXEDDB_SOCKET_<NAME>``); ``timeout`` is the
    default deadline in seconds for every call and every cursor or transaction step (None:
    no deadline). Raises ``RuntimeError`` when the binding's variable is not set. Use as a
    context manager or call :meth:`close`.
    """

    __slots__ = ()

    _connection_type = SyncConnection
    _session_type = Session
    _store_type = ObjectStore
    _transaction_type = Transaction

    def close(self) -> None:
        """Close the client: cancel its open cursors and transactions; idempotent."""
        self._session.close()

    def create_object_store(
        self, name: str, schema: ObjectStoreSchema | None = None, *, timeout: float | None = None
    ) -> None:
        """Create an object store with an optional schema (its indexes)."""
        self._session._call(core.create_store(name, schema), timeout)

    def delete_object_store(self, name: str, *, timeout: float | None = None) -> None:
        """Delete an object store by name, with its records."""
        self._session._call(core.delete_store(name), timeout)
