"""Host-service methods written once for a sync and an asyncio client.

A :class:`Call` describes one RPC of a host service: the generated stub method to call, the
request message type, how typed arguments become a request (``build``) and how the answer
becomes what the caller gets (``decode``). Declared once on a shared base class, it reads as
a method on both the sync client (a subclass of ``_SyncClient``) and the asyncio client
(a subclass of ``_AioClient``):

* ``client.method(request)`` with the raw request message sends it with the client's
  invocation token set (where the message has that field) and returns the raw response
  message, as the published SDK does;
* ``client.method(...)`` with the typed arguments of ``build`` returns the decoded result
  (usually a dataclass mirror).

On an :class:`_AioClient` both forms return awaitables.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, Generic, NoReturn, ParamSpec, TypeVar, overload

from google.protobuf.message import Message

from gestalt._clients.closing import AsyncClosing, Closing
from gestalt._clients.transport import (
    AioConnection,
    Endpoint,
    SyncConnection,
    check_timeout,
)
from gestalt.gen.support import ErrorMapper

__all__ = ["AioMethod", "Call", "Scope", "SyncMethod"]

P = ParamSpec("P")
Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)
R = TypeVar("R")


class Scope:
    """What every request of one client carries: the invocation token and idempotency key."""

    __slots__ = ("idempotency_key", "invocation_token")

    def __init__(self, invocation_token: str = "", idempotency_key: str = "") -> None:
        if not isinstance(invocation_token, str):
            raise TypeError(
                f"invocation_token must be a str, not {type(invocation_token).__name__}"
            )
        if not isinstance(idempotency_key, str):
            raise TypeError(f"idempotency_key must be a str, not {type(idempotency_key).__name__}")
        self.invocation_token = invocation_token.strip()
        self.idempotency_key = idempotency_key.strip()

    def __repr__(self) -> str:
        token = "'<redacted>'" if self.invocation_token else "''"
        return f"Scope(invocation_token={token}, idempotency_key={self.idempotency_key!r})"

    def fill(self, request: Req) -> Req:
        """A copy of a raw request carrying this client's invocation token.

        As with the published SDK, the client's token replaces whatever the message held and
        nothing else changes (the default idempotency key applies to the typed forms only).
        The caller's message is left alone.
        """
        if not self.invocation_token or "invocation_token" not in request.DESCRIPTOR.fields_by_name:
            return request
        copy = type(request)()
        copy.CopyFrom(request)
        copy.invocation_token = self.invocation_token  # type: ignore[attr-defined]
        return copy

    def key(self, idempotency_key: str) -> str:
        """The idempotency key of one call: the one given, else the client's default."""
        if not isinstance(idempotency_key, str):
            raise TypeError(f"idempotency_key must be a str, not {type(idempotency_key).__name__}")
        return idempotency_key.strip() or self.idempotency_key


