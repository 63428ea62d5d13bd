"""The transport's floor: a bare grpcio server that answers canned bytes and parses nothing.

``python benchmarks/floor_server.py CANNED [WORKERS] [--work]`` listens on the unix socket named by
``GESTALT_PLUGIN_SOCKET`` (as the host launches a provider) with a sync ``grpc.server`` of
WORKERS threads (default 4, the pool of the published SDK; grpcio itself has no default: its
``grpc.server`` requires an executor). CANNED is a ``marshal`` file holding a dict:

* ``"/package.Service/Method": bytes`` -- a unary method answering those bytes to any request;
* ``"/package.Service/Method": [bytes, ...]`` -- a bidi stream answering its n-th request frame
  with the n-th reply, and nothing once the replies run out.

Handlers are generic ones without ``request_deserializer`` or ``response_serializer``: bytes in,
bytes out, so what is measured against it is the cost of grpcio itself. It stops on SIGTERM.
``marshal`` is built in, so reading the replies costs no import.

With ``--work`` (and ``gestalt.gen`` importable), ``IntegrationProvider/Execute`` instead does
the least any SDK must do for a call with scalar params: parse the ``ExecuteRequest``, turn its
``params`` Struct into a dict, write that dict as the JSON body of an ``OperationResult`` and
serialise it: an echo, the floor of an SDK rather than of the transport. An ``ExecuteRequest``
for the operation ``io`` sleeps 5 ms first instead (``bench_floor.py``'s blocking operation), so
that a floor given 32 workers can hold 32 blocked calls, as the contract asks of a provider.
"""

from __future__ import annotations

import marshal
import os
import signal
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator
from concurrent import futures

import grpc

DEFAULT_WORKERS = 4
#: How long the ``io`` operation of ``--work`` blocks, in seconds (as in ``bench_floor.py``).
IO_SECONDS = 0.005


def unary(reply: bytes) -> grpc.RpcMethodHandler[bytes, bytes]:
    """A unary handler answering ``reply`` whatever the request."""

    def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
        return reply

    return grpc.unary_unary_rpc_method_handler(handle)


def stream(replies: list[bytes]) -> grpc.RpcMethodHandler[bytes, bytes]:
    """A bidi handler answering request frame n with ``replies[n]`` while there are replies."""

    def handle(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        count = len(replies)
        for index, _ in enumerate(requests):
            if index < count:
                yield replies[index]

    return grpc.stream_stream_rpc_method_handler(handle)


def echo() -> grpc.RpcMethodHandler[bytes, bytes]:
    """``Execute`` doing an SDK's least work: parse, Struct -> dict, JSON, build, serialise
    (or, for the ``io`` operation, a 5 ms sleep)."""
    import json
    import time

    from gestalt.gen.v1 import plugin_pb2

    parse = plugin_pb2.ExecuteRequest.FromString
    result = plugin_pb2.OperationResult
    encode = json.JSONEncoder(separators=(",", ":")).encode

    def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
        message = parse(request)
        if message.operation == "io":
            time.sleep(IO_SECONDS)
            done: bytes = result(status=200, body='"done"').SerializeToString()
            return done
        fields = message.params.fields
        params = {
            key: getattr(value, value.WhichOneof("kind") or "null_value")
            for key, value in fields.items()
        }
        reply: bytes = result(status=200, body=encode(params)).SerializeToString()
        return reply

    return grpc.unary_unary_rpc_method_handler(handle)


def handlers(
    canned: dict[str, bytes | list[bytes]], work: bool = False
) -> list[grpc.GenericRpcHandler]:
    """One generic handler per service named in ``canned`` (``work``: see the docstring)."""
    services: dict[str, dict[str, grpc.RpcMethodHandler[bytes, bytes]]] = defaultdict(dict)
    for path, replies in canned.items():
        service, method = path.strip("/").split("/")
        if work and path == "/gestalt.provider.v1.IntegrationProvider/Execute":
            services[service][method] = echo()
            continue
        services[service][method] = (
            unary(replies) if isinstance(replies, bytes) else stream(list(replies))
        )
    return [grpc.method_handlers_generic_handler(name, ms) for name, ms in services.items()]


def main() -> None:
    """Serve the canned replies until SIGTERM."""
    args = [arg for arg in sys.argv[1:] if arg != "--work"]
    if len(args) not in (1, 2):
        raise SystemExit("usage: floor_server.py CANNED [WORKERS] [--work]")
    with open(args[0], "rb") as f:
        canned = marshal.load(f)
    workers = int(args[1]) if len(args) == 2 else DEFAULT_WORKERS
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    server.add_generic_rpc_handlers(handlers(canned, "--work" in sys.argv))
    server.add_insecure_port(f"unix:{os.environ['GESTALT_PLUGIN_SOCKET']}")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    server.start()
    done.wait()
    server.stop(1).wait()


if __name__ == "__main__":
    main()
