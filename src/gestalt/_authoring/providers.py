"""Provider kinds other than integration plugins: base classes and optional mixins.

A provider is an object the runtime (``gestalt._runtime.process``) serves for one kind: subclass the
kind's base class (``CacheProvider``, ``SecretsProvider``, ``AuthenticationProvider``,
``S3Provider``) and add any of the optional mixins (``MetadataProvider``, ``HealthChecker``,
``WarningsProvider``, ``Closer``, ``ExternalTokenValidator``, ``SessionTTLProvider``). Anything
else can be served with ``PluginProviderAdapter`` and a registration callback.

Choices beyond the reference SDK (contract section 10):

* A base-class method left unimplemented answers ``UNIMPLEMENTED`` instead of ``UNKNOWN`` with
  an empty message.
* ``ProviderKind`` also has ``indexeddb`` (quirk 16): the host launches Python components with
  that kind; such a provider implements the ``IndexedDB`` RPCs as snake_case methods and is served
  with the generated adapter, like S3, agent and workflow providers.
* ``start()`` is called on ``StartProvider`` only when it is callable (quirk 20).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from gestalt._authoring.kinds import ProviderKind as ProviderKind
from gestalt._authoring.serving import serve

if TYPE_CHECKING:
    import grpc
    import grpc.aio

    from gestalt._clients.cache_types import CacheEntry


@dataclasses.dataclass(slots=True)
class ProviderMetadata:
    """Descriptive metadata a ``MetadataProvider`` reports to the host."""

    kind: ProviderKind | str
    name: str = ""
    display_name: str = ""
    description: str = ""
    version: str = ""


class PluginProvider:
    """Base interface shared by provider-style runtimes."""

    def configure(self, name: str, config: dict[str, Any]) -> None:
        """Apply the host-provided provider name and parsed configuration (default: nothing)."""


class MetadataProvider:
    """Optional mixin for providers that expose descriptive metadata."""

    def metadata(self) -> ProviderMetadata:
        """Return metadata for the running provider instance."""
        raise NotImplementedError


class HealthChecker:
    """Optional mixin for providers that support health checks."""

    def health_check(self) -> None:
        """Raise if the provider is unhealthy; the message is reported to the host."""


class WarningsProvider:
    """Optional mixin for providers that emit startup warnings."""

    def warnings(self) -> list[str]:
        """Return human-readable warnings for the host to surface."""
        return []


class Closer:
    """Optional mixin for providers with explicit shutdown work."""

    def close(self) -> None:
        """Release provider resources; called once, after in-flight calls have drained."""


@runtime_checkable
class Starter(Protocol):
    """Optional mixin for providers with work to do once the host starts them.

    Any provider with a callable ``start`` attribute is a ``Starter``: the runtime calls
    ``start()`` (plain or ``async def``) when the host sends ``StartProvider``, after
    ``ConfigureProvider``. Raising fails that call with a sanitised ``UNKNOWN``.
    """

    def start(self) -> None:
        """Begin the provider's work (background loops, connections) after configuration."""


class _Served(PluginProvider):
    """A provider the runtime serves for the kind in ``_kind``."""

    _kind: ProviderKind

    def serve(self) -> None:
        """Serve this provider over gRPC until the host stops it."""
        serve(self, self._kind)


class AuthenticationProvider(_Served):
    """Base class for authentication providers.

    Requests and responses are the generated protocol messages re-exported from ``gestalt``
    (``BeginLoginRequest``, ``BeginLoginResponse``, ``CompleteLoginRequest``,
    ``AuthenticatedUser``).
    """

    _kind = ProviderKind.AUTHENTICATION

    def begin_login(self, request: Any) -> Any:
        """Begin an interactive login flow; return a ``BeginLoginResponse``."""
        raise NotImplementedError

    def complete_login(self, request: Any) -> Any:
        """Complete an interactive login flow; return an ``AuthenticatedUser``."""
        raise NotImplementedError


class ExternalTokenValidator:
    """Optional mixin for providers that validate external bearer tokens."""

    def validate_external_token(self, token: str) -> Any:
        """Return the ``AuthenticatedUser`` for ``token``, or ``None`` if it is not recognised."""
        raise NotImplementedError


class SessionTTLProvider:
    """Optional mixin for providers that control session lifetimes."""

    def session_ttl(self) -> dt.timedelta:
        """Return the requested session time-to-live."""
        raise NotImplementedError


