"""The authentication provider example: login flow, external tokens, session settings.

The test plays the identity store's login page with the example's own
``FakeIdentityStore`` (loaded under another module name, so the in-process provider keeps its
own copy) and the signing key it configures the provider with.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sys
from types import ModuleType
from urllib.parse import parse_qs, urlsplit

import grpc
import pytest
from google.protobuf import empty_pb2

from gestalt._runtime.launch import LaunchError
from gestalt.gen.support import RPCError
from gestalt.gen.v1 import authentication_clients, authentication_pb2, runtime_pb2
from gestalt.testing import ProviderHarness
from tests.examples.conftest import EXAMPLES, StartExample

KEY = "test-signing-key"
CALLBACK = "https://gestalt.example.test/auth/callback"


def load_example_module() -> ModuleType:
    """``examples/auth_provider/auth_provider.py`` as module ``example_auth_provider``."""
    name = "example_auth_provider"
    if name not in sys.modules:
        path = EXAMPLES / "auth_provider" / "auth_provider.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def auth(start_example: StartExample) -> ProviderHarness:
    """The auth example, configured with the test's signing key."""
    return start_example(
        "auth_provider",
        name="corp-sso",
        config={"signing_key": KEY, "issuer": "https://id.test/", "session_ttl_seconds": 3600},
    )


def client(harness: ProviderHarness) -> authentication_clients.AuthenticationProviderClient:
    """A client of the provider's ``AuthenticationProvider`` service."""
    return authentication_clients.AuthenticationProviderClient(harness.channel)


def begin(harness: ProviderHarness) -> tuple[authentication_pb2.BeginLoginResponse, str]:
    """Begin a login; return the response and the nonce from the login URL."""
    request = authentication_pb2.BeginLoginRequest(
        callback_url=CALLBACK, host_state="host-state-1", scopes=["openid", "email"]
    )
    response = client(harness).begin_login(request, timeout=10)
    query = parse_qs(urlsplit(response.authorization_url).query)
    return response, query["nonce"][0]


def complete(
    harness: ProviderHarness, started: authentication_pb2.BeginLoginResponse, code: str
) -> authentication_pb2.AuthenticatedUser:
    """Come back from the login page with ``code``, as the host would."""
    request = authentication_pb2.CompleteLoginRequest(
        query={"code": code, "state": "host-state-1"},
        provider_state=started.provider_state,
        callback_url=CALLBACK,
    )
    return client(harness).complete_login(request, timeout=10)


def test_identity_is_authentication(auth: ProviderHarness) -> None:
    assert isinstance(auth.metadata, runtime_pb2.ProviderIdentity)
    assert auth.metadata.kind == runtime_pb2.PROVIDER_KIND_AUTHENTICATION


def test_begin_login_points_at_the_login_page(auth: ProviderHarness) -> None:
    started, nonce = begin(auth)
    url = urlsplit(started.authorization_url)
    assert (url.scheme, url.netloc, url.path) == ("https", "id.test", "/authorize")
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query == {
        "response_type": "code",
        "client_id": "corp-sso",
        "redirect_uri": CALLBACK,
        "scope": "openid email",
        "state": "host-state-1",
        "nonce": nonce,
    }
    assert json.loads(started.provider_state) == {"nonce": nonce, "callback_url": CALLBACK}
    _, other_nonce = begin(auth)
    assert other_nonce != nonce


def test_login_completes_once_per_code(auth: ProviderHarness) -> None:
    store = load_example_module().FakeIdentityStore(KEY)
    started, nonce = begin(auth)
    code = store.authorize("ann", "ann-secret", nonce)
    user = complete(auth, started, code)
    assert user.subject == "user:ann"
    assert (user.email, user.email_verified, user.display_name) == (
        "ann@example.test",
        True,
        "Ann Example",
    )
    assert dict(user.claims) == {"groups": "admins"}
    with pytest.raises(RPCError) as reused:
        complete(auth, started, code)
    assert reused.value.code is grpc.StatusCode.UNKNOWN
    assert reused.value.message == "complete login: failed; details are in the provider log"


