"""The cache provider example: every Cache RPC, expiry, and its lifecycle mixins."""

from __future__ import annotations

import sys
import time

import grpc
import grpc.aio
import pytest
from google.protobuf import duration_pb2, empty_pb2

from gestalt.gen.support import RPCError
from gestalt.gen.v1 import cache_clients, cache_pb2, runtime_clients, runtime_pb2
from gestalt.testing import Mode
from tests.examples.conftest import StartExample


def ttl(seconds: float) -> duration_pb2.Duration:
    """A protocol TTL of ``seconds``."""
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(seconds * 1e9))
    return duration


def test_every_cache_rpc(start_example: StartExample) -> None:
    cache = cache_clients.CacheClient(start_example("cache_provider").channel)
    assert not cache.get(cache_pb2.CacheGetRequest(key="a"), timeout=10).found
    cache.set(cache_pb2.CacheSetRequest(key="a", value=b"1"), timeout=10)
    assert cache.get(cache_pb2.CacheGetRequest(key="a"), timeout=10) == cache_pb2.CacheGetResponse(
        found=True, value=b"1"
    )
    cache.set_many(
        cache_pb2.CacheSetManyRequest(
            entries=[
                cache_pb2.CacheSetEntry(key="b", value=b"2"),
                cache_pb2.CacheSetEntry(key="c", value=b""),
            ]
        ),
        timeout=10,
    )
    many = cache.get_many(cache_pb2.CacheGetManyRequest(keys=["c", "x", "a", "c"]), timeout=10)
    assert [(e.key, e.found, e.value) for e in many.entries] == [
        ("c", True, b""),
        ("x", False, b""),
        ("a", True, b"1"),
        ("c", True, b""),
    ]
    assert cache.delete(cache_pb2.CacheDeleteRequest(key="a"), timeout=10).deleted
    assert not cache.delete(cache_pb2.CacheDeleteRequest(key="a"), timeout=10).deleted
    removed = cache.delete_many(cache_pb2.CacheDeleteManyRequest(keys=["b", "b", "x"]), timeout=10)
    assert removed.deleted == 1
    assert not cache.touch(cache_pb2.CacheTouchRequest(key="gone", ttl=ttl(60)), timeout=10).touched
    assert cache.touch(cache_pb2.CacheTouchRequest(key="c", ttl=ttl(60)), timeout=10).touched


def test_entries_expire(start_example: StartExample) -> None:
    cache = cache_clients.CacheClient(start_example("cache_provider").channel)
    cache.set(cache_pb2.CacheSetRequest(key="short", value=b"s", ttl=ttl(1)), timeout=10)
    cache.set(cache_pb2.CacheSetRequest(key="kept", value=b"k", ttl=ttl(1)), timeout=10)
    cache.set_many(
        cache_pb2.CacheSetManyRequest(
            entries=[cache_pb2.CacheSetEntry(key="batch", value=b"b")], ttl=ttl(1)
        ),
        timeout=10,
    )
    # No expiry any more: touch without a TTL.
    assert cache.touch(cache_pb2.CacheTouchRequest(key="kept"), timeout=10).touched
    assert cache.get(cache_pb2.CacheGetRequest(key="short"), timeout=10).found
    time.sleep(1.1)
    assert not cache.get(cache_pb2.CacheGetRequest(key="short"), timeout=10).found
    assert not cache.get(cache_pb2.CacheGetRequest(key="batch"), timeout=10).found
    assert not cache.touch(cache_pb2.CacheTouchRequest(key="short"), timeout=10).touched
    assert not cache.delete(cache_pb2.CacheDeleteRequest(key="batch"), timeout=10).deleted
    assert cache.get(cache_pb2.CacheGetRequest(key="kept"), timeout=10).value == b"k"


def test_negative_ttl_is_refused(start_example: StartExample) -> None:
    cache = cache_clients.CacheClient(start_example("cache_provider").channel)
    with pytest.raises(RPCError) as refused:
        cache.set(cache_pb2.CacheSetRequest(key="k", value=b"v", ttl=ttl(-1)), timeout=10)
    assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT


async def test_async_client(start_example: StartExample) -> None:
    harness = start_example("cache_provider")
    async with grpc.aio.insecure_channel(f"unix:{harness.socket}") as channel:
        cache = cache_clients.AsyncCacheClient(channel)
        await cache.set(cache_pb2.CacheSetRequest(key="k", value=b"v"), timeout=10)
        got = await cache.get(cache_pb2.CacheGetRequest(key="k"), timeout=10)
    assert got.value == b"v"


def test_metadata_health_and_close(start_example: StartExample, mode: Mode) -> None:
    harness = start_example("cache_provider", name="team-cache")
    identity = harness.metadata
    assert isinstance(identity, runtime_pb2.ProviderIdentity)
    assert identity.kind == runtime_pb2.PROVIDER_KIND_CACHE
    assert (identity.name, identity.display_name, identity.version) == (
        "team-cache",
        "In-memory cache",
        "0.1.0",
    )
    lifecycle = runtime_clients.ProviderLifecycleClient(harness.channel)
    assert lifecycle.health_check(empty_pb2.Empty(), timeout=10).ready
    if mode == "inprocess":
        # The provider object is visible here: stopping runs its close() once.
        provider = sys.modules["cache_provider"].provider
        harness.stop()
        with pytest.raises(RuntimeError, match="closed"):
            provider.health_check()
