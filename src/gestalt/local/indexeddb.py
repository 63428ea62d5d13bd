"""Embedded IndexedDB host service on SQLite.

:class:`IndexedDBService` implements every RPC of ``gestalt.provider.v1.IndexedDB`` with the
host's semantics (contract ``clients.md`` section 3): object stores created on first write or
with ``CreateObjectStore``, records keyed by their string ``"id"``, secondary indexes
(compound and unique), key ranges, live cursors in four directions and transactions with
read-your-writes, atomic commit and rollback on abort, failure or a broken stream.

Like the host's reference backend, the service holds one database-wide readers/writer lock:
a readwrite transaction excludes every other call until it ends, a readonly transaction
excludes writers. A caller waiting for the lock stops waiting when its RPC is cancelled.
A transaction whose client sends nothing for ``idle_timeout`` seconds (60 by default) is
rolled back and its lock released; the client's next request on it gets
``FAILED_PRECONDITION`` "datastore: transaction is already finished: ...". New readers pass
a waiting writer while the reader it waits for idles, so an idle reader cannot starve them.
Only one service at a time may use a database file (``flock`` on ``<file>-lock``); the
folder is created 0700 and the files 0600. Storage failures are answered ``INTERNAL`` with
a message of our own (SQLite's text is only logged); ``NOT_FOUND`` messages start with the
host's ``datastore: not found`` and then say which store, record or index was missing.

:func:`serve_indexeddb` runs the service on a unix socket::

    with serve_indexeddb(tmp / "idb.sock", db_path=tmp / "idb.sqlite") as running:
        channel = grpc.insecure_channel(running.target)

Deliberate choices where the host leaves room (documented for client authors):

* reads of a store that does not exist see an empty store; writes create it;
* an index query or cursor naming an index the store lacks is ``NOT_FOUND``;
* more index values than key-path fields is ``INVALID_ARGUMENT``;
* a record lacking a key-path field is indexed with null for it; unique indexes only
  constrain keys without nulls;
* ``CreateObjectStore`` on an existing store keeps its records and brings its indexes to the
  new schema (so providers may call it on every start);
* ``*_UNIQUE`` cursor directions visit the first entry of each key in walking order; cursors
  are live (they see writes made after they were opened);
* a cursor ``update`` keeps the primary key: a record without ``"id"`` gets the cursor's,
  a different ``"id"`` is ``INVALID_ARGUMENT``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar, Unpack

import grpc
import grpc.aio
from google.protobuf import empty_pb2

from gestalt._clients.closing import Closing
from gestalt.gen.v1 import datastore_pb2 as pb
from gestalt.gen.v1.datastore_servicers import add_indexed_db_to_server
from gestalt.local._indexeddb_access import Gate
from gestalt.local._indexeddb_cursor import serve_cursor
from gestalt.local._indexeddb_engine import Database
from gestalt.local._indexeddb_transaction import serve_transaction
from gestalt.local._serving import LocalServer, Served, ServeOptions, Where

__all__ = ["DEFAULT_IDLE_TIMEOUT", "IndexedDBServer", "IndexedDBService", "serve_indexeddb"]

#: Seconds a transaction may wait for its client's next request before it is rolled back.
DEFAULT_IDLE_TIMEOUT = 60.0

T = TypeVar("T")


class IndexedDBService(Closing):
    """The host's IndexedDB service on SQLite, ready for ``add_indexed_db_to_server``.

    ``path`` is the SQLite file (created with its folder when missing; data survives a
    restart); None keeps everything in memory for the life of the service. A file already
    used by another service raises :class:`~gestalt.local._files.StoreInUseError` (a
    ``RuntimeError``). Transactions idle for ``idle_timeout`` seconds are rolled back. The
    service is thread-safe; :meth:`close` releases the database. Counters
    :attr:`open_cursors` and :attr:`open_transactions` report the streams being served.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        if not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be positive, got {idle_timeout}")
        self._gate = Gate(Database(path), idle_timeout)
        self._counts_lock = threading.Lock()
        self._cursors = 0
        self._transactions = 0

    @property
    def path(self) -> Path | None:
        """The database file, or None for an in-memory database."""
        return self._gate.db.path

    @property
    def open_cursors(self) -> int:
        """Number of cursor streams being served right now."""
        with self._counts_lock:
            return self._cursors

    @property
    def open_transactions(self) -> int:
        """Number of transaction streams being served right now."""
        with self._counts_lock:
            return self._transactions

    def store_names(self) -> list[str]:
        """Names of the existing object stores, sorted (for inspection and tests)."""
        return self._gate.db.store_names()

    def add_to_server(
        self,
        server: grpc.Server | grpc.aio.Server,
        *,
        executor: concurrent.futures.Executor | None = None,
    ) -> None:
        """Register the service on a ``grpc.Server`` or ``grpc.aio.Server``.

        On a ``grpc.aio.Server`` the (blocking) handlers run in ``executor``, the loop's
        default executor when None; every open cursor or transaction occupies one of its
        threads.
        """
        add_indexed_db_to_server(self, server, executor=executor)

    def close(self) -> None:
        """Stop serving calls and close the database; an open transaction is rolled back."""
        self._gate.close()

    # -- plumbing -----------------------------------------------------------------------

    def _run(self, context: grpc.ServicerContext, exclusive: bool, fn: Callable[[], T]) -> T:
        return self._gate.run(context, exclusive, fn)

    @contextlib.contextmanager
    def _tracked(self, kind: str) -> Iterator[None]:
        with self._counts_lock:
            if kind == "cursor":
                self._cursors += 1
            else:
                self._transactions += 1
        try:
            yield
        finally:
            with self._counts_lock:
                if kind == "cursor":
                    self._cursors -= 1
                else:
                    self._transactions -= 1

    # -- unary RPCs ---------------------------------------------------------------------

    def create_object_store(
        self, request: pb.CreateObjectStoreRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Create an object store, or update the indexes of an existing one."""
        return self._run(context, True, lambda: self._gate.db.create_object_store(request))

    def delete_object_store(
        self, request: pb.DeleteObjectStoreRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Delete an object store with its records; a missing store is not an error."""
        return self._run(context, True, lambda: self._gate.db.delete_object_store(request))

    def get(
        self, request: pb.ObjectStoreRequest, context: grpc.ServicerContext
    ) -> pb.RecordResponse:
        """The record with the given id; NOT_FOUND when missing."""
        return self._run(context, False, lambda: self._gate.db.get(request))

    def get_key(
        self, request: pb.ObjectStoreRequest, context: grpc.ServicerContext
    ) -> pb.KeyResponse:
        """The id when the record exists; NOT_FOUND otherwise."""
        return self._run(context, False, lambda: self._gate.db.get_key(request))

    def add(self, request: pb.RecordRequest, context: grpc.ServicerContext) -> empty_pb2.Empty:
        """Insert a record; ALREADY_EXISTS for a taken id or unique index key."""
        return self._run(context, True, lambda: self._gate.db.add(request))

    def put(self, request: pb.RecordRequest, context: grpc.ServicerContext) -> empty_pb2.Empty:
        """Insert or replace a record."""
        return self._run(context, True, lambda: self._gate.db.put(request))

    def delete(
        self, request: pb.ObjectStoreRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Delete a record by id; a missing record is not an error."""
        return self._run(context, True, lambda: self._gate.db.delete(request))

    def clear(
        self, request: pb.ObjectStoreNameRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Delete every record of a store."""
        return self._run(context, True, lambda: self._gate.db.clear(request))

    def get_all(
        self, request: pb.ObjectStoreRangeRequest, context: grpc.ServicerContext
    ) -> pb.RecordsResponse:
        """Records in the primary-key range (all when unset), in key order."""
        return self._run(context, False, lambda: self._gate.db.get_all(request))

    def get_all_keys(
        self, request: pb.ObjectStoreRangeRequest, context: grpc.ServicerContext
    ) -> pb.KeysResponse:
        """Primary keys in the range (all when unset), in key order."""
        return self._run(context, False, lambda: self._gate.db.get_all_keys(request))

    def count(
        self, request: pb.ObjectStoreRangeRequest, context: grpc.ServicerContext
    ) -> pb.CountResponse:
        """Number of records in the range (all when unset)."""
        return self._run(context, False, lambda: self._gate.db.count(request))

    def delete_range(
        self, request: pb.ObjectStoreRangeRequest, context: grpc.ServicerContext
    ) -> pb.DeleteResponse:
        """Delete the records in the range; INVALID_ARGUMENT without a range."""
        return self._run(context, True, lambda: self._gate.db.delete_range(request))

    def index_get(
        self, request: pb.IndexQueryRequest, context: grpc.ServicerContext
    ) -> pb.RecordResponse:
        """First matching record in index order; NOT_FOUND when none."""
        return self._run(context, False, lambda: self._gate.db.index_get(request))

    def index_get_key(
        self, request: pb.IndexQueryRequest, context: grpc.ServicerContext
    ) -> pb.KeyResponse:
        """Primary key of the first match in index order; NOT_FOUND when none."""
        return self._run(context, False, lambda: self._gate.db.index_get_key(request))

    def index_get_all(
        self, request: pb.IndexQueryRequest, context: grpc.ServicerContext
    ) -> pb.RecordsResponse:
        """All matching records in index order."""
        return self._run(context, False, lambda: self._gate.db.index_get_all(request))

    def index_get_all_keys(
        self, request: pb.IndexQueryRequest, context: grpc.ServicerContext
    ) -> pb.KeysResponse:
        """Primary keys of all matches in index order."""
        return self._run(context, False, lambda: self._gate.db.index_get_all_keys(request))

    def index_count(
        self, request: pb.IndexQueryRequest, context: grpc.ServicerContext
    ) -> pb.CountResponse:
        """Number of matching records."""
        return self._run(context, False, lambda: self._gate.db.index_count(request))

    def index_delete(
        self, request: pb.IndexQueryRequest, context: grpc.ServicerContext
    ) -> pb.DeleteResponse:
        """Delete the matching records and say how many."""
        return self._run(context, True, lambda: self._gate.db.index_delete(request))

    # -- streams ------------------------------------------------------------------------

    def open_cursor(
        self, requests: Iterator[pb.CursorClientMessage], context: grpc.ServicerContext
    ) -> Iterator[pb.CursorResponse]:
        """Serve one cursor stream: open (acknowledged with ``done: false``), then commands.

        ``next``, ``continue_to_key`` and ``advance`` answer the new entry or ``done: true``;
        ``update`` answers the refreshed entry, ``delete`` ``done: false``; ``close`` or a
        half-close ends the stream with OK. Errors end the stream with their status.
        """
        with self._tracked("cursor"):
            yield from serve_cursor(self._gate, requests, context)

    def transaction(
        self, requests: Iterator[pb.TransactionClientMessage], context: grpc.ServicerContext
    ) -> Iterator[pb.TransactionServerMessage]:
        """Serve one transaction stream: begin, operations one at a time, commit or abort.

        Operations see the transaction's earlier writes; commit applies them atomically;
        abort, a failed operation (answered in-band, then ``abort``), a half-close or a
        cancelled call rolls them back. A readwrite transaction excludes every other call.
        """
        with self._tracked("transaction"):
            yield from serve_transaction(self._gate, requests, context)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve IndexedDB until SIGINT or SIGTERM; prints the target on stdout first.

    ``--db PATH`` keeps the data in that SQLite file (in memory without it). A problem
    starting it is one line on stderr and exit status 2.
    """
    from gestalt.local._main import run

    option = ("--db", "db_path", "SQLite file (default: in memory)")
    return run(
        "gestalt.local.indexeddb", "Serve IndexedDB on SQLite.", serve_indexeddb, argv, option
    )


class IndexedDBServer(LocalServer[IndexedDBService]):
    """A running :class:`IndexedDBService` (from :func:`serve_indexeddb`).

    The shared :class:`~gestalt.local._serving.LocalServer`, except that :meth:`stop` gives
    open calls one second by default; stopping also closes the database.
    """

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop serving (open calls get ``grace`` seconds), then close the database."""
        super().stop(grace)


_SERVED = Served(
    "IndexedDB", "idb", IndexedDBService.add_to_server, IndexedDBServer, workers=32, streams=True
)


def serve_indexeddb(
    socket_path: Where,
    *,
    db_path: str | os.PathLike[str] | None = None,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    **options: Unpack[ServeOptions],
) -> IndexedDBServer:
    """Serve a new :class:`IndexedDBService`, its data in the SQLite file ``db_path`` (in
    memory when None), on ``socket_path``: a unix socket path (a stale socket file there is
    replaced, anything else existing is an error), ``unix://…`` or ``tcp://host:port``.

    ``options`` are those of every local server (:class:`~gestalt.local.ServeOptions`). The
    server is a sync ``grpc.Server`` with ``max_workers`` threads (32 by default); each open
    cursor or transaction stream holds one, and calls beyond ``max_workers`` at once fail fast
    with ``RESOURCE_EXHAUSTED`` instead of queueing behind long-lived streams; a transaction
    idle for ``idle_timeout`` seconds is rolled back.
    """
    return _SERVED.serve(
        socket_path, lambda: IndexedDBService(db_path, idle_timeout=idle_timeout), options
    )


if __name__ == "__main__":
    sys.exit(main())
