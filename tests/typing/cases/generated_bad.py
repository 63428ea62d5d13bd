"""Wrong argument types against generated code: mypy must reject each marked line."""

from __future__ import annotations

import grpc

from gestalt.gen.v1 import cache_clients, cache_mirrors, cache_pb2


def wrong(channel: grpc.Channel) -> None:
    client = cache_clients.CacheClient(channel)
    client.get(cache_pb2.CacheSetRequest(key="k"))  # E: arg-type
    client.get(cache_pb2.CacheGetRequest(key="k"), timeout="soon")  # E: arg-type
    cache_mirrors.CacheSetRequest(key="k", value="not bytes")  # E: arg-type
    cache_mirrors.CacheSetRequest("k")  # E: call-arg
