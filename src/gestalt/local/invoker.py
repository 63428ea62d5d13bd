"""An embedded PluginInvoker host service: plugin-to-plugin calls on a laptop.

:class:`PluginInvokerService` implements ``gestalt.provider.v1.PluginInvoker`` the way the
host does, for the providers it knows:

* **Routes.** :meth:`~PluginInvokerService.route` names a running provider (its socket); an
  ``Invoke`` for that plugin becomes an ``Execute`` call on it, and its ``OperationResult``
  comes back unchanged. ``gestalt dev`` and ``gestalt.testing`` route the one provider they
  run under its configured name, so a plugin can call itself; a test may route more
  providers it started itself. A plugin nobody routed is ``NOT_FOUND``.
* **Invocation tokens.** :meth:`~PluginInvokerService.mint` issues a token (the dev host and
  the harness mint one per ``Execute`` they send, as the host does). A call with a token the
  service never issued, or one whose TTL passed, is ``UNAUTHENTICATED``; a call outside the
  token's grants is ``PERMISSION_DENIED``. ``ExchangeInvocationToken`` derives a token whose
  grants must lie within the parent's (``PERMISSION_DENIED`` otherwise) and whose lifetime
  never exceeds the parent's. The ``Execute`` sent on carries a fresh token with the caller's
  grants and the request context of the call that minted the first token, with the asked-for
  connection and instance.
* ``InvokeGraphQL`` answers ``UNIMPLEMENTED``: no local plugin serves GraphQL.

Tokens are random, kept in memory, and mean nothing to any other host.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Unpack

import grpc

from gestalt._clients.transport import parse_target
from gestalt.gen.v1 import plugin_pb2
from gestalt.gen.v1.plugin_clients import IntegrationProviderClient
from gestalt.gen.v1.plugin_servicers import add_plugin_invoker_to_server
from gestalt.local._serving import LocalServer, Served, ServeOptions, Where

__all__ = ["Grant", "PluginInvokerService", "serve_plugin_invoker"]

#: How long an ``Execute`` sent on may take.
CALL_TIMEOUT = 60.0


@dataclasses.dataclass(frozen=True, slots=True)
class Grant:
    """Permission to call ``operations`` of ``plugin`` (every one when ``operations`` is None)."""

    plugin: str
    operations: frozenset[str] | None = None

    def covers(self, plugin: str, operation: str) -> bool:
        """Whether the grant allows ``operation`` of ``plugin``."""
        return self.plugin == plugin and (self.operations is None or operation in self.operations)

    def within(self, grants: tuple[Grant, ...] | None) -> bool:
        """Whether this grant asks for nothing beyond ``grants`` (None: unrestricted)."""
        if grants is None:
            return True
        if self.operations is None:
            return any(g.plugin == self.plugin and g.operations is None for g in grants)
        return all(any(g.covers(self.plugin, op) for g in grants) for op in self.operations)


@dataclasses.dataclass(frozen=True, slots=True)
class _Token:
    grants: tuple[Grant, ...] | None
    expires: float | None
    context: bytes  # a serialized RequestContext


class PluginInvokerService:
    """In-memory ``gestalt.provider.v1.PluginInvoker`` routing calls to local providers.

    ``clock`` returns seconds on a monotonic scale; tests may pass their own.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}
        self._routes: dict[str, str] = {}
        self._channels: dict[str, grpc.Channel] = {}

    # -- Python API -------------------------------------------------------------------------

    def route(self, plugin: str, target: str | os.PathLike[str]) -> None:
        """Send calls for ``plugin`` to the provider listening at ``target`` (socket or URL)."""
        if not plugin.strip():
            raise ValueError("plugin name must not be blank")
        parsed = parse_target(os.fspath(target) if isinstance(target, Path) else str(target))
        with self._lock:
            self._routes[plugin.strip()] = parsed.grpc_target
            old = self._channels.pop(plugin.strip(), None)
        if old is not None:
            old.close()

    def unroute(self, plugin: str) -> None:
        """Forget ``plugin``; later calls for it are ``NOT_FOUND``."""
        with self._lock:
            self._routes.pop(plugin, None)
            old = self._channels.pop(plugin, None)
        if old is not None:
            old.close()

    @property
    def plugins(self) -> list[str]:
        """The names calls can be routed to, sorted."""
        with self._lock:
            return sorted(self._routes)

    def mint(
        self,
        grants: Iterable[Grant] | None = None,
        *,
        ttl: float | None = None,
        context: plugin_pb2.RequestContext | None = None,
    ) -> str:
        """Issue an invocation token: unrestricted without ``grants``, expiring after ``ttl``.

        ``context`` is the request context the calls made with it pass on.
        """
        if ttl is not None and ttl <= 0:
            raise ValueError(f"ttl must be positive, got {ttl!r}")
        expires = None if ttl is None else self._clock() + ttl
        raw = b"" if context is None else context.SerializeToString()
        return self._issue(None if grants is None else tuple(grants), expires, raw)

    def _issue(self, grants: tuple[Grant, ...] | None, expires: float | None, raw: bytes) -> str:
        token = "local-invocation-" + secrets.token_urlsafe(24)
        with self._lock:
            now = self._clock()
            expired = [
                k for k, v in self._tokens.items() if v.expires is not None and v.expires <= now
            ]
            for key in expired:
                del self._tokens[key]
            self._tokens[token] = _Token(grants, expires, raw)
        return token

    def close(self) -> None:
        """Close the channels to the routed providers."""
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            channel.close()

    # -- RPCs -------------------------------------------------------------------------------

    def _token(self, token: str, context: grpc.ServicerContext) -> _Token:
        with self._lock:
            found = self._tokens.get(token)
        if found is None or (found.expires is not None and found.expires <= self._clock()):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid or expired invocation token")
        return found

    def invoke(
        self, request: plugin_pb2.PluginInvokeRequest, context: grpc.ServicerContext
    ) -> plugin_pb2.OperationResult:
        """Run an operation of a routed provider through its ``Execute``."""
        token = self._token(request.invocation_token, context)
        plugin, operation = request.plugin, request.operation
        if not plugin or not operation:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "plugin and operation are required")
        if token.grants is not None and not any(g.covers(plugin, operation) for g in token.grants):
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"the invocation token does not grant {plugin}.{operation}",
            )
        client = self._client(plugin, context)
        call_context = plugin_pb2.RequestContext.FromString(token.context)
        if request.connection or request.instance:
            call_context.credential.connection = request.connection
            call_context.credential.instance = request.instance
        execute = plugin_pb2.ExecuteRequest(
            operation=operation,
            params=request.params if request.HasField("params") else None,
            invocation_id="local-" + secrets.token_hex(8),
            context=call_context,
            invocation_token=self._issue(token.grants, token.expires, token.context),
            idempotency_key=request.idempotency_key,
        )
        try:
            return client.execute(execute, timeout=CALL_TIMEOUT)
        except Exception as exc:  # the provider failed the call itself, not the operation
            context.abort(grpc.StatusCode.UNAVAILABLE, f"plugin {plugin!r} failed the call: {exc}")

    def invoke_graph_ql(
        self, request: plugin_pb2.PluginInvokeGraphQLRequest, context: grpc.ServicerContext
    ) -> plugin_pb2.OperationResult:
        """Not served locally: answers ``UNIMPLEMENTED`` (after checking the token)."""
        self._token(request.invocation_token, context)
        context.abort(
            grpc.StatusCode.UNIMPLEMENTED, "the local plugin invoker does not run GraphQL"
        )

    def exchange_invocation_token(
        self, request: plugin_pb2.ExchangeInvocationTokenRequest, context: grpc.ServicerContext
    ) -> plugin_pb2.ExchangeInvocationTokenResponse:
        """Derive a token limited to the requested grants and TTL."""
        parent = self._token(request.parent_invocation_token, context)
        if request.ttl_seconds < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "ttl_seconds must be >= 0")
        grants = tuple(_grant(g) for g in request.grants) or parent.grants
        for grant in grants or ():
            if not grant.plugin:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a grant needs a plugin name")
            if not grant.within(parent.grants):
                context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"grant for plugin {grant.plugin!r} exceeds the parent token's grants",
                )
        expires = parent.expires
        if request.ttl_seconds:
            asked = self._clock() + request.ttl_seconds
            expires = asked if expires is None else min(asked, expires)
        token = self._issue(grants, expires, parent.context)
        return plugin_pb2.ExchangeInvocationTokenResponse(invocation_token=token)

    def _client(self, plugin: str, context: grpc.ServicerContext) -> IntegrationProviderClient:
        with self._lock:
            target = self._routes.get(plugin)
            if target is not None:
                channel = self._channels.get(plugin)
                if channel is None:
                    channel = self._channels[plugin] = grpc.insecure_channel(target)
                return IntegrationProviderClient(channel)
            known = ", ".join(sorted(self._routes)) or "none"
        context.abort(
            grpc.StatusCode.NOT_FOUND,
            f"no plugin named {plugin!r} runs under this local host (known: {known})",
        )


def _grant(message: plugin_pb2.PluginInvocationGrant) -> Grant:
    operations = None if message.all_operations else frozenset(message.operations)
    return Grant(message.plugin, operations)


#: Calls wait on the provider, which may call back in: 16 threads leave room for that.
_SERVED = Served(
    "plugin invoker",
    "plugin-invoker",
    add_plugin_invoker_to_server,
    LocalServer,
    close=PluginInvokerService.close,
    workers=16,
)


def serve_plugin_invoker(
    address: Where, *, service: PluginInvokerService | None = None, **options: Unpack[ServeOptions]
) -> LocalServer[PluginInvokerService]:
    """Serve a plugin invoker on ``address`` (socket path, ``unix://…`` or ``tcp://host:port``).

    ``service`` defaults to a new :class:`PluginInvokerService`; ``options`` are those of every
    local server (:class:`~gestalt.local.ServeOptions`, 16 threads). Returns once the server
    is listening.
    """
    chosen = PluginInvokerService() if service is None else service
    return _SERVED.serve(address, lambda: chosen, options)
