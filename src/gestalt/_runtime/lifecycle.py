"""The servicers of every provider kind but integration plugins (contract sections 2.3 and 7).

``ProviderLifecycle`` for all of them, the ``AuthenticationProvider``, ``SecretsProvider``
and ``Cache`` services, and :func:`register_provider`, which puts a provider of any of these
kinds on the server; the runtime imports this module only to serve such a provider (see
:mod:`gestalt._runtime.servicers` for what they share with the integration servicer).

The one exception to "no exception text reaches the host" is ``HealthCheck``: raising from
``health_check()`` is how a provider reports ill health, so the host gets ``ready: false`` and
the exception's message (one line, capped). A missing secret (``LookupError``) is
``NOT_FOUND`` (quirk 26); a negative cache TTL ``INVALID_ARGUMENT`` (quirk 27). An unset or zero
TTL reaches ``set``/``set_many`` as ``None`` and ``touch`` as ``timedelta(0)``: no expiry.
"""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import duration_pb2, empty_pb2

from gestalt._authoring.providers import (
    CacheProvider,
    ExternalTokenValidator,
    HealthChecker,
    MetadataProvider,
    PluginProviderAdapter,
    ProviderKind,
    ProviderMetadata,
    SessionTTLProvider,
    WarningsProvider,
)
from gestalt._runtime.servicers import (
    PROTOCOL_VERSION,
    Context,
    call,
    check_version,
    config_dict,
    fail,
    guarded,
    logger,
)
from gestalt.gen.v1 import cache_pb2, runtime_pb2, secrets_pb2

_KIND_NUMBERS = {
    ProviderKind.INTEGRATION: runtime_pb2.PROVIDER_KIND_INTEGRATION,
    ProviderKind.AUTHENTICATION: runtime_pb2.PROVIDER_KIND_AUTHENTICATION,
    ProviderKind.INDEXEDDB: runtime_pb2.PROVIDER_KIND_INDEXEDDB,
    ProviderKind.SECRETS: runtime_pb2.PROVIDER_KIND_SECRETS,
    ProviderKind.TELEMETRY: runtime_pb2.PROVIDER_KIND_TELEMETRY,
    ProviderKind.CACHE: runtime_pb2.PROVIDER_KIND_CACHE,
    ProviderKind.S3: runtime_pb2.PROVIDER_KIND_S3,
    ProviderKind.WORKFLOW: runtime_pb2.PROVIDER_KIND_WORKFLOW,
    ProviderKind.AGENT: runtime_pb2.PROVIDER_KIND_AGENT,
    ProviderKind.RUNTIME: runtime_pb2.PROVIDER_KIND_RUNTIME,
    ProviderKind.AUTHORIZATION: runtime_pb2.PROVIDER_KIND_AUTHORIZATION,
}


#: Longest ``HealthCheckResponse.message`` sent, in characters.
HEALTH_MESSAGE_LIMIT = 200
_UNHEALTHY = "health check failed; details are in the provider log"


def health_message(exc: Exception) -> str:
    """What the host is told about a failed ``health_check()``: the exception's own words.

    Raising is the documented way to report ill health, so ``str(exc)`` is the message (the
    reference's contract), squeezed onto one line and cut to ``HEALTH_MESSAGE_LIMIT``
    characters (control characters become spaces). An empty message gives the exception's
    class name; a ``__str__`` that fails gives a generic text. Never a traceback.
    """
    try:
        text = " ".join("".join(c if c.isprintable() else " " for c in str(exc)).split())
    except Exception:
        return _UNHEALTHY
    if not text:
        return type(exc).__name__
    if len(text) > HEALTH_MESSAGE_LIMIT:
        text = text[: HEALTH_MESSAGE_LIMIT - 1].rstrip() + "\u2026"
    return text


