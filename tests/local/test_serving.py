"""The serving plumbing shared by the embedded Cache, IndexedDB and S3 services.

Every test runs real servers on real sockets (unix sockets in a short temporary directory,
TCP on 127.0.0.1) and talks to them with the generated clients.
"""

from __future__ import annotations

import functools
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from gestalt._clients.transport import RELAY_TOKEN_HEADER, parse_target
from gestalt.gen.support import RPCError
from gestalt.gen.v1 import cache_pb2, s3_pb2
from gestalt.gen.v1 import datastore_pb2 as idb_pb2
from gestalt.gen.v1.cache_clients import AsyncCacheClient, CacheClient
from gestalt.gen.v1.datastore_clients import IndexedDBClient
from gestalt.gen.v1.s3_clients import S3Client
from gestalt.local import LocalServices
from gestalt.local._serving import (
    MAX_SOCKET_PATH_BYTES,
    Address,
    ListenError,
    LocalServer,
    SocketDirectoryNotFoundError,
    parse_address,
    serve,
    serve_async,
)
from gestalt.local.cache import CacheService, serve_cache
from gestalt.local.indexeddb import serve_indexeddb
from gestalt.local.s3 import serve_s3

T = 5.0  # seconds: a deadline for every call, so nothing hangs
Metadata = tuple[tuple[str, str], ...]


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory short enough for ``AF_UNIX`` whatever the test's name."""
    path = Path(tempfile.mkdtemp(prefix="gs-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def channel_to(target: str) -> grpc.Channel:
    """A channel to a handle's ``target``, read the way the SDK's clients read it."""
    return grpc.insecure_channel(parse_target(target).grpc_target)


# -- one row per service --------------------------------------------------------------------


def _cache_roundtrip(channel: grpc.Channel, metadata: Metadata | None) -> None:
    client = CacheClient(channel)
    client.set(cache_pb2.CacheSetRequest(key="k", value=b"v"), timeout=T, metadata=metadata)
    got = client.get(cache_pb2.CacheGetRequest(key="k"), timeout=T, metadata=metadata)
    assert got.value == b"v"


def _idb_roundtrip(channel: grpc.Channel, metadata: Metadata | None) -> None:
    client = IndexedDBClient(channel)
    record = idb_pb2.Record()
    record.fields["id"].string_value = "1"
    client.put(idb_pb2.RecordRequest(store="s", record=record), timeout=T, metadata=metadata)
    count = client.count(idb_pb2.ObjectStoreRangeRequest(store="s"), timeout=T, metadata=metadata)
    assert count.count == 1


def _s3_roundtrip(channel: grpc.Channel, metadata: Metadata | None) -> None:
    client = S3Client(channel)
    ref = s3_pb2.S3ObjectRef(bucket="b", key="k")
    frames = [
        s3_pb2.WriteObjectRequest(open=s3_pb2.WriteObjectOpen(ref=ref)),
        s3_pb2.WriteObjectRequest(data=b"body"),
    ]
    client.write_object(iter(frames), timeout=T, metadata=metadata)
    chunks = list(
        client.read_object(s3_pb2.ReadObjectRequest(ref=ref), timeout=T, metadata=metadata)
    )
    assert b"".join(chunk.data for chunk in chunks) == b"body"


@dataclass(frozen=True)
class Kind:
    """How to start one of the services and check that it answers."""

    name: str
    start: Callable[..., LocalServer[Any]]
    roundtrip: Callable[[grpc.Channel, Metadata | None], None]


KINDS = [
    Kind("cache", serve_cache, _cache_roundtrip),
    Kind("indexeddb", serve_indexeddb, _idb_roundtrip),
    Kind("s3", serve_s3, _s3_roundtrip),
]


@pytest.fixture(params=KINDS, ids=lambda kind: kind.name)
def kind(request: pytest.FixtureRequest) -> Kind:
    """Each of the three services in turn."""
    result: Kind = request.param
    return result


# -- addresses ------------------------------------------------------------------------------


def test_address_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    sock = tmp_path / "a.sock"
    for written in (sock, str(sock), f"unix://{sock}", f"unix:{sock}", "a.sock", "unix://a.sock"):
        address = parse_address(written)
        assert address == Address("unix", f"unix:{sock}", socket_path=sock)
        assert address.target(0) == str(sock)
        assert address.target(0, unix_form="grpc") == f"unix:{sock}"
    tcp = parse_address(" TCP://127.0.0.1:0 ")
    assert (tcp.scheme, tcp.bind, tcp.socket_path) == ("tcp", "127.0.0.1:0", None)
    assert tcp.target(4242) == tcp.target(4242, unix_form="grpc") == "tcp://127.0.0.1:4242"
    assert parse_address("tcp://[::1]:7").target(7) == "tcp://[::1]:7"
    abstract = parse_address("unix-abstract:gestalt-test")
    assert abstract.target(0) == "unix-abstract:gestalt-test" and abstract.socket_path is None


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("tls://127.0.0.1:0", "plaintext only"),
        ("tcp://8080", "needs host:port"),
        ("tcp://h:port", "no valid port"),
        ("tcp://h:70000", "no valid port"),
        ("http://h:1", "unsupported .* scheme"),
        ("", "required"),
        ("/" + "x" * MAX_SOCKET_PATH_BYTES, "longer than"),
    ],
)
def test_bad_addresses_are_value_errors(address: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_address(address)


def test_every_service_takes_every_address_form(kind: Kind, short_dir: Path) -> None:
    sock = short_dir / f"{kind.name}.sock"
    for address in (sock, f"unix://{sock}", "tcp://127.0.0.1:0"):
        with kind.start(address) as running:
            assert running.service is not None
            if isinstance(address, Path):
                assert running.socket_path == sock and sock.exists()
                assert parse_target(running.target) == parse_target(str(sock))
            elif address.startswith("tcp"):
                assert running.socket_path is None
                assert running.target.startswith("tcp://127.0.0.1:")
                assert not running.target.endswith(":0")
            with channel_to(running.target) as channel:
                kind.roundtrip(channel, None)
        assert not sock.exists()
    with pytest.raises(ValueError, match="plaintext only"):
        kind.start("tls://127.0.0.1:0")


def test_tcp_port_in_use_is_a_listen_error(kind: Kind) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ListenError, match="cannot listen") as info:
            kind.start(f"tcp://127.0.0.1:{port}")
    assert isinstance(info.value, OSError) and isinstance(info.value, RuntimeError)


