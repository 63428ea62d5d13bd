"""Auth provider: an authentication provider in front of a fake, in-memory identity store.

The host signs users in with an interactive login flow in two calls, and may also ask the
provider to recognise bearer tokens issued elsewhere:

1. ``begin_login``: the host sends its callback URL and its (already wrapped) OAuth ``state``;
   we answer with the identity store's login URL and an opaque ``provider_state`` (a fresh
   nonce and the callback URL) that the host hands back unchanged in step 3.
2. The user signs in on the store's login page, which redirects to the callback with a
   one-time ``code``; :meth:`FakeIdentityStore.authorize` plays that page here.
3. ``complete_login``: the host sends the callback's query and the ``provider_state``; we check
   that the code was issued for this login's nonce, redeem it once, and return the user.

``validate_external_token`` accepts tokens from :meth:`FakeIdentityStore.issue_token` and
answers ``None`` (the host sees NOT_FOUND) for unknown, tampered or expired ones;
``session_ttl`` tells the host how long its sessions last.

Codes and tokens are HMAC-signed with the configured ``signing_key``, so anything holding the
same key (a test, say) can act as the store's login page. Config keys, all optional:
``issuer`` (login page base URL), ``signing_key`` and ``session_ttl_seconds`` (default 8 h).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode

from gestalt import (
    AuthenticatedUser,
    AuthenticationProvider,
    BeginLoginRequest,
    BeginLoginResponse,
    CompleteLoginRequest,
    ExternalTokenValidator,
    SessionTTLProvider,
)

DEFAULT_ISSUER = "https://id.example.test"
DEFAULT_SIGNING_KEY = "dev-only-signing-key"
DEFAULT_SESSION_TTL = dt.timedelta(hours=8)
CODE_LIFETIME = dt.timedelta(minutes=5)


@dataclasses.dataclass(frozen=True, slots=True)
class Account:
    """One user of the fake identity store."""

    username: str
    password: str
    email: str
    display_name: str
    groups: tuple[str, ...] = ()


ACCOUNTS = (
    Account("ann", "ann-secret", "ann@example.test", "Ann Example", ("admins",)),
    Account("bob", "bob-secret", "bob@example.test", "Bob Example"),
)


class LoginError(Exception):
    """A login cannot be completed (bad state, code or credentials)."""


class FakeIdentityStore:
    """Users, their passwords, and signed one-time codes and bearer tokens, all in memory."""

    def __init__(self, signing_key: str, accounts: tuple[Account, ...] = ACCOUNTS) -> None:
        if not signing_key:
            raise ValueError("signing_key must not be empty")
        self._key = signing_key.encode()
        self.accounts = {account.username: account for account in accounts}

    def authorize(self, username: str, password: str, nonce: str) -> str:
        """What the login page does: check the password, return a code bound to ``nonce``."""
        account = self.accounts.get(username)
        if account is None or not hmac.compare_digest(account.password.encode(), password.encode()):
            raise LoginError("unknown user or wrong password")
        return self._sign({"typ": "code", "sub": username, "nonce": nonce}, CODE_LIFETIME)

    def issue_token(self, username: str, lifetime: dt.timedelta = dt.timedelta(hours=1)) -> str:
        """A bearer token for ``username``, as the store would hand to an API client."""
        if username not in self.accounts:
            raise LoginError(f"unknown user {username!r}")
        return self._sign({"typ": "token", "sub": username}, lifetime)

    def check(self, signed: str, typ: str) -> dict[str, Any] | None:
        """The payload of a code or token we signed, or None if forged, expired or mistyped."""
        body, _, mac = signed.partition(".")
        if not hmac.compare_digest(mac.encode(), self._mac(body).encode()):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(body.encode()))
        except ValueError:
            return None
        if not isinstance(payload, dict) or payload.get("typ") != typ:
            return None
        if payload.get("sub") not in self.accounts or payload.get("exp", 0) < time.time():
            return None
        return payload

    def user(self, username: str) -> AuthenticatedUser:
        """The host's view of an account."""
        account = self.accounts[username]
        return AuthenticatedUser(
            subject=f"user:{account.username}",
            email=account.email,
            email_verified=True,
            display_name=account.display_name,
            claims={"groups": ",".join(account.groups)},
        )

    def _sign(self, payload: dict[str, Any], lifetime: dt.timedelta) -> str:
        payload = {**payload, "exp": time.time() + lifetime.total_seconds()}
        body = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
        return f"{body}.{self._mac(body)}"

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()


