"""Cache calls through our client against the bare generated stub, side by side.

``python benchmarks/bench_cache.py [--calls 2000] [--repeat 3]`` runs the embedded cache
(``python -m gestalt.local.cache``) in a child process on a unix socket, and times, in this
process, ``get`` and ``set`` of a 100-byte value:

* ``ours``: :class:`gestalt.Cache` (argument checks, request building, error mapping);
* ``bare``: ``cache_pb2_grpc.CacheStub`` on a plain channel with the same options, building the
  same request messages.

Each is run sequentially and with 8 threads sharing one client (one stub), alternating ours
and bare, best of ``--repeat`` runs. It prints microseconds per call and the ratio ours / bare;
the issue's target is a per-call overhead of at most 1.2x. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from gestalt._clients.cache import Cache
from gestalt._clients.transport import CHANNEL_OPTIONS, parse_target
from gestalt.gen.v1 import cache_pb2, cache_pb2_grpc

TARGET = 1.2
THREADS = 8
VALUE = bytes(range(100))

Op = Callable[[int], object]


def _start_cache(socket: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gestalt.local.cache", str(socket)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    target = proc.stdout.readline().strip() if ready else ""
    if not target:
        proc.kill()
        raise RuntimeError("the embedded cache did not start")
    return proc, target


def _sequential(op: Op, calls: int) -> float:
    start = time.perf_counter()
    for i in range(calls):
        op(i)
    return time.perf_counter() - start


def _threaded(op: Op, calls: int) -> float:
    per_thread = calls // THREADS
    barrier = threading.Barrier(THREADS + 1)

    def work(offset: int) -> None:
        barrier.wait()
        for i in range(offset, offset + per_thread):
            op(i)

    threads = [threading.Thread(target=work, args=(n * per_thread,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case, best is kept")
    args = parser.parse_args()
    calls = args.calls - args.calls % THREADS

    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        proc, target = _start_cache(Path(tmp) / "cache.sock")
        try:
            os.environ["GESTALT_CACHE_SOCKET"] = target
            cache = Cache()
            channel = grpc.insecure_channel(
                parse_target(target).grpc_target, options=CHANNEL_OPTIONS
            )
            stub = cache_pb2_grpc.CacheStub(channel)
            keys = [f"key-{i}" for i in range(calls)]

            def ours_set(i: int) -> object:
                cache.set(keys[i], VALUE)
                return None

            def bare_set(i: int) -> object:
                return stub.Set(cache_pb2.CacheSetRequest(key=keys[i], value=VALUE))

            def ours_get(i: int) -> object:
                return cache.get(keys[i])

            def bare_get(i: int) -> object:
                response = stub.Get(cache_pb2.CacheGetRequest(key=keys[i]))
                return response.value if response.found else None

            cases: list[tuple[str, Op, Op, Callable[[Op, int], float]]] = [
                ("set, sequential", ours_set, bare_set, _sequential),
                ("get, sequential", ours_get, bare_get, _sequential),
                (f"set, {THREADS} threads", ours_set, bare_set, _threaded),
                (f"get, {THREADS} threads", ours_get, bare_get, _threaded),
            ]
            for warm in (ours_set, bare_set, ours_get, bare_get):  # connect and warm up
                _sequential(warm, 200)
            print(f"Cache over {target}: {calls} calls per run, best of {args.repeat}")
            print(f"{'case':<18} {'bare us/call':>12} {'ours us/call':>12} {'ratio':>6}  target")
            for name, ours, bare, run in cases:
                best = {"ours": float("inf"), "bare": float("inf")}
                for attempt in range(args.repeat):
                    order = (("ours", ours), ("bare", bare))
                    for side, op in order if attempt % 2 == 0 else order[::-1]:
                        best[side] = min(best[side], run(op, calls))
                ratio = best["ours"] / best["bare"]
                verdict = "ok" if ratio <= TARGET else "EXCEEDS"
                print(
                    f"{name:<18} {best['bare'] / calls * 1e6:>12.1f}"
                    f" {best['ours'] / calls * 1e6:>12.1f} {ratio:>5.2f}x  <= {TARGET}x {verdict}"
                )
            cache.close()
            channel.close()
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
