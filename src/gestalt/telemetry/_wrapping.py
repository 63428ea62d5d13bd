"""A gRPC server interceptor that runs each call's behaviour inside a wrapper.

The base of the runtime's per-call instrumentation: the OpenTelemetry server spans
(``gestalt.telemetry._otel``) and the call reports of ``gestalt dev``
(``gestalt._runtime.devcalls``). It imports gRPC only, never OpenTelemetry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import grpc

#: A method's behaviour: ``(request or request iterator, context) -> response(s)``.
Behaviour = Callable[[Any, grpc.ServicerContext], Any]
#: What the server knows of a call before running it: its method and metadata.
Details = grpc.HandlerCallDetails
#: A method's handler: its behaviour, kind and (de)serializers.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"

#: The four kinds of method handler, each with the function that builds one.
_KINDS: tuple[tuple[str, Callable[..., Handler]], ...] = (
    ("unary_unary", grpc.unary_unary_rpc_method_handler),
    ("stream_unary", grpc.stream_unary_rpc_method_handler),
    ("unary_stream", grpc.unary_stream_rpc_method_handler),
    ("stream_stream", grpc.stream_stream_rpc_method_handler),
)


class WrappingInterceptor(grpc.ServerInterceptor):
    """Rebuilds every method handler around the behaviour :meth:`wrap` returns.

    The rebuilt handler keeps the method's kind and (de)serializers; a method ``wrap``
    leaves alone (returns None), or one without a handler, passes through unchanged.
    """

    def intercept_service(
        self,
        continuation: Callable[[Details], Handler | None],
        handler_call_details: Details,
    ) -> Handler | None:
        """The method's handler, its behaviour wrapped by :meth:`wrap`."""
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        for kind, build in _KINDS:
            behaviour: Behaviour | None = getattr(handler, kind)
            if behaviour is None:
                continue
            wrapped = self.wrap(handler_call_details, handler, behaviour)
            if wrapped is None:
                return handler
            return build(
                wrapped,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def wrap(self, details: Details, handler: Handler, behaviour: Behaviour) -> Behaviour | None:
        """The behaviour to run instead of ``behaviour`` (a generator function when
        ``handler.response_streaming``), or None to leave the method as it is."""
        raise NotImplementedError
