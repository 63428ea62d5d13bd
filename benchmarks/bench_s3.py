"""S3 streaming through our client against the bare generated stub, side by side.

``python benchmarks/bench_s3.py [--size-mib 256] [--repeat 3]`` serves the embedded S3
service (:func:`gestalt.local.s3.serve_s3`) on a unix socket in this process and runs every
measurement in a fresh child process, alternating:

* ``ours``: ``S3.write_object(ref, payload)`` with a ``bytes`` payload, and reading the object
  back by iterating the ``S3ReadStream`` of ``S3.read_object``;
* ``bare``: ``s3_pb2_grpc.S3Stub.WriteObject`` fed the same frames (the open header, then
  ``WriteObjectRequest(data=payload[i:i + 64 KiB])``), and iterating ``S3Stub.ReadObject``.

For each it prints the best throughput in MiB/s over ``--repeat`` runs, the ratio ours / bare
of the best and of the median runs, the client's CPU time per GiB (user + system, all
threads; steadier than wall time when client and service share a small machine) and the
child's peak RSS growth during the operation (``VmHWM`` from ``/proc/self/status`` after the
operation minus before it; the payload is allocated before the first reading, so only what
the transfer itself holds counts). The issue's targets: throughput >= 0.95x the bare stub,
peak RSS growth <= 32 MiB for a 256 MiB object. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
MiB = 1024 * 1024
CHUNK = 64 * 1024
BUCKET = "bench"
THROUGHPUT_TARGET = 0.95
RSS_TARGET_MIB = 32.0


def _hwm_kib() -> int:
    """Peak resident set size of this process so far, in KiB (Linux)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("VmHWM not found in /proc/self/status")


