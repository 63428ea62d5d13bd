"""Generated adapters and clients over real gRPC on unix sockets, every streaming kind.

The ``fragments.streaming`` golden service has one rpc of each kind. It is served from a
generated adapter by four implementations (plain or ``async def`` methods, on a sync
``grpc.Server`` or a ``grpc.aio.Server``) and called with the generated sync and asyncio
clients.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from gestalt.gen.support import RPCError
from gestalt.gen.v1 import cache_clients, cache_pb2, cache_servicers
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "tests" / "goldens" / "expected"))

from fragments import (
    streaming_clients,
    streaming_pb2,
    streaming_servicers,
)

N = streaming_pb2.Number


class SyncStreamer:
    """Plain methods."""

    def double(self, request: N, context: grpc.ServicerContext) -> N:
        if request.value < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "negative value")
        if request.value == 13:
            raise RuntimeError("secret internal detail")
        return N(value=request.value * 2)

    def count_to(self, request: N, context: grpc.ServicerContext) -> Iterator[N]:
        for i in range(1, request.value + 1):
            yield N(value=i)

    def sum(self, requests: Iterator[N], context: grpc.ServicerContext) -> N:
        return N(value=sum(r.value for r in requests))

    def running_total(self, requests: Iterator[N], context: grpc.ServicerContext) -> Iterator[N]:
        total = 0
        for r in requests:
            total += r.value
            yield N(value=total)


class AsyncStreamer:
    """``async def`` methods and async generators."""

    async def double(self, request: N, context: Any) -> N:
        if request.value < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "negative value")
        if request.value == 13:
            raise RuntimeError("secret internal detail")
        await asyncio.sleep(0)
        return N(value=request.value * 2)

    async def count_to(self, request: N, context: Any) -> AsyncIterator[N]:
        for i in range(1, request.value + 1):
            yield N(value=i)

    async def sum(self, requests: AsyncIterator[N], context: Any) -> N:
        total = 0
        async for r in requests:
            total += r.value
        return N(value=total)

    async def running_total(self, requests: AsyncIterator[N], context: Any) -> AsyncIterator[N]:
        total = 0
        async for r in requests:
            total += r.value
            yield N(value=total)


class SyncServer:
    """A sync ``grpc.Server`` on a unix socket."""

    def __init__(self, impl: object, path: Path) -> None:
        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=8))
        streaming_servicers.add_streamer_to_server(impl, self.server)
        self.server.add_insecure_port(f"unix:{path}")
        self.server.start()

    def stop(self) -> None:
        self.server.stop(None).wait()


class AioServer:
    """A ``grpc.aio.Server`` on its own event loop thread."""

    def __init__(self, impl: object, path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def start() -> grpc.aio.Server:
            server = grpc.aio.server()
            streaming_servicers.add_streamer_to_server(impl, server)
            server.add_insecure_port(f"unix:{path}")
            await server.start()
            return server

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(None), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


SETUPS: dict[str, tuple[type[SyncServer | AioServer], type[SyncStreamer | AsyncStreamer]]] = {
    "sync-server-plain": (SyncServer, SyncStreamer),
    "sync-server-async": (SyncServer, AsyncStreamer),
    "aio-server-plain": (AioServer, SyncStreamer),
    "aio-server-async": (AioServer, AsyncStreamer),
}


@pytest.fixture(params=sorted(SETUPS))
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    server_type, impl_type = SETUPS[request.param]
    path = tmp_path / "s.sock"
    server = server_type(impl_type(), path)
    yield f"unix:{path}"
    server.stop()


def test_sync_client_every_kind(target: str) -> None:
    with grpc.insecure_channel(target) as channel:
        client = streaming_clients.StreamerClient(channel)
        assert client.double(N(value=21), timeout=5).value == 42
        assert [n.value for n in client.count_to(N(value=4), timeout=5)] == [1, 2, 3, 4]
        assert client.sum(N(value=v) for v in range(5)).value == 10
        totals = client.running_total([N(value=1), N(value=2), N(value=3)], timeout=5)
        assert [n.value for n in totals] == [1, 3, 6]


async def test_async_client_every_kind(target: str) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        client = streaming_clients.AsyncStreamerClient(channel)
        assert (await client.double(N(value=5), timeout=5)).value == 10
        assert [n.value async for n in client.count_to(N(value=3))] == [1, 2, 3]

        async def numbers() -> AsyncIterator[N]:
            for v in (4, 5):
                yield N(value=v)

        assert (await client.sum(numbers())).value == 9
        assert (await client.sum([N(value=1), N(value=1)])).value == 2
        stream = client.running_total()
        await stream.write(N(value=2))
        first = await stream.read()
        await stream.write(N(value=3))
        second = await stream.read()
        await stream.done_writing()
        assert first is not None and second is not None
        assert (first.value, second.value) == (2, 5)
        assert await stream.read() is None


def test_abort_keeps_its_status(target: str) -> None:
    with grpc.insecure_channel(target) as channel:
        client = streaming_clients.StreamerClient(channel)
        with pytest.raises(RPCError) as info:
            client.double(N(value=-1))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.message == "negative value"
    assert isinstance(info.value.__cause__, grpc.RpcError)


def test_exception_text_never_reaches_the_client(
    target: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="gestalt.gen"),
        grpc.insecure_channel(target) as channel,
    ):
        client = streaming_clients.StreamerClient(channel)
        with pytest.raises(RPCError) as info:
            client.double(N(value=13))
    assert info.value.code == grpc.StatusCode.UNKNOWN
    assert "secret" not in info.value.message
    assert info.value.message == "Double: failed; details are in the provider log"
    assert any("secret internal detail" in (r.exc_text or "") for r in caplog.records)


class OnlyDouble:
    """Implements one rpc of four."""

    def double(self, request: N, context: grpc.ServicerContext) -> N:
        return N(value=request.value * 2)


@pytest.mark.parametrize("server_type", [SyncServer, AioServer])
def test_missing_methods_answer_unimplemented(
    tmp_path: Path, server_type: type[SyncServer | AioServer]
) -> None:
    server = server_type(OnlyDouble(), tmp_path / "p.sock")
    try:
        with grpc.insecure_channel(f"unix:{tmp_path / 'p.sock'}") as channel:
            client = streaming_clients.StreamerClient(channel)
            assert client.double(N(value=2)).value == 4
            calls: list[Callable[[], object]] = [
                lambda: list(client.count_to(N(value=2))),
                lambda: client.sum([N(value=1)]),
                lambda: list(client.running_total([N(value=1)])),
            ]
            for call in calls:
                with pytest.raises(RPCError) as info:
                    call()
                assert info.value.code == grpc.StatusCode.UNIMPLEMENTED
                assert "fragments.streaming.Streamer." in info.value.message
    finally:
        server.stop()


def test_real_service_client_and_adapter(tmp_path: Path) -> None:
    class OnlyGet:
        def get(
            self, request: cache_pb2.CacheGetRequest, context: grpc.ServicerContext
        ) -> cache_pb2.CacheGetResponse:
            return cache_pb2.CacheGetResponse(found=True, value=request.key.encode())

    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
    cache_servicers.add_cache_to_server(OnlyGet(), server)
    path = tmp_path / "c.sock"
    server.add_insecure_port(f"unix:{path}")
    server.start()
    try:
        with grpc.insecure_channel(f"unix:{path}") as channel:
            client = cache_clients.CacheClient(channel)
            assert client.get(cache_pb2.CacheGetRequest(key="k")).value == b"k"
            with pytest.raises(RPCError) as info:
                client.touch(cache_pb2.CacheTouchRequest(key="k"))
    finally:
        server.stop(None).wait()
    assert info.value.code == grpc.StatusCode.UNIMPLEMENTED
    assert "Cache.Touch" in info.value.message


def test_custom_error_mapper(target: str) -> None:
    class Mine(Exception):
        pass

    with grpc.insecure_channel(target) as channel:
        client = streaming_clients.StreamerClient(channel, error_mapper=lambda e: Mine(e.code()))
        with pytest.raises(Mine):
            client.double(N(value=-1))


def test_abandoned_stream_is_cancelled(target: str) -> None:
    with grpc.insecure_channel(target) as channel:
        client = streaming_clients.StreamerClient(channel)
        stream = client.count_to(N(value=1_000_000))
        assert next(stream).value == 1
        assert stream.cancel() is True
        with pytest.raises(RPCError) as info:
            list(stream)
        assert info.value.code == grpc.StatusCode.CANCELLED
        with client.count_to(N(value=1_000_000)) as again:
            assert next(again).value == 1
        assert client.double(N(value=1)).value == 2
