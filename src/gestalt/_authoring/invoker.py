"""Calling other plugins through the host's PluginInvoker (``GESTALT_PLUGIN_INVOKER_SOCKET``).

A handler gets an invocation token with every Execute call (``Request.invocation_token``);
:class:`PluginInvoker` presents it to the host, which runs the other plugin's operation and
sends back its status and body. ``Request.invoker()`` builds one for the current call.

Results keep the reference's shape, a ``Response`` whose ``body`` is the JSON text as the
other plugin answered it, and add to it: :class:`InvokeResponse` has ``ok``, ``json()``,
``decode(Model)`` and ``raise_for_status()`` (an :class:`InvocationError` for a status of 400
or more); :class:`GraphQLResponse` also reads the GraphQL ``data`` and ``errors`` of the
body, and its ``raise_for_status()`` raises :class:`GraphQLResponseError` carrying the typed
:class:`GraphQLError` list. A handler that passes such a result on should return
``result.json()`` (or ``Response(result.status, result.json())``): returned as it is, the
body would travel as one JSON string.

This module lives with the authoring layer because its results are ``Response`` objects
decoded by the authoring decoders; the connection, discovery and error mapping are the
shared ones of ``gestalt._clients``. Request building and reply decoding are the plain
functions below, used by the sync :class:`PluginInvoker` and the asyncio
:class:`AsyncPluginInvoker` alike.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any, Self, TypeVar

from gestalt._authoring.model import Model
from gestalt._authoring.response import Response
from gestalt._clients.calls import Scope, _AioClient, _SyncClient
from gestalt._clients.errors import INVOKER_ERRORS
from gestalt._clients.transport import PLUGIN_INVOKER, check_timeout
from gestalt.gen.hostcalls import HostClient, TypedCall
from gestalt.gen.hostcalls import coerce as message
from gestalt.gen.v1 import plugin_pb2
from gestalt.gen.v1.plugin_clients import AsyncPluginInvokerClient, PluginInvokerClient

__all__ = [
    "AsyncPluginInvoker",
    "GraphQLError",
    "GraphQLResponse",
    "GraphQLResponseError",
    "InvocationError",
    "InvokeResponse",
    "PluginInvoker",
]

T = TypeVar("T")


class InvocationError(Exception):
    """An invoked operation answered a status of 400 or more.

    ``status`` is that status, ``message`` the body's ``"error"`` text (the body itself when
    it has none) and ``body`` the body text as received.
    """

    def __init__(self, status: int, message: str, body: str = "") -> None:
        super().__init__(f"{status}: {message}" if message else str(status))
        self.status = status
        self.message = message
        self.body = body


@dataclasses.dataclass(frozen=True, slots=True)
class GraphQLError:
    """One entry of a GraphQL reply's ``errors`` list."""

    message: str
    path: tuple[str | int, ...] = ()
    locations: tuple[tuple[int, int], ...] = ()
    extensions: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class GraphQLResponseError(InvocationError):
    """A GraphQL call answered errors; ``errors`` holds them as :class:`GraphQLError`."""

    def __init__(self, status: int, errors: Sequence[GraphQLError], body: str = "") -> None:
        text = "; ".join(error.message for error in errors) or "GraphQL request failed"
        super().__init__(status, text, body)
        self.errors = list(errors)


def _error_text(body: str) -> str:
    try:
        parsed = json.loads(body)
    except ValueError:
        return body
    detail = parsed.get("error") if isinstance(parsed, dict) else None
    return detail if isinstance(detail, str) else body


