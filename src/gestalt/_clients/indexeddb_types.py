"""IndexedDB value types: key ranges and object-store schemas.

The dataclasses callers build and hand to the client. Their own module, which the client
imports only when it is given one (see :mod:`.indexeddb_codec`), so that importing
``IndexedDB`` does not define them; ``gestalt`` exports each name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["IndexSchema", "KeyRange", "ObjectStoreSchema"]


@dataclass
class KeyRange:
    """Lower and upper bounds for a cursor or range query.

    A bound of None is open-ended; bounds are inclusive unless ``lower_open`` /
    ``upper_open`` is true. Bounds are encoded like record values. Object-store queries
    compare them with the primary key, index queries with the index key.
    """

    lower: Any = None
    upper: Any = None
    lower_open: bool = False
    upper_open: bool = False


@dataclass
class IndexSchema:
    """Definition for an index within an object store.

    ``key_path`` names the record fields the index is built on, in order (one field for a
    simple index, several for a compound one); ``unique`` forbids two records with the same
    index key.
    """

    name: str
    key_path: list[str] = field(default_factory=list)
    unique: bool = False


@dataclass
class ObjectStoreSchema:
    """Schema definition for an object store: its secondary indexes."""

    indexes: list[IndexSchema] = field(default_factory=list)
