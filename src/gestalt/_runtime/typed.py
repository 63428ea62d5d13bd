"""Serving providers whose methods take and return the dataclass mirrors (agent, workflow,
authorization).

A provider subclassing :class:`~gestalt.AgentProvider`, :class:`~gestalt.WorkflowProvider` or
:class:`~gestalt.AuthorizationProvider` implements the kind's RPCs as snake_case methods
taking one request mirror (none for an RPC taking ``Empty``) and returning the response mirror
(``None`` for an RPC answering ``Empty``), plain or ``async def``. :func:`typed_methods` turns
such a provider into the handler object the generated adapter registers:

* a method the subclass does not override is left out, so the call answers ``UNIMPLEMENTED``;
* a method written the raw way, taking ``(request, context)`` or named like the RPC
  (``CreateSession``), gets the protobuf request and the gRPC context as before, for providers
  written against the published SDK;
* a typed method gets ``Mirror.from_pb(request)``; what it returns is sent as ``to_pb()`` (a
  pb2 message is sent as is). ``NotImplementedError`` answers ``UNIMPLEMENTED``, a
  ``LookupError`` ``NOT_FOUND``, anything else ``UNKNOWN`` with the traceback in the provider
  log and never its text on the wire.
"""

from __future__ import annotations

import asyncio
import inspect
import types
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.protobuf import empty_pb2
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message

from gestalt._runtime.servicers import Context, call, fail
from gestalt.gen.serving import MethodSpec

__all__ = ["typed_methods"]


def _takes_context(fn: Callable[..., Any]) -> bool:
    """Whether a bound method wants ``(request, context)`` rather than one request mirror."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in parameters)


def _encode(result: Any, output: type[Message], label: str) -> Message:
    """The response message for what a typed method returned."""
    if result is None and output is empty_pb2.Empty:
        return empty_pb2.Empty()
    if isinstance(result, output):
        return result
    to_pb = getattr(result, "to_pb", None)
    message = to_pb() if callable(to_pb) and not isinstance(result, Message) else None
    if not isinstance(message, output):
        raise TypeError(
            f"{label} returned {type(result).__name__}, expected a {output.__name__} mirror"
        )
    return message


async def _invoke(context: Context, label: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run provider code, mapping its failures (see the module docstring)."""
    try:
        return await call(fn, *args)
    except (grpc.aio.AbortError, asyncio.CancelledError):
        raise
    except LookupError:
        await context.abort(grpc.StatusCode.NOT_FOUND, f"{label}: not found")
    except Exception as exc:
        await fail(context, label, exc)


def _typed(
    fn: Callable[..., Any], label: str, mirror_in: Any | None, output: type[Message]
) -> Callable[..., Any]:
    async def handler(request: Message, context: Context) -> Message:
        try:
            args = () if mirror_in is None else (mirror_in.from_pb(request),)
        except Exception as exc:  # a request the mirror cannot hold; logged, not sent
            await fail(context, label, exc)
        result = await _invoke(context, label, fn, *args)
        try:
            return _encode(result, output, label)
        except TypeError as exc:
            await fail(context, label, exc)

    handler.__name__ = getattr(fn, "__name__", "handler")
    return handler


def typed_methods(
    provider: Any,
    base: type,
    service: ServiceDescriptor,
    specs: Sequence[MethodSpec],
    mirrors: types.ModuleType,
    label: str,
) -> types.SimpleNamespace:
    """The handler object for ``provider`` (an instance of ``base``) serving ``service``."""
    from google.protobuf import symbol_database

    database = symbol_database.Default()
    by_name = {method.name: method for method in service.methods}
    found: dict[str, Callable[..., Any]] = {}
    for spec in specs:
        rpc_style = getattr(provider, spec.name, None)
        if callable(rpc_style):
            found[spec.attr] = rpc_style
            continue
        own = getattr(type(provider), spec.attr, None)
        if own is None or own is getattr(base, spec.attr, None):
            continue  # left out: the adapter answers UNIMPLEMENTED
        fn = getattr(provider, spec.attr)
        if _takes_context(fn):
            found[spec.attr] = fn
            continue
        method = by_name[spec.name]
        takes_nothing = method.input_type.full_name == "google.protobuf.Empty"
        mirror_in = None if takes_nothing else getattr(mirrors, method.input_type.name)
        output = database.GetSymbol(method.output_type.full_name)
        found[spec.attr] = _typed(fn, f"{label} {spec.attr}", mirror_in, output)
    return types.SimpleNamespace(**found)
