"""Telemetry for providers: OpenTelemetry traces and metrics, when it is installed.

Install the extra (``pip install 'gestalt-sdk[otel]'``) and set the usual ``OTEL_*``
variables (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_PROTOCOL``,
``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SDK_DISABLED``...): the provider
runtime then exports traces and metrics over OTLP, opens a server span for every call the
host makes (continuing the host's trace when the call carries W3C ``traceparent``), and
carries the current trace context into every call to a host service.

Without the extra, nothing here imports OpenTelemetry and every helper is a cheap no-op, so
code can use :func:`model_operation` and friends unconditionally::

    from gestalt import telemetry

    with telemetry.model_operation(provider_name="openai", request_model="gpt-4o") as op:
        response = client.chat.completions.create(model="gpt-4o", messages=messages)
        telemetry.record_openai_usage(op, response)

The spans and metrics follow the OpenTelemetry semantic conventions for generative AI:
``gen_ai.*`` attributes, the ``gen_ai.client.operation.duration`` and
``gen_ai.client.token.usage`` histograms, ``error.type`` on failures.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Mapping, Sequence
from types import ModuleType, TracebackType
from typing import Any, Literal

from gestalt._tracing import tracing_wanted as _tracing_wanted

__all__ = [
    "GENAI_OPERATION_CHAT",
    "GENAI_OPERATION_EXECUTE_TOOL",
    "GENAI_OPERATION_INVOKE_AGENT",
    "GENAI_PROVIDER_NAME",
    "GENAI_TOOL_TYPE_DATASTORE",
    "GENAI_TOOL_TYPE_EXTENSION",
    "Operation",
    "agent_invocation",
    "configure_from_environment",
    "model_operation",
    "record_anthropic_usage",
    "record_openai_usage",
    "shutdown",
    "tool_execution",
]

#: ``gen_ai.operation.name`` of a model call (chat completion, message, response).
GENAI_OPERATION_CHAT = "chat"
#: ``gen_ai.operation.name`` of a tool call.
GENAI_OPERATION_EXECUTE_TOOL = "execute_tool"
#: ``gen_ai.operation.name`` of an agent turn.
GENAI_OPERATION_INVOKE_AGENT = "invoke_agent"
#: ``gen_ai.provider.name`` of operations Gestalt itself performs (agent invocations).
GENAI_PROVIDER_NAME = "gestalt"
#: ``gen_ai.tool.type`` of a tool that reads or writes a data store.
GENAI_TOOL_TYPE_DATASTORE = "datastore"
#: ``gen_ai.tool.type`` of a tool that calls out to an external system (the default).
GENAI_TOOL_TYPE_EXTENSION = "extension"

# Attribute names of the OpenTelemetry semantic conventions used here.
_OPERATION = "gen_ai.operation.name"
_PROVIDER = "gen_ai.provider.name"
_REQUEST_MODEL = "gen_ai.request.model"
_RESPONSE_MODEL = "gen_ai.response.model"
_RESPONSE_ID = "gen_ai.response.id"
_FINISH_REASONS = "gen_ai.response.finish_reasons"
_ERROR_TYPE = "error.type"
_USAGE = {
    "input_tokens": "gen_ai.usage.input_tokens",
    "output_tokens": "gen_ai.usage.output_tokens",
    "cache_creation_input_tokens": "gen_ai.usage.cache_creation.input_tokens",
    "cache_read_input_tokens": "gen_ai.usage.cache_read.input_tokens",
    "reasoning_output_tokens": "gen_ai.usage.reasoning.output_tokens",
}
#: ``request_options`` keys of the common model APIs -> their ``gen_ai.request.*`` attribute.
_REQUEST_OPTIONS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
    "stop": "gen_ai.request.stop_sequences",
    "stop_sequences": "gen_ai.request.stop_sequences",
    "stream": "gen_ai.request.stream",
}


@functools.cache
def _backend() -> ModuleType | None:
    """The OpenTelemetry glue, or None when OpenTelemetry is not installed (checked once)."""
    try:
        from gestalt.telemetry import _otel
    except ImportError:
        return None
    return _otel


def available() -> bool:
    """Whether OpenTelemetry is installed (the ``otel`` extra)."""
    return _backend() is not None


def configure_from_environment(*, service_name: str = "gestalt-provider") -> None:
    """Install OTLP exporters for traces and metrics as the ``OTEL_*`` variables say.

    Does nothing without OpenTelemetry, with ``OTEL_SDK_DISABLED=true``, when no exporter is
    asked for (no ``OTEL_EXPORTER_OTLP_*ENDPOINT``, ``OTEL_TRACES_EXPORTER`` or
    ``OTEL_METRICS_EXPORTER``), or when the application already installed its own tracer
    provider. ``service_name`` is used unless ``OTEL_SERVICE_NAME`` or
    ``OTEL_RESOURCE_ATTRIBUTES`` name the service. Calling it again does nothing.
    """
    backend = _wanted()  # no OTEL_* variable and no OpenTelemetry imported: nothing to set up
    if backend is not None:
        backend.configure(service_name, os.environ)


def shutdown() -> None:
    """Flush and stop what :func:`configure_from_environment` installed; safe to call always."""
    backend = sys.modules.get(f"{__name__}._otel")  # never loaded: nothing was installed
    if backend is not None:
        backend.shutdown()


def _clean(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes OpenTelemetry accepts: None dropped, sequences as lists of str."""
    clean: dict[str, Any] = {}
    for key, value in attrs.items():
        if value is None or value == "":
            continue
        if isinstance(value, Sequence) and not isinstance(value, str | bytes):
            value = [str(item) for item in value]
        elif not isinstance(value, bool | int | float | str):
            value = str(value)
        clean[str(key)] = value
    return clean


