"""Cache and AsyncCache against the embedded cache service over real unix sockets: the golden
wire transcript, every method, TTLs, argument checks, large values, and thread leaks."""

from __future__ import annotations

import array
import asyncio
import datetime as dt
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2

from gestalt._clients import transport as _transport
from gestalt._clients.cache import AsyncCache, Cache
from gestalt._clients.cache_types import CacheEntry
from gestalt._clients.errors import HostServiceError
from gestalt._clients.transport import CACHE
from gestalt.gen.support import RPCError
from gestalt.gen.v1 import cache_pb2
from gestalt.gen.v1.cache_clients import CacheClient
from gestalt.local.cache import CacheServer, CacheService, serve_cache, serve_cache_async
from tests.clients.conftest import (
    EnvBinder,
    RecordingInterceptor,
    parse_transcript,
    service_process,
    stable_repr,
    wait_for_thread_count,
)

MiB = 1024 * 1024


class FakeClock:
    """Monotonic seconds that only move when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def timed_cache(
    socket_path: Callable[[str], Path],
    bind_env: EnvBinder,
    clock: FakeClock,
    recorder: RecordingInterceptor,
) -> Iterator[CacheServer[CacheService]]:
    """A bound embedded cache whose clock the test moves."""
    service = CacheService(clock=clock)
    with serve_cache(socket_path("timed"), service=service, interceptors=[recorder]) as server:
        bind_env(CACHE, server.target)
        yield server


# -- the golden transcript ------------------------------------------------------------------


def _golden_calls(cache: Cache) -> dict[str, Callable[[], Any]]:
    """The calls of drive_cache.py, by transcript label."""
    c = cache
    td = dt.timedelta
    return {
        'set("greeting", b"hello")  (no ttl)': lambda: c.set("greeting", b"hello"),
        'set("short", b"x", ttl=timedelta(seconds=90, microseconds=250))': lambda: c.set(
            "short", b"x", ttl=td(seconds=90, microseconds=250)
        ),
        'set("zero", b"z", ttl=timedelta(0))  (ttl <= 0 is dropped)': lambda: c.set(
            "zero", b"z", ttl=td(0)
        ),
        'set("neg", b"n", ttl=timedelta(seconds=-5))  (ttl <= 0 is dropped)': lambda: c.set(
            "neg", b"n", ttl=td(seconds=-5)
        ),
        'set("ba", bytearray(b"ab"))': lambda: c.set("ba", bytearray(b"ab")),
        'set("int", 3)  (quirk: bytes(3) == three NUL bytes)': lambda: c.set("int", 3),  # type: ignore[arg-type]
        'set("str", "text")  (str is rejected client-side)': lambda: c.set("str", "text"),  # type: ignore[arg-type]
        'get("greeting")': lambda: c.get("greeting"),
        'get("int")': lambda: c.get("int"),
        'get("missing")': lambda: c.get("missing"),
        'get_many(["greeting", "missing", "greeting"])': lambda: c.get_many(
            ["greeting", "missing", "greeting"]
        ),
        "get_many([])": lambda: c.get_many([]),
        'set_many([CacheEntry("a", b"1"), CacheEntry("b", b"2")], ttl=timedelta(minutes=5))': (
            lambda: c.set_many([CacheEntry("a", b"1"), CacheEntry("b", b"2")], ttl=td(minutes=5))
        ),
        'set_many(iter([CacheEntry("c", b"3")]))  (any iterable, no ttl)': lambda: c.set_many(
            iter([CacheEntry("c", b"3")])
        ),
        'touch("a", timedelta(seconds=30))': lambda: c.touch("a", td(seconds=30)),
        'touch("missing", timedelta(seconds=30))': lambda: c.touch("missing", td(seconds=30)),
        'touch("a", timedelta(0))  (ttl omitted on the wire -> host clears expiry)': lambda: (
            c.touch("a", td(0))
        ),
        'delete("b")': lambda: c.delete("b"),
        'delete("b") again': lambda: c.delete("b"),
        'delete_many(["a", "missing", "a", "c"])': lambda: c.delete_many(
            ["a", "missing", "a", "c"]
        ),
        "close()": c.close,
        'get("greeting") after close()': lambda: c.get("greeting"),
    }


# Deliberate differences from the reference, by label: (outcome, value); the value of a
# raised error is its type, plus the message when given. An empty expected request list
# means nothing may reach the host.
_DIFFERENCES: dict[str, tuple[str, str, bool]] = {
    # A negative TTL is an error, not "no expiry".
    'set("neg", b"n", ttl=timedelta(seconds=-5))  (ttl <= 0 is dropped)': (
        "raised",
        "builtins.ValueError: ttl must not be negative, "
        "got datetime.timedelta(days=-1, seconds=86395)",
        False,
    ),
    # Q3: an int is not a value.
    'set("int", 3)  (quirk: bytes(3) == three NUL bytes)': (
        "raised",
        "builtins.TypeError: cache value must be bytes-like "
        "(bytes, bytearray, memoryview), not int",
        False,
    ),
    # ... so nothing was stored under "int".
    'get("int")': ("returned", "None", True),
    'set("str", "text")  (str is rejected client-side)': (
        "raised",
        "builtins.TypeError: cache values are bytes, not str; encode the text first",
        False,
    ),
    'get("greeting") after close()': (
        "raised",
        "builtins.ValueError: cache client is closed",
        False,
    ),
}


def _outcome(call: Callable[[], Any]) -> tuple[str, str]:
    try:
        value = call()
    except Exception as exc:
        return "raised", f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    return "returned", stable_repr(value)


def test_golden_cache_wire(
    test_data: Path,
    socket_path: Callable[[str], Path],
    bind_env: EnvBinder,
    recorder: RecordingInterceptor,
) -> None:
    steps = parse_transcript(test_data / "clients/cache_wire.txt")
    with serve_cache(socket_path("golden"), interceptors=[recorder]) as server:
        bind_env(CACHE, server.target, name="session", token="tok-cache")
        bind_env(CACHE, f"unix://{server.target}")
        calls = _golden_calls(Cache("session"))
        checked = 0
        for step in steps:
            if step.label.startswith("discovery:") or step.label.startswith("default binding"):
                continue
            if step.label == 'Cache().get("greeting")':
                with Cache() as default:
                    outcome = _outcome(lambda d=default: d.get("greeting"))  # type: ignore[misc]
            else:
                outcome = _outcome(calls[step.label])
            sent = recorder.take()
            expected_outcome = (step.outcome, step.value)
            expect_wire = True
            if step.label in _DIFFERENCES:
                kind, value, expect_wire = _DIFFERENCES[step.label]
                expected_outcome = (kind, value)
            assert outcome == expected_outcome, step.label
            if not expect_wire or not step.calls:
                assert sent == [], step.label
                checked += 1
                continue
            assert len(sent) == len(step.calls) == 1, step.label
            golden = step.calls[0]
            assert sent[0].method == golden.method, step.label
            assert sent[0].metadata == golden.metadata, step.label
            assert sent[0].request_text() == golden.sent()[0].lines, step.label
            assert type(sent[0].requests[0]).__name__ == golden.sent()[0].name
            checked += 1
    assert checked == 23


# -- every method, sync ---------------------------------------------------------------------


def test_get_set_delete(cache_env: CacheServer[CacheService]) -> None:
    with Cache() as cache:
        assert cache.get("k") is None
        cache.set("k", b"v")
        assert cache.get("k") == b"v"
        cache.set("k", bytearray(b"w"))
        assert cache.get("k") == b"w"
        cache.set("k", memoryview(b"xyz")[1:])
        assert cache.get("k") == b"yz"
        cache.set("arr", array.array("B", [1, 2, 3]))  # type: ignore[arg-type]  # any buffer
        assert cache.get("arr") == b"\x01\x02\x03"
        cache.set("empty", b"")
        assert cache.get("empty") == b""  # found, even though empty
        assert cache.delete("k") is True
        assert cache.delete("k") is False
        assert cache.get("k") is None


def test_get_many_and_delete_many(cache_env: CacheServer[CacheService]) -> None:
    with Cache() as cache:
        cache.set_many([CacheEntry("a", b"1"), CacheEntry("b", b"2"), CacheEntry("c", b"3")])
        assert cache.get_many(["a", "zz", "a", "c"]) == {"a": b"1", "c": b"3"}
        assert cache.get_many(("b",)) == {"b": b"2"}
        assert cache.get_many(key for key in ["a"]) == {"a": b"1"}
        assert cache.get_many([]) == {}
        assert cache.delete_many(["a", "missing", "a", "c"]) == 2
        assert cache.delete_many([]) == 0
        assert cache.get_many(["a", "b", "c"]) == {"b": b"2"}


def test_set_many_accepts_any_entry_objects_and_mappings(
    cache_env: CacheServer[CacheService],
) -> None:
    class Entry:
        def __init__(self, key: str, value: bytes) -> None:
            self.key, self.value = key, value

    consumed: list[str] = []

    def entries() -> Iterator[Entry]:
        for key in ("g1", "g2"):
            consumed.append(key)
            yield Entry(key, key.encode())

    with Cache() as cache:
        cache.set_many(entries())
        assert consumed == ["g1", "g2"]
        cache.set_many({"m1": b"x"})
        cache.set_many({"m2": bytearray(b"y")})
        cache.set_many([])
        assert cache.get_many(["g1", "g2", "m1", "m2"]) == {
            "g1": b"g1",
            "g2": b"g2",
            "m1": b"x",
            "m2": b"y",
        }


def test_ttls_expire_and_touch_resets(
    timed_cache: CacheServer[CacheService], clock: FakeClock
) -> None:
    minute = dt.timedelta(minutes=1)
    with Cache() as cache:
        cache.set("short", b"s", ttl=minute)
        cache.set("forever", b"f")
        cache.set("zero", b"z", ttl=dt.timedelta(0))
        cache.set_many([CacheEntry("m1", b"1"), CacheEntry("m2", b"2")], ttl=3 * minute)
        clock.advance(59.9)
        assert cache.get("short") == b"s"
        assert cache.touch("short", minute) is True  # now expires at 119.9
        clock.advance(0.2)
        assert cache.get("short") == b"s"
        clock.advance(60)
        assert cache.get("short") is None
        assert cache.touch("short", minute) is False  # expired counts as missing
        assert cache.delete("m1") is True
        clock.advance(60)
        assert cache.get_many(["m1", "m2", "forever", "zero"]) == {
            "forever": b"f",
            "zero": b"z",
        }
        assert cache.delete("m2") is False
        cache.set("persist", b"p", ttl=minute)
        assert cache.touch("persist", dt.timedelta(0)) is True  # clears the expiry
        assert cache.touch("forever", None) is True
        clock.advance(10**6)
        assert cache.get("persist") == b"p"
        assert cache.delete_many(["persist", "forever", "zero"]) == 3
    assert len(timed_cache.service) == 0


def test_ttl_wire_encoding(
    timed_cache: CacheServer[CacheService], recorder: RecordingInterceptor
) -> None:
    with Cache() as cache:
        cache.set("a", b"1", ttl=dt.timedelta(days=1, seconds=2, microseconds=3))
        cache.touch("a", dt.timedelta(microseconds=1))
        cache.set_many({"b": b"2"}, ttl=dt.timedelta(milliseconds=1500))
    requests = [call.requests[0] for call in recorder.calls]
    assert [(r.ttl.seconds, r.ttl.nanos) for r in requests] == [  # type: ignore[attr-defined]
        (86402, 3000),
        (0, 1000),
        (1, 500_000_000),
    ]


def test_ttl_expires_in_real_time(cache_env: CacheServer[CacheService]) -> None:
    with Cache() as cache:
        cache.set("brief", b"b", ttl=dt.timedelta(milliseconds=50))
        assert cache.get("brief") == b"b"
        time.sleep(0.1)
        assert cache.get("brief") is None


def test_host_refuses_negative_ttl(cache_env: CacheServer[CacheService]) -> None:
    # Unreachable through Cache (it refuses negative TTLs first); the service still checks.
    with grpc.insecure_channel(f"unix:{cache_env.target}") as channel:
        client = CacheClient(channel)
        request = cache_pb2.CacheSetRequest(
            key="k", value=b"v", ttl=duration_pb2.Duration(seconds=-1)
        )
        with pytest.raises(RPCError) as raised:
            client.set(request, timeout=5)
    assert raised.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.message == "ttl must be >= 0"


# -- argument checks ------------------------------------------------------------------------

_BAD_CALLS: list[tuple[str, Callable[[Any], object], type[Exception], str]] = [
    ("str keys", lambda c: c.get_many("abc"), TypeError, "not a single str"),
    ("bytes keys", lambda c: c.delete_many(b"ab"), TypeError, "not a single bytes"),
    ("str keys delete", lambda c: c.delete_many("abc"), TypeError, "not a single str"),
    ("non-iterable keys", lambda c: c.get_many(3), TypeError, "iterable of str"),
    ("int in keys", lambda c: c.get_many(["a", 1]), TypeError, "cache key must be a str"),
    ("int key", lambda c: c.get(1), TypeError, "cache key must be a str, not int"),
    ("bytes key", lambda c: c.delete(b"k"), TypeError, "not bytes"),
    ("None key", lambda c: c.touch(None, None), TypeError, "not NoneType"),
    ("str value", lambda c: c.set("k", "v"), TypeError, "encode the text first"),
    ("int value", lambda c: c.set("k", 3), TypeError, "not int"),
    ("list value", lambda c: c.set("k", [1, 2]), TypeError, "not list"),
    ("None value", lambda c: c.set("k", None), TypeError, "not NoneType"),
    ("negative ttl", lambda c: c.set("k", b"v", dt.timedelta(seconds=-1)), ValueError, "negative"),
    ("int ttl", lambda c: c.set("k", b"v", 5), TypeError, "timedelta"),
    ("huge ttl", lambda c: c.set("k", b"v", dt.timedelta.max), ValueError, "10,000 years"),
    ("negative touch", lambda c: c.touch("k", dt.timedelta(-1)), ValueError, "negative"),
    ("str entries", lambda c: c.set_many("ab"), TypeError, "iterable of CacheEntry"),
    ("tuple entries", lambda c: c.set_many([("k", b"v")]), TypeError, ".key and .value"),
    ("bad entry value", lambda c: c.set_many([CacheEntry("k", "v")]), TypeError, "not str"),  # type: ignore[arg-type]
    ("bad mapping key", lambda c: c.set_many({1: b"v"}), TypeError, "cache key"),
    ("bad set_many ttl", lambda c: c.set_many([], ttl=dt.timedelta(-1)), ValueError, "negative"),
    ("zero timeout", lambda c: c.get("k", timeout=0), ValueError, "timeout"),
    ("str timeout", lambda c: c.get("k", timeout="1"), TypeError, "timeout"),
]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [pytest.param(call, error, match, id=name) for name, call, error, match in _BAD_CALLS],
)
def test_bad_arguments_fail_before_any_call(
    cache_env: CacheServer[CacheService],
    recorder: RecordingInterceptor,
    call: Callable[[Any], object],
    error: type[Exception],
    match: str,
) -> None:
    with Cache() as cache, pytest.raises(error, match=match):
        call(cache)
    assert recorder.calls == []


def test_set_many_with_a_bad_ttl_leaves_the_iterator_alone(
    cache_env: CacheServer[CacheService],
) -> None:
    entries = iter([CacheEntry("k", b"v")])
    with Cache() as cache, pytest.raises(ValueError):
        cache.set_many(entries, ttl=dt.timedelta(-1))
    assert next(entries) == CacheEntry("k", b"v")


def test_str_subclass_keys_are_sent_as_plain_str(cache_env: CacheServer[CacheService]) -> None:
    class Key(str):
        pass

    with Cache() as cache:
        cache.set(Key("k"), b"v")
        assert cache.get_many([Key("k")]) == {"k": b"v"}


def test_bad_constructor_timeout(cache_env: CacheServer[CacheService]) -> None:
    with pytest.raises(ValueError, match="timeout"):
        Cache(timeout=-1)
    with pytest.raises(ValueError, match="timeout"):
        AsyncCache(timeout=0)


# -- lifecycle ------------------------------------------------------------------------------


def test_close_and_context_manager(cache_env: CacheServer[CacheService]) -> None:
    cache = Cache()
    with cache as entered:
        assert entered is cache
        cache.set("k", b"v")
    with pytest.raises(ValueError, match="cache client is closed"):
        cache.get("k")
    cache.close()  # idempotent

    with pytest.raises(KeyError), Cache() as other:  # exceptions are never suppressed
        raise KeyError("boom")
    with pytest.raises(ValueError, match="closed"):
        other.get("k")


def test_large_values_above_4_mib(cache_env: CacheServer[CacheService]) -> None:
    big = bytes(range(256)) * (5 * MiB // 256)
    other = b"\x07" * (3 * MiB)
    with Cache() as cache:
        cache.set("big", big)
        assert cache.get("big") == big
        cache.set_many({"o1": other, "o2": other})
        found = cache.get_many(["o1", "o2", "big"])  # about 11 MiB in one response
        assert found == {"o1": other, "o2": other, "big": big}


def test_host_receive_limit_surfaces_as_resource_exhausted(
    socket_path: Callable[[str], Path], bind_env: EnvBinder
) -> None:
    # The Go host receives at most 4 MiB per message; the embedded one can be told to as well.
    with serve_cache(socket_path("small"), max_message_bytes=4 * MiB) as server:
        bind_env(CACHE, server.target)
        with Cache() as cache, pytest.raises(HostServiceError) as raised:
            cache.set("big", b"x" * (5 * MiB))
    assert raised.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED


# -- async ----------------------------------------------------------------------------------


async def test_async_every_method(cache_env: CacheServer[CacheService]) -> None:
    async with AsyncCache() as cache:
        assert await cache.get("k") is None
        await cache.set("k", b"v", ttl=dt.timedelta(minutes=1))
        assert await cache.get("k") == b"v"
        await cache.set_many([CacheEntry("a", b"1"), CacheEntry("b", b"2")])
        await cache.set_many({"c": b"3"}, ttl=dt.timedelta(seconds=30))
        assert await cache.get_many(["a", "x", "a", "c"]) == {"a": b"1", "c": b"3"}
        assert await cache.touch("a", dt.timedelta(seconds=5)) is True
        assert await cache.touch("x", dt.timedelta(seconds=5)) is False
        assert await cache.delete("b") is True
        assert await cache.delete("b") is False
        assert await cache.delete_many(["a", "c", "a", "zz"]) == 2
        assert await cache.get_many(["a", "b", "c", "k"]) == {"k": b"v"}
        with pytest.raises(TypeError, match="not a single str"):
            await cache.get_many("abc")
        with pytest.raises(TypeError, match="encode the text first"):
            await cache.set("k", "text")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="negative"):
            await cache.touch("k", dt.timedelta(-1))
    with pytest.raises(ValueError, match="cache client is closed"):
        await cache.get("k")


async def test_async_ttl_and_errors(
    timed_cache: CacheServer[CacheService], clock: FakeClock
) -> None:
    async with AsyncCache(timeout=5) as cache:
        await cache.set("k", b"v", dt.timedelta(seconds=10))
        clock.advance(11)
        assert await cache.get("k") is None
    async with AsyncCache() as cache:
        await cache.set("big", b"\x01" * (5 * MiB))
        assert await cache.get("big", timeout=10) == b"\x01" * (5 * MiB)


async def test_async_unreachable_is_a_host_service_error(
    socket_path: Callable[[str], Path], bind_env: EnvBinder
) -> None:
    bind_env(CACHE, str(socket_path("nobody")))
    async with AsyncCache() as cache:
        with pytest.raises(HostServiceError) as raised:
            await cache.get("k", timeout=5)
    assert raised.value.code is grpc.StatusCode.UNAVAILABLE
    assert isinstance(raised.value.__cause__, grpc.RpcError)


async def test_async_clients_share_a_channel_per_loop(
    cache_env: CacheServer[CacheService],
) -> None:
    first, second = AsyncCache(), AsyncCache()
    await first.set("k", b"v")
    assert await second.get("k") == b"v"
    assert first._conn.stub() is second._conn.stub()
    await first.close()
    assert await second.get("k") == b"v"
    await second.close()


async def test_async_server_variant(
    socket_path: Callable[[str], Path], bind_env: EnvBinder
) -> None:
    async with await serve_cache_async(socket_path("aio")) as server:
        assert isinstance(server.service, CacheService)
        bind_env(CACHE, server.target)
        async with AsyncCache() as cache:
            await cache.set_many({"a": b"1", "b": b"2"})
            assert await cache.get_many(["a", "b", "c"]) == {"a": b"1", "b": b"2"}
            assert await cache.delete_many(["a", "a"]) == 1
    assert not Path(server.target).exists()
    with pytest.raises(ValueError, match="blank"):
        await serve_cache_async(socket_path("aio2"), relay_token="  ")


async def test_async_server_checks_relay_token(bind_env: EnvBinder) -> None:
    server = await serve_cache_async("tcp://127.0.0.1:0", relay_token="tok")
    try:
        bind_env(CACHE, server.target, token="nope")
        async with AsyncCache() as cache:
            with pytest.raises(HostServiceError, match="invalid-host-service-relay-token"):
                await cache.get("k", timeout=5)
        bind_env(CACHE, server.target, token="tok")
        async with AsyncCache() as cache:
            await cache.set("k", b"v")
            assert await cache.get("k") == b"v"
    finally:
        await server.stop()


# -- threads --------------------------------------------------------------------------------


def test_no_thread_leak(socket_path: Callable[[str], Path], bind_env: EnvBinder) -> None:
    # The service runs in a child process, so only the client's threads are counted here.
    with service_process("gestalt.local.cache", str(socket_path("leak"))) as target:
        bind_env(CACHE, target)

        async def async_calls(count: int) -> None:
            async with AsyncCache() as cache:
                for i in range(count):
                    await cache.set(f"a{i}", b"v")
                    assert await cache.get(f"a{i}") == b"v"

        with Cache() as warm:  # grpc starts its process-wide machinery once
            warm.get("warm")
        asyncio.run(async_calls(1))
        baseline = threading.active_count()

        cache = Cache()
        for i in range(300):
            cache.set(f"k{i}", b"v")
            assert cache.get(f"k{i}") == b"v"

        def worker(n: int) -> None:
            with Cache() as own:  # a client per thread, all on the shared channel
                for i in range(50):
                    own.set(f"t{n}-{i}", b"x")
                    cache.get_many([f"t{n}-{i}", f"k{i}"])

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        asyncio.run(async_calls(200))
        assert wait_for_thread_count(baseline) <= baseline
        assert cache.delete_many([f"k{i}" for i in range(300)]) == 300
        cache.close()
        assert wait_for_thread_count(baseline) <= baseline
        assert parse_target_key(target) not in _transport._SYNC_POOL.entries


def parse_target_key(target: str) -> _transport.Target:
    return _transport.parse_target(target)


# -- the embedded service itself ------------------------------------------------------------


def test_service_drops_stale_deadlines(clock: FakeClock) -> None:
    service = CacheService(clock=clock)

    class Context:
        def abort(self, code: grpc.StatusCode, details: str) -> None:
            raise AssertionError(details)

    ctx: Any = Context()
    for i in range(1000):  # rewriting one key with a TTL leaves stale heap entries behind
        request = cache_pb2.CacheSetRequest(
            key="k", value=str(i).encode(), ttl=duration_pb2.Duration(seconds=3600)
        )
        service.set(request, ctx)
    assert len(service) == 1
    assert len(service._deadlines) <= 2 * 1 + 64 + 1
    assert service.get(cache_pb2.CacheGetRequest(key="k"), ctx).value == b"999"
    clock.advance(3600)
    assert len(service) == 0
    assert service._deadlines == []


def test_server_refuses_a_path_that_is_not_a_free_socket(
    socket_path: Callable[[str], Path],
) -> None:
    plain = socket_path("plain")
    plain.write_text("not a socket")
    with pytest.raises(FileExistsError, match="is not a socket"):
        serve_cache(plain)
    busy = socket_path("busy")
    with serve_cache(busy), pytest.raises(FileExistsError, match="already served"):
        serve_cache(busy)
    assert not busy.exists()  # removed at stop


def test_server_replaces_a_stale_socket(
    socket_path: Callable[[str], Path], bind_env: EnvBinder
) -> None:
    stale = socket_path("stale")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(stale))  # bound, never listening: what a crashed server leaves
    with serve_cache(stale) as server:
        bind_env(CACHE, f"unix:{server.target}")
        with Cache() as cache:
            cache.set("k", b"v")
            assert cache.get("k") == b"v"


def test_server_address_errors(socket_path: Callable[[str], Path]) -> None:
    with pytest.raises(ValueError, match="plaintext only"):
        serve_cache("tls://127.0.0.1:0")
    with pytest.raises(ValueError, match="needs host:port"):
        serve_cache("tcp://8080")
    with pytest.raises(OSError, match="cannot listen"):
        serve_cache("tcp://256.1.1.1:0")
    with pytest.raises(ValueError, match="max_message_bytes"):
        serve_cache(socket_path("x"), max_message_bytes=0)


def test_service_process_serves_tcp_with_a_token(bind_env: EnvBinder) -> None:
    with service_process(
        "gestalt.local.cache", "tcp://127.0.0.1:0", "--relay-token", "t"
    ) as target:
        assert target.startswith("tcp://127.0.0.1:")
        bind_env(CACHE, target, token="t")
        with Cache(timeout=10) as cache:
            cache.set("k", b"v")
            assert cache.get("k") == b"v"
