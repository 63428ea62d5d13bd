"""Non-integration provider kinds served by ``python -m gestalt._runtime``, driven over gRPC.

Each provider runs in its own process, launched as the host launches it (``harness.Provider``),
and is called through the generated clients. Where we match the reference the outcome is
compared with ``ex4_kinds/rpc_results.json``; where we deliberately differ (contract section 10)
the test states our behaviour:

* exception text never reaches the host (quirk 13): ``UNKNOWN`` with
  ``"<label>: failed; details are in the provider log"`` (generated adapters:
  ``"<Rpc>: failed; details are in the provider log"``), and the text is on the provider's stderr;
* a health check that raises answers ``ready: false`` with the exception's message, as the
  reference does, but on one line of at most 200 characters;
* a missing secret (``KeyError``) is ``NOT_FOUND`` (quirk 26);
* a negative cache TTL is ``INVALID_ARGUMENT`` and never reaches the provider (quirk 27); Touch
  without a TTL passes ``timedelta(0)`` as the reference did (``touch`` takes a ``timedelta``);
* integral config numbers arrive as ``int`` (quirk 36);
* a base-class method left unimplemented is ``UNIMPLEMENTED``, not ``UNKNOWN`` (section 7);
* S3 methods the provider lacks answer our adapter's ``UNIMPLEMENTED`` message.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf import duration_pb2, empty_pb2, json_format, struct_pb2
from google.protobuf.message import Message

from gestalt.gen.support import RPCError
from gestalt.gen.v1 import (
    authentication_clients,
    authentication_pb2,
    cache_clients,
    cache_pb2,
    runtime_clients,
    runtime_pb2,
    s3_clients,
    s3_pb2,
    secrets_clients,
    secrets_pb2,
)
from tests.runtime.harness import EXAMPLES, Provider

EX4 = EXAMPLES / "ex4_kinds"
PROVIDERS = Path(__file__).resolve().parent / "providers"
RPC_RESULTS: list[dict[str, Any]] = json.loads(
    (EX4 / "rpc_results.json").read_text(encoding="utf-8")
)
GOLDEN = {entry["rpc"]: entry for entry in RPC_RESULTS if "rpc" in entry}
TIMEOUT = 10.0
EMPTY = empty_pb2.Empty()
Outcome = dict[str, Any]
M = TypeVar("M", bound=Message)


# -- helpers -------------------------------------------------------------------------------


def failed(label: str) -> str:
    """Our sanitised message for a provider failure in the runtime's own handlers."""
    return f"{label}: failed; details are in the provider log"


def as_json(message: Message) -> dict[str, Any]:
    """Protobuf JSON with proto field names, the format of the golden files."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def outcome(call: Callable[..., Any], request: Any) -> Outcome:
    """The result of one unary (or client-streaming) call in the golden files' shape."""
    try:
        response = call(request, timeout=TIMEOUT)
    except RPCError as exc:
        return {"code": exc.code.name, "details": exc.message}
    return {"code": "OK", "response": as_json(response)}


def error(code: grpc.StatusCode, details: str) -> Outcome:
    """An expected failure outcome."""
    return {"code": code.name, "details": details}


def golden(name: str) -> Outcome:
    """The reference's outcome for the golden entry ``name``."""
    entry = GOLDEN[name]
    if entry["code"] == "OK":
        return {"code": "OK", "response": entry["response"]}
    return {"code": entry["code"], "details": entry["details"]}


def golden_request(name: str, message_type: type[M]) -> M:
    """The request of the golden entry ``name`` as a protobuf message."""
    return json_format.ParseDict(GOLDEN[name]["request"], message_type())


def calls(provider: Provider) -> list[str]:
    """The ``CALL ...`` lines the provider printed, in order, without the prefix."""
    return [line[5:] for line in provider.stderr().splitlines() if line.startswith("CALL ")]


def stop_cleanly(provider: Provider) -> None:
    """SIGTERM: exit 0 well within the host's 2 s grace, socket file removed."""
    started = time.monotonic()
    code = provider.stop()
    assert code == 0, provider.stderr()
    assert time.monotonic() - started < 2.0
    assert not os.path.exists(provider.socket)


@contextlib.contextmanager
def serving(root: Path, target: str, kind: str, **env: str) -> Iterator[Provider]:
    """A provider process for the duration of the block, stopped cleanly afterwards."""
    provider = Provider(root, target, kind, socket_value=None, parent_pid=None, **env)
    try:
        yield provider
    except BaseException:
        provider.stop()
        raise
    stop_cleanly(provider)


@dataclass
class Clients:
    """Generated clients on one provider's channel."""

    life: runtime_clients.ProviderLifecycleClient
    cache: cache_clients.CacheClient
    secrets: secrets_clients.SecretsProviderClient
    auth: authentication_clients.AuthenticationProviderClient
    s3: s3_clients.S3Client

    @classmethod
    def of(cls, provider: Provider) -> Clients:
        """Clients for every service a test may call on ``provider``."""
        channel = provider.channel
        return cls(
            runtime_clients.ProviderLifecycleClient(channel),
            cache_clients.CacheClient(channel),
            secrets_clients.SecretsProviderClient(channel),
            authentication_clients.AuthenticationProviderClient(channel),
            s3_clients.S3Client(channel),
        )


