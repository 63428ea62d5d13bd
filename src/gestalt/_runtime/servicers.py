"""The ``IntegrationProvider`` servicer, and what every kind's servicer shares.

Each servicer is a plain object with methods named after the RPCs in snake_case; the runtime
registers it with the generated adapter (``gestalt.gen.v1.*_servicers``) on a ``grpc.Server``.
Hot paths (``Execute``, ``GetMetadata``) are plain methods running in the server's worker
thread; the others are ``async def`` and run on the SDK's long-lived event loop. Provider code
may be sync or async: sync methods run in the runtime's bounded thread pool (also the loop's
default executor), async ones on the loop itself. The servicers of the other kinds live in
:mod:`gestalt._runtime.lifecycle`, imported only when such a provider is served: an integration
plugin does not load their protobuf modules.

Failures never carry exception text to the host (quirk 13): the traceback is logged on stderr
and the call fails ``UNKNOWN`` with ``"<label>: failed; details are in the provider log"``.
``NotImplementedError`` becomes ``UNIMPLEMENTED``.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
import grpc.aio

from gestalt._authoring.plugin import Plugin
from gestalt._authoring.response import HookError, HTTPSubjectResolutionError
from gestalt._runtime.pool import handler_finished, handler_started
from gestalt._runtime.wire import (
    connected_token_from_pb,
    context_request,
    execute_params,
    execute_request,
    http_subject_request_from_pb,
    request_from_pb,
    struct_to_dict,
    subject_to_pb,
)
from gestalt.gen.v1 import plugin_pb2

if TYPE_CHECKING:
    from google.protobuf import empty_pb2, struct_pb2

logger = logging.getLogger("gestalt.runtime")

Context = grpc.aio.ServicerContext[Any, Any]

#: The protocol version both sides speak.
PROTOCOL_VERSION = 3


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


async def check_version(context: Context, version: int) -> None:
    """Refuse a host that speaks another protocol version (contract 2.1)."""
    if version != PROTOCOL_VERSION:
        await context.abort(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"host requested protocol version {version}, provider requires {PROTOCOL_VERSION}",
        )


def config_dict(config: struct_pb2.Struct | None) -> dict[str, Any]:
    """A provider config as a dict; integral numbers come back as ``int`` (quirk 36)."""
    return _integral(struct_to_dict(config)) if config is not None else {}


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
        # the SDK's loop (Plugin.execute), so the common case costs no thread hop. The Request
        # is built only for a handler that takes one.
        handler_started()
        try:
            return self.plugin._execute(
                request.operation, execute_params(request), lambda: execute_request(request)
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
