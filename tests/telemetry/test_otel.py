"""``gestalt.telemetry`` with OpenTelemetry installed (the dev environment has the extra).

The test process installs one tracer provider with an in-memory span exporter and one meter
provider with an in-memory reader, as an application would. The provider runtime is started
in this process (``RunningServer``, the server the runtime serves on) so that its spans land
there; its host-service calls go to a real embedded cache whose server records the metadata
each call carries.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gestalt import CacheProvider, telemetry
from gestalt._authoring.providers import ProviderKind
from gestalt._runtime.process import RunningServer
from gestalt.gen.support import RPCError
from gestalt.gen.v1 import cache_clients, cache_pb2, plugin_clients, plugin_pb2
from gestalt.local.cache import CacheServer, CacheService, serve_cache
from tests.telemetry.traced_plugin import plugin

SPANS = InMemorySpanExporter()
METRICS = InMemoryMetricReader()
HOST_TRACE = "0af7651916cd43dd8448eb211c80319c"
HOST_SPAN = "b7ad6b7169203331"


@pytest.fixture(scope="module", autouse=True)
def providers() -> None:
    """Install the in-memory providers once for the process."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(SPANS))
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[METRICS]))


@pytest.fixture(autouse=True)
def fresh() -> None:
    """Each test sees only its own spans."""
    SPANS.clear()


def spans(name: str | None = None) -> list[ReadableSpan]:
    """Finished spans, optionally only those called ``name``."""
    return [s for s in SPANS.get_finished_spans() if name is None or s.name == name]


def points(metric: str) -> list[tuple[dict[str, Any], Any]]:
    """(attributes, data point) of every point of histogram ``metric`` collected so far."""
    found: list[tuple[dict[str, Any], Any]] = []
    data = METRICS.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for item in scope.metrics:
                if item.name == metric:
                    found.extend((dict(p.attributes or {}), p) for p in item.data.data_points)
    return found


# -- helpers ---------------------------------------------------------------------------------


def test_model_operation_records_span_usage_and_metrics() -> None:
    options = {"temperature": 0.2, "max_tokens": 100, "stop": "END", "unknown": 1, "seed": None}
    response = {
        "id": "chatcmpl-1",
        "model": "gpt-4o-2024",
        "choices": [{"finish_reason": "stop"}, {"finish_reason": "length"}],
        "usage": {
            "prompt_tokens": 30,
            "completion_tokens": 12,
            "prompt_tokens_details": {"cached_tokens": 10},
            "completion_tokens_details": {"reasoning_tokens": 4},
        },
    }
    with telemetry.model_operation(
        provider_name="openai",
        request_model="gpt-4o",
        request_options=options,
        request_attrs={"app.tenant": "t1"},
    ) as op:
        telemetry.record_openai_usage(op, response)
    (span,) = spans()
    assert span.name == "chat gpt-4o" and span.kind == SpanKind.CLIENT
    assert dict(span.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 100,
        "gen_ai.request.stop_sequences": ("END",),
        "app.tenant": "t1",
        "gen_ai.usage.input_tokens": 30,
        "gen_ai.usage.output_tokens": 12,
        "gen_ai.usage.cache_read.input_tokens": 10,
        "gen_ai.usage.reasoning.output_tokens": 4,
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.model": "gpt-4o-2024",
        "gen_ai.response.finish_reasons": ("stop", "length"),
    }
    ours = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024",
    }
    durations = [p for attrs, p in points("gen_ai.client.operation.duration") if attrs == ours]
    assert durations and durations[-1].count >= 1
    tokens = {
        attrs["gen_ai.token.type"]: p.sum
        for attrs, p in points("gen_ai.client.token.usage")
        if attrs.get("gen_ai.request.model") == "gpt-4o"
    }
    assert tokens == {"input": 30, "output": 12}


