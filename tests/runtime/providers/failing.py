"""Providers whose every method raises, to check that no exception text reaches the host.

Each exception message holds ``TOPSECRET-<what>``: the tests assert it is absent from the
gRPC status and present in the provider's stderr.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NoReturn

from gestalt import (
    AuthenticationProvider,
    CacheProvider,
    ExternalTokenValidator,
    HealthChecker,
    MetadataProvider,
    ProviderMetadata,
    SecretsProvider,
    SessionTTLProvider,
    WarningsProvider,
)


def boom(what: str) -> NoReturn:
    """Raise an exception whose text must stay inside the provider process."""
    raise RuntimeError(f"TOPSECRET-{what}")


class FailingCache(CacheProvider, WarningsProvider, HealthChecker):
    """A cache provider that fails in every method, lifecycle hooks included."""

    def configure(self, name: str, config: dict[str, Any]) -> None:
        boom("configure")

    def warnings(self) -> list[str]:
        boom("warnings")

    def health_check(self) -> None:
        boom("health")

    def start(self) -> None:
        boom("start")

    def get(self, key: str) -> bytes | None:
        boom("get")

    def get_many(self, keys: list[str]) -> dict[str, bytes]:
        boom("get_many")

    def set(self, key: str, value: bytes, ttl: dt.timedelta | None = None) -> None:
        boom("set")

    def set_many(self, entries: list[Any], ttl: dt.timedelta | None = None) -> None:
        boom("set_many")

    def delete(self, key: str) -> bool:
        boom("delete")

    def delete_many(self, keys: list[str]) -> int:
        boom("delete_many")

    def touch(self, key: str, ttl: dt.timedelta) -> bool:
        boom("touch")


class FailingSecrets(SecretsProvider):
    """Raises for every name but ``int``, for which it returns a non-string."""

    def get_secret(self, name: str) -> str:
        if name == "int":
            return 42  # type: ignore[return-value]
        boom("get_secret")


class FailingAuth(
    AuthenticationProvider, MetadataProvider, ExternalTokenValidator, SessionTTLProvider
):
    """An authentication provider that fails in every method."""

    def metadata(self) -> ProviderMetadata:
        boom("metadata")

    def begin_login(self, request: Any) -> Any:
        boom("begin_login")

    def complete_login(self, request: Any) -> Any:
        boom("complete_login")

    def validate_external_token(self, token: str) -> Any:
        boom("validate_external_token")

    def session_ttl(self) -> dt.timedelta:
        boom("session_ttl")


cache = FailingCache()
secrets = FailingSecrets()
auth = FailingAuth()