def configure(version: int, name: str = "p", **config: Any) -> runtime_pb2.ConfigureProviderRequest:
    """A ConfigureProvider request."""
    request = runtime_pb2.ConfigureProviderRequest(name=name, protocol_version=version)
    if config:
        struct = struct_pb2.Struct()
        struct.update(config)
        request.config.CopyFrom(struct)
    return request


# -- one provider process per target for the whole module ------------------------------------


def _module_provider(name: str, root: Path, target: str, kind: str) -> Any:
    """A module-scoped fixture ``name``: one process serving ``target`` for all its tests."""

    def fixture() -> Iterator[Provider]:
        with serving(root, target, kind) as provider:
            yield provider

    fixture.__doc__ = f"The provider process serving {target} as {kind!r}."
    return pytest.fixture(scope="module", name=name)(fixture)


ex4_cache = _module_provider("ex4_cache", EX4, "kinds:cache", "cache")
# Module target: the runtime picks the attribute named after the kind.
ex4_secrets = _module_provider("ex4_secrets", EX4, "kinds", "secrets")
# "auth" is an alias of "authentication" on input.
ex4_auth = _module_provider("ex4_auth", EX4, "kinds:auth", "auth")
ex4_auth_minimal = _module_provider("ex4_auth_minimal", EX4, "kinds:auth_minimal", "authentication")
ex4_s3 = _module_provider("ex4_s3", EX4, "kinds", "s3")
async_cache = _module_provider("async_cache", PROVIDERS, "async_kinds:cache", "cache")
async_secrets = _module_provider("async_secrets", PROVIDERS, "async_kinds", "secrets")
failing_cache = _module_provider("failing_cache", PROVIDERS, "failing", "cache")
failing_secrets = _module_provider("failing_secrets", PROVIDERS, "failing", "secrets")
failing_auth = _module_provider("failing_auth", PROVIDERS, "failing:auth", "authentication")
bare_cache = _module_provider("bare_cache", PROVIDERS, "bare", "cache")
bare_secrets = _module_provider("bare_secrets", PROVIDERS, "bare", "secrets")

K = runtime_pb2.ProviderKind
LIFECYCLE = [
    pytest.param("ex4_cache", K.PROVIDER_KIND_CACHE, id="cache"),
    pytest.param("ex4_secrets", K.PROVIDER_KIND_SECRETS, id="secrets"),
    pytest.param("ex4_auth", K.PROVIDER_KIND_AUTHENTICATION, id="auth"),
    pytest.param("ex4_auth_minimal", K.PROVIDER_KIND_AUTHENTICATION, id="auth-minimal"),
    pytest.param("ex4_s3", K.PROVIDER_KIND_S3, id="s3"),
    pytest.param("async_cache", K.PROVIDER_KIND_CACHE, id="async-cache"),
    pytest.param("async_secrets", K.PROVIDER_KIND_SECRETS, id="async-secrets"),
]


# -- ProviderLifecycle, for every kind --------------------------------------------------------


@pytest.mark.parametrize(("fixture", "kind"), LIFECYCLE)
def test_identity_reports_the_launch_kind(
    fixture: str, kind: int, request: pytest.FixtureRequest
) -> None:
    identity = Clients.of(request.getfixturevalue(fixture)).life.get_provider_identity(
        EMPTY, timeout=TIMEOUT
    )
    assert identity.kind == kind
    assert (identity.min_protocol_version, identity.max_protocol_version) == (3, 3)


@pytest.mark.parametrize(("fixture", "kind"), LIFECYCLE)
def test_configure_with_protocol_3(fixture: str, kind: int, request: pytest.FixtureRequest) -> None:
    life = Clients.of(request.getfixturevalue(fixture)).life
    response = life.configure_provider(configure(3, "configured", size=3), timeout=TIMEOUT)
    assert response.protocol_version == 3


@pytest.mark.parametrize("version", [0, 1, 2, 4])
@pytest.mark.parametrize(("fixture", "kind"), LIFECYCLE)
def test_configure_refuses_other_protocol_versions(
    fixture: str, kind: int, version: int, request: pytest.FixtureRequest
) -> None:
    provider = request.getfixturevalue(fixture)
    life = Clients.of(provider).life
    # The golden entry for version 1; the message format is the contract's (section 2.1).
    expected = golden("cache: ConfigureProvider protocol_version=1")
    expected["details"] = expected["details"].replace(" 1,", f" {version},")
    before = calls(provider)
    assert outcome(life.configure_provider, configure(version, "refused")) == expected
    assert not [c for c in calls(provider)[len(before) :] if c.startswith("configure")]