class ExampleAuthProvider(AuthenticationProvider, ExternalTokenValidator, SessionTTLProvider):
    """Logs users in against :class:`FakeIdentityStore` and validates its bearer tokens."""

    def __init__(self) -> None:
        self.issuer = DEFAULT_ISSUER
        self.client_id = "gestalt"
        self.store = FakeIdentityStore(DEFAULT_SIGNING_KEY)
        self.ttl = DEFAULT_SESSION_TTL
        self._redeemed: dict[str, float] = {}  # code -> expiry, to refuse a second use
        self._lock = threading.Lock()

    def configure(self, name: str, config: dict[str, Any]) -> None:
        """Read ``issuer``, ``signing_key`` and ``session_ttl_seconds`` from the config."""
        self.client_id = name or self.client_id
        self.issuer = str(config.get("issuer", DEFAULT_ISSUER)).rstrip("/")
        self.store = FakeIdentityStore(str(config.get("signing_key", DEFAULT_SIGNING_KEY)))
        seconds = config.get("session_ttl_seconds", DEFAULT_SESSION_TTL.total_seconds())
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
            raise ValueError(f"session_ttl_seconds must be a positive number, not {seconds!r}")
        self.ttl = dt.timedelta(seconds=seconds)

    def begin_login(self, request: BeginLoginRequest) -> BeginLoginResponse:
        """Send the user to the store's login page; ``provider_state`` carries a fresh nonce."""
        if not request.callback_url:
            raise ValueError("callback_url is required")
        nonce = secrets.token_urlsafe(16)
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": request.callback_url,
            "scope": " ".join(request.scopes) or "openid email",
            "state": request.host_state,
            "nonce": nonce,
        }
        state = {"nonce": nonce, "callback_url": request.callback_url}
        return BeginLoginResponse(
            authorization_url=f"{self.issuer}/authorize?{urlencode(query)}",
            provider_state=json.dumps(state).encode(),
        )

    def complete_login(self, request: CompleteLoginRequest) -> AuthenticatedUser:
        """Redeem the callback's one-time ``code`` for the user it was issued to."""
        try:
            state = json.loads(request.provider_state)
        except ValueError:
            state = None
        if not isinstance(state, dict) or "nonce" not in state:
            raise LoginError("provider_state is not one of ours")
        if request.callback_url and request.callback_url != state.get("callback_url"):
            raise LoginError("the login was begun for another callback URL")
        code = request.query.get("code", "")
        if "error" in request.query:
            raise LoginError(f"the identity store refused the login: {request.query['error']}")
        payload = self.store.check(code, "code")
        if payload is None or payload.get("nonce") != state.get("nonce"):
            raise LoginError("the code is invalid, expired, or from another login")
        with self._lock:
            if code in self._redeemed:
                raise LoginError("the code was already used")
            now = time.time()
            self._redeemed = {c: exp for c, exp in self._redeemed.items() if exp >= now}
            self._redeemed[code] = float(payload["exp"])
        return self.store.user(str(payload["sub"]))

    def validate_external_token(self, token: str) -> AuthenticatedUser | None:
        """The user a store-issued bearer token belongs to, or None."""
        payload = self.store.check(token, "token")
        return None if payload is None else self.store.user(str(payload["sub"]))

    def session_ttl(self) -> dt.timedelta:
        """How long host sessions created by this provider last."""
        return self.ttl


provider = ExampleAuthProvider()
