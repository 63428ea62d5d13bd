"""The provider runtime against a bare grpcio server doing the same work, side by side.

``python benchmarks/bench_runtime.py`` starts, alternately, ``python -m gestalt._runtime`` on
``providers/bench_plugin.py`` and ``bare_provider.py`` (the protoc servicer on a sync
``grpc.server`` with hand-written decoding), both on unix sockets and launched the way the host
launches providers, and prints each measurement with the ratio ours / bare:

* cold start: process start until the first ``GetMetadata`` answers (median of runs);
* ``import gestalt`` against ``import grpc`` in a fresh interpreter;
* Execute p50 / p99, sequential calls of a small typed ``echo`` operation;
* provider CPU per call over those calls (user + system time of the provider process);
* throughput with 32 calls in flight of an ``io`` operation that waits 5 ms, against the bare
  server with 4 workers (the reference SDK's pool size) and with 32 workers;
* peak RSS of the provider process after the runs.

Nothing is asserted; numbers vary with the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from google.protobuf import empty_pb2, struct_pb2

from gestalt.gen.v1 import plugin_pb2, plugin_pb2_grpc

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Server:
    """A provider process on a fresh unix socket."""

    def __init__(self, command: list[str], socket_path: str) -> None:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "generated")]),
            "GESTALT_PLUGIN_SOCKET": socket_path,
            "GESTALT_PLUGIN_PARENT_PID": str(os.getpid()),
        }
        self.socket = socket_path
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        while not os.path.exists(socket_path):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{command} exited early")
            time.sleep(0.002)
        self.channel = grpc.insecure_channel(f"unix:{socket_path}")
        self.stub = plugin_pb2_grpc.IntegrationProviderStub(self.channel)
        self.stub.GetMetadata(empty_pb2.Empty(), wait_for_ready=True, timeout=30)
        self.cold_start = time.perf_counter() - self.started

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.channel.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)


def ours(socket_path: str) -> Server:
    return Server(
        [sys.executable, "-m", "gestalt._runtime", str(HERE / "providers"), "bench_plugin:plugin"],
        socket_path,
    )


def bare(workers: int) -> Callable[[str], Server]:
    return lambda socket_path: Server(
        [sys.executable, str(HERE / "bare_provider.py"), socket_path, str(workers)], socket_path
    )


def echo_request() -> plugin_pb2.ExecuteRequest:
    params = struct_pb2.Struct()
    params.update({"name": "bench", "count": 3})
    return plugin_pb2.ExecuteRequest(operation="echo", params=params)


def sequential(server: Server, calls: int) -> tuple[list[float], float]:
    request = echo_request()
    for _ in range(200):
        server.stub.Execute(request)
    cpu_before = server.cpu_seconds()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        result = server.stub.Execute(request)
        times.append(time.perf_counter() - start)
        assert result.status == 200, result
    return times, (server.cpu_seconds() - cpu_before) / calls


def in_flight(server: Server, calls: int, concurrency: int = 32) -> float:
    request = plugin_pb2.ExecuteRequest(operation="io")
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: server.stub.Execute(request), range(concurrency)))
        start = time.perf_counter()
        results = list(pool.map(lambda _: server.stub.Execute(request), range(calls)))
        elapsed = time.perf_counter() - start
    assert all(r.status == 200 for r in results)
    return calls / elapsed


def import_time(module: str, runs: int) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO / "generated")]))
    samples = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    ]
    return statistics.median(samples)


def row(label: str, ours_value: float, bare_value: float, unit: str, target: str) -> None:
    ratio = ours_value / bare_value if bare_value else float("nan")
    print(f"{label:<38} {ours_value:>10.3f} {bare_value:>10.3f} {unit:<8} {ratio:>6.2f}x  {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="gstbench-")

    def sock(name: str) -> str:
        return os.path.join(tmp, f"{name}-{time.monotonic_ns()}.sock")

    starts: dict[str, list[float]] = {"ours": [], "bare": []}
    for _ in range(args.starts):
        for name, factory in (("ours", ours), ("bare", bare(4))):
            server = factory(sock(name))
            starts[name].append(server.cold_start)
            server.stop()

    mine, base = ours(sock("ours")), bare(4)(sock("bare"))
    ours_times, ours_cpu = sequential(mine, args.calls)
    bare_times, bare_cpu = sequential(base, args.calls)
    ours_tput = in_flight(mine, args.calls)
    bare4_tput = in_flight(base, args.calls)
    ours_rss, bare_rss = mine.peak_rss_mib(), base.peak_rss_mib()
    mine.stop()
    base.stop()
    base32 = bare(32)(sock("bare32"))
    bare32_tput = in_flight(base32, args.calls)
    base32.stop()

    def pct(values: list[float], q: float) -> float:
        return sorted(values)[int(q * (len(values) - 1))] * 1e3

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, {args.calls} calls")
    print(f"{'measurement':<38} {'ours':>10} {'bare':>10} {'unit':<8} {'ratio':>7}  target")
    row(
        "cold start to first GetMetadata",
        statistics.median(starts["ours"]) * 1e3,
        statistics.median(starts["bare"]) * 1e3,
        "ms",
        "<= 1.5x",
    )
    row(
        "import gestalt vs import grpc",
        import_time("gestalt", 5) * 1e3,
        import_time("grpc", 5) * 1e3,
        "ms",
        "(info)",
    )
    row("Execute p50, sequential", pct(ours_times, 0.5), pct(bare_times, 0.5), "ms", "<= 1.1x")
    row("Execute p99, sequential", pct(ours_times, 0.99), pct(bare_times, 0.99), "ms", "(info)")
    row("provider CPU per call", ours_cpu * 1e6, bare_cpu * 1e6, "us", "<= 1.25x")
    row("32 in flight, 5 ms io, vs bare 4 workers", ours_tput, bare4_tput, "calls/s", ">= 1.0x")
    row("32 in flight, 5 ms io, vs bare 32 workers", ours_tput, bare32_tput, "calls/s", "(info)")
    row("peak RSS of the provider", ours_rss, bare_rss, "MiB", "(info)")


if __name__ == "__main__":
    main()