# -- socket files ---------------------------------------------------------------------------


def test_stale_socket_is_replaced(kind: Kind, short_dir: Path) -> None:
    sock = short_dir / "stale.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(sock))  # bound, never listening: what a crashed server leaves
    with kind.start(sock) as running, channel_to(running.target) as channel:
        kind.roundtrip(channel, None)
    assert not sock.exists()


def test_anything_but_a_stale_socket_is_refused(kind: Kind, short_dir: Path) -> None:
    plain = short_dir / "plain"
    plain.write_text("keep me")
    with pytest.raises(FileExistsError, match="is not a socket"):
        kind.start(plain)
    assert plain.read_text() == "keep me"

    folder = short_dir / "folder"
    folder.mkdir()
    with pytest.raises(FileExistsError, match="is not a socket"):
        kind.start(folder)
    assert folder.is_dir()

    link = short_dir / "link"
    link.symlink_to(plain)
    with pytest.raises(FileExistsError, match="is not a socket"):
        kind.start(link)
    assert link.is_symlink()

    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        kind.start(short_dir / "missing" / "x.sock")
    assert isinstance(info.value, SocketDirectoryNotFoundError)
    assert isinstance(info.value, RuntimeError)


def test_a_served_socket_is_refused_and_keeps_serving(kind: Kind, short_dir: Path) -> None:
    sock = short_dir / "busy.sock"
    with kind.start(sock) as first:
        with pytest.raises(FileExistsError, match="already served"):
            kind.start(sock)
        with channel_to(first.target) as channel:
            kind.roundtrip(channel, None)
    assert not sock.exists()


def test_stop_is_idempotent_and_removes_the_socket(kind: Kind, short_dir: Path) -> None:
    running = kind.start(short_dir / "s.sock")
    assert "running" in repr(running) and running.target in repr(running)
    running.stop(0)
    running.stop(0)
    assert "stopped" in repr(running)
    assert running.socket_path is not None and not running.socket_path.exists()


# -- relay token ----------------------------------------------------------------------------