@pytest.mark.parametrize(("fixture", "kind"), LIFECYCLE)
def test_health_check(fixture: str, kind: int, request: pytest.FixtureRequest) -> None:
    provider = request.getfixturevalue(fixture)
    health = Clients.of(provider).life.health_check(EMPTY, timeout=TIMEOUT)
    if fixture == "ex4_secrets":
        # Vault.health_check raises "vault sealed": its message is the host's answer.
        assert (
            as_json(health) == golden("secrets: HealthCheck where health_check raises")["response"]
        )
        assert not health.ready
        assert health.message == "vault sealed"
        assert "vault sealed" in provider.stderr()
    else:
        assert health.ready
        assert health.message == ""


@pytest.mark.parametrize(("fixture", "kind"), LIFECYCLE)
def test_start_provider(fixture: str, kind: int, request: pytest.FixtureRequest) -> None:
    life = Clients.of(request.getfixturevalue(fixture)).life
    assert life.start_provider(EMPTY, timeout=TIMEOUT).protocol_version == 3


# -- cache ----------------------------------------------------------------------------------


def test_ex4_cache_session_matches_the_golden_script() -> None:
    """The reference's scripted cache session, in order, on a fresh process."""
    with serving(EX4, "kinds:cache", "cache") as provider:
        c = Clients.of(provider)

        def same(name: str, call: Callable[..., Any], message_type: type[Message] | None) -> None:
            request = EMPTY if message_type is None else golden_request(name, message_type)
            assert outcome(call, request) == golden(name), name

        same("cache: GetProviderIdentity before configure", c.life.get_provider_identity, None)
        same(
            "cache: ConfigureProvider protocol_version=1",
            c.life.configure_provider,
            runtime_pb2.ConfigureProviderRequest,
        )
        same(
            "cache: ConfigureProvider protocol_version=3",
            c.life.configure_provider,
            runtime_pb2.ConfigureProviderRequest,
        )
        same("cache: GetProviderIdentity after configure", c.life.get_provider_identity, None)
        same("cache: HealthCheck", c.life.health_check, None)
        same("cache: StartProvider (no start method)", c.life.start_provider, None)
        same("cache: Set a, ttl 5s+1500ns", c.cache.set, cache_pb2.CacheSetRequest)
        same("cache: Set b, ttl unset", c.cache.set, cache_pb2.CacheSetRequest)
        same("cache: Get a", c.cache.get, cache_pb2.CacheGetRequest)
        same("cache: Get missing key", c.cache.get, cache_pb2.CacheGetRequest)
        same("cache: GetMany [a, zz, a]", c.cache.get_many, cache_pb2.CacheGetManyRequest)
        same("cache: SetMany", c.cache.set_many, cache_pb2.CacheSetManyRequest)
        same("cache: Touch a, ttl unset", c.cache.touch, cache_pb2.CacheTouchRequest)
        same("cache: Delete a", c.cache.delete, cache_pb2.CacheDeleteRequest)
        same(
            "cache: DeleteMany [b, b, c, nope]",
            c.cache.delete_many,
            cache_pb2.CacheDeleteManyRequest,
        )
        # Ours: no exception text on the wire, the traceback on stderr.
        assert outcome(c.cache.get, cache_pb2.CacheGetRequest(key="explode")) == error(
            grpc.StatusCode.UNKNOWN, failed("cache get")
        )
    stderr = provider.stderr()
    assert "Traceback" in stderr
    assert "KeyError: 'explode'" in stderr

    reference = next(e for e in RPC_RESULTS if "provider_method_calls_in_order" in e)
    expected = list(reference["provider_method_calls_in_order"])
    # Ours: integral config numbers are ints (quirk 36). Touch without a TTL passes
    # timedelta(0), as the reference did: CacheProvider.touch takes a timedelta.
    expected[expected.index("configure 'mycache' {'size': 10.0}")] = (
        "configure 'mycache' {'size': 10}"
    )
    assert calls(provider) == expected


NEGATIVE_TTLS = [
    pytest.param(duration_pb2.Duration(seconds=-1), id="seconds"),
    pytest.param(duration_pb2.Duration(nanos=-1), id="nanos"),
]


@pytest.mark.parametrize("ttl", NEGATIVE_TTLS)
@pytest.mark.parametrize("rpc", ["set", "set_many", "touch"])
def test_negative_cache_ttl_is_invalid_argument(
    ex4_cache: Provider, rpc: str, ttl: duration_pb2.Duration
) -> None:
    cache = Clients.of(ex4_cache).cache
    key = f"negative-{rpc}-{ttl.seconds}-{ttl.nanos}"
    call: Callable[..., Any]
    request: Message
    if rpc == "set":
        call, request = cache.set, cache_pb2.CacheSetRequest(key=key, value=b"v", ttl=ttl)
    elif rpc == "set_many":
        entries = [cache_pb2.CacheSetEntry(key=key, value=b"v")]
        call, request = cache.set_many, cache_pb2.CacheSetManyRequest(entries=entries, ttl=ttl)
    else:
        call, request = cache.touch, cache_pb2.CacheTouchRequest(key=key, ttl=ttl)
    assert outcome(call, request) == error(
        grpc.StatusCode.INVALID_ARGUMENT, "cache ttl must not be negative"
    )
    assert not [line for line in calls(ex4_cache) if key in line]