def test_anthropic_usage_counts_cache_tokens_as_input() -> None:
    message = {
        "id": "msg_1",
        "model": "claude-x",
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": 5,
            "output_tokens": 7,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 20,
        },
    }
    with telemetry.model_operation(provider_name="anthropic", request_model="claude") as op:
        telemetry.record_anthropic_usage(op, message)
    attrs = dict(spans()[0].attributes or {})
    assert attrs["gen_ai.usage.input_tokens"] == 125
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == 100
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 20
    assert attrs["gen_ai.response.finish_reasons"] == ("end_turn",)


def test_a_failure_marks_the_operation_and_goes_on() -> None:
    with (
        pytest.raises(TimeoutError, match="slow model"),
        telemetry.model_operation(provider_name="openai", request_model="m-err"),
    ):
        raise TimeoutError("slow model")
    (span,) = spans()
    assert span.status.status_code == StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "TimeoutError"
    assert [event.name for event in span.events] == ["exception"]
    failed = [a for a, _ in points("gen_ai.client.operation.duration") if a.get("error.type")]
    assert {"error.type": "TimeoutError", "gen_ai.request.model": "m-err"}.items() <= failed[
        -1
    ].items()
    with telemetry.tool_execution(tool_name="t") as op:
        op.mark_error("tool_refused", "not allowed")
    assert spans("execute_tool t")[0].status.description == "not allowed"


def test_agent_and_tool_operations_nest() -> None:
    with telemetry.agent_invocation(
        agent_name="helper", session_id="sess-1", turn_id="turn-2", model="gpt-4o"
    ) as agent:
        agent.set_attribute("app.step", 3)
        with telemetry.tool_execution(
            tool_name="search", tool_call_id="call-9", tool_type=telemetry.GENAI_TOOL_TYPE_DATASTORE
        ):
            pass
    tool, outer = spans()
    assert outer.name == "invoke_agent helper" and outer.kind == SpanKind.INTERNAL
    assert dict(outer.attributes or {}) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.provider.name": "gestalt",
        "gen_ai.agent.name": "helper",
        "gen_ai.conversation.id": "sess-1",
        "gestalt.agent.turn.id": "turn-2",
        "gen_ai.request.model": "gpt-4o",
        "app.step": 3,
    }
    assert tool.name == "execute_tool search"
    assert dict(tool.attributes or {}) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "search",
        "gen_ai.tool.call.id": "call-9",
        "gen_ai.tool.type": "datastore",
    }
    assert tool.parent is not None and tool.parent.span_id == outer.context.span_id


# -- the runtime: a span per call, trace context into host-service calls ----------------------


class MetadataRecorder(grpc.ServerInterceptor):
    """Records every call's method and metadata on the embedded cache."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, dict[str, str]]] = []

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        metadata = {str(k): str(v) for k, v in handler_call_details.invocation_metadata or ()}
        with self.lock:
            self.calls.append((str(handler_call_details.method), metadata))
        return continuation(handler_call_details)


@pytest.fixture
def cache(
    socket_path: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[CacheServer[CacheService], MetadataRecorder]]:
    """The embedded cache, recording metadata, bound in the environment."""
    recorder = MetadataRecorder()
    server = serve_cache(socket_path("cache"), interceptors=[recorder])
    monkeypatch.setenv("GESTALT_CACHE_SOCKET", server.target)
    yield server, recorder
    server.stop()


@pytest.fixture
def running(socket_path: Callable[[str], Path]) -> Iterator[RunningServer]:
    """The traced plugin served in this process by the runtime's server."""
    server = RunningServer(plugin, ProviderKind.INTEGRATION, str(socket_path("plugin")))
    yield server
    server.stop()


def execute(server: RunningServer, operation: str, key: str, traceparent: str | None) -> str:
    """Call Execute as the host does, with or without the host's trace context."""
    params = struct_pb2.Struct()
    params.update({"key": key})
    metadata = None if traceparent is None else (("traceparent", traceparent),)
    with grpc.insecure_channel(f"unix:{server.socket_path}") as channel:
        client = plugin_clients.IntegrationProviderClient(channel)
        result = client.execute(
            plugin_pb2.ExecuteRequest(operation=operation, params=params),
            timeout=10,
            metadata=metadata,
        )
    return result.body


