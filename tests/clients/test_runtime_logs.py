"""The runtime log host client and the logging handler, against the embedded log host.

Every call goes through a real gRPC server (``gestalt.local.runtime_logs``) on a unix socket
or loopback TCP, found through ``GESTALT_RUNTIME_LOG_SOCKET`` as the host sets it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from gestalt import (
    ENV_RUNTIME_LOG_SOCKET,
    ENV_RUNTIME_LOG_SOCKET_TOKEN,
    AsyncRuntimeLogHost,
    HostServiceConfigError,
    HostServiceError,
    HostServiceTimeoutError,
    RuntimeLogHandler,
    RuntimeLogHost,
)
from gestalt._clients.runtime_log_handler import truncate_message
from gestalt.gen.v1 import pluginruntime_pb2 as pb
from gestalt.gen.v1.pluginruntime_mirrors import PluginRuntimeLogEntry, PluginRuntimeLogStream
from gestalt.local.runtime_logs import RuntimeLogServer, serve_runtime_logs
from tests.clients.conftest import RecordingInterceptor

TOKEN = "relay-token-1"


@pytest.fixture(autouse=True)
def no_log_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test binds the log host itself."""
    monkeypatch.delenv(ENV_RUNTIME_LOG_SOCKET, raising=False)
    monkeypatch.delenv(ENV_RUNTIME_LOG_SOCKET_TOKEN, raising=False)


@pytest.fixture
def recorder() -> RecordingInterceptor:
    """Records the calls the log host receives."""
    return RecordingInterceptor()


@pytest.fixture
def log_host(
    socket_path: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    recorder: RecordingInterceptor,
) -> Iterator[RuntimeLogServer]:
    """The embedded log host on a unix socket with a relay token, bound in the environment."""
    server = serve_runtime_logs(socket_path("logs"), relay_token=TOKEN, interceptors=[recorder])
    monkeypatch.setenv(ENV_RUNTIME_LOG_SOCKET, server.target)
    monkeypatch.setenv(ENV_RUNTIME_LOG_SOCKET_TOKEN, TOKEN)
    yield server
    server.stop()


def messages(server: RuntimeLogServer, session: str) -> list[str]:
    """The messages the host recorded for ``session``."""
    return [entry.message for entry in server.service.entries(session)]


# -- client ----------------------------------------------------------------------------------


def test_append_every_entry_form_with_the_relay_token(
    log_host: RuntimeLogServer, recorder: RecordingInterceptor
) -> None:
    observed = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    mirror = PluginRuntimeLogEntry(
        stream=PluginRuntimeLogStream.STDOUT, message="out", observed_at=observed, source_seq=7
    )
    raw = pb.PluginRuntimeLogEntry(stream=pb.PLUGIN_RUNTIME_LOG_STREAM_STDERR, message="err")
    before = time.time()
    with RuntimeLogHost(timeout=5) as host:
        assert host.append_logs("s1", ["hello", mirror]) == 7
        assert host.append_logs("s1", [raw]) == 8  # no source_seq: the host numbers it
        assert host.append_logs("s1", []) == 8
    recorded = log_host.service.entries("s1")
    assert [(e.message, e.stream, e.source_seq) for e in recorded] == [
        ("hello", PluginRuntimeLogStream.RUNTIME, 1),
        ("out", PluginRuntimeLogStream.STDOUT, 7),
        ("err", PluginRuntimeLogStream.STDERR, 8),
    ]
    assert recorded[1].observed_at == observed
    stamp = recorded[0].observed_at
    assert stamp is not None and before - 1 <= stamp.timestamp() <= time.time() + 1
    calls = recorder.take()
    assert [c.method for c in calls] == ["/gestalt.provider.v1.PluginRuntimeLogHost/AppendLogs"] * 3
    assert all(("x-gestalt-host-service-relay-token", TOKEN) in c.metadata for c in calls)


