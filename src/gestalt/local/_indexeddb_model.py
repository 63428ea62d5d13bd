"""What the IndexedDB engine knows about stores, indexes and scans, and response framing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gestalt._clients.wire import varint
from gestalt.gen.v1 import datastore_pb2 as pb
from gestalt.local._indexeddb_keys import encode_value

__all__ = ["CursorScan", "IndexInfo", "Row", "StoreInfo", "framed", "range_conditions"]

#: A cursor row: (encoded key, encoded primary key, serialised record or None).
Row = tuple[bytes, bytes, bytes | None]


def framed(rows: Sequence[bytes]) -> bytes:
    """Serialised records as field 1 of a message, so one parse builds the whole response."""
    return b"".join(b"\n" + varint(len(data)) + data for data in rows)


@dataclass(frozen=True, slots=True)
class IndexInfo:
    """One index of a store as the service caches it."""

    id: int
    name: str
    key_path: tuple[str, ...]
    unique: bool


@dataclass(slots=True)
class StoreInfo:
    """One object store and its indexes as the service caches it."""

    id: int
    name: str
    indexes: dict[str, IndexInfo] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CursorScan:
    """What a cursor (or a range query) walks: a store or one of its indexes, with filters.

    ``store`` is None for a store that does not exist yet (the scan is empty).
    """

    store: StoreInfo | None
    index: IndexInfo | None
    conditions: tuple[str, ...] = ()
    params: tuple[bytes, ...] = ()

    @property
    def key_column(self) -> str:
        """SQL expression of the key the scan is ordered by."""
        return "e.ikey" if self.index is not None else "r.key"

    @property
    def primary_column(self) -> str:
        """SQL expression of the encoded primary key."""
        return "e.pkey" if self.index is not None else "r.key"

    def source(self, with_record: bool) -> tuple[str, list[Any]]:
        """FROM/WHERE clause (without the filters) and its parameters."""
        assert self.store is not None
        if self.index is None:
            return "records AS r WHERE r.store_id = ?", [self.store.id]
        if with_record:
            return (
                "index_entries AS e JOIN records AS r ON r.store_id = ? AND r.key = e.pkey"
                " WHERE e.index_id = ?",
                [self.store.id, self.index.id],
            )
        return "index_entries AS e WHERE e.index_id = ?", [self.index.id]


def range_conditions(
    column: str, key_range: pb.KeyRange | None, what: str
) -> tuple[list[str], list[bytes]]:
    """SQL conditions (and parameters) keeping ``column`` inside ``key_range``."""
    conditions: list[str] = []
    params: list[bytes] = []
    if key_range is None:
        return conditions, params
    if key_range.HasField("lower"):
        conditions.append(f"{column} {'>' if key_range.lower_open else '>='} ?")
        params.append(encode_value(key_range.lower, what))
    if key_range.HasField("upper"):
        conditions.append(f"{column} {'<' if key_range.upper_open else '<='} ?")
        params.append(encode_value(key_range.upper, what))
    return conditions, params
