"""What each provider kind's RPCs mean in Python terms (contract sections 2.3, 3 and 7).

Each class here is a plain object with methods named after the RPCs in snake_case; the runtime
registers it with the generated adapter (``gestalt.gen.v1.*_servicers``) on a ``grpc.Server``.
Hot paths (``Execute``, ``GetMetadata``) are plain methods running in the server's worker
thread; the others are ``async def`` and run on the SDK's long-lived event loop. Provider code
may be sync or async: sync methods run in the runtime's bounded thread pool (also the loop's
default executor), async ones on the loop itself.

Failures never carry exception text to the host (quirk 13): the traceback is logged on stderr
and the call fails ``UNKNOWN`` with ``"<label>: failed; details are in the provider log"``.
The one exception is ``HealthCheck``: raising from ``health_check()`` is how a provider reports
ill health, so the host gets ``ready: false`` and the exception's message (one line, capped).
``NotImplementedError`` becomes ``UNIMPLEMENTED``; a missing secret (``LookupError``)
``NOT_FOUND`` (quirk 26); a negative cache TTL ``INVALID_ARGUMENT`` (quirk 27). An unset or zero
TTL reaches ``set``/``set_many`` as ``None`` and ``touch`` as ``timedelta(0)``: no expiry.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import inspect
import logging
from collections.abc import Callable
from typing import Any, NoReturn

import grpc
import grpc.aio
from google.protobuf import duration_pb2, empty_pb2, struct_pb2

from gestalt._authoring.hooks import HookError
from gestalt._authoring.plugin import Plugin
from gestalt._authoring.providers import (
    CacheProvider,
    ExternalTokenValidator,
    HealthChecker,
    MetadataProvider,
    ProviderKind,
    ProviderMetadata,
    SessionTTLProvider,
    WarningsProvider,
)
from gestalt._authoring.request import HTTPSubjectResolutionError
from gestalt._runtime.pool import handler_finished, handler_started
from gestalt._runtime.wire import (
    connected_token_from_pb,
    context_request,
    execute_params,
    execute_request,
    http_subject_request_from_pb,
    request_from_pb,
    subject_to_pb,
)
from gestalt.gen.support import struct_from_pb
from gestalt.gen.v1 import cache_pb2, plugin_pb2, runtime_pb2, secrets_pb2

logger = logging.getLogger("gestalt.runtime")

Context = grpc.aio.ServicerContext[Any, Any]

#: The protocol version both sides speak.
PROTOCOL_VERSION = 3

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


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call provider code: async functions on the loop, plain ones in the thread pool."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    # In the caller's context, so that the current trace span (and any contextvar) follows.
    run = contextvars.copy_context().run
    result = await asyncio.get_running_loop().run_in_executor(None, run, fn, *args)
    return await result if inspect.isawaitable(result) else result


async def fail(context: Context, label: str, exc: BaseException) -> NoReturn:
    """End the call for a provider failure without sending its text to the host."""
    if isinstance(exc, NotImplementedError):
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{label}: not implemented")
    logger.error("%s failed", label, exc_info=exc)
    await context.abort(
        grpc.StatusCode.UNKNOWN, f"{label}: failed; details are in the provider log"
    )


async def guarded(context: Context, label: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``call`` with the failure mapping of :func:`fail`."""
    try:
        return await call(fn, *args)
    except (grpc.aio.AbortError, asyncio.CancelledError):
        raise
    except Exception as exc:
        await fail(context, label, exc)


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


async def check_version(context: Context, version: int) -> None:
    """Refuse a host that speaks another protocol version (contract 2.1)."""
    if version != PROTOCOL_VERSION:
        await context.abort(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"host requested protocol version {version}, provider requires {PROTOCOL_VERSION}",
        )


def config_dict(config: struct_pb2.Struct | None) -> dict[str, Any]:
    """A provider config as a dict; integral numbers come back as ``int`` (quirk 36)."""
    return _integral(struct_from_pb(config)) if config is not None else {}


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


