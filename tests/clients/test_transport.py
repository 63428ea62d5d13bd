"""Transport and errors shared by the host-service clients: discovery, targets, channels,
relay tokens and the exception tree, against the goldens in ``examples/clients`` and real
servers on unix sockets and TCP."""

from __future__ import annotations

import ast
import asyncio
import logging
import pickle
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from gestalt._clients import transport as _transport
from gestalt._clients.cache import AsyncCache, Cache
from gestalt._clients.errors import (
    CACHE_ERRORS,
    INDEXEDDB_ERRORS,
    S3_ACCESS_URL_ERRORS,
    S3_ERRORS,
    AlreadyExistsError,
    ErrorMap,
    HostServiceConfigError,
    HostServiceError,
    HostServiceTimeoutError,
    InvalidTargetError,
    NotFoundError,
    S3HeaderValueError,
    S3InvalidRangeError,
    S3NotFoundError,
    S3PreconditionFailedError,
    TransactionError,
    _ClientNotFoundError,
    _ClientRangeError,
)
from gestalt._clients.transport import (
    CACHE,
    CHANNEL_OPTIONS,
    ENV_CACHE_SOCKET,
    ENV_CACHE_SOCKET_TOKEN,
    ENV_INDEXEDDB_SOCKET,
    ENV_INDEXEDDB_SOCKET_TOKEN,
    ENV_S3_SOCKET,
    ENV_S3_SOCKET_TOKEN,
    INDEXEDDB,
    RELAY_TOKEN_HEADER,
    S3,
    SyncConnection,
    Target,
    binding_suffix,
    cache_socket_env,
    cache_socket_token_env,
    check_timeout,
    indexeddb_socket_env,
    indexeddb_socket_token_env,
    parse_target,
    s3_socket_env,
    s3_socket_token_env,
)
from gestalt.gen.support import RPCError
from gestalt.gen.v1 import cache_pb2
from gestalt.gen.v1.cache_clients import CacheClient
from gestalt.local._serving import AsyncRelayTokenInterceptor, RelayTokenInterceptor
from gestalt.local.cache import CacheServer, CacheService, serve_cache
from tests.clients.conftest import EnvBinder, GoldenStep, RecordingInterceptor, parse_transcript

# -- goldens: discovery.txt -----------------------------------------------------------------


@pytest.fixture(scope="module")
def discovery(test_data: Path) -> list[GoldenStep]:
    return parse_transcript(test_data / "clients/discovery.txt")


def _step(steps: list[GoldenStep], label: str) -> GoldenStep:
    return next(step for step in steps if step.label == label)


def test_env_names_follow_the_host_rule_for_every_client(discovery: list[GoldenStep]) -> None:
    rows = _step(discovery, "env var names per binding name: (cache, indexeddb, s3, cache token)")
    assert len(rows.lines) == 13
    for line in rows.lines:
        name_repr, _, names = line.partition(" -> ")
        name = ast.literal_eval(name_repr.strip())
        cache, _reference_indexeddb, s3, cache_token = names.split(", ")
        assert cache_socket_env(name) == cache
        assert s3_socket_env(name) == s3
        assert cache_socket_token_env(name) == cache_token
        # Q1: the reference IndexedDB upper-cased non-ASCII letters; the host rule is the
        # cache column with the service word swapped.
        assert indexeddb_socket_env(name) == cache.replace("CACHE", "INDEXEDDB")
        assert indexeddb_socket_token_env(name) == cache_token.replace("CACHE", "INDEXEDDB")
        assert s3_socket_token_env(name) == s3 + "_TOKEN"


@pytest.mark.parametrize(
    ("name", "suffix"),
    [
        (None, ""),
        ("", ""),
        ("  \t", ""),
        (" session ", "_SESSION"),
        ("Rate-Limit", "_RATE_LIMIT"),
        ("a.b/c", "_A_B_C"),
        ("café", "_CAF_"),
        ("straße", "_STRA_E"),
        ("ﬁle", "__LE"),
        ("x²", "_X_"),
        ("\u0131", "__"),  # dotless i
        ("9lives", "_9LIVES"),
        ("a b", "_A_B"),
    ],
)
def test_binding_suffix(name: str | None, suffix: str) -> None:
    assert binding_suffix(name) == suffix


