"""The transport's floor: a bare grpcio server that answers canned bytes and parses nothing.

``python benchmarks/floor_server.py CANNED [WORKERS]`` listens on the unix socket named by
``GESTALT_PLUGIN_SOCKET`` (as the host launches a provider) with a sync ``grpc.server`` of
WORKERS threads (default 4, the pool of the published SDK; grpcio itself has no default: its
``grpc.server`` requires an executor). CANNED is a ``marshal`` file holding a dict:

* ``"/package.Service/Method": bytes`` -- a unary method answering those bytes to any request;
* ``"/package.Service/Method": [bytes, ...]`` -- a bidi stream answering its n-th request frame
  with the n-th reply, and nothing once the replies run out.

Handlers are generic ones without ``request_deserializer`` or ``response_serializer``: bytes in,
bytes out, so what is measured against it is the cost of grpcio itself. It stops on SIGTERM.
``marshal`` is built in, so reading the replies costs no import.
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


def handlers(canned: dict[str, bytes | list[bytes]]) -> list[grpc.GenericRpcHandler]:
    """One generic handler per service named in ``canned``."""
    services: dict[str, dict[str, grpc.RpcMethodHandler[bytes, bytes]]] = defaultdict(dict)
    for path, replies in canned.items():
        service, method = path.strip("/").split("/")
        services[service][method] = (
            unary(replies) if isinstance(replies, bytes) else stream(list(replies))
        )
    return [grpc.method_handlers_generic_handler(name, ms) for name, ms in services.items()]


def main() -> None:
    """Serve the canned replies until SIGTERM."""
    if len(sys.argv) not in (2, 3):
        raise SystemExit("usage: floor_server.py CANNED [WORKERS]")
    with open(sys.argv[1], "rb") as f:
        canned = marshal.load(f)
    workers = int(sys.argv[2]) if len(sys.argv) == 3 else DEFAULT_WORKERS
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    server.add_generic_rpc_handlers(handlers(canned))
    server.add_insecure_port(f"unix:{os.environ['GESTALT_PLUGIN_SOCKET']}")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    server.start()
    done.wait()
    server.stop(1).wait()


if __name__ == "__main__":
    main()
