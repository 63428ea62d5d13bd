"""An embedded, in-memory Cache host service with per-entry expiry.

:class:`CacheService` implements ``gestalt.provider.v1.Cache`` with the host's semantics:

* a missing or expired key is never an error: ``Get`` answers ``found=false``, ``Delete`` and
  ``Touch`` answer false;
* ``GetMany`` answers one result per requested key, in request order, duplicates included,
  with the caller's key and an empty value when not found;
* ``DeleteMany`` removes each distinct key once and counts the keys that existed;
* a TTL that is absent or zero means no expiry (for ``Touch``: the expiry is cleared, as the
  host's reference backend does); a negative TTL is ``INVALID_ARGUMENT`` "ttl must be >= 0";
* expiry uses a monotonic clock; expired entries are dropped as soon as any call notices
  them, so memory does not grow with entries nobody reads again.

It is thread-safe (one lock around the store). :func:`serve_cache` serves it on a unix
socket (or ``tcp://host:port``) through the generated
:func:`~gestalt.gen.v1.cache_servicers.add_cache_to_server`; :func:`serve_cache_async` does
the same on a ``grpc.aio`` server. Either can check a relay token like the host's public relay
(``UNAUTHENTICATED`` "invalid-host-service-relay-token" otherwise). Run it as a process with
``python -m gestalt.local.cache <socket-path | tcp://host:port>``; the first line on stdout
is the target to put into ``GESTALT_CACHE_SOCKET``.
"""

from __future__ import annotations

import contextlib
import heapq
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeAlias, TypeVar, Unpack, overload

import grpc
import grpc.aio
from google.protobuf import duration_pb2, empty_pb2

from gestalt.gen.v1 import cache_pb2
from gestalt.gen.v1.cache_servicers import add_cache_to_server
from gestalt.local._serving import (
    AsyncLocalServer,
    AsyncServeOptions,
    LocalServer,
    RelayTokenInterceptor,
    Served,
    ServeOptions,
    Where,
    parse_address,
    serve_async,
)

__all__ = [
    "AsyncCacheServer",
    "CacheServer",
    "CacheService",
    "RelayTokenInterceptor",
    "main",
    "serve_cache",
    "serve_cache_async",
]

_TtlRequest: TypeAlias = (
    cache_pb2.CacheSetRequest | cache_pb2.CacheSetManyRequest | cache_pb2.CacheTouchRequest
)