def test_binding_name_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="binding name must be a str"):
        cache_socket_env(3)  # type: ignore[arg-type]


def test_env_constants(discovery: list[GoldenStep]) -> None:
    line = _step(discovery, "exported constants").lines[0]
    constants = dict(re.findall(r"(ENV_\w+)='([^']*)'", line))
    assert constants == {
        "ENV_S3_SOCKET": ENV_S3_SOCKET,
        "ENV_S3_SOCKET_TOKEN": ENV_S3_SOCKET_TOKEN,
        "ENV_CACHE_SOCKET_TOKEN": ENV_CACHE_SOCKET_TOKEN,
    }
    assert ENV_CACHE_SOCKET == "GESTALT_CACHE_SOCKET"
    assert ENV_INDEXEDDB_SOCKET == "GESTALT_INDEXEDDB_SOCKET"
    assert ENV_INDEXEDDB_SOCKET_TOKEN == "GESTALT_INDEXEDDB_SOCKET_TOKEN"


@pytest.mark.parametrize(
    ("label", "service", "name"),
    [
        ("Cache()", CACHE, None),
        ('Cache("session")', CACHE, "session"),
        ("IndexedDB()", INDEXEDDB, None),
        ('IndexedDB("main")', INDEXEDDB, "main"),
        ("S3()", S3, None),
        ('S3("assets")', S3, "assets"),
    ],
)
def test_missing_variable(
    discovery: list[GoldenStep], label: str, service: _transport.HostService, name: str | None
) -> None:
    golden = _step(discovery, label)
    assert golden.outcome == "raised"
    kind, _, message = golden.value.partition(": ")
    assert kind == "builtins.RuntimeError"
    with pytest.raises(RuntimeError) as raised:
        service.endpoint(name)
    assert str(raised.value) == message
    assert isinstance(raised.value, HostServiceConfigError)


def test_empty_variable_counts_as_missing(
    discovery: list[GoldenStep], monkeypatch: pytest.MonkeyPatch
) -> None:
    golden = _step(discovery, 'Cache() with GESTALT_CACHE_SOCKET=""')
    monkeypatch.setenv("GESTALT_CACHE_SOCKET", "")
    with pytest.raises(RuntimeError) as raised:
        Cache()
    assert golden.value == f"builtins.RuntimeError: {raised.value}"


# Deliberate differences from the reference's parse results (quirk Q14).
_BETTER_PARSE = {
    "unix:/run/x.sock": ("unix", "/run/x.sock"),
    "TCP://h:1": ("tcp", "h:1"),
}


def _parse_or_error(value: str, service: str) -> str:
    try:
        target = parse_target(value, service)
    except InvalidTargetError as exc:
        assert isinstance(exc, RuntimeError)
        assert isinstance(exc, ValueError)
        return f"!RuntimeError({exc})"
    return repr((target.scheme, target.address))


def test_target_parsing_matches_the_goldens(discovery: list[GoldenStep]) -> None:
    table = _step(
        discovery, "target parsing (private helpers: scheme, address) and constructor errors"
    )
    row = re.compile(r"^('(?:[^'\\]|\\.)*')\s+cache=(.*?)  s3=(.*)$")
    assert len(table.lines) == 16
    for line in table.lines:
        match = row.match(line)
        assert match, line
        value = ast.literal_eval(match[1])
        expected_cache, expected_s3 = match[2], match[3]
        if value in _BETTER_PARSE:
            expected_cache = expected_s3 = repr(_BETTER_PARSE[value])
        assert _parse_or_error(value, "cache") == expected_cache, value
        assert _parse_or_error(value, "s3") == expected_s3, value


