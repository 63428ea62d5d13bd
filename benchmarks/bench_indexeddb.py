"""IndexedDB through our client against the bare generated stub, side by side.

``python benchmarks/bench_indexeddb.py [--calls 2000] [--records 10000] [--repeat 5]`` serves
the embedded IndexedDB service (:func:`gestalt.local.indexeddb.serve_indexeddb`) in a child
process on a unix socket, so the client has this process to itself, and times, alternating
ours and bare in every round:

* ``put`` and ``get``, sequential, per call: ``ObjectStore.put(dict)`` / ``ObjectStore.get(id)``
  against ``IndexedDBClient.put`` / ``.get`` with the record converted by a plain hand-written
  loop (the least a caller of the bare stub must do to store and read a dict);
* ``get_all`` of ``--records`` records, end to end: ``ObjectStore.get_all()`` against
  ``IndexedDBClient.get_all`` plus the same hand-written conversion to dicts;
* decoding alone: turning one ``RecordsResponse`` of ``--records`` records into dicts, our
  decoder against the hand-written loop (records/s);
* iterating a cursor over the ``--records`` records, reading each value: ``for entry in
  store.open_cursor(): entry.value`` against the bare ``OpenCursor`` stream fed by a queue.

For each it prints the best of ``--repeat`` rounds for ours and bare and the ratio (``put`` and
``get`` alternate in blocks of 100 calls, and the best block counts). The
issue's targets: per-call overhead <= 1.2x the bare stub, ``get_all`` decode rate >= 0.6x the
bare stub's. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import queue
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.internal import api_implementation

from gestalt._clients.indexeddb import IndexedDB
from gestalt._clients.indexeddb_codec import decode_records
from gestalt._clients.transport import INDEXEDDB
from gestalt.gen.v1 import datastore_pb2 as pb
from gestalt.gen.v1.datastore_clients import IndexedDBClient

CALL_TARGET = 1.2
DECODE_TARGET = 0.6
STORE = "bench"

_CHILD = """
import sys
from gestalt.local.indexeddb import serve_indexeddb
server = serve_indexeddb(sys.argv[1])
print(server.target, flush=True)
sys.stdin.read()
"""


# -- the bare side: what a caller of the generated stub writes by hand ----------------------


def bare_encode(row: dict[str, Any]) -> pb.Record:
    """A flat dict of str/int/float/bool as a Record."""
    record = pb.Record()
    fields = record.fields
    for key, value in row.items():
        if isinstance(value, bool):
            fields[key].bool_value = value
        elif isinstance(value, int):
            fields[key].int_value = value
        elif isinstance(value, float):
            fields[key].float_value = value
        else:
            fields[key].string_value = value
    return record


def bare_decode(record: pb.Record) -> dict[str, Any]:
    """A Record of scalar fields as a dict."""
    row: dict[str, Any] = {}
    for key, value in record.fields.items():
        kind = value.WhichOneof("kind")
        if kind == "string_value":
            row[key] = value.string_value
        elif kind == "int_value":
            row[key] = value.int_value
        elif kind == "float_value":
            row[key] = value.float_value
        elif kind == "bool_value":
            row[key] = value.bool_value
        else:
            row[key] = None
    return row


def row(i: int) -> dict[str, Any]:
    """A typical record: an id and five scalar fields."""
    return {
        "id": f"rec-{i:06d}",
        "name": f"Widget number {i}",
        "team": ("red", "blue", "green")[i % 3],
        "quantity": i * 7,
        "price": i / 4,
        "active": i % 2 == 0,
    }


# -- the measurements -----------------------------------------------------------------------


BLOCK = 100


def alternate(
    ours: Callable[[int], object], bare: Callable[[int], object], calls: int, into: Row
) -> None:
    """Time ``calls`` sequential calls of each, in alternating blocks of ``BLOCK`` calls.

    Each block adds its seconds per call to ``into``; alternating in small blocks keeps a
    burst of noise on this small shared machine from landing on one side only.
    """
    for first in range(0, calls, BLOCK):
        for fn, times in ((ours, into.ours), (bare, into.bare)):
            start = time.perf_counter()
            for i in range(first, min(first + BLOCK, calls)):
                fn(i)
            times.append((time.perf_counter() - start) / (min(first + BLOCK, calls) - first))


def once(fn: Callable[[], object]) -> float:
    """Seconds taken by one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bare_cursor(client: IndexedDBClient) -> int:
    """Iterate the whole store over the bare OpenCursor stream; returns the entries read."""
    requests: queue.SimpleQueue[pb.CursorClientMessage | None] = queue.SimpleQueue()

    def frames() -> Iterator[pb.CursorClientMessage]:
        while (frame := requests.get()) is not None:
            yield frame

    step = pb.CursorClientMessage(command=pb.CursorCommand(next=True))
    responses = client.open_cursor(frames())
    requests.put(pb.CursorClientMessage(open=pb.OpenCursorRequest(store=STORE)))
    next(responses)
    count = 0
    while True:
        requests.put(step)
        answer = next(responses)
        if answer.WhichOneof("result") != "entry":
            break
        bare_decode(answer.entry.record)
        count += 1
    requests.put(pb.CursorClientMessage(command=pb.CursorCommand(close=True)))
    requests.put(None)
    for _ in responses:
        pass
    return count


