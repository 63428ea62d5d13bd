"""``CacheEntry``: the key and value pair of the Cache's batch calls.

Its own module: the client accepts any object with ``.key`` and ``.value`` (or a mapping) and
never needs the class, so importing ``Cache`` does not define it; ``gestalt`` exports it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CacheEntry"]


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """Cache key and value pair used by batch operations."""

    key: str
    value: bytes
