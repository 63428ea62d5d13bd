"""The OpenTelemetry side of :mod:`gestalt.telemetry`; importing it requires OpenTelemetry.

Nothing else in the SDK imports this module directly: :func:`gestalt.telemetry._backend` does,
once, and treats an ``ImportError`` as "not installed".
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Mapping
from typing import Any

import grpc
import grpc.aio
from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from gestalt.telemetry._wrapping import Behaviour, Details, Handler, WrappingInterceptor

logger = logging.getLogger("gestalt.telemetry")

_tracer = trace.get_tracer("gestalt")
_meter = metrics.get_meter("gestalt")
_duration = _meter.create_histogram(
    "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration"
)
_tokens = _meter.create_histogram(
    "gen_ai.client.token.usage", unit="{token}", description="Tokens used by GenAI operations"
)


# -- operations -----------------------------------------------------------------------------


class Active:
    """A started span and the context token that made it current."""

    __slots__ = ("span", "token")

    def __init__(self, span: trace.Span, token: object) -> None:
        self.span = span
        self.token = token

    def set_attributes(self, attrs: Mapping[str, Any]) -> None:
        """Set span attributes."""
        self.span.set_attributes(attrs)


def _kind(kind: Any) -> SpanKind:
    if isinstance(kind, SpanKind):
        return kind
    try:
        return SpanKind[str(kind).upper()]
    except KeyError:
        raise ValueError(f"unknown span kind {kind!r}") from None


def start_span(name: str, kind: Any, attrs: Mapping[str, Any]) -> Active:
    """Start span ``name`` as a child of the current one and make it current."""
    span = _tracer.start_span(name, kind=_kind(kind), attributes=attrs)
    return Active(span, otel_context.attach(trace.set_span_in_context(span)))


def end_span(active: Active, seconds: float, metric_attrs: Mapping[str, Any]) -> None:
    """End the span, restore the previous context and record the operation's duration."""
    try:
        otel_context.detach(active.token)  # type: ignore[arg-type]
    finally:
        active.span.end()
        _duration.record(seconds, metric_attrs)


def mark_error(
    active: Active, error_type: str, description: str, exc: BaseException | None
) -> None:
    """Status ERROR, ``error.type`` and the exception (when given) on the span."""
    active.span.set_attribute("error.type", error_type)
    active.span.set_status(Status(StatusCode.ERROR, description or None))
    if exc is not None:
        active.span.record_exception(exc)


def record_tokens(counts: Mapping[str, int], metric_attrs: Mapping[str, Any]) -> None:
    """One ``gen_ai.client.token.usage`` point per token type (``input``, ``output``)."""
    for token_type, count in counts.items():
        _tokens.record(count, {**metric_attrs, "gen_ai.token.type": token_type})


# -- configuration --------------------------------------------------------------------------

_lock = threading.Lock()
_configured = False
_installed: list[Any] = []


def _choice(environ: Mapping[str, str], signal: str) -> str | None:
    """``otlp``, ``console`` or None (no exporter) for ``TRACES`` or ``METRICS``."""
    explicit = environ.get(f"OTEL_{signal}_EXPORTER", "").strip().lower()
    if explicit:
        first = explicit.split(",")[0].strip()
        if first == "none":
            return None
        if first in ("otlp", "console"):
            return first
        logger.warning("OTEL_%s_EXPORTER=%s is not supported (otlp, console, none)", signal, first)
        return None
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    return "otlp" if any(environ.get(name, "").strip() for name in endpoints) else None