def test_cache_ttl_conversion(ex4_cache: Provider) -> None:
    """Zero TTL: None for set, timedelta(0) for touch; sub-microsecond parts are truncated."""
    cache = Clients.of(ex4_cache).cache
    cache.set(
        cache_pb2.CacheSetRequest(key="ttl0", value=b"v", ttl=duration_pb2.Duration()),
        timeout=TIMEOUT,
    )
    ttl = duration_pb2.Duration(seconds=2, nanos=999)
    touched = cache.touch(cache_pb2.CacheTouchRequest(key="ttl0", ttl=ttl), timeout=TIMEOUT)
    assert touched.touched
    log = calls(ex4_cache)
    assert "set 'ttl0' b'v' None" in log
    assert "touch 'ttl0' datetime.timedelta(seconds=2)" in log
    for duration in (None, duration_pb2.Duration()):
        request = cache_pb2.CacheTouchRequest(key="ttl0", ttl=duration)
        assert cache.touch(request, timeout=TIMEOUT).touched
    assert calls(ex4_cache)[-2:] == ["touch 'ttl0' datetime.timedelta(0)"] * 2


# -- the bare base classes -------------------------------------------------------------------


BARE_CACHE_CALLS: list[tuple[str, str, Message]] = [
    ("get", "cache get", cache_pb2.CacheGetRequest(key="k")),
    ("get_many", "cache get_many", cache_pb2.CacheGetManyRequest(keys=["k"])),
    ("set", "cache set", cache_pb2.CacheSetRequest(key="k", value=b"v")),
    (
        "set_many",
        "cache set_many",
        cache_pb2.CacheSetManyRequest(entries=[cache_pb2.CacheSetEntry(key="k", value=b"v")]),
    ),
    ("delete", "cache delete", cache_pb2.CacheDeleteRequest(key="k")),
    ("delete_many", "cache delete_many", cache_pb2.CacheDeleteManyRequest(keys=["k"])),
    ("touch", "cache touch", cache_pb2.CacheTouchRequest(key="k")),
]


@pytest.mark.parametrize(
    ("rpc", "label", "req"), BARE_CACHE_CALLS, ids=[c[0] for c in BARE_CACHE_CALLS]
)
def test_unimplemented_cache_methods_are_unimplemented(
    bare_cache: Provider, rpc: str, label: str, req: Message
) -> None:
    # The reference answered UNKNOWN "<label>: " (an empty NotImplementedError message).
    call = getattr(Clients.of(bare_cache).cache, rpc)
    assert outcome(call, req) == error(grpc.StatusCode.UNIMPLEMENTED, f"{label}: not implemented")


def test_unimplemented_get_secret_is_unimplemented(bare_secrets: Provider) -> None:
    call = Clients.of(bare_secrets).secrets.get_secret
    assert outcome(call, secrets_pb2.GetSecretRequest(name="db")) == error(
        grpc.StatusCode.UNIMPLEMENTED, "get secret: not implemented"
    )


def test_start_provider_ignores_a_non_callable_start(bare_secrets: Provider) -> None:
    # The reference called any attribute named start (quirk 20).
    life = Clients.of(bare_secrets).life
    assert life.start_provider(EMPTY, timeout=TIMEOUT).protocol_version == 3


# -- secrets --------------------------------------------------------------------------------


def test_ex4_secrets(ex4_secrets: Provider) -> None:
    c = Clients.of(ex4_secrets)
    name = "secrets (module target, attribute 'secrets'): GetProviderIdentity"
    assert outcome(c.life.get_provider_identity, EMPTY) == golden(name)
    name = "secrets: GetSecret db"
    request = golden_request(name, secrets_pb2.GetSecretRequest)
    assert outcome(c.secrets.get_secret, request) == golden(name)
    # Ours: a missing secret is NOT_FOUND (the reference: UNKNOWN "get secret: 'missing'").
    request = golden_request(
        "secrets: GetSecret where provider raises KeyError", secrets_pb2.GetSecretRequest
    )
    assert outcome(c.secrets.get_secret, request) == error(
        grpc.StatusCode.NOT_FOUND, "secret 'missing' not found"
    )


# -- authentication --------------------------------------------------------------------------