def our_cursor(db: IndexedDB) -> int:
    """Iterate the whole store with our cursor; returns the entries read."""
    count = 0
    with db.object_store(STORE).open_cursor() as cursor:
        for entry in cursor:
            entry.value  # noqa: B018  (decoding the value is part of the work)
            count += 1
    return count


@dataclass
class Row:
    """One printed line: best ours and bare, in a unit; higher is better for rates."""

    name: str
    ours: list[float]
    bare: list[float]
    unit: str
    scale: float
    rate: bool
    target: str

    def render(self) -> str:
        """The line, with the ratio ours / bare of the best rounds."""
        pick = max if self.rate else min
        ours, bare = pick(self.ours) * self.scale, pick(self.bare) * self.scale
        ratio = ours / bare
        return (
            f"{self.name:<34} {ours:>12,.1f} {bare:>12,.1f} {self.unit:<10} "
            f"{ratio:>6.2f}x  {self.target}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="gs-idb-")
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, os.path.join(tmp, "idb.sock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        if not select.select([proc.stdout], [], [], 30)[0]:
            raise SystemExit("the IndexedDB service did not start")
        target = proc.stdout.readline().strip()
        os.environ[INDEXEDDB.socket_env()] = target
        run(target, args.calls, args.records, args.repeat)
    finally:
        proc.kill()
        proc.wait()


def run(target: str, calls: int, records: int, repeat: int) -> None:
    """Fill the store, then measure every row ``repeat`` times, ours and bare alternating."""
    channel = grpc.insecure_channel(
        target, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    )
    bare = IndexedDBClient(channel)
    db = IndexedDB()
    store = db.object_store(STORE)
    rows = [row(i) for i in range(records)]
    for item in rows:
        store.put(item)
    response = bare.get_all(pb.ObjectStoreRangeRequest(store=STORE))
    assert decode_records(response.records) == [bare_decode(r) for r in response.records]
    assert our_cursor(db) == bare_cursor(bare) == records

    lines = {
        "put": Row("put (sequential)", [], [], "us/call", 1e6, False, f"<= {CALL_TARGET}x"),
        "get": Row("get (sequential)", [], [], "us/call", 1e6, False, f"<= {CALL_TARGET}x"),
        "get_all": Row(f"get_all {records:,} records", [], [], "records/s", 1, True, ""),
        "decode": Row(
            f"decode {records:,} records", [], [], "records/s", 1, True, f">= {DECODE_TARGET}x"
        ),
        "cursor": Row(f"cursor over {records:,} records", [], [], "records/s", 1, True, ""),
    }
    ids = [item["id"] for item in rows]
    n = min(calls, records)
    for _ in range(repeat):
        alternate(
            lambda i: store.put(rows[i]),
            lambda i: bare.put(pb.RecordRequest(store=STORE, record=bare_encode(rows[i]))),
            n,
            lines["put"],
        )
        alternate(
            lambda i: store.get(ids[i]),
            lambda i: bare_decode(bare.get(pb.ObjectStoreRequest(store=STORE, id=ids[i])).record),
            n,
            lines["get"],
        )
        lines["get_all"].ours.append(records / once(store.get_all))
        lines["get_all"].bare.append(
            records
            / once(
                lambda: [
                    bare_decode(r)
                    for r in bare.get_all(pb.ObjectStoreRangeRequest(store=STORE)).records
                ]
            )
        )
        lines["decode"].ours.append(records / once(lambda: decode_records(response.records)))
        lines["decode"].bare.append(
            records / once(lambda: [bare_decode(r) for r in response.records])
        )
        lines["cursor"].ours.append(records / once(lambda: our_cursor(db)))
        lines["cursor"].bare.append(records / once(lambda: bare_cursor(bare)))
    db.close()
    channel.close()

    print(
        f"python {sys.version.split()[0]}, protobuf {api_implementation.Type()} backend, "
        f"{os.cpu_count()} cpus, best of {repeat}"
    )
    print(f"{'measurement':<34} {'ours':>12} {'bare':>12} {'unit':<10} {'ratio':>7}  target")
    for line in lines.values():
        print(line.render())
    print("ratio: ours/bare; for us/call lower is better, for records/s higher is better")


if __name__ == "__main__":
    main()
