"""``async def`` providers for the cache and secrets kinds.

``cache`` implements every cache method (and the lifecycle hooks) as a coroutine; ``core_cache``
implements only the four core methods and relies on the base class for the batch ones;
``secrets`` raises ``KeyError`` for a missing secret.

A few keys are probes rather than data: ``__loop__`` answers with the running event loop's id
and the current thread's name, ``__slow__`` sleeps before answering, ``__config__`` answers
with the JSON of the last configuration.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
import threading
from typing import Any, ClassVar

from gestalt import (
    CacheProvider,
    HealthChecker,
    MetadataProvider,
    ProviderKind,
    ProviderMetadata,
    SecretsProvider,
)

SLOW_SECONDS = 0.25


def log(*parts: object) -> None:
    """Record a provider call on stderr for the test to read."""
    print("CALL", *parts, file=sys.stderr, flush=True)


class AsyncCache(CacheProvider, MetadataProvider, HealthChecker):
    """An in-memory cache whose every method is a coroutine."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.config: dict[str, Any] = {}
        self.name = ""

    async def configure(  # type: ignore[override]
        self, name: str, config: dict[str, Any]
    ) -> None:
        await asyncio.sleep(0)
        self.name = name
        self.config = config

    async def metadata(self) -> ProviderMetadata:  # type: ignore[override]
        return ProviderMetadata(kind=ProviderKind.CACHE, name=self.name or "async-cache")

    async def health_check(self) -> None:  # type: ignore[override]
        await asyncio.sleep(0)

    async def start(self) -> None:
        log("start")

    async def get(self, key: str) -> bytes | None:  # type: ignore[override]
        if key == "__loop__":
            loop = id(asyncio.get_running_loop())
            return f"{loop}|{threading.current_thread().name}".encode()
        if key == "__slow__":
            await asyncio.sleep(SLOW_SECONDS)
            return b"slow"
        if key == "__config__":
            return json.dumps(self.config, sort_keys=True).encode()
        return self.data.get(key)

    async def get_many(self, keys: list[str]) -> dict[str, bytes]:  # type: ignore[override]
        log("get_many", keys)
        return {k: self.data[k] for k in keys if k in self.data}

    async def set(  # type: ignore[override]
        self, key: str, value: bytes, ttl: dt.timedelta | None = None
    ) -> None:
        log("set", repr(key), repr(value), repr(ttl))
        self.data[key] = value

    async def set_many(  # type: ignore[override]
        self, entries: list[Any], ttl: dt.timedelta | None = None
    ) -> None:
        log("set_many", [(e.key, e.value) for e in entries], repr(ttl))
        for entry in entries:
            self.data[entry.key] = entry.value

    async def delete(self, key: str) -> bool:  # type: ignore[override]
        return self.data.pop(key, None) is not None

    async def delete_many(self, keys: list[str]) -> int:  # type: ignore[override]
        log("delete_many", keys)
        return sum(1 for key in dict.fromkeys(keys) if self.data.pop(key, None) is not None)

    async def touch(self, key: str, ttl: dt.timedelta) -> bool:  # type: ignore[override]
        log("touch", repr(key), repr(ttl))
        return key in self.data


class AsyncCoreCache(CacheProvider):
    """Only ``get``, ``set``, ``delete`` and ``touch``, as coroutines: the documented minimum."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    async def get(self, key: str) -> bytes | None:  # type: ignore[override]
        return self.data.get(key)

    async def set(  # type: ignore[override]
        self, key: str, value: bytes, ttl: dt.timedelta | None = None
    ) -> None:
        self.data[key] = value

    async def delete(self, key: str) -> bool:  # type: ignore[override]
        return self.data.pop(key, None) is not None

    async def touch(self, key: str, ttl: dt.timedelta) -> bool:  # type: ignore[override]
        return key in self.data


class AsyncVault(SecretsProvider):
    """Secrets from a dict; ``KeyError`` for a missing one."""

    values: ClassVar[dict[str, str]] = {"db": "s3cr3t"}

    async def get_secret(self, name: str) -> str:  # type: ignore[override]
        await asyncio.sleep(0)
        if name == "explode":
            raise RuntimeError("TOPSECRET-async-vault")
        return self.values[name]


cache = AsyncCache()
core_cache = AsyncCoreCache()
secrets = AsyncVault()