def test_ex4_auth(ex4_auth: Provider) -> None:
    c = Clients.of(ex4_auth)
    a = authentication_pb2

    def same(name: str, call: Callable[..., Any], message_type: type[Message] | None) -> None:
        request = EMPTY if message_type is None else golden_request(name, message_type)
        assert outcome(call, request) == golden(name), name

    same("auth (kind argument 'auth'): GetProviderIdentity", c.life.get_provider_identity, None)
    same("auth: BeginLogin", c.auth.begin_login, a.BeginLoginRequest)
    same("auth: CompleteLogin", c.auth.complete_login, a.CompleteLoginRequest)
    same("auth: CompleteLogin returning None", c.auth.complete_login, a.CompleteLoginRequest)
    same(
        "auth: ValidateExternalToken",
        c.auth.validate_external_token,
        a.ValidateExternalTokenRequest,
    )
    same(
        "auth: ValidateExternalToken returning None",
        c.auth.validate_external_token,
        a.ValidateExternalTokenRequest,
    )
    same(
        "auth: GetSessionSettings, session_ttl = 90 min 30.7 s",
        c.auth.get_session_settings,
        None,
    )
    same("auth: StartProvider (provider has start())", c.life.start_provider, None)
    assert "start" in calls(ex4_auth)
    # Ours: the PermissionError text ("expired") stays in the provider log.
    request = golden_request("auth: ValidateExternalToken raising", a.ValidateExternalTokenRequest)
    assert outcome(c.auth.validate_external_token, request) == error(
        grpc.StatusCode.UNKNOWN, failed("validate external token")
    )
    assert "PermissionError: expired" in ex4_auth.stderr()


def test_ex4_minimal_auth(ex4_auth_minimal: Provider) -> None:
    c = Clients.of(ex4_auth_minimal)
    a = authentication_pb2
    name = "minimal auth: ValidateExternalToken (no ExternalTokenValidator)"
    request = golden_request(name, a.ValidateExternalTokenRequest)
    assert outcome(c.auth.validate_external_token, request) == golden(name)
    name = "minimal auth: GetSessionSettings (no SessionTTLProvider)"
    assert outcome(c.auth.get_session_settings, EMPTY) == golden(name)
    # Ours: methods not overridden are UNIMPLEMENTED (the reference: UNKNOWN "begin login: ").
    assert outcome(c.auth.begin_login, a.BeginLoginRequest()) == error(
        grpc.StatusCode.UNIMPLEMENTED, "begin login: not implemented"
    )
    assert outcome(c.auth.complete_login, a.CompleteLoginRequest()) == error(
        grpc.StatusCode.UNIMPLEMENTED, "complete login: not implemented"
    )


# -- s3 (raw PascalCase methods) -------------------------------------------------------------


def _ref(key: str) -> s3_pb2.S3ObjectRef:
    return s3_pb2.S3ObjectRef(bucket="b", key=key)


def test_ex4_s3_raw_methods_match_golden(ex4_s3: Provider) -> None:
    c = Clients.of(ex4_s3)
    name = "s3: GetProviderIdentity"
    assert outcome(c.life.get_provider_identity, EMPTY) == golden(name)
    frames = [
        s3_pb2.WriteObjectRequest(
            open=s3_pb2.WriteObjectOpen(ref=_ref("k"), content_type="text/plain")
        ),
        s3_pb2.WriteObjectRequest(data=b"hello wo"),
        s3_pb2.WriteObjectRequest(data=b"rld"),
    ]
    name = "s3: WriteObject (open frame + 2 data frames)"
    assert outcome(c.s3.write_object, frames) == golden(name)
    name = "s3: HeadObject"
    assert outcome(c.s3.head_object, golden_request(name, s3_pb2.HeadObjectRequest)) == golden(name)
    name = "s3: ReadObject"
    stream = c.s3.read_object(golden_request(name, s3_pb2.ReadObjectRequest), timeout=TIMEOUT)
    assert [as_json(chunk) for chunk in stream] == GOLDEN[name]["response_stream"]
    name = "s3: HeadObject of a missing object (provider aborts with NOT_FOUND)"
    assert outcome(c.s3.head_object, golden_request(name, s3_pb2.HeadObjectRequest)) == golden(name)


S3_MISSING: list[tuple[str, str, Message]] = [
    ("list_objects", "ListObjects", s3_pb2.ListObjectsRequest(bucket="b")),
    ("delete_object", "DeleteObject", s3_pb2.DeleteObjectRequest(ref=_ref("k"))),
    ("presign_object", "PresignObject", s3_pb2.PresignObjectRequest(ref=_ref("k"))),
]


@pytest.mark.parametrize(("rpc", "name", "req"), S3_MISSING, ids=[m[1] for m in S3_MISSING])
def test_s3_methods_the_provider_lacks_are_unimplemented(
    ex4_s3: Provider, rpc: str, name: str, req: Message
) -> None:
    # The reference: UNIMPLEMENTED "Method not implemented!".
    call = getattr(Clients.of(ex4_s3).s3, rpc)
    assert outcome(call, req) == error(
        grpc.StatusCode.UNIMPLEMENTED,
        f"gestalt.provider.v1.S3.{name} is not implemented by this provider",
    )