def _field(obj: Any, name: str) -> Any:
    """``obj[name]`` for a mapping, ``obj.name`` otherwise; None when absent."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


class Operation:
    """One traced unit of work: a span plus the GenAI duration and token metrics.

    Use it as a context manager; the helpers :func:`model_operation`,
    :func:`agent_invocation` and :func:`tool_execution` build it with the right names.
    ``span_kind`` is an ``opentelemetry.trace.SpanKind`` (or its name, ``"client"``).
    Leaving the block with an exception marks the operation failed with the exception's type
    (and lets the exception go on). Without OpenTelemetry every method does nothing.
    """

    __slots__ = (
        "_error",
        "_metric_attrs",
        "_span",
        "_span_attrs",
        "_span_kind",
        "_span_name",
        "_started",
    )

    def __init__(
        self,
        *,
        span_name: str,
        span_kind: Any,
        span_attrs: Mapping[str, Any],
        metric_attrs: Mapping[str, Any],
    ) -> None:
        self._span_name = span_name
        self._span_kind = span_kind
        self._span_attrs = _clean(span_attrs)
        self._metric_attrs = _clean(metric_attrs)
        self._span: Any = None
        self._started = 0.0
        self._error = ""

    def __enter__(self) -> Operation:
        """Start the span (made current) and the clock."""
        backend = _backend()
        if backend is not None:
            self._span = backend.start_span(self._span_name, self._span_kind, self._span_attrs)
            self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback_value: TracebackType | None,
    ) -> Literal[False]:
        """End the span and record the duration; an exception marks the operation failed."""
        span, self._span = self._span, None
        backend = _backend()
        if span is None or backend is None:
            return False
        if exc is not None and not self._error:
            self._error = type(exc).__qualname__
            backend.mark_error(span, self._error, str(exc), exc)
        metric_attrs = dict(self._metric_attrs)
        if self._error:
            metric_attrs[_ERROR_TYPE] = self._error
        backend.end_span(span, time.perf_counter() - self._started, metric_attrs)
        return False

    def set_attribute(self, key: str, value: Any) -> None:
        """Set one span attribute (None is ignored)."""
        if self._span is not None and value is not None:
            self._span.set_attributes(_clean({key: value}))

    def mark_error(
        self, error_type: str, description: str = "", *, exc: BaseException | None = None
    ) -> None:
        """Mark the operation failed: ``error.type`` on the span and metrics, status ERROR."""
        self._error = error_type or "error"
        backend = _backend()
        if self._span is not None and backend is not None:
            backend.mark_error(self._span, self._error, description, exc)

    def record_usage(
        self,
        *,
        input_tokens: Any = None,
        output_tokens: Any = None,
        cache_creation_input_tokens: Any = None,
        cache_read_input_tokens: Any = None,
        reasoning_output_tokens: Any = None,
    ) -> None:
        """Record token counts on the span and in the ``gen_ai.client.token.usage`` histogram.

        Counts that are None (or not numbers) are skipped.
        """
        backend = _backend()
        if self._span is None or backend is None:
            return
        given = {
            "input_tokens": _count(input_tokens),
            "output_tokens": _count(output_tokens),
            "cache_creation_input_tokens": _count(cache_creation_input_tokens),
            "cache_read_input_tokens": _count(cache_read_input_tokens),
            "reasoning_output_tokens": _count(reasoning_output_tokens),
        }
        counts = {_USAGE[name]: value for name, value in given.items() if value is not None}
        self._span.set_attributes(counts)
        tokens = {"input": given["input_tokens"], "output": given["output_tokens"]}
        backend.record_tokens(
            {kind: n for kind, n in tokens.items() if n is not None}, self._metric_attrs
        )

    def set_response_metadata(
        self, response: Any, *, finish_reasons: list[str] | None = None
    ) -> None:
        """Record a model response's id, model and finish reasons (read from it if not given).

        ``response`` may be an SDK object or a dict; OpenAI's ``choices[].finish_reason``
        and ``status`` and Anthropic's ``stop_reason`` are understood.
        """
        if self._span is None:
            return
        model = _field(response, "model")
        if model:
            self._metric_attrs[_RESPONSE_MODEL] = str(model)
        if finish_reasons is None:
            finish_reasons = _finish_reasons(response)
        self._span.set_attributes(
            _clean(
                {
                    _RESPONSE_ID: _field(response, "id"),
                    _RESPONSE_MODEL: model,
                    _FINISH_REASONS: finish_reasons or None,
                }
            )
        )


def _finish_reasons(response: Any) -> list[str]:
    choices = _field(response, "choices")
    if isinstance(choices, Sequence) and not isinstance(choices, str):
        found = [_field(choice, "finish_reason") for choice in choices]
        return [str(reason) for reason in found if reason]
    for name in ("stop_reason", "status"):
        reason = _field(response, name)
        if reason:
            return [str(reason)]
    return []


_NOTHING: dict[str, Any] = {}


def _noop(kind: str) -> Operation:
    """An operation that records nothing (OpenTelemetry is not installed)."""
    return Operation(span_name="", span_kind=kind, span_attrs=_NOTHING, metric_attrs=_NOTHING)


def _operation(
    name: str, kind: str, span_attrs: dict[str, Any], metric_keys: tuple[str, ...]
) -> Operation:
    metric_attrs = {key: span_attrs[key] for key in metric_keys if key in span_attrs}
    return Operation(
        span_name=name, span_kind=kind, span_attrs=span_attrs, metric_attrs=metric_attrs
    )


def model_operation(
    *,
    provider_name: str,
    request_model: str,
    request_options: Mapping[str, Any] | None = None,
    request_attrs: Mapping[str, Any] | None = None,
) -> Operation:
    """An :class:`Operation` for one call to a model: span ``chat <model>``, kind CLIENT.

    ``provider_name`` is the model vendor as the conventions name it (``openai``,
    ``anthropic``, ``gcp.gemini``...). ``request_options`` are the call's options as the
    vendor's API names them (``temperature``, ``max_tokens``, ``top_p``, ``stop``...); the
    known ones become ``gen_ai.request.*`` attributes. ``request_attrs`` are added as given.
    """
    if _backend() is None:
        return _noop("client")
    attrs: dict[str, Any] = {
        _OPERATION: GENAI_OPERATION_CHAT,
        _PROVIDER: provider_name,
        _REQUEST_MODEL: request_model,
    }
    for key, value in (request_options or {}).items():
        name = _REQUEST_OPTIONS.get(key)
        if name is not None and value is not None:
            attrs[name] = [value] if key == "stop" and isinstance(value, str) else value
    attrs.update(request_attrs or {})
    name = f"{GENAI_OPERATION_CHAT} {request_model}".strip()
    return _operation(name, "client", attrs, (_OPERATION, _PROVIDER, _REQUEST_MODEL))


def agent_invocation(*, agent_name: str, session_id: str, turn_id: str, model: str) -> Operation:
    """An :class:`Operation` for one agent turn: span ``invoke_agent <agent>``, kind INTERNAL.

    The session is the conversation (``gen_ai.conversation.id``); the turn id is recorded as
    ``gestalt.agent.turn.id``.
    """
    if _backend() is None:
        return _noop("internal")
    attrs = {
        _OPERATION: GENAI_OPERATION_INVOKE_AGENT,
        _PROVIDER: GENAI_PROVIDER_NAME,
        "gen_ai.agent.name": agent_name,
        "gen_ai.conversation.id": session_id,
        "gestalt.agent.turn.id": turn_id,
        _REQUEST_MODEL: model,
    }
    name = f"{GENAI_OPERATION_INVOKE_AGENT} {agent_name}".strip()
    return _operation(name, "internal", attrs, (_OPERATION, _PROVIDER, _REQUEST_MODEL))


def tool_execution(
    *, tool_name: str, tool_call_id: str = "", tool_type: str = GENAI_TOOL_TYPE_EXTENSION
) -> Operation:
    """An :class:`Operation` for one tool call: span ``execute_tool <tool>``, kind INTERNAL."""
    if _backend() is None:
        return _noop("internal")
    attrs = {
        _OPERATION: GENAI_OPERATION_EXECUTE_TOOL,
        "gen_ai.tool.name": tool_name,
        "gen_ai.tool.call.id": tool_call_id,
        "gen_ai.tool.type": tool_type,
    }
    name = f"{GENAI_OPERATION_EXECUTE_TOOL} {tool_name}".strip()
    return _operation(name, "internal", attrs, (_OPERATION, "gen_ai.tool.name"))


def record_openai_usage(operation: Operation, response: Any) -> None:
    """Record an OpenAI response's token usage and metadata on ``operation``.

    Understands the Chat Completions usage (``prompt_tokens``, ``completion_tokens``, cached
    and reasoning details) and the Responses API usage (``input_tokens``,
    ``output_tokens``...), as SDK objects or dicts.
    """
    if operation._span is None:
        return
    usage = _field(response, "usage")
    input_tokens = _field(usage, "input_tokens")
    if input_tokens is None:
        input_tokens = _field(usage, "prompt_tokens")
    output_tokens = _field(usage, "output_tokens")
    if output_tokens is None:
        output_tokens = _field(usage, "completion_tokens")
    input_details = _field(usage, "input_tokens_details") or _field(usage, "prompt_tokens_details")
    output_details = _field(usage, "output_tokens_details") or _field(
        usage, "completion_tokens_details"
    )
    operation.record_usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_input_tokens=_field(input_details, "cached_tokens"),
        reasoning_output_tokens=_field(output_details, "reasoning_tokens"),
    )
    operation.set_response_metadata(response)


def record_anthropic_usage(operation: Operation, response: Any) -> None:
    """Record an Anthropic message's token usage and metadata on ``operation``.

    Anthropic counts cache writes and reads apart from ``input_tokens``; the conventions'
    ``gen_ai.usage.input_tokens`` includes them, so the recorded input is their sum (each
    part is also recorded on its own).
    """
    if operation._span is None:
        return
    usage = _field(response, "usage")
    plain = _count(_field(usage, "input_tokens"))
    written = _count(_field(usage, "cache_creation_input_tokens"))
    read = _count(_field(usage, "cache_read_input_tokens"))
    parts = [n for n in (plain, written, read) if n is not None]
    operation.record_usage(
        input_tokens=sum(parts) if parts else None,
        output_tokens=_field(usage, "output_tokens"),
        cache_creation_input_tokens=written,
        cache_read_input_tokens=read,
    )
    operation.set_response_metadata(response)


# -- hooks for the SDK's runtime and clients (not public) -----------------------------------


def _wanted() -> ModuleType | None:
    """The glue, when tracing may be in use (:func:`gestalt._tracing.tracing_wanted`) and
    OpenTelemetry is installed. Otherwise None, and nothing of OpenTelemetry is imported (a
    provider that does not use it pays nothing for it)."""
    return _backend() if _tracing_wanted() else None


def server_interceptors() -> list[Any]:
    """Server interceptors opening a span per call, when a tracer provider is installed."""
    backend = _wanted()
    return [] if backend is None or not backend.tracing() else [backend.ServerSpans()]


def client_interceptors(aio: bool) -> list[Any]:
    """Channel interceptors adding W3C trace context to calls, when tracing may be in use."""
    backend = _wanted()
    if backend is None:
        return []
    made: list[Any] = backend.aio_client_interceptors() if aio else backend.client_interceptors()
    return made