def _status(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(RPCError) as info:
        call()
    return info.value.code, info.value.message


REFUSED = (grpc.StatusCode.UNAUTHENTICATED, "invalid-host-service-relay-token")


def test_relay_token_over_tcp(kind: Kind) -> None:
    with (
        kind.start("tcp://127.0.0.1:0", relay_token=" s3cret ") as running,
        channel_to(running.target) as channel,
    ):
        refused: list[Metadata | None] = [
            None,
            ((RELAY_TOKEN_HEADER, "wrong"),),
            (("other", "s3cret"),),
        ]
        for metadata in refused:
            assert _status(functools.partial(kind.roundtrip, channel, metadata)) == REFUSED
        kind.roundtrip(channel, ((RELAY_TOKEN_HEADER, "  s3cret "),))


def test_relay_token_refuses_streams_before_they_run(short_dir: Path) -> None:
    with serve_indexeddb("tcp://127.0.0.1:0", relay_token="t") as idb:
        with channel_to(idb.target) as channel:
            open_cursor = idb_pb2.CursorClientMessage(open=idb_pb2.OpenCursorRequest(store="s"))
            stream = IndexedDBClient(channel).open_cursor(iter([open_cursor]), timeout=T)
            assert _status(lambda: list(stream)) == REFUSED
        assert idb.service.open_cursors == 0
    with serve_s3("tcp://127.0.0.1:0", relay_token="t") as s3, channel_to(s3.target) as channel:
        client = S3Client(channel)
        ref = s3_pb2.S3ObjectRef(bucket="b", key="k")
        read = client.read_object(s3_pb2.ReadObjectRequest(ref=ref), timeout=T)
        assert _status(lambda: list(read)) == REFUSED
        frames = iter([s3_pb2.WriteObjectRequest(open=s3_pb2.WriteObjectOpen(ref=ref))])
        assert _status(lambda: client.write_object(frames, timeout=T)) == REFUSED
        head = s3_pb2.HeadObjectRequest(ref=ref)
        token = ((RELAY_TOKEN_HEADER, "t"),)
        code, _ = _status(lambda: client.head_object(head, timeout=T, metadata=token))
        assert code == grpc.StatusCode.NOT_FOUND  # the refused write stored nothing


@pytest.mark.parametrize("token", ["", "   ", "caf\u00e9", "a\nb"])
def test_unusable_relay_tokens_are_refused_up_front(kind: Kind, token: str) -> None:
    with pytest.raises(ValueError, match="relay token"):
        kind.start("tcp://127.0.0.1:0", relay_token=token)


def test_interceptors_run_after_the_token_check(kind: Kind) -> None:
    seen: list[str] = []

    class Recorder(grpc.ServerInterceptor):
        def intercept_service(
            self,
            continuation: Callable[[grpc.HandlerCallDetails], Any],
            handler_call_details: grpc.HandlerCallDetails,
        ) -> Any:
            seen.append(handler_call_details.method)
            return continuation(handler_call_details)

    with (
        kind.start("tcp://127.0.0.1:0", relay_token="t", interceptors=[Recorder()]) as running,
        channel_to(running.target) as channel,
    ):
        assert _status(lambda: kind.roundtrip(channel, None)) == REFUSED
        kind.roundtrip(channel, ((RELAY_TOKEN_HEADER, "t"),))
    assert seen and all(method.startswith("/gestalt.provider.v1.") for method in seen)


async def test_async_server_shares_the_rules(short_dir: Path) -> None:
    sock = short_dir / "aio.sock"
    sock.write_text("not a socket")
    with pytest.raises(FileExistsError, match="is not a socket"):
        await serve_async(parse_address(sock), CacheService, _add_cache)
    sock.unlink()
    running = await serve_async(parse_address(sock), CacheService, _add_cache, relay_token="t")
    async with running:
        assert running.target == str(sock)
        async with grpc.aio.insecure_channel(f"unix:{sock}") as channel:
            client = AsyncCacheClient(channel)
            with pytest.raises(RPCError) as info:
                await client.get(cache_pb2.CacheGetRequest(key="k"), timeout=T)
            assert (info.value.code, info.value.message) == REFUSED
            got = await client.get(
                cache_pb2.CacheGetRequest(key="k"), timeout=T, metadata=((RELAY_TOKEN_HEADER, "t"),)
            )
            assert not got.found
    assert not sock.exists()
    await running.stop()  # idempotent


def _add_cache(service: CacheService, server: Any) -> None:
    from gestalt.gen.v1.cache_servicers import add_cache_to_server

    add_cache_to_server(service, server)


# -- the generic serve() contract -----------------------------------------------------------


class Tracked:
    """A service that records whether it was opened and closed."""

    opened = 0
    closed = 0

    def __init__(self) -> None:
        Tracked.opened += 1

    def close(self) -> None:
        Tracked.closed += 1


@pytest.fixture
def tracked() -> type[Tracked]:
    Tracked.opened = Tracked.closed = 0
    return Tracked


def _register_nothing(service: Tracked, server: grpc.Server) -> None:
    pass


def test_bad_arguments_open_nothing(tracked: type[Tracked], short_dir: Path) -> None:
    address = parse_address(short_dir / "x.sock")
    for bad in (
        {"max_workers": 0},
        {"max_message_bytes": 0},
        {"relay_token": " "},
    ):
        with pytest.raises(ValueError):
            serve(LocalServer, address, tracked, _register_nothing, name="t", **bad)
    assert tracked.opened == 0
    assert not (short_dir / "x.sock").exists()


def test_a_failed_start_closes_the_service(tracked: type[Tracked], short_dir: Path) -> None:
    (short_dir / "file").write_text("")
    address = parse_address(short_dir / "file")
    with pytest.raises(FileExistsError):
        serve(LocalServer, address, tracked, _register_nothing, name="t", close=Tracked.close)
    assert (tracked.opened, tracked.closed) == (1, 1)

    def broken(service: Tracked, server: grpc.Server) -> None:
        raise RuntimeError("registration failed")

    address = parse_address(short_dir / "ok.sock")
    with pytest.raises(RuntimeError, match="registration failed"):
        serve(LocalServer, address, tracked, broken, name="t", close=Tracked.close)
    assert (tracked.opened, tracked.closed) == (2, 2)
    with serve(LocalServer, address, tracked, _register_nothing, name="t", close=Tracked.close):
        assert tracked.closed == 2
    assert tracked.closed == 3 and not (short_dir / "ok.sock").exists()


def test_the_socket_goes_even_if_closing_fails(short_dir: Path) -> None:
    class Faulty:
        def close(self) -> None:
            raise OSError("disk gone")

    running = serve(
        LocalServer,
        parse_address(short_dir / "f.sock"),
        Faulty,
        lambda service, server: None,
        name="t",
        close=Faulty.close,
    )
    with pytest.raises(OSError, match="disk gone"):
        running.stop()
    assert not (short_dir / "f.sock").exists()


# -- all three at once ----------------------------------------------------------------------


def test_local_services_start_serve_and_stop(tmp_path: Path) -> None:
    services = LocalServices(tmp_path / "data")
    with services:
        env = services.env()
        stores = ["GESTALT_CACHE_SOCKET", "GESTALT_INDEXEDDB_SOCKET", "GESTALT_S3_SOCKET"]
        # The runtime log host is exercised in tests/clients/test_runtime_logs.py.
        calls = [
            "GESTALT_PLUGIN_INVOKER_SOCKET",
            "GESTALT_AUTHORIZATION_SOCKET",
            "GESTALT_RUNTIME_LOG_SOCKET",
            "GESTALT_AGENT_MANAGER_SOCKET",
            "GESTALT_WORKFLOW_MANAGER_SOCKET",
        ]
        assert set(env) == {*stores, *calls}
        assert all(Path(env[var]).is_socket() for var in calls)
        for kind, var in zip(KINDS, stores, strict=True):
            with channel_to(env[var]) as channel:
                kind.roundtrip(channel, None)
        assert services.s3_http_base_url.startswith("http://127.0.0.1:")
        run_dir = services.run_dir
    assert (services.cache, services.indexeddb, services.s3) == (None, None, None)
    assert (services.plugin_invoker, services.authorization, services.runtime_logs) == (
        None,
        None,
        None,
    )
    assert (services.agents, services.workflows) == (None, None)
    assert not run_dir.exists()
    assert (tmp_path / "data" / "indexeddb.sqlite3").exists()  # data outlives the services
    assert services.s3_http_base_url == ""


def test_local_services_clean_up_a_failed_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "s3").parent.mkdir(parents=True)
    (data / "s3").write_text("a file where the S3 root should be")
    services = LocalServices(data)
    with pytest.raises(OSError):
        services.start()
    assert (services.cache, services.indexeddb, services.s3) == (None, None, None)
    assert not services.run_dir.exists()
