# pyright: strict
"""A cache provider written from the seed's documented signatures, method for method.

Both ``mypy --strict`` and ``pyright`` (strict, per the comment above) must accept it: every
override keeps the base class's parameter types, ``touch`` included (``ttl: timedelta``, where
``timedelta(0)`` means no expiry).
"""

from __future__ import annotations

from datetime import timedelta

from gestalt import CacheEntry, CacheProvider


class SeedCache(CacheProvider):
    """Entries in a dict; expiry ignored, which is enough for type checking."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def get_many(self, keys: list[str]) -> dict[str, bytes]:
        return {key: self.data[key] for key in keys if key in self.data}

    def set(self, key: str, value: bytes, ttl: timedelta | None = None) -> None:
        self.data[key] = value

    def set_many(self, entries: list[CacheEntry], ttl: timedelta | None = None) -> None:
        for entry in entries:
            self.data[entry.key] = entry.value

    def delete(self, key: str) -> bool:
        return self.data.pop(key, None) is not None

    def delete_many(self, keys: list[str]) -> int:
        return sum(self.delete(key) for key in dict.fromkeys(keys))

    def touch(self, key: str, ttl: timedelta) -> bool:
        return key in self.data


def refresh(cache: CacheProvider) -> bool:
    """The base class's touch takes a timedelta; zero means no expiry."""
    return cache.touch("k", timedelta(0)) and cache.touch("k", timedelta(seconds=5))


provider: CacheProvider = SeedCache()
