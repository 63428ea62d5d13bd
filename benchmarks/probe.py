"""The measuring end of ``bench_floor.py`` that runs inside the interpreter under test.

It uses only the standard library, grpcio and the public ``gestalt`` API, so the same file
runs under our SDK and under a published SDK installed in another virtual environment (a black
box: nothing here looks inside it). Two modes:

``python probe.py register DIR MODULE REPEAT``
    Time importing ``Model``, ``Plugin`` and ``field`` from ``gestalt`` and then MODULE from
    DIR (which registers its operations), then ``plugin.catalog_dict()`` once and REPEAT more
    times. Prints one JSON object.

``python probe.py client sdk|floor``
    Read one JSON command per line on stdin, answer one JSON object per line on stdout.
    ``sdk`` reads the IndexedDB service at ``GESTALT_INDEXEDDB_SOCKET`` through
    ``gestalt.IndexedDB``; ``floor`` sends and receives the command's canned bytes on a raw
    grpcio channel to the same service (the transport's floor). Commands: ``get_all`` (one
    call) and ``cursor`` (iterate every entry, reading each value); the floor can also parse
    the replies and make dicts of the records (``decode``).

Times are ``time.perf_counter`` (wall) and ``time.process_time`` (CPU of every thread of this
process, grpcio's included).
"""

from __future__ import annotations

import importlib
import json
import os
import queue
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: the register mode must not load grpc before timing
    import grpc

Measured = dict[str, Any]


def timed(fn: Callable[[], Measured]) -> Measured:
    """Run ``fn`` and add its ``wall`` and ``cpu`` seconds to what it returns."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    result["wall"] = time.perf_counter() - wall
    result["cpu"] = time.process_time() - cpu
    return result


def register(directory: str, module: str, repeat: int) -> Measured:
    """Import ``gestalt`` and a plugin module, then time ``catalog_dict()`` of its ``plugin``.

    ``total_*`` covers ``from gestalt import Model, Plugin, field`` and the module (what a
    fresh provider process pays); ``module_*`` the module alone.
    """
    sys.path.insert(0, directory)
    cpu, wall = time.process_time(), time.perf_counter()
    from gestalt import Model, Plugin, field  # noqa: F401  (what the module imports)

    module_cpu, module_wall = time.process_time(), time.perf_counter()
    plugin = importlib.import_module(module).plugin
    end_cpu, end_wall = time.process_time(), time.perf_counter()
    start = time.perf_counter()
    catalog = plugin.catalog_dict()
    first = time.perf_counter() - start
    again = []
    for _ in range(repeat):
        start = time.perf_counter()
        plugin.catalog_dict()
        again.append(time.perf_counter() - start)
    return {
        "total_wall": end_wall - wall,
        "total_cpu": end_cpu - cpu,
        "module_wall": end_wall - module_wall,
        "module_cpu": end_cpu - module_cpu,
        "catalog_first": first,
        "catalog_again": statistics.median(again) if again else first,
        "operations": len(catalog["operations"]),
    }


class SdkClient:
    """The rows measured through ``gestalt.IndexedDB``."""

    def __init__(self) -> None:
        from gestalt import IndexedDB

        self.db = IndexedDB()

    def get_all(self, command: Measured) -> Measured:
        rows = self.db.object_store(command["store"]).get_all()
        return {"count": len(rows), "first": rows[0] if rows else None}

    def cursor(self, command: Measured) -> Measured:
        cursor = self.db.object_store(command["store"]).open_cursor()
        count, first = 0, None
        while cursor.continue_():
            value = cursor.value
            if first is None:
                first = value
            count += 1
        cursor.close()
        return {"count": count, "first": first}


class FloorClient:
    """The same rows as raw bytes on a grpcio channel: no message is built or parsed."""

    def __init__(self) -> None:
        import grpc

        target = os.environ["GESTALT_INDEXEDDB_SOCKET"]
        self.channel = grpc.insecure_channel(
            target if "://" in target else f"unix:{target}",
            options=[("grpc.max_receive_message_length", -1)],
        )
        from gestalt.gen.v1.datastore_pb2 import (  # protoc output, not the SDK
            CursorResponse,
            RecordsResponse,
        )

        self.records_response = RecordsResponse
        self.cursor_response = CursorResponse

    def get_all(self, command: Measured) -> Measured:
        """The reply's bytes; with ``decode``, also parsed (``parse``) and made dicts (``dicts``).

        The two decoding variants are floors of their own: the upb parser alone, and the
        parser plus the plainest loop turning these scalar records into dicts.
        """
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes]
        call = self.channel.unary_unary(command["get_all_path"])
        reply: bytes = call(bytes.fromhex(command["get_all_request"]))
        decode = command.get("decode", "")
        if not decode:
            return {"count": command["records"], "bytes": len(reply)}
        records = self.records_response.FromString(reply).records
        if decode == "parse":
            return {"count": len(records)}
        rows = [plain_dict(r) for r in records]
        return {"count": len(rows), "first": rows[0] if rows else None}

    def cursor(self, command: Measured) -> Measured:
        """Step through the canned cursor stream, raw bytes both ways.

        With ``decode``, each answer is parsed (``parse``: the upb parser on grpc's thread,
        as a generated stub does) and its record also made a dict (``dicts``): a bare grpcio
        bidi client doing the protobuf work the SDK's cursor does.
        """
        frames: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

        def requests() -> Iterator[bytes]:
            while (frame := frames.get()) is not None:
                yield frame

        decode = command.get("decode", "")
        step = bytes.fromhex(command["cursor_next"])
        call: grpc.StreamStreamMultiCallable[bytes, Any]
        call = self.channel.stream_stream(
            command["cursor_path"],
            response_deserializer=self.cursor_response.FromString if decode else None,
        )
        responses = call(requests())
        frames.put(bytes.fromhex(command["cursor_open"]))
        next(responses)
        count, first = 0, None
        if decode:
            while True:
                frames.put(step)
                answer = next(responses)
                if answer.WhichOneof("result") != "entry":
                    break
                if decode == "dicts":
                    value = plain_dict(answer.entry.record)
                    if first is None:
                        first = value
                count += 1
        else:
            done = bytes.fromhex(command["cursor_done"])
            while True:
                frames.put(step)
                if next(responses) == done:
                    break
                count += 1
        frames.put(bytes.fromhex(command["cursor_close"]))
        frames.put(None)
        for _ in responses:
            pass
        return {"count": count, "first": first}


def plain_dict(record: Any) -> dict[str, Any]:
    """The plainest loop turning a ``Record`` of scalar values into a dict."""
    return {k: getattr(v, v.WhichOneof("kind") or "null_value") for k, v in record.fields.items()}


def client(side: str) -> None:
    """Answer commands from stdin until it closes."""
    handler = SdkClient() if side == "sdk" else FloorClient()
    for line in sys.stdin:
        command = json.loads(line)
        op = getattr(handler, command["op"])
        try:
            answer = timed(lambda: op(command))  # noqa: B023  (called right away)
        except Exception as exc:  # reported to the orchestrator, which prints it
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)


def main() -> None:
    """Dispatch on the mode named by the first argument."""
    if sys.argv[1:2] == ["register"] and len(sys.argv) == 5:
        print(json.dumps(register(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    elif sys.argv[1:2] == ["client"] and len(sys.argv) == 3 and sys.argv[2] in ("sdk", "floor"):
        client(sys.argv[2])
    else:
        raise SystemExit("usage: probe.py register DIR MODULE REPEAT | probe.py client sdk|floor")


if __name__ == "__main__":
    main()