def test_indexeddb_target_errors_match_the_goldens(
    discovery: list[GoldenStep], monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = [
        s for s in discovery if s.label.startswith("IndexedDB() with GESTALT_INDEXEDDB_SOCKET=")
    ]
    assert len(steps) == 5
    for step in steps:
        value = ast.literal_eval(step.label.partition("=")[2])
        monkeypatch.setenv("GESTALT_INDEXEDDB_SOCKET", value)
        if value == "TCP://h:1":  # Q14: schemes are case-insensitive here
            assert INDEXEDDB.endpoint().target == Target("tcp", "h:1")
            continue
        with pytest.raises(RuntimeError) as raised:
            INDEXEDDB.endpoint()
        assert step.value == f"builtins.RuntimeError: {raised.value}"


@pytest.mark.parametrize(
    ("value", "target", "grpc_target"),
    [
        ("unix:rel.sock", Target("unix", "rel.sock"), "unix:rel.sock"),
        ("unix:///run/x.sock", Target("unix", "/run/x.sock"), "unix:/run/x.sock"),
        ("Unix:///run/x.sock", Target("unix", "/run/x.sock"), "unix:/run/x.sock"),
        ("unix-abstract:gestalt", Target("unix-abstract", "gestalt"), "unix-abstract:gestalt"),
        ("tls://relay.example:443", Target("tls", "relay.example:443"), "relay.example:443"),
        ("tcp://[::1]:9000", Target("tcp", "[::1]:9000"), "[::1]:9000"),
        (" ./dir/x.sock\n", Target("unix", "./dir/x.sock"), "unix:./dir/x.sock"),
    ],
)
def test_target_forms(value: str, target: Target, grpc_target: str) -> None:
    parsed = parse_target(value, "cache")
    assert parsed == target
    assert parsed.grpc_target == grpc_target
    assert parsed.secure is (target.scheme == "tls")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("unix:", "cache unix target 'unix:' is missing a socket path"),
        ("unix-abstract:", "cache unix-abstract target 'unix-abstract:' is missing a socket path"),
        ("ftp://h/x", "unsupported cache target scheme 'ftp'"),
        ("://h", "unsupported cache target scheme ''"),
        ("tls://   ", "cache tls target 'tls://' is missing host:port"),
    ],
)
def test_target_errors(value: str, message: str) -> None:
    with pytest.raises(InvalidTargetError) as raised:
        parse_target(value, "cache")
    assert str(raised.value) == message


def test_target_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="target must be a str"):
        parse_target(b"/x.sock")  # type: ignore[arg-type]


# -- endpoints and tokens -------------------------------------------------------------------


def test_endpoint_reads_target_and_stripped_token() -> None:
    env = {"GESTALT_S3_SOCKET_ASSETS": " tcp://h:1 ", "GESTALT_S3_SOCKET_ASSETS_TOKEN": " t0k "}
    endpoint = S3.endpoint("assets", environ=env)
    assert endpoint.env == "GESTALT_S3_SOCKET_ASSETS"
    assert endpoint.target == Target("tcp", "h:1")
    assert endpoint.token == "t0k"
    assert endpoint.metadata == ((RELAY_TOKEN_HEADER, "t0k"),)


@pytest.mark.parametrize("token", ["", "   ", None])
def test_blank_or_missing_token_means_no_header(token: str | None) -> None:
    env = {"GESTALT_CACHE_SOCKET": "/x.sock"}
    if token is not None:
        env["GESTALT_CACHE_SOCKET_TOKEN"] = token
    endpoint = CACHE.endpoint(environ=env)
    assert endpoint.token is None
    assert endpoint.metadata is None


def test_token_that_cannot_travel_in_a_header_is_refused_up_front() -> None:
    env = {"GESTALT_CACHE_SOCKET": "/x.sock", "GESTALT_CACHE_SOCKET_TOKEN": "tok\u00e9n"}
    with pytest.raises(HostServiceConfigError, match="GESTALT_CACHE_SOCKET_TOKEN holds"):
        CACHE.endpoint(environ=env)


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        (0, ValueError),
        (-1.0, ValueError),
        (float("inf"), ValueError),
        (float("nan"), ValueError),
        (True, TypeError),
        ("1", TypeError),
    ],
)
def test_bad_timeouts(timeout: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="timeout"):
        check_timeout(timeout)  # type: ignore[arg-type]


def test_good_timeouts() -> None:
    assert check_timeout(None) is None
    assert check_timeout(2) == 2.0
    assert check_timeout(0.25) == 0.25