@dataclasses.dataclass(slots=True)
class InvokeResponse(Response[str]):
    """What an invoked operation answered: ``status`` and the JSON ``body`` text.

    A :class:`~gestalt.Response` like the reference's result, plus reading helpers.
    """

    @property
    def ok(self) -> bool:
        """True for a status below 400."""
        return (200 if self.status is None else self.status) < 400

    def json(self) -> Any:
        """The body parsed as JSON; ``ValueError`` naming the status when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            raise ValueError(
                f"the invoked operation answered status {self.status} with a body that is "
                f"not JSON: {self.body[:200]!r}"
            ) from None

    def decode(self, cls: type[T]) -> T:
        """The body as ``cls`` (a ``Model``, dataclass, ``list[int]`` ...).

        Decoded by the rules of operation parameters; a body that does not fit raises
        ``ValueError`` naming the field.
        """
        from gestalt._authoring.decode import compile_decoder

        value: T = compile_decoder(cls)(self.json())
        return value

    def raise_for_status(self) -> Self:
        """Raise :class:`InvocationError` for a status of 400 or more; else return self."""
        if not self.ok:
            status = 500 if self.status is None else self.status
            raise InvocationError(status, _error_text(self.body), self.body)
        return self


def _graphql_error(raw: Any) -> GraphQLError:
    if not isinstance(raw, dict):
        return GraphQLError(message=str(raw))
    path = raw.get("path")
    locations = raw.get("locations")
    extensions = raw.get("extensions")
    return GraphQLError(
        message=str(raw.get("message", "")),
        path=tuple(p for p in path if isinstance(p, str | int)) if isinstance(path, list) else (),
        locations=tuple(
            (int(loc.get("line", 0)), int(loc.get("column", 0)))
            for loc in (locations if isinstance(locations, list) else ())
            if isinstance(loc, dict)
        ),
        extensions=extensions if isinstance(extensions, dict) else {},
    )


@dataclasses.dataclass(slots=True)
class GraphQLResponse(InvokeResponse):
    """What a GraphQL call answered; ``data`` and ``errors`` read the GraphQL body."""

    def _document(self) -> dict[str, Any]:
        try:
            parsed = json.loads(self.body)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}

    @property
    def data(self) -> Any:
        """The body's ``data`` member (None when absent)."""
        return self._document().get("data")

    @property
    def errors(self) -> list[GraphQLError]:
        """The body's ``errors``, typed; empty when there are none."""
        raw = self._document().get("errors")
        return [_graphql_error(item) for item in raw] if isinstance(raw, list) else []

    @property
    def ok(self) -> bool:
        """True for a status below 400 and no GraphQL errors."""
        return (200 if self.status is None else self.status) < 400 and not self.errors

    def raise_for_status(self) -> Self:
        """Raise :class:`GraphQLResponseError` when errors came back, else as for invoke."""
        errors = self.errors
        if errors:
            status = 200 if self.status is None else self.status
            raise GraphQLResponseError(status, errors, self.body)
        InvokeResponse.raise_for_status(self)
        return self


# -- request building (shared by both invokers) ---------------------------------------------


def checked_token(token: object) -> str:
    """The invocation token, refusing a missing one as the reference does."""
    if not isinstance(token, str):
        raise TypeError(f"invocation_token must be a str, not {type(token).__name__}")
    if not token.strip():
        raise RuntimeError("plugin invoker: invocation token is not available")
    return token.strip()


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-blank str, got {value!r}")
    return value.strip()


def _struct(value: Any, what: str) -> Any:
    if value is None:
        return None
    from gestalt._authoring.encode import to_jsonable

    data = to_jsonable(value)
    if not isinstance(data, dict):
        raise TypeError(f"{what} must be a mapping or a Model, not {type(value).__name__}")
    from gestalt.gen.support import struct_to_pb

    return struct_to_pb(data)


def _invoke(
    scope: Scope,
    plugin: str,
    operation: str,
    params: Mapping[str, Any] | Model | None = None,
    *,
    connection: str = "",
    instance: str = "",
    idempotency_key: str = "",
    timeout: float | None = None,
) -> plugin_pb2.PluginInvokeRequest:
    """Run ``operation`` of ``plugin`` with ``params`` (a mapping or a Model)."""
    return plugin_pb2.PluginInvokeRequest(
        plugin=_name(plugin, "plugin"),
        operation=_name(operation, "operation"),
        params=_struct(params, "params"),
        connection=connection,
        instance=instance,
        invocation_token=scope.invocation_token,
        idempotency_key=idempotency_key,
    )