async def _supported(context: Context, supported: bool, what: str) -> None:
    """Fail the call ``UNIMPLEMENTED`` unless the plugin supports ``what``."""
    if not supported:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"provider does not support {what}")


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


class Integration:
    """``IntegrationProvider`` for a ``Plugin`` (contract section 3)."""

    def __init__(self, plugin: Plugin) -> None:
        self.plugin = plugin

    def get_metadata(self, request: empty_pb2.Empty, context: Any) -> plugin_pb2.ProviderMetadata:
        return plugin_pb2.ProviderMetadata(
            supports_session_catalog=self.plugin.supports_session_catalog(),
            supports_post_connect=self.plugin.supports_post_connect(),
            min_protocol_version=PROTOCOL_VERSION,
            max_protocol_version=PROTOCOL_VERSION,
        )

    async def start_provider(
        self, request: plugin_pb2.StartProviderRequest, context: Context
    ) -> plugin_pb2.StartProviderResponse:
        await check_version(context, request.protocol_version)
        config = config_dict(request.config if request.HasField("config") else None)
        try:
            await self.plugin.configure_provider_async(request.name, config)
        except HookError as exc:
            await context.abort(grpc.StatusCode.UNKNOWN, str(exc))
        return plugin_pb2.StartProviderResponse(protocol_version=PROTOCOL_VERSION)

    def execute(
        self, request: plugin_pb2.ExecuteRequest, context: Any
    ) -> plugin_pb2.OperationResult:
        # Plain: a sync handler runs right here in the server's worker thread, an async one on
        # the SDK's loop (Plugin.execute), so the common case costs no thread hop.
        handler_started()
        try:
            return self.plugin.execute(
                request.operation, execute_params(request), execute_request(request)
            )
        finally:
            handler_finished()

    async def get_session_catalog(
        self, request: plugin_pb2.GetSessionCatalogRequest, context: Context
    ) -> plugin_pb2.GetSessionCatalogResponse:
        await _supported(context, self.plugin.supports_session_catalog(), "session catalogs")
        try:
            catalog = await self.plugin.catalog_for_request_async(request_from_pb(request))
        except HookError as exc:
            await context.abort(grpc.StatusCode.UNKNOWN, str(exc))
        response = plugin_pb2.GetSessionCatalogResponse()
        if catalog is not None:
            response.catalog.CopyFrom(catalog)
        return response

    async def post_connect(
        self, request: plugin_pb2.PostConnectRequest, context: Context
    ) -> plugin_pb2.PostConnectResponse:
        await _supported(context, self.plugin.supports_post_connect(), "post connect")
        token = connected_token_from_pb(request.token if request.HasField("token") else None)
        try:
            metadata = await self.plugin.post_connect_metadata_async(token)
        except HookError as exc:
            await context.abort(grpc.StatusCode.UNKNOWN, str(exc))
        return plugin_pb2.PostConnectResponse(metadata=metadata or {})

    async def resolve_http_subject(
        self, request: plugin_pb2.ResolveHTTPSubjectRequest, context: Context
    ) -> plugin_pb2.ResolveHTTPSubjectResponse:
        http = http_subject_request_from_pb(request.request)
        ctx = context_request(request.context if request.HasField("context") else None)
        try:
            subject = await self.plugin.resolve_http_subject_async(http, ctx)
        except HTTPSubjectResolutionError as exc:
            return plugin_pb2.ResolveHTTPSubjectResponse(
                reject_status=exc.status, reject_message=exc.message
            )
        except HookError as exc:
            await context.abort(grpc.StatusCode.UNKNOWN, str(exc))
        response = plugin_pb2.ResolveHTTPSubjectResponse()
        if subject is not None:
            response.subject.CopyFrom(subject_to_pb(subject))
        return response


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
        from gestalt._clients.cache import CacheEntry

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