def _protocol(environ: Mapping[str, str], signal: str) -> str:
    for name in (f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = environ.get(name, "").strip().lower()
        if value:
            return value
    return "grpc"


def _exporter(signal: str, choice: str, environ: Mapping[str, str]) -> Any:
    """A new exporter of ``signal`` (``TRACES`` or ``METRICS``): the console one, or OTLP
    over the protocol the environment names."""
    protocol = "console" if choice == "console" else _protocol(environ, signal)
    spans = signal == "TRACES"
    if protocol == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter() if spans else ConsoleMetricExporter()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc import metric_exporter as grpc_metrics
        from opentelemetry.exporter.otlp.proto.grpc import trace_exporter as grpc_traces

        return grpc_traces.OTLPSpanExporter() if spans else grpc_metrics.OTLPMetricExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http import metric_exporter as http_metrics
        from opentelemetry.exporter.otlp.proto.http import trace_exporter as http_traces

        return http_traces.OTLPSpanExporter() if spans else http_metrics.OTLPMetricExporter()
    raise ValueError(f"unsupported OTLP protocol {protocol!r} (grpc or http/protobuf)")


def configure(service_name: str, environ: Mapping[str, str]) -> None:
    """Install exporters as the environment asks (see ``configure_from_environment``)."""
    global _configured
    with _lock:
        if _configured:
            return
        _configured = True
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return
    traces, measures = _choice(environ, "TRACES"), _choice(environ, "METRICS")
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        traces = None  # the application installed its own
    if traces is None and measures is None:
        return
    named = environ.get("OTEL_SERVICE_NAME", "").strip() or "service.name=" in environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    try:
        from opentelemetry.sdk.resources import Resource

        resource = Resource.create({} if named else {"service.name": service_name})
        if traces is not None:
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            tracer_provider = TracerProvider(resource=resource)
            exporter = _exporter("TRACES", traces, environ)
            tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
            trace.set_tracer_provider(tracer_provider)
            _installed.append(tracer_provider)
        if measures is not None:
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            reader = PeriodicExportingMetricReader(_exporter("METRICS", measures, environ))
            meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
            metrics.set_meter_provider(meter_provider)
            _installed.append(meter_provider)
    except ImportError as exc:  # the API alone, without the SDK or the OTLP exporters
        logger.warning(
            "telemetry is off: %s is not installed (pip install 'gestalt-sdk[otel]')", exc.name
        )
    except ValueError as exc:
        logger.warning("telemetry is off: %s", exc)


def tracing() -> bool:
    """Whether a tracer provider is installed (spans would be recorded somewhere)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def shutdown() -> None:
    """Flush and shut down the providers :func:`configure` installed."""
    while _installed:
        provider = _installed.pop()
        try:
            provider.shutdown()
        except Exception:
            logger.warning("shutting down telemetry failed", exc_info=True)


# -- server spans ---------------------------------------------------------------------------


def _finish(span: trace.Span, context: Any, failed: bool) -> None:
    code = None
    try:
        code = context.code()
    except Exception:  # a context without code(): nothing more to learn
        code = None
    if isinstance(code, grpc.StatusCode):
        status = code
    else:
        status = grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK
    span.set_attribute("rpc.grpc.status_code", status.value[0])
    if status is not grpc.StatusCode.OK:
        span.set_status(Status(StatusCode.ERROR, status.name))
    span.end()


class ServerSpans(WrappingInterceptor):
    """One SERVER span per call, continuing the caller's trace from its metadata."""

    def wrap(self, details: Details, handler: Handler, behaviour: Behaviour) -> Behaviour:
        """Run the call inside a span named after the method."""
        method = str(details.method)
        service, _, name = method.lstrip("/").partition("/")
        carrier = {
            str(key): value
            for key, value in details.invocation_metadata or ()
            if isinstance(value, str)
        }
        attrs = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
        span_name = method.lstrip("/")

        def start() -> tuple[trace.Span, object]:
            span = _tracer.start_span(
                span_name,
                context=propagate.extract(carrier),
                kind=SpanKind.SERVER,
                attributes=attrs,
            )
            return span, otel_context.attach(trace.set_span_in_context(span))

        def unary(request: Any, context: Any) -> Any:
            span, token = start()
            failed = True
            try:
                result = behaviour(request, context)
                failed = False
                return result
            finally:
                otel_context.detach(token)  # type: ignore[arg-type]
                _finish(span, context, failed)

        def streaming(request: Any, context: Any) -> Any:
            span, token = start()
            failed = True
            try:
                yield from behaviour(request, context)
                failed = False
            finally:
                otel_context.detach(token)  # type: ignore[arg-type]
                _finish(span, context, failed)

        return streaming if handler.response_streaming else unary


# -- client trace context -------------------------------------------------------------------


def _trace_headers() -> list[tuple[str, str]]:
    """``traceparent`` (and ``tracestate``) of the current span; empty outside any span."""
    if not trace.get_current_span().get_span_context().is_valid:
        return []
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return list(carrier.items())


class _Details(
    collections.namedtuple(
        "_Details",
        ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
    ),
    grpc.ClientCallDetails,
):
    pass


class TraceContext(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds the current trace context to the metadata of every call on a sync channel."""

    @staticmethod
    def _details(details: Any) -> Any:
        headers = _trace_headers()
        if not headers:
            return details
        return _Details(
            details.method,
            details.timeout,
            (*(details.metadata or ()), *headers),
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        """Call on with trace context added."""
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        """Call on with trace context added."""
        return continuation(self._details(client_call_details), request_iterator)

    # The other call shapes are intercepted alike.
    intercept_unary_stream = intercept_unary_unary
    intercept_stream_stream = intercept_stream_unary


def client_interceptors() -> list[Any]:
    """The interceptors of a sync host-service channel."""
    return [TraceContext()]


def _aio_details(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    headers = _trace_headers()
    if not headers:
        return details
    metadata = grpc.aio.Metadata(*(details.metadata or ()), *headers)
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


async def _aio_call_on(self: Any, continuation: Any, client_call_details: Any, request: Any) -> Any:
    """Call on with trace context added (a request, or a request iterator)."""
    return await continuation(_aio_details(client_call_details), request)


#: One interceptor class per call shape: a ``grpc.aio`` channel files each interceptor under
#: the first shape it is an instance of, so one class cannot serve all four.
_AIO_SHAPES = [
    type(f"_Aio{base.__name__}", (base,), {f"intercept_{shape}": _aio_call_on})
    for shape, base in (
        ("unary_unary", grpc.aio.UnaryUnaryClientInterceptor),
        ("unary_stream", grpc.aio.UnaryStreamClientInterceptor),
        ("stream_unary", grpc.aio.StreamUnaryClientInterceptor),
        ("stream_stream", grpc.aio.StreamStreamClientInterceptor),
    )
]


def aio_client_interceptors() -> list[Any]:
    """The interceptors of a ``grpc.aio`` host-service channel (one per call shape)."""
    return [shape() for shape in _AIO_SHAPES]