class SecretsProvider(_Served):
    """Base class for secret-provider runtimes.

    Raise ``KeyError`` (or ``LookupError``) for a secret that does not exist: the host then
    sees ``NOT_FOUND`` rather than a generic failure.
    """

    _kind = ProviderKind.SECRETS

    def get_secret(self, name: str) -> str:
        """Return a secret value by name."""
        raise NotImplementedError


class CacheProvider(_Served):
    """Base class for cache-provider runtimes.

    Implement ``get``, ``set``, ``delete`` and ``touch``; the batch methods default to calling
    those per key. ``set`` and ``set_many`` receive a ``timedelta`` or ``None`` (no expiry);
    ``touch`` always receives a ``timedelta``, where ``timedelta(0)`` means "no expiry any more"
    (the host sends a touch without a TTL for that, and its own cache then keeps the entry for
    good). Negative TTLs are refused before they reach the provider.
    """

    _kind = ProviderKind.CACHE

    def get(self, key: str) -> bytes | None:
        """Return a cached value or None if the key is missing."""
        raise NotImplementedError

    def get_many(self, keys: list[str]) -> dict[str, bytes]:
        """Return the subset of keys that currently exist."""
        found: dict[str, bytes] = {}
        for key in keys:
            value = self.get(key)
            if value is not None:
                found[key] = value
        return found

    def set(self, key: str, value: bytes, ttl: dt.timedelta | None = None) -> None:
        """Store value for key with an optional time-to-live."""
        raise NotImplementedError

    def set_many(self, entries: list[CacheEntry], ttl: dt.timedelta | None = None) -> None:
        """Store multiple cache entries using repeated set() calls."""
        for entry in entries:
            self.set(entry.key, entry.value, ttl)

    def delete(self, key: str) -> bool:
        """Delete a cache entry and report whether it existed."""
        raise NotImplementedError

    def delete_many(self, keys: list[str]) -> int:
        """Delete a batch of cache keys and return the number removed."""
        return sum(1 for key in dict.fromkeys(keys) if self.delete(key))

    def touch(self, key: str, ttl: dt.timedelta) -> bool:
        """Give an existing key a new TTL (``timedelta(0)``: no expiry); True if the key exists."""
        raise NotImplementedError


class S3Provider(_Served):
    """Base class for S3-compatible object store runtimes.

    Implement the ``gestalt.provider.v1.S3`` RPCs as methods taking the protocol request (or
    request iterator for ``write_object``) and the gRPC servicer context, named in snake_case
    (``read_object``) or like the RPC (``ReadObject``). Abort with ``NOT_FOUND``,
    ``FAILED_PRECONDITION`` or ``OUT_OF_RANGE`` for missing objects, failed conditions and bad
    ranges; an RPC you do not implement answers ``UNIMPLEMENTED``.
    """

    _kind = ProviderKind.S3


#: Registration callback of ``PluginProviderAdapter``.
RegisterServices = Callable[["grpc.Server | grpc.aio.Server", Any], None]


class PluginProviderAdapter:
    """Serve ``provider`` by calling ``register_services(server, provider)``.

    The callback receives a server on which the standard generated
    ``add_<Service>Servicer_to_server(servicer, server)`` functions work with plain methods
    (``context.abort`` behaves as in grpcio) and so do the ``gestalt.gen`` adapters. ``kind``
    names the ``ProviderLifecycle`` identity; ``close()`` is forwarded to the provider.
    """

    def __init__(
        self, kind: ProviderKind | str, provider: Any, register_services: RegisterServices
    ) -> None:
        self.kind = ProviderKind.parse(kind)
        self.provider = provider
        self.register_services = register_services

    def serve(self) -> None:
        """Start the provider's gRPC runtime."""
        serve(self, self.kind)

    def close(self) -> None:
        """Close the wrapped provider if it has a ``close()``."""
        close = getattr(self.provider, "close", None)
        if callable(close):
            close()


#: Base class a target must be an instance of, per kind (``PluginProviderAdapter`` aside).
KIND_BASES: dict[ProviderKind, type] = {
    ProviderKind.AUTHENTICATION: AuthenticationProvider,
    ProviderKind.CACHE: CacheProvider,
    ProviderKind.S3: S3Provider,
    ProviderKind.SECRETS: SecretsProvider,
}