class Lifecycle:
    """``ProviderLifecycle`` for every kind but integration plugins (contract 2.3)."""

    def __init__(self, provider: Any, kind: ProviderKind) -> None:
        self.provider = provider
        self.kind = kind

    async def get_provider_identity(
        self, request: empty_pb2.Empty, context: Context
    ) -> runtime_pb2.ProviderIdentity:
        identity = runtime_pb2.ProviderIdentity(
            kind=_KIND_NUMBERS[self.kind],
            min_protocol_version=PROTOCOL_VERSION,
            max_protocol_version=PROTOCOL_VERSION,
        )
        if isinstance(self.provider, MetadataProvider):
            meta = await guarded(context, "provider identity", self.provider.metadata)
            if isinstance(meta, ProviderMetadata):
                try:
                    kind = ProviderKind.parse(meta.kind)
                except ValueError as exc:
                    await fail(context, "provider identity", exc)
                identity.kind = _KIND_NUMBERS[kind]
                identity.name = meta.name
                identity.display_name = meta.display_name
                identity.description = meta.description
                identity.version = meta.version
        if isinstance(self.provider, WarningsProvider):
            warnings = await guarded(context, "provider identity", self.provider.warnings)
            identity.warnings.extend(str(w) for w in warnings or ())
        return identity

    async def configure_provider(
        self, request: runtime_pb2.ConfigureProviderRequest, context: Context
    ) -> runtime_pb2.ConfigureProviderResponse:
        await check_version(context, request.protocol_version)
        configure = getattr(self.provider, "configure", None)
        if callable(configure):
            config = config_dict(request.config if request.HasField("config") else None)
            await guarded(context, "configure provider", configure, request.name, config)
        return runtime_pb2.ConfigureProviderResponse(protocol_version=PROTOCOL_VERSION)

    async def health_check(
        self, request: empty_pb2.Empty, context: Context
    ) -> runtime_pb2.HealthCheckResponse:
        if not isinstance(self.provider, HealthChecker):
            return runtime_pb2.HealthCheckResponse(ready=True)
        try:
            await call(self.provider.health_check)
        except Exception as exc:
            logger.warning("health check failed", exc_info=exc)
            return runtime_pb2.HealthCheckResponse(ready=False, message=health_message(exc))
        return runtime_pb2.HealthCheckResponse(ready=True)

    async def start_provider(
        self, request: empty_pb2.Empty, context: Context
    ) -> runtime_pb2.StartRuntimeProviderResponse:
        start = getattr(self.provider, "start", None)
        if callable(start):
            await guarded(context, "start provider", start)
        return runtime_pb2.StartRuntimeProviderResponse(protocol_version=PROTOCOL_VERSION)


class Authentication:
    """``AuthenticationProvider`` (contract 7.1)."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider

    async def begin_login(self, request: Any, context: Context) -> Any:
        begin = self.provider.begin_login
        return await self._required(context, "begin login", begin, request, "response")

    async def complete_login(self, request: Any, context: Context) -> Any:
        complete = self.provider.complete_login
        return await self._required(context, "complete login", complete, request, "user")

    async def _required(
        self, context: Context, label: str, method: Any, request: Any, what: str
    ) -> Any:
        """``method(request)``'s answer; ``None`` fails the call ``INTERNAL`` naming ``what``."""
        answer = await guarded(context, label, method, request)
        if answer is None:
            await context.abort(
                grpc.StatusCode.INTERNAL, f"authentication provider returned nil {what}"
            )
        return answer

    async def validate_external_token(self, request: Any, context: Context) -> Any:
        if not isinstance(self.provider, ExternalTokenValidator):
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED,
                "authentication provider does not support external token validation",
            )
        validate = self.provider.validate_external_token
        user = await guarded(context, "validate external token", validate, request.token)
        if user is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "token not recognized")
        return user

    async def get_session_settings(self, request: empty_pb2.Empty, context: Context) -> Any:
        from gestalt.gen.v1 import authentication_pb2

        if not isinstance(self.provider, SessionTTLProvider):
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED,
                "authentication provider does not expose session settings",
            )
        ttl = await guarded(context, "session settings", self.provider.session_ttl)
        if not isinstance(ttl, dt.timedelta):
            await fail(context, "session settings", TypeError("session_ttl must be a timedelta"))
        seconds = max(0, int(ttl.total_seconds()))
        return authentication_pb2.AuthSessionSettings(session_ttl_seconds=seconds)