def test_s3_failures_are_sanitised(ex4_s3: Provider) -> None:
    c = Clients.of(ex4_s3)
    name = "s3: CopyObject raising ValueError"
    request = golden_request(name, s3_pb2.CopyObjectRequest)
    # The reference: UNKNOWN "Exception calling application: copy not allowed".
    assert outcome(c.s3.copy_object, request) == error(
        grpc.StatusCode.UNKNOWN, "CopyObject: failed; details are in the provider log"
    )
    assert "ValueError: copy not allowed" in ex4_s3.stderr()
    # A server stream whose generator raises (KeyError for a missing object).
    stream = c.s3.read_object(s3_pb2.ReadObjectRequest(ref=_ref("absent")), timeout=TIMEOUT)
    with pytest.raises(RPCError) as info:
        list(stream)
    assert (info.value.code, info.value.message) == (
        grpc.StatusCode.UNKNOWN,
        "ReadObject: failed; details are in the provider log",
    )
    assert "KeyError: ('b', 'absent')" in ex4_s3.stderr()


# -- no exception text on the wire, for every RPC --------------------------------------------


@dataclass(frozen=True)
class Failure:
    """One RPC against a failing provider and the log line its exception leaves."""

    fixture: str
    label: str
    log_line: str
    call: Callable[[Clients], object]
    raised: bool = True  # the provider raised (else: returned a bad value), so a traceback


def _boom(what: str) -> str:
    return f"RuntimeError: TOPSECRET-{what}\n"


FAILURES = [
    Failure(
        "failing_cache",
        "provider identity",
        _boom("warnings"),
        lambda c: c.life.get_provider_identity(EMPTY, timeout=TIMEOUT),
    ),
    Failure(
        "failing_cache",
        "configure provider",
        _boom("configure"),
        lambda c: c.life.configure_provider(configure(3), timeout=TIMEOUT),
    ),
    Failure(
        "failing_cache",
        "start provider",
        _boom("start"),
        lambda c: c.life.start_provider(EMPTY, timeout=TIMEOUT),
    ),
    Failure(
        "failing_cache",
        "cache get",
        _boom("get"),
        lambda c: c.cache.get(cache_pb2.CacheGetRequest(key="k"), timeout=TIMEOUT),
    ),
    Failure(
        "failing_cache",
        "cache get_many",
        _boom("get_many"),
        lambda c: c.cache.get_many(cache_pb2.CacheGetManyRequest(keys=["k"]), timeout=TIMEOUT),
    ),
    Failure(
        "failing_cache",
        "cache set",
        _boom("set"),
        lambda c: c.cache.set(cache_pb2.CacheSetRequest(key="k", value=b"v"), timeout=TIMEOUT),
    ),
    Failure(
        "failing_cache",
        "cache set_many",
        _boom("set_many"),
        lambda c: c.cache.set_many(
            cache_pb2.CacheSetManyRequest(entries=[cache_pb2.CacheSetEntry(key="k", value=b"v")]),
            timeout=TIMEOUT,
        ),
    ),
    Failure(
        "failing_cache",
        "cache delete",
        _boom("delete"),
        lambda c: c.cache.delete(cache_pb2.CacheDeleteRequest(key="k"), timeout=TIMEOUT),
    ),
    Failure(
        "failing_cache",
        "cache delete_many",
        _boom("delete_many"),
        lambda c: c.cache.delete_many(
            cache_pb2.CacheDeleteManyRequest(keys=["k"]), timeout=TIMEOUT
        ),
    ),
    Failure(
        "failing_cache",
        "cache touch",
        _boom("touch"),
        lambda c: c.cache.touch(cache_pb2.CacheTouchRequest(key="k"), timeout=TIMEOUT),
    ),
    Failure(
        "failing_secrets",
        "get secret",
        _boom("get_secret"),
        lambda c: c.secrets.get_secret(secrets_pb2.GetSecretRequest(name="db"), timeout=TIMEOUT),
    ),
    Failure(
        "failing_secrets",
        "get secret",
        "TypeError: get_secret must return a str\n",
        lambda c: c.secrets.get_secret(secrets_pb2.GetSecretRequest(name="int"), timeout=TIMEOUT),
        raised=False,
    ),
    Failure(
        "failing_auth",
        "provider identity",
        _boom("metadata"),
        lambda c: c.life.get_provider_identity(EMPTY, timeout=TIMEOUT),
    ),
    Failure(
        "failing_auth",
        "begin login",
        _boom("begin_login"),
        lambda c: c.auth.begin_login(authentication_pb2.BeginLoginRequest(), timeout=TIMEOUT),
    ),
    Failure(
        "failing_auth",
        "complete login",
        _boom("complete_login"),
        lambda c: c.auth.complete_login(authentication_pb2.CompleteLoginRequest(), timeout=TIMEOUT),
    ),
    Failure(
        "failing_auth",
        "validate external token",
        _boom("validate_external_token"),
        lambda c: c.auth.validate_external_token(
            authentication_pb2.ValidateExternalTokenRequest(token="t"), timeout=TIMEOUT
        ),
    ),
    Failure(
        "failing_auth",
        "session settings",
        _boom("session_ttl"),
        lambda c: c.auth.get_session_settings(EMPTY, timeout=TIMEOUT),
    ),
]


