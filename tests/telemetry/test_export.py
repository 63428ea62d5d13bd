"""End to end: a provider launched as the host launches it exports its spans over OTLP.

The test runs an OTLP/gRPC collector (the OpenTelemetry collector services, recording what
they receive) and an embedded cache, launches ``traced_plugin`` with ``OTEL_*`` pointing at
the collector, calls it with the host's trace context and stops it: the span of the call,
with the service name taken from ``GESTALT_PLUGIN_NAME``, reaches the collector, and the
cache sees the call's trace context.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from gestalt.gen.v1 import plugin_clients, plugin_pb2
from gestalt.local.cache import serve_cache
from tests.runtime.harness import Provider

HERE = Path(__file__).resolve().parent
HOST_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
HOST_SPAN = "00f067aa0ba902b7"


class Collector(
    trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer
):
    """Keeps every OTLP export request it receives."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.traces: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.metrics: list[metrics_service_pb2.ExportMetricsServiceRequest] = []

    def Export(self, request: Any, context: Any) -> Any:
        with self.lock:
            if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
                self.traces.append(request)
                return trace_service_pb2.ExportTraceServiceResponse()
            self.metrics.append(request)
            return metrics_service_pb2.ExportMetricsServiceResponse()


@pytest.fixture
def collector() -> Iterator[tuple[Collector, int]]:
    """The collector on a loopback port."""
    server = grpc.server(futures.ThreadPoolExecutor(4))
    collector = Collector()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)  # type: ignore[no-untyped-call]
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(collector, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield collector, port
    server.stop(None)


@pytest.mark.parametrize("disabled", [False, True], ids=["exported", "sdk-disabled"])
def test_a_launched_provider_exports_one_span_per_call(
    disabled: bool, collector: tuple[Collector, int], socket_path: Callable[[str], Path]
) -> None:
    received, port = collector
    seen: list[dict[str, str]] = []

    class Record(grpc.ServerInterceptor):
        def intercept_service(self, continuation: Any, details: Any) -> Any:
            seen.append({str(k): str(v) for k, v in details.invocation_metadata or ()})
            return continuation(details)

    cache = serve_cache(socket_path("cache"), interceptors=[Record()])
    provider = Provider(
        HERE,
        "traced_plugin:plugin",
        "integration",
        GESTALT_PLUGIN_NAME="traced",
        GESTALT_CACHE_SOCKET=cache.target,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
        OTEL_METRICS_EXPORTER="none",
        OTEL_SDK_DISABLED="true" if disabled else "false",
    )
    try:
        params = struct_pb2.Struct()
        params.update({"key": "k"})
        client = plugin_clients.IntegrationProviderClient(provider.channel)
        result = client.execute(
            plugin_pb2.ExecuteRequest(operation="remember", params=params),
            timeout=10,
            metadata=(("traceparent", f"00-{HOST_TRACE}-{HOST_SPAN}-01"),),
        )
        assert result.status == 200
    finally:
        assert provider.stop() == 0, provider.stderr()  # SIGTERM: telemetry is flushed
        cache.stop()
    spans = [
        (resource, span)
        for request in received.traces
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    if disabled:
        assert spans == []
        return
    assert len(spans) == 1, provider.stderr()
    resource, span = spans[0]
    assert span.name == "gestalt.provider.v1.IntegrationProvider/Execute"
    assert span.trace_id.hex() == HOST_TRACE and span.parent_span_id.hex() == HOST_SPAN
    service = {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"]
    assert service == "gestalt-provider-traced"
    (metadata,) = seen
    assert metadata["traceparent"].split("-")[1:3] == [HOST_TRACE, span.span_id.hex()]