# -- channels -------------------------------------------------------------------------------


def test_channel_options() -> None:
    options = dict(CHANNEL_OPTIONS)
    assert options["grpc.enable_http_proxy"] == 0
    assert options["grpc.max_receive_message_length"] == 64 * 1024 * 1024
    assert options["grpc.max_send_message_length"] == 64 * 1024 * 1024


def test_construction_is_lazy_and_unreachable_socket_fails_on_first_call(
    discovery: list[GoldenStep], socket_path: Callable[[str], Path], bind_env: EnvBinder
) -> None:
    golden = _step(discovery, 'Cache().get("k")')
    assert "UNAVAILABLE" in golden.value
    bind_env(CACHE, str(socket_path("does-not-exist")))
    cache = Cache()  # no error: nothing is connected yet
    with cache, pytest.raises(HostServiceError) as raised:
        cache.get("k", timeout=5)
    assert raised.value.code is grpc.StatusCode.UNAVAILABLE
    assert "No such file or directory" in raised.value.message
    assert isinstance(raised.value.__cause__, grpc.RpcError)


def test_one_channel_per_target_shared_and_closed_with_the_last_client(
    cache_env: CacheServer[CacheService], bind_env: EnvBinder
) -> None:
    bind_env(CACHE, cache_env.target, name="other")  # same target, another binding
    first, second, other = Cache(), Cache(), Cache("other")
    conns = [client._conn for client in (first, second, other)]
    channel = conns[0].channel
    assert all(conn.channel is channel for conn in conns)
    assert all(conn.stub is conns[0].stub for conn in conns)  # stubs are shared too
    first.set("k", b"v")
    first.close()
    assert second.get("k") == b"v"  # the shared channel stays open for the others
    second.close()
    assert other.get("k") == b"v"
    other.close()
    target = parse_target(cache_env.target)
    assert target not in _transport._SYNC_POOL.entries
    with Cache() as fresh:  # a new channel after the last one closed
        assert fresh._conn.channel is not channel
        assert fresh.get("k") == b"v"


def test_pools_start_empty_after_fork(cache_env: CacheServer[CacheService]) -> None:
    # What the after-fork hook does in a child, run in-process: inherited clients must not
    # close the parent's channels, and new clients get channels of their own.
    inherited = Cache()
    parent_channel = inherited._conn.channel
    try:
        _transport._forget_pools()
        assert _transport._SYNC_POOL.entries == {}
        with Cache() as fresh:
            assert fresh._conn.channel is not parent_channel
            fresh.set("k", b"v")
        inherited.close()  # gives up a share of a pool that no longer holds the channel
        assert CacheClient(parent_channel).get(cache_pb2.CacheGetRequest(key="k")).found
    finally:
        parent_channel.close()


def test_closed_connection_refuses_stub_and_channel(cache_env: CacheServer[CacheService]) -> None:
    conn = SyncConnection(CACHE.endpoint(), CacheClient, CACHE_ERRORS)
    assert not conn.closed
    conn.close()
    conn.close()  # idempotent
    assert conn.closed
    with pytest.raises(ValueError, match="cache client is closed"):
        conn.stub  # noqa: B018
    with pytest.raises(ValueError, match="cache client is closed"):
        conn.channel  # noqa: B018