def _graphql(
    scope: Scope,
    plugin: str,
    document: str,
    variables: Mapping[str, Any] | None = None,
    *,
    connection: str = "",
    instance: str = "",
    idempotency_key: str = "",
    timeout: float | None = None,
) -> plugin_pb2.PluginInvokeGraphQLRequest:
    """Run a GraphQL ``document`` against ``plugin``."""
    return plugin_pb2.PluginInvokeGraphQLRequest(
        plugin=_name(plugin, "plugin"),
        document=_name(document, "document"),
        variables=_struct(variables, "variables"),
        connection=connection,
        instance=instance,
        invocation_token=scope.invocation_token,
        idempotency_key=idempotency_key,
    )


def _exchange(
    scope: Scope,
    *,
    grants: Sequence[Any] | None = None,
    ttl_seconds: int = 0,
    timeout: float | None = None,
) -> plugin_pb2.ExchangeInvocationTokenRequest:
    """A narrower token derived from this one: only ``grants``, for ``ttl_seconds``."""
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or ttl_seconds < 0:
        raise ValueError(f"ttl_seconds must be a non-negative int, got {ttl_seconds!r}")
    if isinstance(grants, str | bytes | Mapping):
        raise TypeError("grants must be a sequence of grants, not a single value")
    return plugin_pb2.ExchangeInvocationTokenRequest(
        parent_invocation_token=scope.invocation_token,
        grants=[message(g, plugin_pb2.PluginInvocationGrant, "grant") for g in grants or ()],
        ttl_seconds=ttl_seconds,
    )


def _invoked(result: plugin_pb2.OperationResult) -> InvokeResponse:
    return InvokeResponse(result.status, result.body)


def _answered(result: plugin_pb2.OperationResult) -> GraphQLResponse:
    return GraphQLResponse(result.status, result.body)


def _exchanged(response: plugin_pb2.ExchangeInvocationTokenResponse) -> str:
    """The token of an exchange reply; an empty one is the host's failure, not a token."""
    if not response.invocation_token:
        raise RuntimeError("plugin invoker: the host returned an empty invocation token")
    return response.invocation_token


# -- the invokers ------------------------------------------------------------------------------


class _InvokerCalls(HostClient):
    """The invoker's methods, shared by :class:`PluginInvoker` and its asyncio twin."""

    __slots__ = ()

    invoke = TypedCall("invoke", plugin_pb2.PluginInvokeRequest, _invoke, _invoked)
    invoke_graphql = TypedCall(
        "invoke_graph_ql", plugin_pb2.PluginInvokeGraphQLRequest, _graphql, _answered
    )
    exchange_invocation_token = TypedCall(
        "exchange_invocation_token",
        plugin_pb2.ExchangeInvocationTokenRequest,
        _exchange,
        _exchanged,
    )

    @property
    def invocation_token(self) -> str:
        """The token every call presents (the current Execute call's)."""
        return self._scope.invocation_token

    @invocation_token.setter
    def invocation_token(self, token: str) -> None:
        self._scope = Scope(token)


class PluginInvoker(_InvokerCalls, _SyncClient):
    """Calls other plugins' operations through the host with an invocation token.

    ``invocation_token`` is the one the current Execute call received (``Request.invoker()``
    passes it); an empty one raises ``RuntimeError``, as does a missing
    ``GESTALT_PLUGIN_INVOKER_SOCKET``. ``timeout`` is the default deadline in seconds.
    """

    __slots__ = ()

    def __init__(self, invocation_token: str, *, timeout: float | None = None) -> None:
        scope = Scope(checked_token(invocation_token))
        check_timeout(timeout)  # checked before the environment is read
        endpoint = PLUGIN_INVOKER.endpoint()
        super().__init__(endpoint, PluginInvokerClient, INVOKER_ERRORS, scope, timeout)


class AsyncPluginInvoker(_InvokerCalls, _AioClient):
    """Asyncio twin of :class:`PluginInvoker`: the same methods as coroutines.

    Build it anywhere, use it from any event loop, close it with ``await invoker.close()``
    or ``async with``.
    """

    __slots__ = ()

    def __init__(self, invocation_token: str, *, timeout: float | None = None) -> None:
        scope = Scope(checked_token(invocation_token))
        check_timeout(timeout)  # checked before the environment is read
        endpoint = PLUGIN_INVOKER.endpoint()
        super().__init__(endpoint, AsyncPluginInvokerClient, INVOKER_ERRORS, scope, timeout)