class Secrets:
    """``SecretsProvider`` (contract 7.2)."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider

    async def get_secret(
        self, request: secrets_pb2.GetSecretRequest, context: Context
    ) -> secrets_pb2.GetSecretResponse:
        try:
            value = await call(self.provider.get_secret, request.name)
        except LookupError:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"secret {request.name!r} not found")
        except Exception as exc:
            await fail(context, "get secret", exc)
        if not isinstance(value, str):
            await fail(context, "get secret", TypeError("get_secret must return a str"))
        return secrets_pb2.GetSecretResponse(value=value)


async def _ttl(context: Context, message: Any) -> dt.timedelta | None:
    if not message.HasField("ttl"):
        return None
    ttl: duration_pb2.Duration = message.ttl
    if ttl.seconds < 0 or ttl.nanos < 0:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "cache ttl must not be negative")
    if ttl.seconds == 0 and ttl.nanos == 0:
        return None
    return dt.timedelta(seconds=ttl.seconds, microseconds=ttl.nanos // 1000)


class CacheService:
    """``Cache`` served for a ``CacheProvider`` (contract 7.3).

    When a provider keeps the base class's batch methods, they are composed here from its
    ``get``/``set``/``delete`` with :func:`call`, so they work for ``async def`` providers too.
    """

    def __init__(self, provider: Any) -> None:
        self.provider = provider
        inherited = {
            name: getattr(type(provider), name, None) is getattr(CacheProvider, name)
            for name in ("get_many", "set_many", "delete_many")
        }
        self._get_many = self._composed_get_many if inherited["get_many"] else provider.get_many
        self._set_many = self._composed_set_many if inherited["set_many"] else provider.set_many
        self._delete_many = (
            self._composed_delete_many if inherited["delete_many"] else provider.delete_many
        )

    async def _composed_get_many(self, keys: list[str]) -> dict[str, bytes]:
        found = {}
        for key in keys:
            value = await call(self.provider.get, key)
            if value is not None:
                found[key] = value
        return found

    async def _composed_set_many(self, entries: list[Any], ttl: dt.timedelta | None) -> None:
        for entry in entries:
            await call(self.provider.set, entry.key, entry.value, ttl)

    async def _composed_delete_many(self, keys: list[str]) -> int:
        return sum([bool(await call(self.provider.delete, key)) for key in dict.fromkeys(keys)])

    async def get(
        self, request: cache_pb2.CacheGetRequest, context: Context
    ) -> cache_pb2.CacheGetResponse:
        value = await guarded(context, "cache get", self.provider.get, request.key)
        if value is None:
            return cache_pb2.CacheGetResponse(found=False)
        return cache_pb2.CacheGetResponse(found=True, value=value)

    async def get_many(
        self, request: cache_pb2.CacheGetManyRequest, context: Context
    ) -> cache_pb2.CacheGetManyResponse:
        keys = list(request.keys)
        found = await guarded(context, "cache get_many", self._get_many, keys) or {}
        entries = [
            cache_pb2.CacheResult(key=k, found=True, value=found[k])
            if k in found
            else cache_pb2.CacheResult(key=k, found=False)
            for k in keys
        ]
        return cache_pb2.CacheGetManyResponse(entries=entries)

    async def set(self, request: cache_pb2.CacheSetRequest, context: Context) -> empty_pb2.Empty:
        ttl = await _ttl(context, request)
        await guarded(context, "cache set", self.provider.set, request.key, request.value, ttl)
        return empty_pb2.Empty()

    async def set_many(
        self, request: cache_pb2.CacheSetManyRequest, context: Context
    ) -> empty_pb2.Empty:
        from gestalt._clients.cache_types import CacheEntry

        ttl = await _ttl(context, request)
        entries = [CacheEntry(e.key, e.value) for e in request.entries]
        await guarded(context, "cache set_many", self._set_many, entries, ttl)
        return empty_pb2.Empty()

    async def delete(
        self, request: cache_pb2.CacheDeleteRequest, context: Context
    ) -> cache_pb2.CacheDeleteResponse:
        deleted = await guarded(context, "cache delete", self.provider.delete, request.key)
        return cache_pb2.CacheDeleteResponse(deleted=bool(deleted))

    async def delete_many(
        self, request: cache_pb2.CacheDeleteManyRequest, context: Context
    ) -> cache_pb2.CacheDeleteManyResponse:
        keys = list(request.keys)
        count = await guarded(context, "cache delete_many", self._delete_many, keys)
        return cache_pb2.CacheDeleteManyResponse(deleted=int(count or 0))

    async def touch(
        self, request: cache_pb2.CacheTouchRequest, context: Context
    ) -> cache_pb2.CacheTouchResponse:
        # CacheProvider.touch takes a timedelta (the seed's type): no TTL is timedelta(0).
        ttl = await _ttl(context, request) or dt.timedelta(0)
        touched = await guarded(context, "cache touch", self.provider.touch, request.key, ttl)
        return cache_pb2.CacheTouchResponse(touched=bool(touched))


# -- registration ---------------------------------------------------------------------------


def register_provider(server: Any, target: Any, kind: ProviderKind) -> Callable[[], None]:
    """Register a provider of any kind but an integration plugin on ``server``.

    Returns its close callback. Only the generated modules of ``kind`` are imported.
    """
    from gestalt.gen.v1 import runtime_servicers

    # An adapter's lifecycle (configure, metadata, health, start) is its provider's.
    provider = target.provider if isinstance(target, PluginProviderAdapter) else target
    runtime_servicers.add_provider_lifecycle_to_server(Lifecycle(provider, kind), server)
    if isinstance(target, PluginProviderAdapter):
        target.register_services(server, target.provider)
    elif kind is ProviderKind.AUTHENTICATION:
        from gestalt.gen.v1 import authentication_servicers

        authentication_servicers.add_authentication_provider_to_server(
            Authentication(target), server
        )
    elif kind is ProviderKind.SECRETS:
        from gestalt.gen.v1 import secrets_servicers

        secrets_servicers.add_secrets_provider_to_server(Secrets(target), server)
    elif kind is ProviderKind.CACHE:
        from gestalt.gen.v1 import cache_servicers

        cache_servicers.add_cache_to_server(CacheService(target), server)
    elif kind is ProviderKind.RUNTIME:
        from gestalt._runtime.plugin_runtime import handlers
        from gestalt.gen.v1.pluginruntime_servicers import add_plugin_runtime_provider_to_server

        add_plugin_runtime_provider_to_server(handlers(target), server)
    else:
        add, methods = _raw_service(kind)
        typed = _typed_kind(kind)
        if typed is not None and isinstance(target, typed[0]):
            from gestalt._runtime.typed import typed_methods

            base, service, mirrors = typed
            add(typed_methods(target, base, service, methods, mirrors, kind.value), server)
        else:
            add(raw_methods(target, methods), server)
    close = getattr(target, "close", None)
    return close if callable(close) else _nothing


def _raw_service(kind: ProviderKind) -> tuple[Callable[[Any, Any], None], Any]:
    """The generated ``add_*_to_server`` and method list of a kind served method by method."""
    if kind is ProviderKind.S3:
        from gestalt.gen.v1 import s3_servicers

        return s3_servicers.add_s3_to_server, s3_servicers.S3_METHODS
    if kind is ProviderKind.INDEXEDDB:
        from gestalt.gen.v1 import datastore_servicers

        return datastore_servicers.add_indexed_db_to_server, datastore_servicers.INDEXED_DB_METHODS
    if kind is ProviderKind.AGENT:
        from gestalt.gen.v1 import agent_servicers

        return agent_servicers.add_agent_provider_to_server, agent_servicers.AGENT_PROVIDER_METHODS
    if kind is ProviderKind.WORKFLOW:
        from gestalt.gen.v1 import workflow_servicers

        return (
            workflow_servicers.add_workflow_provider_to_server,
            workflow_servicers.WORKFLOW_PROVIDER_METHODS,
        )
    if kind is ProviderKind.AUTHORIZATION:
        from gestalt.gen.v1 import authorization_servicers as authz

        return authz.add_authorization_provider_to_server, authz.AUTHORIZATION_PROVIDER_METHODS
    raise KeyError(kind)


def _nothing() -> None:
    return None


def _typed_kind(kind: ProviderKind) -> tuple[type, Any, types.ModuleType] | None:
    """The typed base class, service descriptor and mirrors module of ``kind``, if it has one."""
    if kind is ProviderKind.AGENT:
        from gestalt._authoring.agents import AgentProvider
        from gestalt.gen.v1 import agent_mirrors, agent_pb2

        return AgentProvider, agent_pb2.DESCRIPTOR.services_by_name["AgentProvider"], agent_mirrors
    if kind is ProviderKind.WORKFLOW:
        from gestalt._authoring.workflows import WorkflowProvider
        from gestalt.gen.v1 import workflow_mirrors, workflow_pb2

        service = workflow_pb2.DESCRIPTOR.services_by_name["WorkflowProvider"]
        return WorkflowProvider, service, workflow_mirrors
    if kind is ProviderKind.AUTHORIZATION:
        from gestalt._authoring.authorization import AuthorizationProvider
        from gestalt.gen.v1 import authorization_mirrors, authorization_pb2

        service = authorization_pb2.DESCRIPTOR.services_by_name["AuthorizationProvider"]
        return AuthorizationProvider, service, authorization_mirrors
    return None


def raw_methods(provider: Any, methods: Any) -> types.SimpleNamespace:
    """The provider's methods under their snake_case names, accepting RPC-style names too."""
    found = {}
    for spec in methods:
        fn = getattr(provider, spec.attr, None) or getattr(provider, spec.name, None)
        if callable(fn):
            found[spec.attr] = fn
    return types.SimpleNamespace(**found)