@pytest.mark.parametrize(
    "case", FAILURES, ids=[f"{f.fixture}-{f.log_line.split(':')[1].strip()}" for f in FAILURES]
)
def test_provider_failures_never_reach_the_host(
    case: Failure, request: pytest.FixtureRequest
) -> None:
    provider: Provider = request.getfixturevalue(case.fixture)
    logged_before = len(provider.stderr())
    with pytest.raises(RPCError) as info:
        case.call(Clients.of(provider))
    assert (info.value.code, info.value.message) == (grpc.StatusCode.UNKNOWN, failed(case.label))
    new_log = provider.stderr()[logged_before:]
    assert ("Traceback" in new_log) == case.raised
    assert case.log_line in new_log


def test_failing_health_check_reports_its_message(failing_cache: Provider) -> None:
    logged_before = len(failing_cache.stderr())
    health = Clients.of(failing_cache).life.health_check(EMPTY, timeout=TIMEOUT)
    assert (health.ready, health.message) == (False, "TOPSECRET-health")
    new_log = failing_cache.stderr()[logged_before:]
    assert "Traceback" in new_log and _boom("health") in new_log


UNWELL = [
    # Squeezed onto one line: newlines, tabs and control characters become single spaces.
    pytest.param("multiline", "disk full on /var/lib retry [31m later", id="multiline"),
    # Capped at 200 characters; the rest (here a fake traceback) never leaves the process.
    pytest.param("long", ("slow " * 40)[:199].rstrip() + "\u2026", id="long"),
    pytest.param("empty", "ConnectionError", id="empty"),
    # str() itself raises: the generic text, the traceback in the log.
    pytest.param(
        "unprintable", "health check failed; details are in the provider log", id="unprintable"
    ),
]


@pytest.fixture(scope="module")
def unwell() -> Iterator[Provider]:
    """The provider whose health_check() raises what its config says."""
    with serving(PROVIDERS, "unwell", "secrets") as provider:
        yield provider


@pytest.mark.parametrize(("mode", "message"), UNWELL)
def test_health_check_message_is_one_capped_line(unwell: Provider, mode: str, message: str) -> None:
    life = Clients.of(unwell).life
    life.configure_provider(configure(3, health=mode), timeout=TIMEOUT)
    logged_before = len(unwell.stderr())
    health = life.health_check(EMPTY, timeout=TIMEOUT)
    assert (health.ready, health.message) == (False, message)
    assert len(health.message) <= 200
    assert "Traceback" in unwell.stderr()[logged_before:]
    life.configure_provider(configure(3, health="ok"), timeout=TIMEOUT)
    assert life.health_check(EMPTY, timeout=TIMEOUT) == runtime_pb2.HealthCheckResponse(ready=True)


# -- async def providers ---------------------------------------------------------------------


def test_async_cache_serves_every_rpc(async_cache: Provider) -> None:
    cache = Clients.of(async_cache).cache
    five = duration_pb2.Duration(seconds=5)
    cache.set(cache_pb2.CacheSetRequest(key="x", value=b"1", ttl=five), timeout=TIMEOUT)
    entries = [cache_pb2.CacheSetEntry(key=k, value=v) for k, v in (("y", b"2"), ("z", b"3"))]
    cache.set_many(cache_pb2.CacheSetManyRequest(entries=entries), timeout=TIMEOUT)
    got = cache.get(cache_pb2.CacheGetRequest(key="x"), timeout=TIMEOUT)
    assert (got.found, got.value) == (True, b"1")
    assert not cache.get(cache_pb2.CacheGetRequest(key="nope"), timeout=TIMEOUT).found
    many = cache.get_many(cache_pb2.CacheGetManyRequest(keys=["y", "nope", "y"]), timeout=TIMEOUT)
    assert [(e.key, e.found, e.value) for e in many.entries] == [
        ("y", True, b"2"),
        ("nope", False, b""),
        ("y", True, b"2"),
    ]
    touch = cache_pb2.CacheTouchRequest(key="x", ttl=duration_pb2.Duration(seconds=1))
    assert cache.touch(touch, timeout=TIMEOUT).touched
    assert cache.delete(cache_pb2.CacheDeleteRequest(key="x"), timeout=TIMEOUT).deleted
    assert not cache.delete(cache_pb2.CacheDeleteRequest(key="x"), timeout=TIMEOUT).deleted
    deleted = cache.delete_many(
        cache_pb2.CacheDeleteManyRequest(keys=["y", "y", "z", "nope"]), timeout=TIMEOUT
    )
    assert deleted.deleted == 2
    log = calls(async_cache)
    for line in (
        "set 'x' b'1' datetime.timedelta(seconds=5)",
        "set_many [('y', b'2'), ('z', b'3')] None",
        "get_many ['y', 'nope', 'y']",
        "touch 'x' datetime.timedelta(seconds=1)",
        "delete_many ['y', 'y', 'z', 'nope']",
    ):
        assert line in log