def test_http_proxy_is_bypassed(
    socket_path: Callable[[str], Path], bind_env: EnvBinder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy nobody listens on: grpc would route TCP targets through it if proxies were on.
    for var in ("grpc_proxy", "https_proxy", "http_proxy", "HTTPS_PROXY", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with serve_cache("tcp://127.0.0.1:0") as server:
        bind_env(CACHE, server.target)
        with Cache(timeout=5) as cache:
            cache.set("through", b"direct")
            assert cache.get("through") == b"direct"


def test_tls_target_uses_a_secure_channel(bind_env: EnvBinder) -> None:
    # The embedded cache speaks plaintext, so the TLS handshake must fail: proof that the
    # channel for a tls:// target really is a secure one.
    with serve_cache("tcp://127.0.0.1:0") as server:
        bind_env(CACHE, server.target.replace("tcp://", "tls://"))
        with Cache() as cache, pytest.raises(HostServiceError) as raised:
            cache.get("k", timeout=5)
    assert raised.value.code is grpc.StatusCode.UNAVAILABLE


# -- relay token ----------------------------------------------------------------------------


def test_relay_token_travels_on_every_call_over_tcp(
    bind_env: EnvBinder, recorder: RecordingInterceptor
) -> None:
    with serve_cache("tcp://127.0.0.1:0", relay_token="s3cret", interceptors=[recorder]) as server:
        assert server.target.startswith("tcp://127.0.0.1:")
        bind_env(CACHE, server.target, name="session", token="  s3cret  ")
        with Cache("session") as cache:
            cache.set("k", b"v")
            assert cache.get("k") == b"v"
            assert cache.get_many(["k"]) == {"k": b"v"}
            assert cache.touch("k", None)
            assert cache.delete("k")
        calls = recorder.take()
        assert [call.method.rpartition("/")[2] for call in calls] == [
            "Set",
            "Get",
            "GetMany",
            "Touch",
            "Delete",
        ]
        # Q15: stripped, for every client.
        assert all(call.metadata == [(RELAY_TOKEN_HEADER, "s3cret")] for call in calls)


@pytest.mark.parametrize(("token", "sent"), [("wrong", True), (None, False)])
def test_relay_rejects_missing_or_wrong_token(
    bind_env: EnvBinder, token: str | None, sent: bool
) -> None:
    with serve_cache("tcp://127.0.0.1:0", relay_token="s3cret") as server:
        bind_env(CACHE, server.target, token=token)
        with Cache() as cache, pytest.raises(HostServiceError) as raised:
            cache.get("k", timeout=5)
    assert raised.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert raised.value.message == "invalid-host-service-relay-token"
    assert type(raised.value) is HostServiceError


async def test_relay_token_async_client(
    bind_env: EnvBinder, recorder: RecordingInterceptor
) -> None:
    with serve_cache("tcp://127.0.0.1:0", relay_token="s3cret", interceptors=[recorder]) as server:
        bind_env(CACHE, server.target, token="s3cret")
        async with AsyncCache() as cache:
            await cache.set("k", b"v")
            assert await cache.get("k") == b"v"
    assert [call.metadata for call in recorder.calls] == [[(RELAY_TOKEN_HEADER, "s3cret")]] * 2


def test_no_header_without_a_token(
    cache_env: CacheServer[CacheService], recorder: RecordingInterceptor
) -> None:
    with Cache() as cache:
        cache.get("k")
    assert recorder.calls[0].metadata == []


SECRET = "relay-TOPSECRET-0042"


def test_no_repr_or_log_shows_the_relay_token(
    bind_env: EnvBinder, recorder: RecordingInterceptor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    shown: list[object] = []
    with serve_cache("tcp://127.0.0.1:0", relay_token=SECRET, interceptors=[recorder]) as server:
        bind_env(CACHE, server.target, name="secret", token=SECRET)
        endpoint = CACHE.endpoint("secret")
        connection = SyncConnection(endpoint, CacheClient, CACHE_ERRORS)
        with Cache("secret") as cache:
            cache.set("k", b"v")
            assert cache.get("k") == b"v"
            shown += [cache, server, server.server]
        # The token did travel: the relay accepted it.
        assert recorder.calls[0].metadata == [(RELAY_TOKEN_HEADER, SECRET)]
        bind_env(CACHE, server.target, name="wrong", token=SECRET + "-wrong")
        with Cache("wrong") as wrong, pytest.raises(HostServiceError) as refused:
            wrong.get("k", timeout=5)
        shown += [refused.value, refused.value.__cause__, wrong]
        connection.close()
    assert endpoint.token == SECRET
    assert endpoint.metadata == ((RELAY_TOKEN_HEADER, SECRET),)
    assert "token='<redacted>'" in repr(endpoint)
    assert "token=None" in repr(CACHE.endpoint(environ={"GESTALT_CACHE_SOCKET": "/x.sock"}))
    shown += [endpoint, endpoint.metadata, connection, connection.endpoint, connection.metadata]
    shown += [RelayTokenInterceptor(SECRET), AsyncRelayTokenInterceptor(SECRET)]
    for thing in shown:
        assert "TOPSECRET" not in repr(thing), type(thing)
        assert "TOPSECRET" not in str(thing), type(thing)
    assert "TOPSECRET" not in caplog.text


def _state_without_connecting(channel: grpc.Channel) -> grpc.ChannelConnectivity:
    """The channel's connectivity state, read without asking it to connect."""
    states: list[grpc.ChannelConnectivity] = []
    seen = threading.Event()

    def record(state: grpc.ChannelConnectivity) -> None:
        states.append(state)
        seen.set()

    channel.subscribe(record, try_to_connect=False)
    try:
        assert seen.wait(5)
    finally:
        channel.unsubscribe(record)
    return states[0]


def test_token_over_plaintext_tcp_to_a_remote_host_warns_once(
    bind_env: EnvBinder, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_transport, "_plaintext_warned", set(), raising=False)
    caplog.set_level(logging.WARNING, logger="gestalt.transport")
    # 203.0.113.0/24 is reserved for documentation; channels are lazy and no call is made,
    # so nothing is ever sent there (checked below: the channel never left IDLE).
    bind_env(CACHE, "tcp://203.0.113.7:4443", name="remote", token=SECRET)
    first = SyncConnection(CACHE.endpoint("remote"), CacheClient, CACHE_ERRORS)
    second = SyncConnection(CACHE.endpoint("remote"), CacheClient, CACHE_ERRORS)
    try:
        warnings = [r for r in caplog.records if r.name == "gestalt.transport"]
        assert len(warnings) == 1, caplog.text
        assert warnings[0].levelno == logging.WARNING
        message = warnings[0].getMessage()
        assert "GESTALT_CACHE_SOCKET_REMOTE_TOKEN" in message
        assert "203.0.113.7:4443" in message and "unencrypted" in message
        assert "TOPSECRET" not in caplog.text
        assert _state_without_connecting(first.channel) is grpc.ChannelConnectivity.IDLE
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize(
    ("target", "token", "warns"),
    [
        ("tcp://10.1.2.3:80", SECRET, True),
        ("tcp://cache.example.com:80", SECRET, True),
        ("TCP://[2001:db8::1]:80", SECRET, True),
        ("tcp://10.1.2.3:80", None, False),
        ("tcp://127.0.0.1:80", SECRET, False),
        ("tcp://127.8.9.10:80", SECRET, False),
        ("tcp://localhost:80", SECRET, False),
        ("tcp://[::1]:80", SECRET, False),
        ("tls://cache.example.com:443", SECRET, False),
        ("/run/cache.sock", SECRET, False),
    ],
)
def test_plaintext_warning_only_for_a_token_to_a_non_loopback_tcp_target(
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    token: str | None,
    warns: bool,
) -> None:
    monkeypatch.setattr(_transport, "_plaintext_warned", set(), raising=False)
    caplog.set_level(logging.WARNING, logger="gestalt.transport")
    env = {"GESTALT_S3_SOCKET": target}
    if token is not None:
        env["GESTALT_S3_SOCKET_TOKEN"] = token
    S3.endpoint(environ=env)
    messages = [r.getMessage() for r in caplog.records if r.name == "gestalt.transport"]
    if warns:
        assert len(messages) == 1 and messages[0].startswith("GESTALT_S3_SOCKET_TOKEN: ")
    else:
        assert messages == []


# -- errors ---------------------------------------------------------------------------------


class Refuser:
    """A Cache ``get`` that fails with the status named by the key: ``"NOT_FOUND:text"``."""

    def get(
        self, request: cache_pb2.CacheGetRequest, context: grpc.ServicerContext
    ) -> cache_pb2.CacheGetResponse:
        name, _, message = request.key.partition(":")
        context.abort(grpc.StatusCode[name], message)


@pytest.fixture
def refuser(socket_path: Callable[[str], Path]) -> Iterator[CacheServer[Refuser]]:
    with serve_cache(socket_path("refuser"), service=Refuser()) as server:
        yield server


_STATUS_TABLE: list[tuple[str, ErrorMap, type[HostServiceError]]] = [
    # Cache: nothing named (Q4: still one tree, with the code attached).
    *[
        (code, CACHE_ERRORS, HostServiceError)
        for code in (
            "NOT_FOUND",
            "INVALID_ARGUMENT",
            "INTERNAL",
            "RESOURCE_EXHAUSTED",
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "UNAVAILABLE",
        )
    ],
    ("DEADLINE_EXCEEDED", CACHE_ERRORS, HostServiceTimeoutError),
    # IndexedDB (3.7, Q5: the same type wherever the code comes from).
    ("NOT_FOUND", INDEXEDDB_ERRORS, NotFoundError),
    ("ALREADY_EXISTS", INDEXEDDB_ERRORS, AlreadyExistsError),
    ("FAILED_PRECONDITION", INDEXEDDB_ERRORS, TransactionError),
    ("INVALID_ARGUMENT", INDEXEDDB_ERRORS, TransactionError),
    ("INTERNAL", INDEXEDDB_ERRORS, HostServiceError),
    ("RESOURCE_EXHAUSTED", INDEXEDDB_ERRORS, HostServiceError),
    ("UNAUTHENTICATED", INDEXEDDB_ERRORS, HostServiceError),
    ("DEADLINE_EXCEEDED", INDEXEDDB_ERRORS, HostServiceTimeoutError),
    # S3 (4.7).
    ("NOT_FOUND", S3_ERRORS, S3NotFoundError),
    ("FAILED_PRECONDITION", S3_ERRORS, S3PreconditionFailedError),
    ("OUT_OF_RANGE", S3_ERRORS, S3InvalidRangeError),
    ("INVALID_ARGUMENT", S3_ERRORS, HostServiceError),
    ("INTERNAL", S3_ERRORS, HostServiceError),
    ("PERMISSION_DENIED", S3_ERRORS, HostServiceError),
    # S3 presign / access URL (Q12): FAILED_PRECONDITION is configuration, not a conflict.
    ("FAILED_PRECONDITION", S3_ACCESS_URL_ERRORS, HostServiceError),
    ("NOT_FOUND", S3_ACCESS_URL_ERRORS, S3NotFoundError),
]


@pytest.mark.parametrize(("code", "errors", "expected"), _STATUS_TABLE)
def test_statuses_map_to_the_tree(
    refuser: CacheServer[Refuser], code: str, errors: ErrorMap, expected: type[HostServiceError]
) -> None:
    with grpc.insecure_channel(f"unix:{refuser.target}") as channel:
        client = CacheClient(channel, error_mapper=errors)
        with pytest.raises(HostServiceError) as raised:
            client.get(cache_pb2.CacheGetRequest(key=f"{code}:text for {code}"), timeout=5)
    error = raised.value
    cause = error.__cause__
    assert cause is not error  # Q13: never chained to itself
    assert type(error) is expected
    assert isinstance(error, RPCError)
    assert error.code is grpc.StatusCode[code]
    assert error.message == f"text for {code}"
    assert isinstance(cause, grpc.RpcError)
    assert cause.code() is grpc.StatusCode[code]
    # The same condition arriving in-band (a google.rpc.Status) gives the same type.
    in_band = errors.for_status(grpc.StatusCode[code].value[0], "in band")
    assert type(in_band) is expected
    assert in_band.code is grpc.StatusCode[code]


def test_cache_client_maps_errors(refuser: CacheServer[Refuser], bind_env: EnvBinder) -> None:
    bind_env(CACHE, refuser.target)
    with Cache() as cache, pytest.raises(HostServiceError) as raised:
        cache.get("PERMISSION_DENIED:host-service-relay-method-not-allowed")
    assert raised.value.code is grpc.StatusCode.PERMISSION_DENIED
    assert str(raised.value) == "PERMISSION_DENIED: host-service-relay-method-not-allowed"


def test_timeout_raises_a_timeout_error(
    socket_path: Callable[[str], Path], bind_env: EnvBinder
) -> None:
    import threading

    release = threading.Event()

    class Slow:
        def get(
            self, request: cache_pb2.CacheGetRequest, context: grpc.ServicerContext
        ) -> cache_pb2.CacheGetResponse:
            release.wait(5)
            return cache_pb2.CacheGetResponse()

    with serve_cache(socket_path("slow"), service=Slow()) as server:
        bind_env(CACHE, server.target)
        with Cache(timeout=0.05) as cache:
            with pytest.raises(TimeoutError) as raised:
                cache.get("k")
            release.set()
            assert cache.get("k", timeout=5) is None  # per-call timeout overrides
    assert isinstance(raised.value, HostServiceTimeoutError)
    assert raised.value.code is grpc.StatusCode.DEADLINE_EXCEEDED


def test_error_types_keep_the_reference_shape() -> None:
    for cls in (
        NotFoundError,
        AlreadyExistsError,
        TransactionError,
        S3NotFoundError,
        S3PreconditionFailedError,
        S3InvalidRangeError,
        _ClientNotFoundError,
        _ClientRangeError,
    ):
        error = cls("s3: not found")
        assert error.args == ("s3: not found",)
        assert str(error) == "s3: not found"
        assert isinstance(error, HostServiceError)
        assert error.code is cls.default_code
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is cls
        assert (copy.message, copy.code) == (error.message, error.code)
    assert not issubclass(S3NotFoundError, NotFoundError)
    # The client's own checks: the seed's type, and a ValueError, with the seed type's code.
    for local, named in (
        (_ClientNotFoundError, NotFoundError),
        (_ClientRangeError, S3InvalidRangeError),
    ):
        assert issubclass(local, named) and issubclass(local, ValueError)
        assert local.default_code is named.default_code
    header = pickle.loads(pickle.dumps(S3HeaderValueError("opts.content_type", "\r", 4)))
    assert isinstance(header, S3HeaderValueError) and isinstance(header, ValueError)
    assert not issubclass(S3HeaderValueError, HostServiceError)
    assert (header.field, header.character, header.position) == ("opts.content_type", "\r", 4)
    assert str(header) == "opts.content_type contains a control character ('\\r' at 4)"
    timeout = pickle.loads(pickle.dumps(HostServiceTimeoutError("late")))
    assert isinstance(timeout, TimeoutError)
    assert isinstance(timeout, HostServiceTimeoutError)
    assert (timeout.code, str(timeout)) == (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "DEADLINE_EXCEEDED: late",
    )
    generic = HostServiceError("boom", code=grpc.StatusCode.INTERNAL)
    assert str(generic) == "INTERNAL: boom"
    assert str(HostServiceError(code=grpc.StatusCode.UNAVAILABLE)) == "UNAVAILABLE"
    copy = pickle.loads(pickle.dumps(generic))
    assert (copy.code, copy.message) == (grpc.StatusCode.INTERNAL, "boom")


def test_for_status_edge_cases() -> None:
    assert INDEXEDDB_ERRORS.for_status(999, "?").code is grpc.StatusCode.UNKNOWN
    assert type(INDEXEDDB_ERRORS.for_status(5, "x")) is NotFoundError
    with pytest.raises(ValueError, match="OK"):
        INDEXEDDB_ERRORS.for_status(0)
    assert repr(S3_ERRORS) == "ErrorMap('s3')"


def test_async_client_from_several_loops(cache_env: CacheServer[CacheService]) -> None:
    cache = AsyncCache()  # built outside any loop

    async def roundtrip(value: bytes) -> bytes | None:
        await cache.set("k", value)
        return await cache.get("k")

    assert asyncio.run(roundtrip(b"one")) == b"one"
    assert asyncio.run(roundtrip(b"two")) == b"two"  # a new loop: a new channel for it

    async def close() -> None:
        await cache.close()
        await cache.close()

    asyncio.run(close())
    assert not _transport._AIO_POOL.loops or all(
        parse_target(cache_env.target) not in entries
        for entries in _transport._AIO_POOL.loops.values()
    )
    with pytest.raises(ValueError, match="cache client is closed"):
        asyncio.run(roundtrip(b"three"))
