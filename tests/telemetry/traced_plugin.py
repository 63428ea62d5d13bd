"""A plugin whose operations call the host's cache, sync and async, for the telemetry tests."""

from __future__ import annotations

from gestalt import AsyncCache, Cache, Model, Plugin

plugin = Plugin("traced")


class Key(Model):
    """The cache key to write."""

    key: str


@plugin.operation
def remember(params: Key) -> str:
    """Write the key through the sync cache client."""
    with Cache() as cache:
        cache.set(params.key, b"v")
    return "ok"


@plugin.operation
async def aremember(params: Key) -> str:
    """Write the key through the asyncio cache client."""
    async with AsyncCache() as cache:
        await cache.set(params.key, b"v")
    return "ok"
