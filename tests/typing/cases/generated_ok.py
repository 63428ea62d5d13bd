"""Uses generated clients, mirrors and adapters the way a provider author would."""

from __future__ import annotations

import datetime

import grpc

from gestalt.gen.support import RPCError
from gestalt.gen.v1 import cache_clients, cache_mirrors, cache_pb2, s3_clients, s3_pb2


def read(channel: grpc.Channel) -> bytes | None:
    client = cache_clients.CacheClient(channel)
    try:
        response: cache_pb2.CacheGetResponse = client.get(
            cache_pb2.CacheGetRequest(key="k"), timeout=1.5, metadata=(("x-a", "b"),)
        )
    except RPCError as exc:
        code: grpc.StatusCode = exc.code
        raise LookupError(code.name) from exc
    return response.value if response.found else None


def mirror() -> cache_pb2.CacheSetRequest:
    request = cache_mirrors.CacheSetRequest(key="k", value=b"v", ttl=datetime.timedelta(1))
    back: cache_mirrors.CacheSetRequest = cache_mirrors.CacheSetRequest.from_pb(request.to_pb())
    return back.to_pb()


def stream(channel: grpc.Channel) -> int:
    client = s3_clients.S3Client(channel)
    total = 0
    for chunk in client.read_object(s3_pb2.ReadObjectRequest()):
        total += len(chunk.data)
    return total