@pytest.mark.parametrize("form", ["bare", "unix://", "tcp://"])
def test_target_forms(
    form: str, socket_path: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    address = "tcp://127.0.0.1:0" if form == "tcp://" else str(socket_path("forms"))
    server = serve_runtime_logs(address)
    try:
        target = "unix://" + server.target if form == "unix://" else server.target
        monkeypatch.setenv(ENV_RUNTIME_LOG_SOCKET, target)
        with RuntimeLogHost() as host:
            assert host.append_logs("s", ["a", "b"], timeout=5) == 2
        assert messages(server, "s") == ["a", "b"]
    finally:
        server.stop()


def test_errors(log_host: RuntimeLogServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with RuntimeLogHost(timeout=5) as host:
        with pytest.raises(ValueError, match="session_id must not be empty"):
            host.append_logs(" ", ["x"])
        with pytest.raises(TypeError, match="wrap a single line in a list"):
            host.append_logs("s", "line")
        with pytest.raises(TypeError, match="not int"):
            host.append_logs("s", [3])  # type: ignore[list-item]
    assert log_host.service.calls == 0  # nothing was sent for bad arguments
    monkeypatch.setenv(ENV_RUNTIME_LOG_SOCKET_TOKEN, "wrong")
    with RuntimeLogHost(timeout=5) as host, pytest.raises(HostServiceError) as info:
        host.append_logs("s", ["x"])
    assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert isinstance(info.value.__cause__, grpc.RpcError)
    monkeypatch.delenv(ENV_RUNTIME_LOG_SOCKET)
    with pytest.raises(HostServiceConfigError, match="GESTALT_RUNTIME_LOG_SOCKET is not set"):
        RuntimeLogHost()


def test_unreachable_host_is_a_host_service_error(
    socket_path: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_RUNTIME_LOG_SOCKET, str(socket_path("nobody")))
    with RuntimeLogHost(timeout=2) as host, pytest.raises(HostServiceError) as info:
        host.append_logs("s", ["x"])
    assert info.value.code == grpc.StatusCode.UNAVAILABLE


def test_eight_threads_share_one_client(log_host: RuntimeLogServer) -> None:
    errors: list[BaseException] = []

    def work(n: int, host: RuntimeLogHost) -> None:
        try:
            for i in range(25):
                host.append_logs(f"t{n}", [f"{n}-{i}"], timeout=5)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with RuntimeLogHost() as host:
        threads = [threading.Thread(target=work, args=(n, host)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert not errors
    for n in range(8):
        assert messages(log_host, f"t{n}") == [f"{n}-{i}" for i in range(25)]


def test_async_client(log_host: RuntimeLogServer, recorder: RecordingInterceptor) -> None:
    host = AsyncRuntimeLogHost(timeout=5)

    async def run(session: str) -> int:
        results = await asyncio.gather(*(host.append_logs(session, [f"m{i}"]) for i in range(8)))
        return max(results)

    assert asyncio.run(run("a")) == 8
    assert asyncio.run(run("b")) == 8  # a second event loop, same client

    async def close() -> None:
        async with host:
            with pytest.raises(ValueError, match="session_id"):
                await host.append_logs("", ["x"])

    asyncio.run(close())
    assert sorted(messages(log_host, "a")) == [f"m{i}" for i in range(8)]
    assert all(("x-gestalt-host-service-relay-token", TOKEN) in c.metadata for c in recorder.take())


# -- handler ---------------------------------------------------------------------------------


def handler_logger(name: str, handler: logging.Handler) -> logging.Logger:
    """A fresh logger writing only to ``handler``."""
    logger = logging.getLogger(f"tests.runtime_logs.{name}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger


def test_handler_ships_records_in_batches_and_in_order(log_host: RuntimeLogServer) -> None:
    handler = RuntimeLogHandler("h1", batch_size=100, flush_interval=60)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = handler_logger("batches", handler)
    for i in range(450):
        logger.info("record %d", i)
    handler.flush()
    assert messages(log_host, "h1") == [f"INFO record {i}" for i in range(450)]
    assert [e.source_seq for e in log_host.service.entries("h1")] == list(range(1, 451))
    assert log_host.service.calls == 5  # four full batches, then the rest on flush
    logger.warning("last")
    handler.close()  # close flushes
    assert messages(log_host, "h1")[-1] == "WARNING last"
    assert handler.dropped == 0


def test_handler_sends_on_its_interval(log_host: RuntimeLogServer) -> None:
    handler = RuntimeLogHandler("h2", flush_interval=0.05)
    logger = handler_logger("interval", handler)
    try:
        logger.info("soon")
        assert log_host.service.wait_for("h2", 1, timeout=5)
    finally:
        handler.close()


def test_handler_truncates_long_messages(log_host: RuntimeLogServer) -> None:
    handler = RuntimeLogHandler("h3", max_message_bytes=1000)
    logger = handler_logger("truncate", handler)
    logger.info("é" * 5000)  # 10,000 bytes of UTF-8
    logger.info("short")
    handler.close()
    long, short = messages(log_host, "h3")
    assert len(long.encode()) <= 1000 and long.startswith("éé")
    assert long.endswith(f"[truncated {10_000 - len(long.split(' ')[0].encode())} bytes]")
    assert short == "short"
    assert truncate_message("abc", 64) == "abc"


def test_handler_never_blocks_or_raises_when_the_host_is_down(
    socket_path: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(ENV_RUNTIME_LOG_SOCKET, str(socket_path("down")))
    handler = RuntimeLogHandler(
        "h4", batch_size=50, send_timeout=0.5, flush_timeout=3, max_pending=10_000
    )
    logger = handler_logger("down", handler)
    started = time.monotonic()
    for i in range(2000):
        logger.info("lost %d", i)
    logger.info("%d", "not a number")  # a formatting error is logging's, never the caller's
    assert time.monotonic() - started < 1.0
    started = time.monotonic()
    handler.close()
    assert time.monotonic() - started < 5.0
    assert handler.dropped == 2000
    reports = [line for line in capsys.readouterr().err.splitlines() if "cannot ship" in line]
    assert len(reports) == 1  # once per failure streak, not once per batch


def test_handler_queue_is_bounded(socket_path: Callable[[str], Path], monkeypatch: Any) -> None:
    release = threading.Event()

    class Stall(grpc.ServerInterceptor):
        def intercept_service(self, continuation: Any, details: Any) -> Any:
            release.wait(10)
            return continuation(details)

    server = serve_runtime_logs(socket_path("stall"), interceptors=[Stall()])
    monkeypatch.setenv(ENV_RUNTIME_LOG_SOCKET, server.target)
    try:
        handler = RuntimeLogHandler("h5", batch_size=1, max_pending=10, flush_interval=0.01)
        logger = handler_logger("bounded", handler)
        logger.info("first")
        deadline = time.monotonic() + 5
        while handler._pending and time.monotonic() < deadline:  # the sender took it
            time.sleep(0.01)
        for i in range(50):
            logger.info("queued %d", i)
        assert handler.dropped == 40
        release.set()
        handler.close()
        assert messages(server, "h5") == ["first"] + [f"queued {i}" for i in range(10)]
    finally:
        release.set()
        server.stop()


def test_handler_checks_its_arguments(log_host: RuntimeLogServer) -> None:
    with pytest.raises(ValueError, match="session_id"):
        RuntimeLogHandler("")
    with pytest.raises(ValueError, match="batch_size"):
        RuntimeLogHandler("s", batch_size=0)
    with pytest.raises(ValueError, match="flush_interval"):
        RuntimeLogHandler("s", flush_interval=0)
    with pytest.raises(ValueError, match="max_message_bytes must be at least 64"):
        RuntimeLogHandler("s", max_message_bytes=10)


def test_handler_ignores_records_of_its_own_sending_thread(log_host: RuntimeLogServer) -> None:
    handler = RuntimeLogHandler("h6")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "from sender", None, None)
    done = threading.Event()

    class Sink:
        def append_logs(self, session_id: str, entries: list[Any], *, timeout: Any) -> int:
            handler.emit(record)  # what a gRPC warning during a send would do
            done.set()
            return 0

    handler._host = Sink()
    handler.emit(logging.LogRecord("x", logging.INFO, __file__, 1, "user", None, None))
    handler.flush()
    assert done.wait(5)
    handler.close()
    assert handler._queued == 1


def test_local_services_serve_a_log_host(monkeypatch: pytest.MonkeyPatch) -> None:
    from gestalt.local import LocalServices

    with LocalServices() as services:
        env = services.env()
        assert services.runtime_logs is not None
        monkeypatch.setenv(ENV_RUNTIME_LOG_SOCKET, env[ENV_RUNTIME_LOG_SOCKET])
        handler = RuntimeLogHandler("dev")
        handler_logger("dev", handler).error("seen by the dev host")
        handler.close()
        recorded = services.runtime_logs.entries("dev")
        assert [entry.message for entry in recorded] == ["seen by the dev host"]


def test_a_deadline_that_passes_is_a_timeout(
    socket_path: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    class Stall(grpc.ServerInterceptor):
        def intercept_service(self, continuation: Any, details: Any) -> Any:
            release.wait(10)
            return continuation(details)

    server = serve_runtime_logs(socket_path("slow"), interceptors=[Stall()])
    monkeypatch.setenv(ENV_RUNTIME_LOG_SOCKET, server.target)
    try:
        with RuntimeLogHost(timeout=0.2) as host, pytest.raises(HostServiceTimeoutError) as info:
            host.append_logs("s", ["late"])
        assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert isinstance(info.value, TimeoutError)
    finally:
        release.set()
        server.stop()