def test_async_handlers_share_one_long_lived_loop(async_cache: Provider) -> None:
    cache = Clients.of(async_cache).cache
    probe = cache_pb2.CacheGetRequest(key="__loop__")
    with ThreadPoolExecutor(4) as pool:
        answers = set(pool.map(lambda _: cache.get(probe, timeout=TIMEOUT).value, range(8)))
    assert len(answers) == 1
    assert answers.pop().decode().endswith("|gestalt-servicer-loop")


def test_async_handlers_run_concurrently(async_cache: Provider) -> None:
    cache = Clients.of(async_cache).cache
    slow = cache_pb2.CacheGetRequest(key="__slow__")
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        values = list(pool.map(lambda _: cache.get(slow, timeout=TIMEOUT).value, range(16)))
    assert values == [b"slow"] * 16
    # 16 x 0.25 s one after the other would take 4 s.
    assert time.monotonic() - started < 1.5


def test_async_configure_metadata_and_integral_numbers(async_cache: Provider) -> None:
    c = Clients.of(async_cache)
    request = configure(3, "acache", size=10, ratio=0.5, neg=-3, big=1e20, nested={"n": [1, 2.5]})
    assert c.life.configure_provider(request, timeout=TIMEOUT).protocol_version == 3
    config = c.cache.get(cache_pb2.CacheGetRequest(key="__config__"), timeout=TIMEOUT).value
    # Integral numbers below 2**53 become int (quirk 36); 1e20 stays a float.
    assert (
        config == b'{"big": 1e+20, "neg": -3, "nested": {"n": [1, 2.5]}, "ratio": 0.5, "size": 10}'
    )
    assert c.life.get_provider_identity(EMPTY, timeout=TIMEOUT).name == "acache"


def test_async_secrets(async_secrets: Provider) -> None:
    s = Clients.of(async_secrets).secrets
    assert s.get_secret(secrets_pb2.GetSecretRequest(name="db"), timeout=TIMEOUT).value == "s3cr3t"
    assert outcome(s.get_secret, secrets_pb2.GetSecretRequest(name="gone")) == error(
        grpc.StatusCode.NOT_FOUND, "secret 'gone' not found"
    )
    assert outcome(s.get_secret, secrets_pb2.GetSecretRequest(name="explode")) == error(
        grpc.StatusCode.UNKNOWN, failed("get secret")
    )
    assert "RuntimeError: TOPSECRET-async-vault" in async_secrets.stderr()


def test_async_core_methods_back_the_default_batch_methods() -> None:
    with serving(PROVIDERS, "async_kinds:core_cache", "cache") as provider:
        cache = Clients.of(provider).cache
        cache.set(cache_pb2.CacheSetRequest(key="a", value=b"1"), timeout=TIMEOUT)
        many = cache.get_many(cache_pb2.CacheGetManyRequest(keys=["a", "b"]), timeout=TIMEOUT)
        assert [(e.key, e.found) for e in many.entries] == [("a", True), ("b", False)]
        entries = [cache_pb2.CacheSetEntry(key="b", value=b"2")]
        cache.set_many(cache_pb2.CacheSetManyRequest(entries=entries), timeout=TIMEOUT)
        request = cache_pb2.CacheDeleteManyRequest(keys=["a", "b", "c"])
        assert cache.delete_many(request, timeout=TIMEOUT).deleted == 2


# -- PluginProviderAdapter with a protoc servicer --------------------------------------------


def test_adapter_with_a_protoc_servicer(tmp_path: Path) -> None:
    marker = tmp_path / "closed.txt"
    with serving(
        PROVIDERS, "adapter_secrets", "secrets", GESTALT_TEST_CLOSE_MARKER=str(marker)
    ) as provider:
        c = Clients.of(provider)
        identity = c.life.get_provider_identity(EMPTY, timeout=TIMEOUT)
        assert identity.kind == runtime_pb2.PROVIDER_KIND_SECRETS
        assert c.life.configure_provider(configure(3), timeout=TIMEOUT).protocol_version == 3
        assert c.life.health_check(EMPTY, timeout=TIMEOUT).ready
        request = secrets_pb2.GetSecretRequest(name="db")
        assert c.secrets.get_secret(request, timeout=TIMEOUT).value == "from-adapter"
        # context.abort in a plain protoc servicer method works as in grpcio.
        assert outcome(c.secrets.get_secret, secrets_pb2.GetSecretRequest(name="nope")) == error(
            grpc.StatusCode.NOT_FOUND, "no secret named nope"
        )
        assert not marker.exists()
    # close() ran exactly once, on SIGTERM.
    assert marker.read_text(encoding="utf-8") == "closed\n"