@pytest.mark.parametrize("operation", ["remember", "aremember"])
def test_one_span_per_call_and_trace_context_reaches_the_host_service(
    operation: str,
    running: RunningServer,
    cache: tuple[CacheServer[CacheService], MetadataRecorder],
) -> None:
    server, recorder = cache
    host_parent = f"00-{HOST_TRACE}-{HOST_SPAN}-01"
    for n in range(3):
        execute(running, operation, f"k{n}", host_parent if n == 0 else None)
    rpc_spans = spans("gestalt.provider.v1.IntegrationProvider/Execute")
    assert len(rpc_spans) == 3  # one per call
    first = rpc_spans[0]
    assert first.kind == SpanKind.SERVER
    assert format(first.context.trace_id, "032x") == HOST_TRACE  # continues the host's trace
    assert first.parent is not None and format(first.parent.span_id, "016x") == HOST_SPAN
    assert dict(first.attributes or {}) == {
        "rpc.system": "grpc",
        "rpc.service": "gestalt.provider.v1.IntegrationProvider",
        "rpc.method": "Execute",
        "rpc.grpc.status_code": 0,
    }
    assert all(s.parent is None for s in rpc_spans[1:])  # no host context: new traces
    sets = [md for method, md in recorder.calls if method == "/gestalt.provider.v1.Cache/Set"]
    assert len(sets) == 3
    for span, metadata in zip(rpc_spans, sets, strict=True):
        version, trace_id, parent_id, _ = metadata["traceparent"].split("-")
        assert version == "00"
        assert trace_id == format(span.context.trace_id, "032x")
        assert parent_id == format(span.context.span_id, "016x")  # child of the call's span
    assert len(server.service) == 3  # the writes happened


def test_failing_calls_end_their_span_with_the_status(running: RunningServer) -> None:
    with grpc.insecure_channel(f"unix:{running.socket_path}") as channel:
        client = plugin_clients.IntegrationProviderClient(channel)
        with pytest.raises(RPCError) as info:  # the plugin has no session catalog
            client.get_session_catalog(plugin_pb2.GetSessionCatalogRequest(), timeout=10)
    assert info.value.code == grpc.StatusCode.UNIMPLEMENTED
    (span,) = spans("gestalt.provider.v1.IntegrationProvider/GetSessionCatalog")
    assert (span.attributes or {})["rpc.grpc.status_code"] == grpc.StatusCode.UNIMPLEMENTED.value[0]
    assert span.status.status_code == StatusCode.ERROR


def test_no_trace_context_outside_a_span(
    cache: tuple[CacheServer[CacheService], MetadataRecorder],
) -> None:
    from gestalt import Cache

    _, recorder = cache
    with Cache() as client:
        client.set("plain", b"1")
        with trace.get_tracer("test").start_as_current_span("outer") as outer:
            client.set("traced", b"2")
    plain, traced = (md for _, md in recorder.calls)
    assert "traceparent" not in plain
    assert traced["traceparent"].split("-")[2] == format(outer.get_span_context().span_id, "016x")


class TracedCache(CacheProvider):
    """A cache provider whose plain ``get`` records a tool operation (runs in the pool)."""

    def get(self, key: str) -> bytes | None:
        with telemetry.tool_execution(tool_name=f"lookup {key}"):
            return None


def test_provider_code_in_the_thread_pool_runs_inside_the_call_span(
    socket_path: Callable[[str], Path],
) -> None:
    server = RunningServer(TracedCache(), ProviderKind.CACHE, str(socket_path("cache-kind")))
    try:
        with grpc.insecure_channel(f"unix:{server.socket_path}") as channel:
            response = cache_clients.CacheClient(channel).get(
                cache_pb2.CacheGetRequest(key="k"), timeout=10
            )
        assert not response.found
    finally:
        server.stop()
    (call,) = spans("gestalt.provider.v1.Cache/Get")
    (inner,) = spans("execute_tool lookup k")
    assert inner.parent is not None and inner.parent.span_id == call.context.span_id
