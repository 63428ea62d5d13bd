"""A bare grpcio IntegrationProvider doing the same work as providers/bench_plugin.py.

``python benchmarks/bare_provider.py SOCKET WORKERS`` serves the protoc-generated servicer on
a sync ``grpc.server`` with WORKERS threads: no SDK layer, hand-written decoding. It is the
baseline of ``bench_runtime.py``.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import json_format

from gestalt.gen.v1 import plugin_pb2, plugin_pb2_grpc


class Bare(plugin_pb2_grpc.IntegrationProviderServicer):
    """Execute with the two operations of the benchmark plugin, by hand.

    The other RPCs keep the servicer's UNIMPLEMENTED defaults (the stubs mark them abstract).
    """

    def GetMetadata(self, request: Any, context: Any) -> plugin_pb2.ProviderMetadata:
        return plugin_pb2.ProviderMetadata(min_protocol_version=3, max_protocol_version=3)

    def Execute(self, request: Any, context: Any) -> plugin_pb2.OperationResult:
        params = json_format.MessageToDict(request.params)
        body: object
        if request.operation == "echo":
            body = {"name": str(params["name"]), "count": int(params.get("count", 1))}
        elif request.operation == "io":
            time.sleep(0.005)
            body = "done"
        else:
            return plugin_pb2.OperationResult(status=404, body='{"error":"unknown operation"}')
        return plugin_pb2.OperationResult(status=200, body=json.dumps(body, separators=(",", ":")))


def main() -> None:
    socket_path, workers = sys.argv[1], int(sys.argv[2])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    plugin_pb2_grpc.add_IntegrationProviderServicer_to_server(Bare(), server)  # type: ignore[abstract]
    server.add_insecure_port(f"unix:{socket_path}")
    server.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    server.stop(2).wait()


if __name__ == "__main__":
    main()