def _cpu() -> float:
    """CPU seconds (user + system) this process used so far, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _payload(size: int) -> bytes:
    block = bytes(range(256)) * (CHUNK // 256)
    whole, rest = divmod(size, CHUNK)
    return block * whole + block[:rest]


def _child(side: str, op: str, target: str, key: str, size: int) -> dict[str, float]:
    """One measurement in this (child) process; returns seconds and peak RSS growth."""
    import grpc

    from gestalt._clients.transport import CHANNEL_OPTIONS
    from gestalt.gen.v1 import s3_pb2, s3_pb2_grpc

    payload = _payload(size) if op == "write" else b""
    ref = s3_pb2.S3ObjectRef(bucket=BUCKET, key=key)
    total = 0
    if side == "ours":
        from gestalt._clients.s3 import S3
        from gestalt._clients.s3_types import ObjectRef

        os.environ["GESTALT_S3_SOCKET"] = target
        client = S3(timeout=600)
        before = _hwm_kib()
        cpu = _cpu()
        start = time.perf_counter()
        if op == "write":
            total = client.write_object(ObjectRef(BUCKET, key), payload).size
        else:
            _, stream = client.read_object(ObjectRef(BUCKET, key))
            for chunk in stream:
                total += len(chunk)
        elapsed = time.perf_counter() - start
        cpu = _cpu() - cpu
        client.close()
    else:
        channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        stub = s3_pb2_grpc.S3Stub(channel)

        def frames() -> Iterator[s3_pb2.WriteObjectRequest]:
            yield s3_pb2.WriteObjectRequest(open=s3_pb2.WriteObjectOpen(ref=ref))
            for i in range(0, len(payload), CHUNK):
                yield s3_pb2.WriteObjectRequest(data=payload[i : i + CHUNK])

        before = _hwm_kib()
        cpu = _cpu()
        start = time.perf_counter()
        if op == "write":
            total = stub.WriteObject(frames(), timeout=600).meta.size
        else:
            for message in stub.ReadObject(s3_pb2.ReadObjectRequest(ref=ref), timeout=600):
                total += len(message.data)
        elapsed = time.perf_counter() - start
        cpu = _cpu() - cpu
        channel.close()
    after = _hwm_kib()
    if total != size:
        raise RuntimeError(f"{side} {op}: moved {total} bytes, expected {size}")
    return {"seconds": elapsed, "cpu": cpu, "rss_growth_mib": (after - before) / 1024}


#: Every CPU this benchmark may use, read before the service narrows its own set.
ALL_CPUS = frozenset(os.sched_getaffinity(0))


def _run_child(side: str, op: str, target: str, key: str, size: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", side, op, target, key, str(size)]
    # The child picks its own CPU; it starts from the full set, not the service's.
    out = subprocess.run(
        command,
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
        preexec_fn=lambda: os.sched_setaffinity(0, ALL_CPUS),
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256, help="object size in MiB")
    parser.add_argument("--repeat", type=int, default=5, help="runs per side, best is kept")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if args.child:
        if len(cpus) > 1:
            os.sched_setaffinity(0, {cpus[0]})  # the client gets the first CPU to itself
        side, op, target, key, size = args.child
        print(json.dumps(_child(side, op, target, key, int(size))))
        return
    if len(cpus) > 1:
        # The service (this process) runs on the other CPUs, so the client's throughput is
        # not decided by who wins the scheduler on a shared core.
        os.sched_setaffinity(0, set(cpus[1:]))

    from gestalt.local.s3 import serve_s3

    size = args.size_mib * MiB
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp,
        serve_s3(Path(tmp) / "s3.sock", root=Path(tmp) / "data") as server,
    ):
        print(f"S3 object of {args.size_mib} MiB, {args.repeat} runs per side, {server.target}")
        for run in range(args.repeat):
            # Alternate who goes first: the service shares the machine with the client.
            for side in ("bare", "ours") if run % 2 == 0 else ("ours", "bare"):
                key = f"{side}-{run}.bin"
                for op in ("write", "read"):
                    result = _run_child(side, op, server.target, key, size)
                    results.setdefault((side, op), []).append(result)
    rss_limit = RSS_TARGET_MIB * size / (256 * MiB)
    print(
        f"{'op':<6} {'bare MiB/s':>10} {'ours MiB/s':>10} {'ratio':>6} {'median':>6}"
        f" {'CPU s/GiB bare':>14} {'ours':>5} {'RSS+ bare':>9} {'ours':>6}  verdict"
    )
    for op in ("write", "read"):
        bare, ours = results[("bare", op)], results[("ours", op)]
        best = min(r["seconds"] for r in bare) / min(r["seconds"] for r in ours)
        median = statistics.median(r["seconds"] for r in bare) / statistics.median(
            r["seconds"] for r in ours
        )
        gib = size / (1024 * MiB)
        cpu_bare = statistics.median(r["cpu"] for r in bare) / gib
        cpu_ours = statistics.median(r["cpu"] for r in ours) / gib
        rss_bare = max(r["rss_growth_mib"] for r in bare)
        rss_ours = max(r["rss_growth_mib"] for r in ours)
        # Judged on medians: one lucky run of either side moves the best-of ratio a lot
        # on a small shared machine; both are printed.
        verdict = "ok" if median >= THROUGHPUT_TARGET else "SLOWER"
        verdict += ", rss ok" if rss_ours <= rss_limit else ", RSS HIGH"
        print(
            f"{op:<6} {args.size_mib / min(r['seconds'] for r in bare):>10.0f}"
            f" {args.size_mib / min(r['seconds'] for r in ours):>10.0f} {best:>5.2f}x"
            f" {median:>5.2f}x {cpu_bare:>14.2f} {cpu_ours:>5.2f}"
            f" {rss_bare:>7.1f}Mi {rss_ours:>4.1f}Mi  {verdict}"
        )
    print(
        f"ratio = ours / bare throughput (best runs; median: median runs, used for the verdict;"
        f" the service is pinned to other CPUs than the client). Targets: ratio >= "
        f"{THROUGHPUT_TARGET}, ours peak RSS growth <= {rss_limit:.0f} MiB."
    )


if __name__ == "__main__":
    main()