def test_login_refuses_codes_of_other_logins_and_forgeries(auth: ProviderHarness) -> None:
    module = load_example_module()
    started, _ = begin(auth)
    _, other_nonce = begin(auth)
    for code in (
        module.FakeIdentityStore(KEY).authorize("bob", "bob-secret", other_nonce),
        module.FakeIdentityStore("another-key").authorize("bob", "bob-secret", "x"),
        "not-a-code",
    ):
        with pytest.raises(RPCError) as refused:
            complete(auth, started, code)
        assert refused.value.code is grpc.StatusCode.UNKNOWN
    with pytest.raises(module.LoginError, match="wrong password"):
        module.FakeIdentityStore(KEY).authorize("ann", "guess", "x")


def test_login_checks_provider_state_and_callback(auth: ProviderHarness) -> None:
    store = load_example_module().FakeIdentityStore(KEY)
    started, nonce = begin(auth)
    code = store.authorize("ann", "ann-secret", nonce)
    requests = [
        authentication_pb2.CompleteLoginRequest(
            query={"code": code}, provider_state=b"[1]", callback_url=CALLBACK
        ),
        authentication_pb2.CompleteLoginRequest(
            query={"code": code},
            provider_state=started.provider_state,
            callback_url="https://elsewhere.test/cb",
        ),
        authentication_pb2.CompleteLoginRequest(
            query={"code": code, "error": "access_denied"},
            provider_state=started.provider_state,
        ),
    ]
    for request in requests:
        with pytest.raises(RPCError) as refused:
            client(auth).complete_login(request, timeout=10)
        assert refused.value.code is grpc.StatusCode.UNKNOWN
    # None of the refusals used the code up.
    assert complete(auth, started, code).subject == "user:ann"


def test_begin_login_without_callback_fails(auth: ProviderHarness) -> None:
    with pytest.raises(RPCError) as failed:
        client(auth).begin_login(authentication_pb2.BeginLoginRequest(), timeout=10)
    assert failed.value.code is grpc.StatusCode.UNKNOWN


def test_external_tokens(auth: ProviderHarness) -> None:
    store = load_example_module().FakeIdentityStore(KEY)
    validate = client(auth).validate_external_token
    token = store.issue_token("bob")
    user = validate(authentication_pb2.ValidateExternalTokenRequest(token=token), timeout=10)
    assert (user.subject, user.email) == ("user:bob", "bob@example.test")
    expired = store.issue_token("bob", lifetime=dt.timedelta(seconds=-1))
    body, _, mac = token.partition(".")
    for bad in (expired, f"{body}.{mac[::-1]}", "", "garbage", "é.é"):
        with pytest.raises(RPCError) as unknown:
            validate(authentication_pb2.ValidateExternalTokenRequest(token=bad), timeout=10)
        assert unknown.value.code is grpc.StatusCode.NOT_FOUND
        assert unknown.value.message == "token not recognized"


def test_session_settings(auth: ProviderHarness) -> None:
    settings = client(auth).get_session_settings(empty_pb2.Empty(), timeout=10)
    assert settings.session_ttl_seconds == 3600


def test_defaults_without_config(start_example: StartExample) -> None:
    harness = start_example("auth_provider")
    settings = client(harness).get_session_settings(empty_pb2.Empty(), timeout=10)
    assert settings.session_ttl_seconds == 8 * 3600
    started, _ = begin(harness)
    assert started.authorization_url.startswith("https://id.example.test/authorize?")


def test_bad_config_fails_the_start(start_example: StartExample) -> None:
    with pytest.raises(LaunchError, match="configure provider: failed"):
        start_example("auth_provider", config={"session_ttl_seconds": "soon"})
