"""SQLite storage behind the embedded IndexedDB service.

One connection holds every object store. Records live in ``records`` keyed by the encoded
primary key; each index has rows in ``index_entries`` keyed by (encoded index key, encoded
primary key). Keys use the order-preserving encoding of :mod:`._indexeddb_keys`, so SQL
``ORDER BY`` and comparisons on BLOBs give the host's key order.

The service serialises logical access with a database-wide readers/writer lock, as the
host's reference backend does; this module only guards the connection itself.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from google.protobuf import empty_pb2

from gestalt.gen.v1 import datastore_pb2 as pb
from gestalt.local._files import lock_exclusive, private_dir, private_file
from gestalt.local._indexeddb_keys import (
    already_exists,
    check_record,
    decode_primary,
    encode_primary,
    encode_value,
    index_key,
    invalid,
    not_found,
    prefix_upper_bound,
    quoted,
    record_id,
)
from gestalt.local._indexeddb_model import (
    CursorScan,
    IndexInfo,
    Row,
    StoreInfo,
    framed,
    range_conditions,
)

__all__ = ["Database"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS stores (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
    "CREATE TABLE IF NOT EXISTS indexes (id INTEGER PRIMARY KEY, store_id INTEGER NOT NULL,"
    " name TEXT NOT NULL, key_path TEXT NOT NULL, is_unique INTEGER NOT NULL,"
    " position INTEGER NOT NULL, UNIQUE (store_id, name))",
    # A rowid table: records can be many MiB, which WITHOUT ROWID tables handle poorly.
    "CREATE TABLE IF NOT EXISTS records (store_id INTEGER NOT NULL, key BLOB NOT NULL,"
    " data BLOB NOT NULL, UNIQUE (store_id, key))",
    "CREATE TABLE IF NOT EXISTS index_entries (index_id INTEGER NOT NULL, ikey BLOB NOT NULL,"
    " pkey BLOB NOT NULL, PRIMARY KEY (index_id, ikey, pkey)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS index_entries_by_record ON index_entries (pkey, index_id)",
)

# PRAGMA synchronous per TransactionDurabilityHint: default, strict, relaxed.
_SYNCHRONOUS: dict[int, str] = {
    pb.TRANSACTION_DURABILITY_DEFAULT: "NORMAL",
    pb.TRANSACTION_DURABILITY_STRICT: "FULL",
    pb.TRANSACTION_DURABILITY_RELAXED: "OFF",
}


def _no_record(store: str, key: str) -> str:
    return f"no record with id {quoted(key)} in object store {quoted(store)}"


def _optional_range(request: Any) -> pb.KeyRange | None:
    return request.range if request.HasField("range") else None


class Database:
    """Object stores, records and indexes in one SQLite database.

    ``path`` is the database file (its folder is created; WAL journal) or None / ``":memory:"``
    for a private in-memory database; :attr:`path` keeps the file's path (None in memory).
    A file database is locked (``flock`` on ``<path>-lock``) until :meth:`close`: a second
    ``Database`` on the same file, in this process or another, raises
    :class:`~gestalt.local._files.StoreInUseError`. Folders are created 0700, files 0600.
    Write methods expect the caller to have opened a transaction (:meth:`atomic` or
    :meth:`begin`); reads may run outside one.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        target = ":memory:" if path is None else os.fspath(path)
        in_memory = target == ":memory:"
        self.path = None if in_memory else Path(target)
        self._file_lock: BinaryIO | None = None
        if self.path is not None:
            private_dir(self.path.parent)
            self._file_lock = lock_exclusive(
                self.path.with_name(self.path.name + "-lock"), f"{self.path} (local IndexedDB)"
            )
        try:
            if self.path is not None:
                private_file(self.path)  # SQLite gives its -wal and -shm files this mode
            self._conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        except BaseException:
            self._unlock()
            raise
        self._mutex = threading.RLock()
        self._in_transaction = False
        try:
            if not in_memory:
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                self._conn.execute(statement)
            self._stores = self._load_stores()
        except BaseException:
            self._conn.close()
            self._unlock()
            raise

    # -- lifecycle and transactions ------------------------------------------------------

    def close(self) -> None:
        """Close the connection (rolling back an unfinished transaction)."""
        with self._mutex:
            try:
                if self._in_transaction:
                    self.rollback()
                self._conn.close()
            finally:
                self._unlock()

    def _unlock(self) -> None:
        if self._file_lock is not None:
            self._file_lock.close()
            self._file_lock = None

    def begin(self, durability: int = pb.TRANSACTION_DURABILITY_DEFAULT) -> None:
        """Start a write transaction; ``durability`` picks how hard the commit syncs."""
        with self._mutex:
            if self.path is not None:
                level = _SYNCHRONOUS.get(durability, "NORMAL")
                self._conn.execute(f"PRAGMA synchronous={level}")
            self._conn.execute("BEGIN IMMEDIATE")
            self._in_transaction = True

    def commit(self) -> None:
        """Commit the transaction started with :meth:`begin`."""
        with self._mutex:
            try:
                self._conn.execute("COMMIT")
            except BaseException:
                self.rollback()
                raise
            self._in_transaction = False
            self._reset_synchronous()

    def rollback(self) -> None:
        """Undo the transaction started with :meth:`begin` (no-op when none is open)."""
        with self._mutex:
            if not self._in_transaction:
                return
            self._in_transaction = False
            try:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            finally:
                # The store cache may hold stores or indexes the rollback just undid.
                self._stores = self._load_stores()
                self._reset_synchronous()

    @contextmanager
    def atomic(self, durability: int = pb.TRANSACTION_DURABILITY_DEFAULT) -> Iterator[None]:
        """Run the block in a transaction: commit on success, roll back on any exception."""
        self.begin(durability)
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.commit()

    def _reset_synchronous(self) -> None:
        if self.path is not None:
            self._conn.execute("PRAGMA synchronous=NORMAL")

    # -- schema -------------------------------------------------------------------------

    def _load_stores(self) -> dict[str, StoreInfo]:
        stores = {
            name: StoreInfo(store_id, name)
            for store_id, name in self._conn.execute("SELECT id, name FROM stores")
        }
        by_id = {store.id: store for store in stores.values()}
        rows = self._conn.execute(
            "SELECT id, store_id, name, key_path, is_unique FROM indexes ORDER BY position"
        )
        for index_id, store_id, name, key_path, unique in rows:
            path = tuple(json.loads(key_path))
            by_id[store_id].indexes[name] = IndexInfo(index_id, name, path, bool(unique))
        return stores

    def _store(self, name: str, *, create: bool = False) -> StoreInfo | None:
        if not name:
            raise invalid("object store name is required")
        store = self._stores.get(name)
        if store is None and create:
            cursor = self._conn.execute("INSERT INTO stores (name) VALUES (?)", (name,))
            assert cursor.lastrowid is not None
            store = self._stores[name] = StoreInfo(cursor.lastrowid, name)
        return store

    def store_names(self) -> list[str]:
        """Names of the object stores, sorted."""
        with self._mutex:
            return sorted(self._stores)

    def create_object_store(self, request: pb.CreateObjectStoreRequest) -> empty_pb2.Empty:
        """Create a store, or bring an existing one to the given schema (records are kept).

        Indexes keep their entries when their definition is unchanged, are built from the
        stored records when new or changed, and are dropped when left out. A unique index
        the records violate fails with ALREADY_EXISTS and changes nothing.
        """
        wanted = list(request.schema.indexes)
        names = [index.name for index in wanted]
        for index in wanted:
            if not index.name:
                raise invalid("invalid schema: index name is required")
            if not index.key_path or any(not part for part in index.key_path):
                raise invalid(f"invalid schema: index {index.name!r} needs a key path")
        if len(set(names)) != len(names):
            raise invalid("invalid schema: duplicate index names")
        with self._mutex:
            store = self._store(request.name, create=True)
            assert store is not None
            keep: dict[str, IndexInfo] = {}
            for position, spec in enumerate(wanted):
                old = store.indexes.pop(spec.name, None)
                key_path, unique = tuple(spec.key_path), bool(spec.unique)
                if old is not None and (old.key_path, old.unique) == (key_path, unique):
                    self._conn.execute(
                        "UPDATE indexes SET position = ? WHERE id = ?", (position, old.id)
                    )
                    keep[spec.name] = old
                    continue
                if old is not None:
                    self._drop_index(old)
                keep[spec.name] = self._build_index(store, spec.name, key_path, unique, position)
            for leftover in store.indexes.values():
                self._drop_index(leftover)
            store.indexes = keep
        return empty_pb2.Empty()

    def _drop_index(self, index: IndexInfo) -> None:
        self._conn.execute("DELETE FROM index_entries WHERE index_id = ?", (index.id,))
        self._conn.execute("DELETE FROM indexes WHERE id = ?", (index.id,))

    def _build_index(
        self, store: StoreInfo, name: str, key_path: tuple[str, ...], unique: bool, position: int
    ) -> IndexInfo:
        cursor = self._conn.execute(
            "INSERT INTO indexes (store_id, name, key_path, is_unique, position)"
            " VALUES (?, ?, ?, ?, ?)",
            (store.id, name, json.dumps(key_path), int(unique), position),
        )
        assert cursor.lastrowid is not None
        index = IndexInfo(cursor.lastrowid, name, key_path, unique)
        rows = self._conn.execute("SELECT key, data FROM records WHERE store_id = ?", (store.id,))
        for pkey, data in rows.fetchall():
            ikey, complete = index_key(pb.Record.FromString(data), key_path)
            if unique and complete and self._taken(index, ikey, pkey):
                raise already_exists()
            self._conn.execute(
                "INSERT INTO index_entries (index_id, ikey, pkey) VALUES (?, ?, ?)",
                (index.id, ikey, pkey),
            )
        return index

    def delete_object_store(self, request: pb.DeleteObjectStoreRequest) -> empty_pb2.Empty:
        """Delete a store with its records and indexes; a missing store is not an error."""
        with self._mutex:
            store = self._store(request.name)
            if store is None:
                return empty_pb2.Empty()
            for index in store.indexes.values():
                self._drop_index(index)
            self._conn.execute("DELETE FROM records WHERE store_id = ?", (store.id,))
            self._conn.execute("DELETE FROM stores WHERE id = ?", (store.id,))
            del self._stores[store.name]
        return empty_pb2.Empty()

    # -- records ------------------------------------------------------------------------

    def _taken(self, index: IndexInfo, ikey: bytes, pkey: bytes) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM index_entries WHERE index_id = ? AND ikey = ? AND pkey != ? LIMIT 1",
            (index.id, ikey, pkey),
        ).fetchone()
        return row is not None

    def write(self, store_name: str, record: pb.Record, *, replace: bool) -> bytes:
        """Insert (``replace=False``) or upsert a record; returns its encoded primary key."""
        check_record(record)
        with self._mutex:
            store = self._store(store_name, create=True)
            assert store is not None
            pkey = encode_primary(record_id(record))
            exists = (
                self._conn.execute(
                    "SELECT 1 FROM records WHERE store_id = ? AND key = ?", (store.id, pkey)
                ).fetchone()
                is not None
            )
            if exists and not replace:
                raise already_exists()
            entries: list[tuple[int, bytes, bytes]] = []
            for index in store.indexes.values():
                ikey, complete = index_key(record, index.key_path)
                if index.unique and complete and self._taken(index, ikey, pkey):
                    raise already_exists()
                entries.append((index.id, ikey, pkey))
            data = record.SerializeToString()
            if exists:
                self._conn.execute(
                    "UPDATE records SET data = ? WHERE store_id = ? AND key = ?",
                    (data, store.id, pkey),
                )
                self._drop_entries(store, [pkey])
            else:
                self._conn.execute(
                    "INSERT INTO records (store_id, key, data) VALUES (?, ?, ?)",
                    (store.id, pkey, data),
                )
            self._conn.executemany(
                "INSERT INTO index_entries (index_id, ikey, pkey) VALUES (?, ?, ?)", entries
            )
            return pkey

    def _drop_entries(self, store: StoreInfo, pkeys: Sequence[bytes]) -> None:
        ids = [index.id for index in store.indexes.values()]
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        self._conn.executemany(
            f"DELETE FROM index_entries WHERE pkey = ? AND index_id IN ({marks})",
            [(pkey, *ids) for pkey in pkeys],
        )

    def _delete_keys(self, store: StoreInfo, pkeys: Sequence[bytes]) -> int:
        self._drop_entries(store, pkeys)
        self._conn.executemany(
            "DELETE FROM records WHERE store_id = ? AND key = ?",
            [(store.id, pkey) for pkey in pkeys],
        )
        return len(pkeys)

    def delete_key(self, store_name: str, pkey: bytes) -> None:
        """Delete the record with encoded primary key ``pkey`` if it exists."""
        with self._mutex:
            store = self._store(store_name)
            if store is not None:
                self._delete_keys(store, [pkey])

    def _record_data(self, store_name: str, record_key: str) -> bytes:
        store = self._store(store_name)
        row = (
            None
            if store is None
            else self._conn.execute(
                "SELECT data FROM records WHERE store_id = ? AND key = ?",
                (store.id, encode_primary(record_key)),
            ).fetchone()
        )
        if row is None:
            raise not_found(_no_record(store_name, record_key))
        data: bytes = row[0]
        return data

    # -- scans --------------------------------------------------------------------------

    def store_scan(self, store_name: str, key_range: pb.KeyRange | None) -> CursorScan:
        """A scan over a store's records in primary-key order, limited to ``key_range``."""
        store = self._store(store_name)
        conditions, params = range_conditions("r.key", key_range, "key range")
        return CursorScan(store, None, tuple(conditions), tuple(params))

    def index_scan(
        self,
        store_name: str,
        index_name: str,
        values: Sequence[pb.TypedValue],
        key_range: pb.KeyRange | None,
    ) -> CursorScan:
        """A scan over an index in (index key, primary key) order.

        ``values`` match the key path's leading fields; ``key_range`` bounds the whole index
        key (a scalar bound compares as a one-element key). A missing store or index is
        NOT_FOUND.
        """
        store = self._store(store_name)
        index = None if store is None else store.indexes.get(index_name)
        if store is None or index is None:
            raise not_found(f"object store {quoted(store_name)} has no index {quoted(index_name)}")
        if len(values) > len(index.key_path):
            raise invalid(
                f"unmarshal index values: index {index_name!r} has {len(index.key_path)}"
                f" key-path fields, got {len(values)} values"
            )
        conditions, params = range_conditions("e.ikey", key_range, "key range")
        if values:
            prefix = b"".join(encode_value(value, "index values") for value in values)
            conditions += ["e.ikey >= ?", "e.ikey < ?"]
            params += [prefix, prefix_upper_bound(prefix)]
        return CursorScan(store, index, tuple(conditions), tuple(params))

    def select(
        self,
        scan: CursorScan,
        columns: str,
        *,
        with_record: bool,
        conditions: Sequence[str] = (),
        params: Sequence[bytes] = (),
        order: str = "",
        limit: int | None = None,
        offset: int = 0,
        distinct: bool = False,
    ) -> list[tuple[Any, ...]]:
        """Run one query over ``scan`` with extra ``conditions``; ``columns`` may use
        ``{key}``, ``{pk}`` and ``r.data``."""
        if scan.store is None:
            return []
        source, args = scan.source(with_record)
        where = [*scan.conditions, *conditions]
        sql = f"SELECT {'DISTINCT ' if distinct else ''}{columns} FROM {source}"
        if where:
            sql += " AND " + " AND ".join(where)
        if order:
            sql += f" ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        sql = sql.format(key=scan.key_column, pk=scan.primary_column)
        with self._mutex:
            return self._conn.execute(sql, [*args, *scan.params, *params]).fetchall()

    def move(
        self,
        scan: CursorScan,
        position: tuple[bytes, bytes] | None,
        *,
        descending: bool,
        unique: bool,
        skip: int = 0,
        target: bytes | None = None,
        with_record: bool,
    ) -> Row | None:
        """The entry ``skip + 1`` steps from ``position`` (None: before the first entry).

        ``unique`` steps over entries whose key equals the one just left (index scans);
        ``target`` also requires a key at or past it in the walking direction.
        """
        unique = unique and scan.index is not None
        after = "<" if descending else ">"
        conditions: list[str] = []
        params: list[bytes] = []
        if position is not None:
            if unique or scan.index is None:
                conditions.append(f"{{key}} {after} ?")
                params.append(position[0])
            else:
                conditions.append(f"({{key}}, {{pk}}) {after} (?, ?)")
                params += [position[0], position[1]]
        if target is not None:
            conditions.append(f"{{key}} {after}= ?")
            params.append(target)
        direction = " DESC" if descending else ""
        if unique and skip:
            order = f"{{key}}{direction}"
            key = self._nth(scan, "{key}", False, conditions, params, order, skip, distinct=True)
            if key is None:
                return None
            conditions, params, skip = ["{key} = ?"], [key[0]], 0
        columns = "{key}, {pk}" + (", r.data" if with_record else "")
        order = f"{{key}}{direction}, {{pk}}{direction}"
        row = self._nth(scan, columns, with_record, conditions, params, order, skip)
        if row is None:
            return None
        return (row[0], row[1], row[2] if with_record else None)

    def _nth(
        self,
        scan: CursorScan,
        columns: str,
        with_record: bool,
        conditions: Sequence[str],
        params: Sequence[bytes],
        order: str,
        skip: int,
        *,
        distinct: bool = False,
    ) -> tuple[Any, ...] | None:
        """The row ``skip`` rows into :meth:`select`'s answer, None past its end."""
        rows = self.select(
            scan,
            columns,
            with_record=with_record,
            conditions=conditions,
            params=params,
            order=order,
            limit=1,
            offset=skip,
            distinct=distinct,
        )
        return rows[0] if rows else None

    def _scan_records(self, scan: CursorScan) -> pb.RecordsResponse:
        rows = self.select(scan, "r.data", with_record=True, order="{key}, {pk}")
        return pb.RecordsResponse.FromString(framed([data for (data,) in rows]))

    def _scan_keys(self, scan: CursorScan) -> pb.KeysResponse:
        rows = self.select(scan, "{pk}", with_record=False, order="{key}, {pk}")
        return pb.KeysResponse(keys=[decode_primary(pkey) for (pkey,) in rows])

    def _scan_count(self, scan: CursorScan) -> pb.CountResponse:
        rows = self.select(scan, "COUNT(*)", with_record=False)
        return pb.CountResponse(count=rows[0][0] if rows else 0)

    def _scan_delete(self, scan: CursorScan) -> pb.DeleteResponse:
        rows = self.select(scan, "{pk}", with_record=False)
        if scan.store is None or not rows:
            return pb.DeleteResponse(deleted=0)
        with self._mutex:
            deleted = self._delete_keys(scan.store, [pkey for (pkey,) in rows])
        return pb.DeleteResponse(deleted=deleted)

    def _first(self, scan: CursorScan, with_record: bool) -> Row:
        row = self.move(scan, None, descending=False, unique=False, with_record=with_record)
        if row is None:
            store = "" if scan.store is None else scan.store.name
            index = "" if scan.index is None else scan.index.name
            raise not_found(
                f"no record of object store {quoted(store)} matches index {quoted(index)}"
            )
        return row

    def _index_scan_of(self, request: pb.IndexQueryRequest) -> CursorScan:
        return self.index_scan(
            request.store, request.index, request.values, _optional_range(request)
        )

    # -- operations (shared by the unary RPCs and transactions) ---------------------------

    def get(self, request: pb.ObjectStoreRequest) -> pb.RecordResponse:
        """The record with the given id; NOT_FOUND when missing."""
        with self._mutex:
            data = self._record_data(request.store, request.id)
        return pb.RecordResponse.FromString(framed([data]))

    def get_key(self, request: pb.ObjectStoreRequest) -> pb.KeyResponse:
        """The id itself when the record exists; NOT_FOUND otherwise."""
        with self._mutex:
            store = self._store(request.store)
            found = store is not None and (
                self._conn.execute(
                    "SELECT 1 FROM records WHERE store_id = ? AND key = ?",
                    (store.id, encode_primary(request.id)),
                ).fetchone()
                is not None
            )
        if not found:
            raise not_found(_no_record(request.store, request.id))
        return pb.KeyResponse(key=request.id)

    def add(self, request: pb.RecordRequest) -> empty_pb2.Empty:
        """Insert a record; ALREADY_EXISTS for a taken id or unique index key."""
        self.write(request.store, request.record, replace=False)
        return empty_pb2.Empty()

    def put(self, request: pb.RecordRequest) -> empty_pb2.Empty:
        """Insert or replace a record; ALREADY_EXISTS for a unique index key taken by another."""
        self.write(request.store, request.record, replace=True)
        return empty_pb2.Empty()

    def delete(self, request: pb.ObjectStoreRequest) -> empty_pb2.Empty:
        """Delete a record by id; a missing record is not an error."""
        self.delete_key(request.store, encode_primary(request.id))
        return empty_pb2.Empty()

    def clear(self, request: pb.ObjectStoreNameRequest) -> empty_pb2.Empty:
        """Delete every record of a store (the store and its indexes stay)."""
        with self._mutex:
            store = self._store(request.store)
            if store is not None:
                for index in store.indexes.values():
                    self._conn.execute("DELETE FROM index_entries WHERE index_id = ?", (index.id,))
                self._conn.execute("DELETE FROM records WHERE store_id = ?", (store.id,))
        return empty_pb2.Empty()

    def get_all(self, request: pb.ObjectStoreRangeRequest) -> pb.RecordsResponse:
        """Records in the primary-key range, in key order."""
        return self._scan_records(self.store_scan(request.store, _optional_range(request)))

    def get_all_keys(self, request: pb.ObjectStoreRangeRequest) -> pb.KeysResponse:
        """Primary keys in the range, in key order."""
        return self._scan_keys(self.store_scan(request.store, _optional_range(request)))

    def count(self, request: pb.ObjectStoreRangeRequest) -> pb.CountResponse:
        """Number of records in the range."""
        return self._scan_count(self.store_scan(request.store, _optional_range(request)))

    def delete_range(self, request: pb.ObjectStoreRangeRequest) -> pb.DeleteResponse:
        """Delete the records in the (required) range and say how many."""
        if not request.HasField("range"):
            raise invalid("key range is required for DeleteRange")
        return self._scan_delete(self.store_scan(request.store, request.range))

    def index_get(self, request: pb.IndexQueryRequest) -> pb.RecordResponse:
        """First matching record in index order; NOT_FOUND when none."""
        data = self._first(self._index_scan_of(request), with_record=True)[2]
        assert data is not None
        return pb.RecordResponse.FromString(framed([data]))

    def index_get_key(self, request: pb.IndexQueryRequest) -> pb.KeyResponse:
        """Primary key of the first match in index order; NOT_FOUND when none."""
        pkey = self._first(self._index_scan_of(request), with_record=False)[1]
        return pb.KeyResponse(key=decode_primary(pkey))

    def index_get_all(self, request: pb.IndexQueryRequest) -> pb.RecordsResponse:
        """All matching records in index order."""
        return self._scan_records(self._index_scan_of(request))

    def index_get_all_keys(self, request: pb.IndexQueryRequest) -> pb.KeysResponse:
        """Primary keys of all matches in index order."""
        return self._scan_keys(self._index_scan_of(request))

    def index_count(self, request: pb.IndexQueryRequest) -> pb.CountResponse:
        """Number of matching records."""
        return self._scan_count(self._index_scan_of(request))

    def index_delete(self, request: pb.IndexQueryRequest) -> pb.DeleteResponse:
        """Delete the matching records and say how many."""
        return self._scan_delete(self._index_scan_of(request))
