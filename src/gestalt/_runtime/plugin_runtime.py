"""``PluginRuntimeProvider`` served for a :class:`~gestalt.PluginRuntimeProvider` subclass.

Each RPC decodes its request into the generated mirror (or the session id), calls the
provider's snake_case method through :func:`~gestalt._runtime.servicers.guarded` (plain
methods in the thread pool, ``async def`` on the loop, ``NotImplementedError`` as
``UNIMPLEMENTED``, other failures sanitised) and encodes what it returns: a mirror or the pb2
message itself. A ``LookupError`` from ``get_session``/``stop_session`` is ``NOT_FOUND``.

A subclass written for the published SDK defines the RPC-named methods
(``StartSession(request, context)``) instead; :func:`handlers` hands those to the generated
adapter untouched whenever the snake_case method is the base class's.
"""

from __future__ import annotations

import types
from typing import Any

import grpc
from google.protobuf import empty_pb2

from gestalt._authoring.plugin_runtime import PluginRuntimeProvider
from gestalt._runtime.servicers import Context, call, fail, guarded
from gestalt.gen.v1 import pluginruntime_mirrors as mirrors
from gestalt.gen.v1 import pluginruntime_pb2 as pb
from gestalt.gen.v1.pluginruntime_servicers import PLUGIN_RUNTIME_PROVIDER_METHODS

__all__ = ["PluginRuntimeService", "handlers"]


async def _encode(context: Context, label: str, value: Any, message: type[Any]) -> Any:
    """``value`` as pb2 ``message``: a mirror's ``to_pb()`` or the message itself."""
    if isinstance(value, message):
        return value
    to_pb = getattr(value, "to_pb", None)
    if callable(to_pb):
        encoded = to_pb()
        if isinstance(encoded, message):
            return encoded
    await fail(
        context,
        label,
        TypeError(f"{label} must return a {message.__name__}, not {type(value).__name__}"),
    )


class PluginRuntimeService:
    """The typed handlers, one ``async def`` per RPC."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider

    async def get_support(self, request: empty_pb2.Empty, context: Context) -> Any:
        support = await guarded(context, "get support", self.provider.get_support)
        return await _encode(context, "get support", support, pb.PluginRuntimeSupport)

    async def start_session(
        self, request: pb.StartPluginRuntimeSessionRequest, context: Context
    ) -> Any:
        typed = mirrors.StartPluginRuntimeSessionRequest.from_pb(request)
        session = await guarded(context, "start session", self.provider.start_session, typed)
        return await _encode(context, "start session", session, pb.PluginRuntimeSession)

    async def _by_id(self, context: Context, label: str, fn: Any, session_id: str) -> Any:
        try:
            return await call(fn, session_id)
        except LookupError:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"session {session_id!r} not found")
        except Exception as exc:
            await fail(context, label, exc)

    async def get_session(
        self, request: pb.GetPluginRuntimeSessionRequest, context: Context
    ) -> Any:
        label = "get session"
        session = await self._by_id(context, label, self.provider.get_session, request.session_id)
        return await _encode(context, label, session, pb.PluginRuntimeSession)

    async def list_sessions(
        self, request: pb.ListPluginRuntimeSessionsRequest, context: Context
    ) -> Any:
        label = "list sessions"
        found = await guarded(context, label, self.provider.list_sessions)
        if isinstance(
            found, pb.ListPluginRuntimeSessionsResponse | mirrors.ListPluginRuntimeSessionsResponse
        ):
            return await _encode(context, label, found, pb.ListPluginRuntimeSessionsResponse)
        if found is None or isinstance(found, str | bytes):
            await fail(context, label, TypeError("list_sessions must return a list of sessions"))
        try:
            items = list(found)
        except TypeError as exc:
            await fail(context, label, exc)
        sessions = [await _encode(context, label, s, pb.PluginRuntimeSession) for s in items]
        return pb.ListPluginRuntimeSessionsResponse(sessions=sessions)

    async def stop_session(
        self, request: pb.StopPluginRuntimeSessionRequest, context: Context
    ) -> empty_pb2.Empty:
        await self._by_id(context, "stop session", self.provider.stop_session, request.session_id)
        return empty_pb2.Empty()

    async def bind_host_service(
        self, request: pb.BindPluginRuntimeHostServiceRequest, context: Context
    ) -> Any:
        label = "bind host service"
        typed = mirrors.BindPluginRuntimeHostServiceRequest.from_pb(request)
        binding = await guarded(context, label, self.provider.bind_host_service, typed)
        return await _encode(context, label, binding, pb.PluginRuntimeHostServiceBinding)

    async def start_plugin(self, request: pb.StartHostedPluginRequest, context: Context) -> Any:
        typed = mirrors.StartHostedPluginRequest.from_pb(request)
        hosted = await guarded(context, "start plugin", self.provider.start_plugin, typed)
        return await _encode(context, "start plugin", hosted, pb.HostedPlugin)


def handlers(provider: Any) -> types.SimpleNamespace:
    """What to register for ``provider``: typed handlers, or its RPC-named methods as they are.

    An RPC-named method (``GetSupport``) is used when the provider's class keeps the base
    class's snake_case method; otherwise the typed handler calls the snake_case method.
    """
    service = PluginRuntimeService(provider)
    found = {}
    for spec in PLUGIN_RUNTIME_PROVIDER_METHODS:
        own = getattr(type(provider), spec.attr, None)
        legacy = getattr(provider, spec.name, None)
        inherited = own is None or own is getattr(PluginRuntimeProvider, spec.attr)
        found[spec.attr] = legacy if inherited and callable(legacy) else getattr(service, spec.attr)
    return types.SimpleNamespace(**found)
