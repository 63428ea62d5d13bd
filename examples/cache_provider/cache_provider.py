"""Cache provider: the host's key/value cache kept in a Python dict, with expiry.

Each entry stores its bytes and, when set with a TTL, the monotonic time it expires at;
expired entries are invisible at once and dropped on the next write. ``touch`` gives an
existing entry a new TTL (``timedelta(0)``: never expires). The batch calls are implemented
here too, so a batch runs under one lock instead of one call per key.

It also shows the optional mixins: ``MetadataProvider`` (name and description the host
shows), ``HealthChecker`` (unhealthy once closed) and ``Closer`` (the runtime calls ``close``
once at shutdown, after in-flight calls finished).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterable
from typing import Any

from gestalt import (
    CacheEntry,
    CacheProvider,
    Closer,
    HealthChecker,
    MetadataProvider,
    ProviderKind,
    ProviderMetadata,
)

NEVER = float("inf")


class CacheClosedError(RuntimeError):
    """The provider was closed; no more calls are served."""


class MemoryCacheProvider(CacheProvider, MetadataProvider, HealthChecker, Closer):
    """A dict of key -> (value, expiry) guarded by one lock (handlers run in a thread pool)."""

    def __init__(self) -> None:
        self.name = "memory-cache"
        self._entries: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------

    def configure(self, name: str, config: dict[str, Any]) -> None:
        """Take the name the host configured for us (the config has no keys)."""
        self.name = name or self.name

    def metadata(self) -> ProviderMetadata:
        """What the host shows about this provider."""
        return ProviderMetadata(
            kind=ProviderKind.CACHE,
            name=self.name,
            display_name="In-memory cache",
            description="Keeps entries in the provider's memory; nothing survives a restart.",
            version="0.1.0",
        )

    def health_check(self) -> None:
        """Healthy until closed."""
        if self._closed:
            raise CacheClosedError("the cache is closed")

    def close(self) -> None:
        """Drop every entry and refuse further calls."""
        with self._lock:
            self._closed = True
            self._entries.clear()

    # -- single keys ----------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The live value of ``key``, or None."""
        with self._lock:
            return self._live(key)

    def set(self, key: str, value: bytes, ttl: dt.timedelta | None = None) -> None:
        """Store ``value`` under ``key``, expiring after ``ttl`` (None: never)."""
        with self._lock:
            self._store([(key, value)], ttl)

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it held a live value."""
        with self._lock:
            found = self._live(key) is not None
            self._entries.pop(key, None)
            return found

    def touch(self, key: str, ttl: dt.timedelta) -> bool:
        """Give a live ``key`` a new TTL (zero: never expires); False if it is missing."""
        with self._lock:
            value = self._live(key)
            if value is None:
                return False
            self._entries[key] = (value, _expiry(ttl or None))
            return True

    # -- batches --------------------------------------------------------------------------

    def get_many(self, keys: list[str]) -> dict[str, bytes]:
        """The live values among ``keys``."""
        with self._lock:
            found = {key: self._live(key) for key in keys}
        return {key: value for key, value in found.items() if value is not None}

    def set_many(self, entries: list[CacheEntry], ttl: dt.timedelta | None = None) -> None:
        """Store every entry with the same TTL."""
        with self._lock:
            self._store(((entry.key, entry.value) for entry in entries), ttl)

    def delete_many(self, keys: list[str]) -> int:
        """Remove ``keys``; the number of distinct keys that held a live value."""
        with self._lock:
            removed = 0
            for key in dict.fromkeys(keys):
                removed += self._live(key) is not None
                self._entries.pop(key, None)
            return removed

    # -- internals (called with the lock held) --------------------------------------------

    def _live(self, key: str) -> bytes | None:
        if self._closed:
            raise CacheClosedError("the cache is closed")
        entry = self._entries.get(key)
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[0]

    def _store(self, items: Iterable[tuple[str, bytes]], ttl: dt.timedelta | None) -> None:
        if self._closed:
            raise CacheClosedError("the cache is closed")
        expires = _expiry(ttl)
        for key, value in items:
            self._entries[key] = (bytes(value), expires)
        now = time.monotonic()
        self._entries = {k: e for k, e in self._entries.items() if e[1] > now}


def _expiry(ttl: dt.timedelta | None) -> float:
    return NEVER if ttl is None else time.monotonic() + ttl.total_seconds()


provider = MemoryCacheProvider()