class CacheService:
    """In-memory ``gestalt.provider.v1.Cache`` with TTLs; register it on any grpc server.

    ``clock`` returns seconds on a monotonic scale (``time.monotonic`` by default); tests may
    pass their own to move time forward without sleeping.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (value, deadline or None); the heap holds (deadline, key) of entries that
        # expire, possibly stale ones for keys rewritten since (checked when popped).
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._deadlines: list[tuple[float, str]] = []

    # -- store ----------------------------------------------------------------------------

    def __len__(self) -> int:
        """Number of live entries."""
        with self._fresh():
            return len(self._data)

    def _expire(self) -> float:
        """Drop the entries expired by now (call with the lock held); the time now."""
        now = self._clock()
        heap, data = self._deadlines, self._data
        while heap and heap[0][0] <= now:
            deadline, key = heapq.heappop(heap)
            item = data.get(key)
            if item is not None and item[1] == deadline:
                del data[key]
        if len(heap) > 2 * len(data) + 64:
            # Rewritten keys leave stale deadlines behind; rebuild rather than let them pile up.
            self._deadlines = [(item[1], key) for key, item in data.items() if item[1] is not None]
            heapq.heapify(self._deadlines)
        return now

    def _put(self, key: str, value: bytes, deadline: float | None) -> None:
        self._data[key] = (value, deadline)
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, key))

    @staticmethod
    def _ttl_seconds(request: _TtlRequest, context: grpc.ServicerContext) -> float | None:
        """The TTL in seconds, None for no expiry; aborts on a negative one."""
        if not request.HasField("ttl"):
            return None
        ttl: duration_pb2.Duration = request.ttl
        seconds = ttl.seconds + ttl.nanos / 1e9
        if seconds < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "ttl must be >= 0")
        return seconds or None

    @contextlib.contextmanager
    def _fresh(self) -> Iterator[float]:
        """Hold the lock with the expired entries dropped; yields the time now."""
        with self._lock:
            yield self._expire()

    @contextlib.contextmanager
    def _expiring(
        self, request: _TtlRequest, context: grpc.ServicerContext
    ) -> Iterator[float | None]:
        """:meth:`_fresh` for a write; yields the deadline of the request's TTL (checked first)."""
        ttl = self._ttl_seconds(request, context)
        with self._lock:
            now = self._expire()
            yield None if ttl is None else now + ttl

    # -- RPCs ----------------------------------------------------------------------------

    def get(
        self, request: cache_pb2.CacheGetRequest, context: grpc.ServicerContext
    ) -> cache_pb2.CacheGetResponse:
        """Read one key; ``found=false`` when missing or expired."""
        with self._fresh():
            item = self._data.get(request.key)
        if item is None:
            return cache_pb2.CacheGetResponse()
        return cache_pb2.CacheGetResponse(found=True, value=item[0])

    def get_many(
        self, request: cache_pb2.CacheGetManyRequest, context: grpc.ServicerContext
    ) -> cache_pb2.CacheGetManyResponse:
        """One result per requested key, in request order, duplicates included."""
        with self._fresh():
            items = [(key, self._data.get(key)) for key in request.keys]
        return cache_pb2.CacheGetManyResponse(
            entries=[
                cache_pb2.CacheResult(key=key)
                if item is None
                else cache_pb2.CacheResult(key=key, found=True, value=item[0])
                for key, item in items
            ]
        )

    def set(
        self, request: cache_pb2.CacheSetRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Store one value, replacing any existing one."""
        with self._expiring(request, context) as deadline:
            self._put(request.key, request.value, deadline)
        return empty_pb2.Empty()

    def set_many(
        self, request: cache_pb2.CacheSetManyRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Store several values with one TTL."""
        with self._expiring(request, context) as deadline:
            for entry in request.entries:
                self._put(entry.key, entry.value, deadline)
        return empty_pb2.Empty()

    def delete(
        self, request: cache_pb2.CacheDeleteRequest, context: grpc.ServicerContext
    ) -> cache_pb2.CacheDeleteResponse:
        """Delete one key; reports whether it existed."""
        with self._fresh():
            existed = self._data.pop(request.key, None) is not None
        return cache_pb2.CacheDeleteResponse(deleted=existed)

    def delete_many(
        self, request: cache_pb2.CacheDeleteManyRequest, context: grpc.ServicerContext
    ) -> cache_pb2.CacheDeleteManyResponse:
        """Delete each distinct key once; reports how many existed."""
        with self._fresh():
            deleted = sum(
                self._data.pop(key, None) is not None for key in dict.fromkeys(request.keys)
            )
        return cache_pb2.CacheDeleteManyResponse(deleted=deleted)

    def touch(
        self, request: cache_pb2.CacheTouchRequest, context: grpc.ServicerContext
    ) -> cache_pb2.CacheTouchResponse:
        """Reset the expiry of an existing key (no TTL or zero: never expires)."""
        with self._expiring(request, context) as deadline:
            item = self._data.get(request.key)
            if item is None:
                return cache_pb2.CacheTouchResponse()
            self._put(request.key, item[0], deadline)
        return cache_pb2.CacheTouchResponse(touched=True)


# -- serving -------------------------------------------------------------------------------

#: A cache running on a ``grpc.Server`` (the shared :class:`~gestalt.local._serving.LocalServer`).
CacheServer = LocalServer
#: A cache running on a ``grpc.aio`` server (:class:`~gestalt.local._serving.AsyncLocalServer`).
AsyncCacheServer = AsyncLocalServer

S = TypeVar("S")


_SERVED = Served("cache", "cache", add_cache_to_server, LocalServer)


@overload
def serve_cache(
    address: Where, *, service: None = None, **options: Unpack[ServeOptions]
) -> CacheServer[CacheService]: ...


@overload
def serve_cache(
    address: Where, *, service: S, **options: Unpack[ServeOptions]
) -> CacheServer[S]: ...


def serve_cache(
    address: Where, *, service: object | None = None, **options: Unpack[ServeOptions]
) -> CacheServer[Any]:
    """Serve a cache on ``address`` (socket path, ``unix://…`` or ``tcp://host:port``).

    ``service`` is the implementation (a new :class:`CacheService` when None; any object with
    some of the Cache RPC methods works). ``options`` are those of every local server
    (:class:`~gestalt.local.ServeOptions`, 8 threads); its ``interceptors`` run after the token
    check. Returns once the server is listening.
    """
    return _SERVED.serve(address, CacheService if service is None else lambda: service, options)


@overload
async def serve_cache_async(
    address: Where, *, service: None = None, **options: Unpack[AsyncServeOptions]
) -> AsyncCacheServer[CacheService]: ...


@overload
async def serve_cache_async(
    address: Where, *, service: S, **options: Unpack[AsyncServeOptions]
) -> AsyncCacheServer[S]: ...


async def serve_cache_async(
    address: Where, *, service: object | None = None, **options: Unpack[AsyncServeOptions]
) -> AsyncCacheServer[Any]:
    """Like :func:`serve_cache`, on a ``grpc.aio`` server in the running event loop, with the
    options of :class:`~gestalt.local.AsyncServeOptions`.

    Plain service methods run in the loop's default executor; ``async def`` ones on the loop.
    """
    factory = CacheService if service is None else lambda: service
    return await serve_async(
        parse_address(address, "cache"), factory, add_cache_to_server, **options
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Serve an embedded cache until SIGINT or SIGTERM; prints the target on stdout first.

    A problem starting it is one line on stderr and exit status 2.
    """
    from gestalt.local._main import run

    return run("gestalt.local.cache", "Serve an in-memory Gestalt cache.", serve_cache, argv)


if __name__ == "__main__":
    sys.exit(main())