class _Shown(str):
    """An annotation written as text, shown without quotes in a signature."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


class _Client:
    """What both kinds of client hold: scope, default deadline and their channel share."""

    __slots__ = ("_conn", "_scope", "_timeout")

    #: The connection type (sync or asyncio) a subclass uses.
    _connection: Any

    def __init__(
        self,
        endpoint: Endpoint,
        factory: Any,
        errors: ErrorMapper,
        scope: Scope,
        timeout: float | None,
    ) -> None:
        self._timeout = check_timeout(timeout)
        self._scope = scope
        self._conn = self._connection(endpoint, factory, errors)


class _SyncClient(_Client, Closing):
    """Base of the sync clients whose methods are :class:`Call` descriptors."""

    __slots__ = ()
    _connection = SyncConnection
    _conn: SyncConnection[Any]

    def close(self) -> None:
        """Close the client (the shared channel closes with its last client); idempotent."""
        self._conn.close()


class _AioClient(_Client, AsyncClosing):
    """Base of the asyncio clients whose methods are :class:`Call` descriptors."""

    __slots__ = ()
    _connection = AioConnection
    _conn: AioConnection[Any]

    async def close(self) -> None:
        """Close the client (a shared channel closes with its last client); idempotent."""
        await self._conn.close()


class Call(Generic[P, Req, Resp, R]):
    """One RPC of a host service, usable as a method of a sync or an asyncio client."""

    def __init__(
        self,
        rpc: str,
        request_type: type[Req],
        build: Callable[Concatenate[Scope, P], Req],
        decode: Callable[[Resp], R],
    ) -> None:
        self.rpc = rpc
        self.name = rpc
        self.request_type = request_type
        self.build = build
        self.decode = decode
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        # Documentation tools list these as attributes without a signature: lead with it.
        declared = self.__signature__
        shown = declared.replace(
            parameters=[
                p.replace(annotation=_Shown(p.annotation))
                for p in list(declared.parameters.values())[1:]
            ],
            return_annotation=_Shown(declared.return_annotation),
        )
        self.__doc__ = f"``{name}{shown}``\n\n{self.build.__doc__ or ''}"

    def __repr__(self) -> str:
        return f"<host-service method {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Calling the method on the class itself is an error: call it on a client."""
        raise TypeError(f"{self.name}() is a method of a client; call it on an instance")

    @property
    def __signature__(self) -> inspect.Signature:
        """The typed form's signature, as documentation tools show it (with ``self``)."""
        built = inspect.signature(self.build)
        parameters = list(built.parameters.values())[1:]  # without the scope
        this = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
        returns = inspect.signature(self.decode).return_annotation
        return built.replace(parameters=[this, *parameters], return_annotation=returns)

    def request(self, scope: Scope, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Req | None:
        """The request to send; None for the raw form (the message is ``args[0]``, filled)."""
        if args and isinstance(args[0], self.request_type):
            if len(args) > 1 or kwargs:
                raise TypeError(
                    f"{self.name}() takes either a {self.request_type.__name__} message or "
                    "keyword arguments, not both"
                )
            return None
        if args and isinstance(args[0], Message):
            raise TypeError(
                f"{self.name}() takes a {self.request_type.__name__}, "
                f"not a {type(args[0]).__name__}"
            )
        return self.build(scope, *args, **kwargs)

    @overload
    def __get__(self, obj: None, owner: type) -> Call[P, Req, Resp, R]: ...

    @overload
    def __get__(self, obj: _SyncClient, owner: type) -> SyncMethod[P, Req, Resp, R]: ...

    @overload
    def __get__(self, obj: _AioClient, owner: type) -> AioMethod[P, Req, Resp, R]: ...

    def __get__(
        self, obj: _SyncClient | _AioClient | None, owner: type
    ) -> Call[P, Req, Resp, R] | SyncMethod[P, Req, Resp, R] | AioMethod[P, Req, Resp, R]:
        if obj is None:
            return self
        if isinstance(obj, _AioClient):
            return AioMethod(self, obj)
        return SyncMethod(self, obj)


class SyncMethod(Generic[P, Req, Resp, R]):
    """A :class:`Call` bound to a sync client."""

    __slots__ = ("_call", "_client")

    def __init__(self, call: Call[P, Req, Resp, R], client: _SyncClient) -> None:
        self._call = call
        self._client = client

    @overload
    def __call__(self, request: Req, /) -> Resp: ...

    @overload
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Resp | R:
        call, client = self._call, self._client
        request = call.request(client._scope, args, kwargs)
        raw = request is None
        message = client._scope.fill(args[0]) if request is None else request
        conn = client._conn
        response = getattr(conn.stub, call.rpc)(
            message, timeout=client._timeout, metadata=conn.metadata
        )
        return response if raw else call.decode(response)


class AioMethod(Generic[P, Req, Resp, R]):
    """A :class:`Call` bound to an asyncio client: calling it returns an awaitable."""

    __slots__ = ("_call", "_client")

    def __init__(self, call: Call[P, Req, Resp, R], client: _AioClient) -> None:
        self._call = call
        self._client = client

    @overload
    def __call__(self, request: Req, /) -> Awaitable[Resp]: ...

    @overload
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Awaitable[Resp | R]:
        call, client = self._call, self._client
        # Arguments are checked now, not when awaited, so a bad call fails where it is made.
        request = call.request(client._scope, args, kwargs)
        message = client._scope.fill(args[0]) if request is None else request
        return self._send(message, request is None)

    async def _send(self, message: Message, raw: bool) -> Resp | R:
        call, client = self._call, self._client
        conn = client._conn
        response = await getattr(conn.stub(), call.rpc)(
            message, timeout=client._timeout, metadata=conn.metadata
        )
        return response if raw else call.decode(response)
