"""Every row of issue 11 against the transport's floor, in one run.

``python benchmarks/bench_floor.py [--quick] [--rounds N] [--published-python PATH]``

The floor is ``floor_server.py``: a sync grpcio server whose generic handlers take and return
raw bytes (canned replies, nothing parsed or built), with 4 workers, launched the way the host
launches a provider (a child process, a host-like environment, ``GESTALT_PLUGIN_SOCKET`` naming
a unix socket in a fresh ``gstp-*`` directory). Ours is ``python -m gestalt._runtime ROOT
TARGET integration`` on a generated 50-operation plugin; with ``--published-python`` the same
command runs under another interpreter (a published SDK in a scratch virtual environment,
used as a black box) for a third column.

Rows: cold start (spawn until the first ``GetMetadata`` is answered) and the provider's peak
RSS then; a fresh interpreter importing ``gestalt`` and ``Cache, S3, IndexedDB, Plugin``
against one importing ``grpc`` and the protobuf runtime; importing a generated 500-operation
plugin module and its ``catalog_dict()`` (see ``probe.py``); Execute of a small typed ``echo``
operation sequentially (p50) and with 32 calls in flight (throughput), with the provider's CPU
per call read from ``/proc`` before and after; 32 handlers blocked for 5 ms in flight (against
the ideal, informative); IndexedDB ``get_all`` of 10,000 records and a cursor over the store,
served by the floor server from canned bytes, read through ``gestalt.IndexedDB`` against raw
bytes on the same channel type (and, informatively, against the floor client parsing the reply
with upb, and parsing it into plain dicts). The Execute rows are also measured against
``floor_server.py --work``, which parses each request and builds its reply: an SDK's floor;
and that floor itself against the raw one (in the ``ours`` column), what parsing alone costs;
and the same floor on 32 threads, which can hold 32 blocked calls as the contract asks of a
provider and runs the blocking burst each round as ours does.
``--only`` measures some groups of rows. ``--pin`` confines the providers to the last CPU and
this process to the others, so that the benchmark's own client and a provider do not take
turns on one CPU: on a two-CPU machine that steadies the Execute rows.

Each round runs every side in turn, each round starting one side further on (ours, floor,
published; floor, published, ours; ...), so that no side always goes first; a table of
medians follows, with CPU time next to wall time, the ratio ours / floor (or ours / published
where the issue's goal says so: the median of the rounds' ratios), the issue's goal and whether
it is met. Nothing is asserted: the figures depend on the machine and on what else runs on it
(the header shows the load).
"""

from __future__ import annotations

import argparse
import json
import marshal
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import grpc
from google.protobuf import struct_pb2
from google.protobuf.internal import api_implementation

from gestalt.gen.v1 import datastore_pb2 as db_pb
from gestalt.gen.v1 import plugin_pb2

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PLUGIN = "/gestalt.provider.v1.IntegrationProvider/"
INDEXEDDB = "/gestalt.provider.v1.IndexedDB/"
STORE = "bench"
# A string and a bool: Struct carries numbers as doubles, and the published SDK answers 400 to a
# double for an ``int`` field, so a number would not measure the same work on every side.
ECHO_PARAMS: dict[str, Any] = {"name": "bench", "loud": True}
IO_SECONDS = 0.005
# The floor server answering Execute with an SDK's least work (``floor_server.py --work``).
WORK_FLOOR = "floor+work"
# The same on 32 workers: a parsing floor that holds 32 blocked calls, as a provider must.
WORK_FLOOR_32 = "floor+work32"
IN_FLIGHT = 32
CLK_TCK = os.sysconf("SC_CLK_TCK")
# What the host copies from its own environment into a provider's (contract 1.3).
HOST_ENV = ("PATH", "HOME", "TMPDIR", "LANG", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR")
# Reconnect quickly: a provider's socket file can appear a moment before it accepts.
FAST_CONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 1),
    ("grpc.min_reconnect_backoff_ms", 1),
    ("grpc.max_reconnect_backoff_ms", 10),
]
#: With ``--pin``, the CPUs every provider is confined to (this process keeps the others).
provider_cpus: set[int] = set()


# -- sides ------------------------------------------------------------------------------------


@dataclass
class Side:
    """One column: an interpreter and the environment it runs providers and probes in."""

    name: str
    python: str
    env: dict[str, str]

    def provider(self, root: Path, target: str) -> list[str]:
        """The command the host runs for an integration plugin (contract 1.1)."""
        return [self.python, "-m", "gestalt._runtime", str(root), target, "integration"]


def host_env(**extra: str) -> dict[str, str]:
    """The variables a host passes to a provider it launches, plus ``extra``."""
    env = {name: os.environ[name] for name in HOST_ENV if name in os.environ}
    env.update(extra)
    return env


def sides(published: str | None) -> list[Side]:
    """Ours (this checkout, as a dev build: ``PYTHONPATH``), the floor, maybe the published."""
    ours_path = os.pathsep.join([str(REPO / "src"), str(REPO / "generated")])
    result = [
        Side("ours", sys.executable, host_env(PYTHONPATH=ours_path)),
        Side("floor", sys.executable, host_env()),
    ]
    if published:
        result.append(Side("published", published, host_env()))
    return result


# -- generated inputs -------------------------------------------------------------------------


def plugin_source(operations: int) -> str:
    """A plugin module of ``operations`` operations, each generated one with its own models.

    ``echo`` and ``io`` are the two the Execute rows call; the rest are typical operations with
    an input model of described fields and an output model, so that import and registration
    pay per operation what a real plugin does.
    """
    parts = [
        f'"""A generated plugin of {operations} operations for bench_floor.py."""',
        "import time",
        "",
        "from gestalt import Model, Plugin, field",
        "",
        'plugin = Plugin("bench")',
        "",
        "",
        "class EchoInput(Model):",
        '    name: str = field(description="What to echo")',
        "    loud: bool = False",
        "",
        "",
        '@plugin.operation(description="Echo a small typed input.")',
        "def echo(params: EchoInput) -> dict[str, object]:",
        '    return {"name": params.name, "loud": params.loud}',
        "",
        "",
        '@plugin.operation(description="Block for 5 ms, as a database call would.")',
        "def io() -> str:",
        f"    time.sleep({IO_SECONDS})",
        '    return "done"',
    ]
    for i in range(operations - 2):
        parts += [
            "",
            "",
            f"class Search{i}Input(Model):",
            f'    query: str = field(description="Search term {i}")',
            '    limit: int = field(description="Page size", default=10)',
            "    exact: bool = False",
            "",
            "",
            f"class Search{i}Output(Model):",
            "    items: list[str]",
            "    total: int",
            "",
            "",
            f'@plugin.operation(title="Search {i}", description="Generated operation {i}.")',
            f"def search_{i}(params: Search{i}Input) -> Search{i}Output:",
            f"    return Search{i}Output(items=[params.query] * params.limit, total=params.limit)",
        ]
    return "\n".join(parts) + "\n"


def record(i: int) -> dict[str, Any]:
    """A typical IndexedDB record: an id and five scalar fields."""
    return {
        "id": f"rec-{i:06d}",
        "name": f"Widget number {i}",
        "team": ("red", "blue", "green")[i % 3],
        "quantity": i * 7,
        "price": i / 4,
        "active": i % 2 == 0,
    }


def record_pb(row: dict[str, Any]) -> db_pb.Record:
    """The wire form of ``record()``."""
    pb = db_pb.Record()
    for key, value in row.items():
        if isinstance(value, bool):
            pb.fields[key].bool_value = value
        elif isinstance(value, int):
            pb.fields[key].int_value = value
        elif isinstance(value, float):
            pb.fields[key].float_value = value
        else:
            pb.fields[key].string_value = value
    return pb


@dataclass
class Canned:
    """Requests and replies, serialised once; the floor sends and answers these bytes."""

    execute_echo: bytes
    execute_io: bytes
    provider: dict[str, bytes | list[bytes]]
    indexeddb: dict[str, bytes | list[bytes]]
    client: dict[str, Any]


def canned(records: int, cursor_records: int) -> Canned:
    """Build every canned message of the run."""
    params = struct_pb2.Struct()
    params.update(ECHO_PARAMS)
    echo = plugin_pb2.ExecuteRequest(operation="echo", params=params).SerializeToString()
    io = plugin_pb2.ExecuteRequest(operation="io").SerializeToString()
    metadata = plugin_pb2.ProviderMetadata(min_protocol_version=3, max_protocol_version=3)
    result = plugin_pb2.OperationResult(status=200, body=json.dumps(ECHO_PARAMS))
    all_records = db_pb.RecordsResponse(records=[record_pb(record(i)) for i in range(records)])

    def entry(i: int) -> bytes:
        key = db_pb.KeyValue(scalar=db_pb.TypedValue(string_value=record(i)["id"]))
        found = db_pb.CursorEntry(key=[key], primary_key=record(i)["id"])
        found.record.CopyFrom(record_pb(record(i)))
        return db_pb.CursorResponse(entry=found).SerializeToString()

    cursor = [db_pb.CursorResponse(done=False).SerializeToString()]
    cursor += [entry(i) for i in range(cursor_records)]
    cursor.append(db_pb.CursorResponse(done=True).SerializeToString())

    def frame(message: db_pb.CursorClientMessage) -> str:
        return message.SerializeToString().hex()

    return Canned(
        execute_echo=echo,
        execute_io=io,
        provider={
            PLUGIN + "GetMetadata": metadata.SerializeToString(),
            PLUGIN + "Execute": result.SerializeToString(),
        },
        indexeddb={
            INDEXEDDB + "GetAll": all_records.SerializeToString(),
            INDEXEDDB + "OpenCursor": cursor,
        },
        client={
            "store": STORE,
            "records": records,
            "get_all_path": INDEXEDDB + "GetAll",
            "get_all_request": db_pb.ObjectStoreRangeRequest(store=STORE).SerializeToString().hex(),
            "cursor_path": INDEXEDDB + "OpenCursor",
            "cursor_open": frame(
                db_pb.CursorClientMessage(open=db_pb.OpenCursorRequest(store=STORE))
            ),
            "cursor_next": frame(db_pb.CursorClientMessage(command=db_pb.CursorCommand(next=True))),
            "cursor_close": frame(
                db_pb.CursorClientMessage(command=db_pb.CursorCommand(close=True))
            ),
            "cursor_done": cursor[-1].hex(),
        },
    )


# -- a provider process -----------------------------------------------------------------------


def cpu_ticks(pid: int) -> float:
    """CPU seconds (user + system, every thread, dead ones too) of a process, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


Snapshot = tuple[dict[int, int], float]


def cpu_snapshot(pid: int) -> Snapshot:
    """Nanoseconds on CPU of each live thread (``schedstat``) and the process's tick count."""
    threads: dict[int, int] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            threads[int(tid)] = int(
                Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0]
            )
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return threads, cpu_ticks(pid)


def cpu_between(before: Snapshot, after: Snapshot) -> float:
    """CPU seconds spent between two snapshots.

    Per-thread nanoseconds when every thread of ``before`` is still alive (new threads count
    whole); the coarser tick count when one ended, since its time is gone from the per-thread
    view.
    """
    if before[0] and before[0].keys() <= after[0].keys():
        return (sum(after[0].values()) - sum(before[0].values())) / 1e9
    return after[1] - before[1]


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (``VmHWM``) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


class Process:
    """A server launched like a provider, timed until it answers the ``ready`` call."""

    def __init__(self, command: list[str], env: dict[str, str], ready: tuple[str, bytes]) -> None:
        self.dir = tempfile.mkdtemp(prefix="gstp-")
        self.socket = os.path.join(self.dir, "plugin.sock")
        self.log = open(os.path.join(self.dir, "stderr"), "w+b")  # noqa: SIM115  (closed in stop)
        env = dict(
            env, GESTALT_PLUGIN_SOCKET=self.socket, GESTALT_PLUGIN_PARENT_PID=str(os.getpid())
        )
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            command, env=env, cwd=self.dir, stdout=self.log, stderr=subprocess.STDOUT
        )
        try:
            if provider_cpus:  # before the interpreter starts threads, which inherit it
                os.sched_setaffinity(self.proc.pid, provider_cpus)
            while not os.path.exists(self.socket):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{command[:4]} exited early:\n{self.output()}")
                time.sleep(0.001)
            self.channel = grpc.insecure_channel(f"unix:{self.socket}", options=FAST_CONNECT)
            method, request = ready
            self.unary(method)(request, wait_for_ready=True, timeout=60)
            self.cold_start = time.perf_counter() - started
            self.start_cpu = cpu_ticks(self.proc.pid)
            self.start_rss = peak_rss_mib(self.proc.pid)
        except BaseException:
            self.stop()
            raise

    def output(self) -> str:
        """What the process wrote so far."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def snapshot(self) -> Snapshot:
        """The process's CPU now."""
        return cpu_snapshot(self.proc.pid)

    def unary(self, method: str) -> grpc.UnaryUnaryMultiCallable[bytes, bytes]:
        """A raw-bytes callable for ``method``."""
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = self.channel.unary_unary(method)
        return call

    def stop(self) -> None:
        """SIGTERM, as the host does; SIGKILL if it lingers."""
        if hasattr(self, "channel"):
            self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def launch(side: Side, files: Path) -> Process:
    """Start the side's provider on ``files/bench50.py`` (the floor: its canned replies)."""
    ready = (PLUGIN + "GetMetadata", b"")
    if side.name in ("floor", WORK_FLOOR, WORK_FLOOR_32):
        command = [side.python, str(HERE / "floor_server.py"), str(files / "provider.marshal")]
        if side.name == WORK_FLOOR_32:
            command.append(str(IN_FLIGHT))
        if side.name != "floor":
            command.append("--work")
        return Process(command, side.env, ready)
    return Process(side.provider(files, "bench50:plugin"), side.env, ready)


# -- measurements -----------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table: samples per side, medians shown.

    ``against`` names the column the ratio divides by (``floor``, ``published``, or ``""``
    for an absolute goal); ``goal`` is the issue's goal as printed and ``check`` tests it on
    the ratio (or, with no reference column, on ours); rows without ``check`` are informative.
    """

    label: str
    unit: str
    goal: str
    check: Callable[[float], bool] | None
    against: str = "floor"
    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, side: str, value: float) -> None:
        """Record one sample."""
        self.samples.setdefault(side, []).append(value)

    def value(self, side: str) -> float | None:
        """The median for ``side``, if measured."""
        values = self.samples.get(side)
        return statistics.median(values) if values else None

    def ratio(self, side: str, against: str) -> float | None:
        """``side`` over ``against``: the median of the per-round ratios when both sides have a
        sample in every round (the two ran moments apart, so a drift of the machine's speed
        cancels out), else the ratio of the medians."""
        mine, theirs = self.samples.get(side), self.samples.get(against)
        if mine and theirs and len(mine) == len(theirs) and all(theirs):
            return statistics.median(a / b for a, b in zip(mine, theirs, strict=True))
        return ratio(self.value(side), self.value(against))


def turns(sides: list[Side], number: int) -> list[Side]:
    """The sides in the order round ``number`` runs them: each round starts one further on, so
    that no side always runs first (right after another's process exited, say)."""
    shift = number % len(sides) if sides else 0
    return sides[shift:] + sides[:shift]


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b`` when both are known."""
    return a / b if a is not None and b else None


def render(rows: list[Row], columns: list[str]) -> Iterator[str]:
    """The table, one string per line."""

    def num(value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"

    def times(value: float | None, suffix: str = "") -> str:
        return "-" if value is None else f"{value:.2f}x{suffix}"

    head = f"{'path':<48}" + "".join(f"{c:>11}" for c in columns)
    yield f"{head} {'unit':<10}{'ours/ref':>13}{'pub/floor':>10}  {'goal':<26}verdict"
    for row in rows:
        values = {c: row.value(c) for c in columns}
        ours = values.get("ours")
        if row.against:
            mine = row.ratio("ours", row.against)
            shown = times(mine, "" if row.against == "floor" else f" {row.against[:3]}")
        else:
            mine, shown = ours, ""
        if row.check is None:
            verdict = "info"
        elif mine is None:
            verdict = "n/a"
        else:
            verdict = "met" if row.check(mine) else "NOT MET"
        published = times(row.ratio("published", "floor"))
        cells = "".join(f"{num(values[c]):>11}" for c in columns)
        yield (
            f"{row.label:<48}{cells} {row.unit:<10}{shown:>13}{published:>10}  "
            f"{row.goal:<26}{verdict}"
        )


def interpreter_run(python: str, code: str, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of a fresh interpreter running ``code``."""
    started = time.perf_counter()
    proc = subprocess.Popen([python, "-c", code], env=env, cwd=tempfile.gettempdir())
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{python} -c {code!r} failed with exit code {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def check_echo(name: str, reply: bytes) -> None:
    """Fail loudly unless ``reply`` is the echo operation's correct result."""
    result = plugin_pb2.OperationResult.FromString(reply)
    if result.status != 200 or json.loads(result.body) != ECHO_PARAMS:
        raise RuntimeError(f"{name}: echo answered {result.status} {result.body!r}")


def in_flight(
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes], request: bytes, expect: bytes, total: int
) -> float:
    """Seconds for ``total`` calls kept ``IN_FLIGHT`` deep; each reply must equal ``expect``."""
    lock = threading.Lock()
    finished = threading.Event()
    state = {"started": 0, "landed": 0}
    problems: list[str] = []

    def launch_one() -> None:
        call.future(request).add_done_callback(landed)

    def landed(future: Any) -> None:
        exc = future.exception()
        if exc is not None:
            problems.append(repr(exc))
        elif future.result() != expect:
            problems.append("unexpected reply")
        with lock:
            state["landed"] += 1
            more = state["started"] < total
            if more:
                state["started"] += 1
            if state["landed"] == total:
                finished.set()
        if more:
            launch_one()

    depth = min(IN_FLIGHT, total)
    state["started"] = depth
    started = time.perf_counter()
    for _ in range(depth):
        launch_one()
    if not finished.wait(timeout=600):
        raise RuntimeError("calls in flight did not finish within 600 s")
    elapsed = time.perf_counter() - started
    if problems:
        raise RuntimeError(f"{len(problems)} calls failed, first: {problems[0]}")
    return elapsed


@dataclass
class Published:
    """The optional column's failures: each is noted, and the published side sits out the rest
    of that group of rows, so that a published SDK lacking something costs only its cells."""

    notes: list[str] = field(default_factory=list)
    dropped: set[str] = field(default_factory=set)

    def sides(self, cols: list[Side], group: str) -> list[Side]:
        """The sides still measured in ``group``."""
        return [side for side in cols if not (side.name == "published" and group in self.dropped)]

    @contextmanager
    def guard(self, side: Side, group: str) -> Iterator[None]:
        """Let the published side's errors in ``group`` through as notes; others propagate."""
        if side.name != "published":
            yield
            return
        try:
            yield
        except Exception as exc:
            self.dropped.add(group)
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            summary = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
            self.notes.append(f"published SDK, {group} rows: {summary}")


@dataclass
class Settings:
    """How much to measure (warm-up rounds are run first and not counted)."""

    warmup: int
    rounds: int
    starts: int
    calls: int
    in_flight_calls: int
    io_calls: int
    records: int
    cursor_records: int
    catalog_repeat: int


QUICK = Settings(0, 1, 1, 100, 256, 128, 1000, 100, 3)
FULL = Settings(1, 7, 7, 1000, 2000, 640, 10_000, 2000, 50)


GROUPS = ("start", "import", "register", "execute", "indexeddb")


def measure(
    cols: list[Side],
    s: Settings,
    files: Path,
    c: Canned,
    optional: Published,
    only: frozenset[str] = frozenset(GROUPS),
) -> list[Row]:
    """Every row of the groups in ``only``, sides interleaved in every round."""
    sdks = [side for side in cols if side.name != "floor"]
    cold = Row(
        "cold start: spawn -> first GetMetadata (50 ops)", "ms", "<= 1.4x", lambda r: r <= 1.4
    )
    cold_cpu = Row("  provider CPU until then", "ms", "", None)
    rss = Row("provider peak RSS at that point", "MiB", "<= 1.12x", lambda r: r <= 1.12)
    for number in range(s.warmup + s.starts if "start" in only else 0):
        for side in turns(optional.sides(cols, "cold start"), number):
            with optional.guard(side, "cold start"):
                process = launch(side, files)
                process.stop()
                if number >= s.warmup:
                    cold.add(side.name, process.cold_start * 1e3)
                    cold_cpu.add(side.name, process.start_cpu * 1e3)
                    rss.add(side.name, process.start_rss)

    imports = Row(
        "import gestalt + Cache, S3, IndexedDB, Plugin", "ms", "<= 1.25x", lambda r: r <= 1.25
    )
    imports_cpu = Row("  CPU of that interpreter", "ms", "", None)
    bare = Row("  python -c pass (the interpreter alone)", "ms", "", None)
    sdk_code = "import gestalt\nfrom gestalt import Cache, S3, IndexedDB, Plugin"
    floor_code = "import grpc\nfrom google.protobuf import struct_pb2"
    for number in range(s.warmup + s.rounds if "import" in only else 0):
        for side in turns(optional.sides(cols, "import"), number):
            with optional.guard(side, "import"):
                code = floor_code if side.name == "floor" else sdk_code
                wall, cpu = interpreter_run(side.python, code, side.env)
                alone, _ = interpreter_run(side.python, "pass", side.env)
                if number >= s.warmup:
                    imports.add(side.name, wall * 1e3)
                    imports_cpu.add(side.name, cpu * 1e3)
                    bare.add(side.name, alone * 1e3)

    register = Row(
        "import + register a 500-operation module",
        "ms",
        "<= 0.7x published",
        lambda r: r <= 0.7,
        against="published",
    )
    register_cpu = Row("  CPU of that", "ms", "", None, against="published")
    module_only = Row("  the module alone (gestalt imported)", "ms", "", None, against="published")
    catalog = Row(
        "catalog_dict() of it, repeated (per call)", "ms", "<= 1 ms", lambda v: v <= 1, ""
    )
    catalog_first = Row("  the first call", "ms", "", None, against="published")
    register_args = [str(HERE / "probe.py"), "register", str(files), "bench500"]
    register_args.append(str(s.catalog_repeat))
    for number in range(s.warmup + s.rounds if "register" in only else 0):
        for side in turns(optional.sides(sdks, "register"), number):
            with optional.guard(side, "register"):
                out = subprocess.run(
                    [side.python, *register_args],
                    env=side.env,
                    cwd=files,
                    capture_output=True,
                    text=True,
                )
                if out.returncode:
                    raise RuntimeError(f"{side.name}: probe.py register failed:\n{out.stderr}")
                found = json.loads(out.stdout)
                if found["operations"] != 500:
                    raise RuntimeError(f"{side.name}: catalog has {found['operations']} operations")
                if number >= s.warmup:
                    register.add(side.name, found["total_wall"] * 1e3)
                    register_cpu.add(side.name, found["total_cpu"] * 1e3)
                    module_only.add(side.name, found["module_wall"] * 1e3)
                    catalog.add(side.name, found["catalog_again"] * 1e3)
                    catalog_first.add(side.name, found["catalog_first"] * 1e3)

    rows = [cold, cold_cpu, rss, imports, imports_cpu, bare, register, register_cpu, module_only]
    rows += [catalog, catalog_first]
    if "execute" in only:
        rows += execute_rows(cols, s, files, c, optional)
    if "indexeddb" in only:
        rows += indexeddb_rows(cols, s, files, c, optional)
    return [row for row in rows if row.samples]


def execute_rows(
    cols: list[Side], s: Settings, files: Path, c: Canned, optional: Published
) -> list[Row]:
    """Execute sequentially and in flight against long-lived providers of every side."""
    p50 = Row("Execute echo, sequential p50", "us", "<= 1.08x", lambda r: r <= 1.08)
    cpu_seq = Row("provider CPU per Execute, sequential", "us", "<= 1.2x", lambda r: r <= 1.2)
    cpu_par = Row(
        f"provider CPU per Execute, {IN_FLIGHT} in flight", "us", "<= 1.2x", lambda r: r <= 1.2
    )
    tput = Row(
        f"Execute, {IN_FLIGHT} in flight, throughput", "calls/s", ">= 0.95x", lambda r: r >= 0.95
    )
    blocked = Row(
        f"{IN_FLIGHT} handlers blocked 5 ms in flight", "calls/s", "info, ideal in floor col", None
    )
    # Ours against the floor that also parses and answers (in its "floor" column).
    work = [
        Row("  against a floor that parses and answers: p50", "us", "", None),
        Row("  CPU per Execute, sequential, against that", "us", "", None),
        Row(f"  CPU per Execute, {IN_FLIGHT} in flight, against that", "us", "", None),
        Row(f"  {IN_FLIGHT} in flight, throughput, against that", "calls/s", "", None),
    ]
    # That floor against the raw one (its figures in the "ours" column): what parsing costs.
    parsing = [
        Row("  that floor itself vs the raw floor: p50", "us", "", None),
        Row("  ... CPU per Execute, sequential", "us", "", None),
        Row(f"  ... CPU per Execute, {IN_FLIGHT} in flight", "us", "", None),
        Row(f"  ... {IN_FLIGHT} in flight, throughput", "calls/s", "", None),
    ]
    # Ours against that floor on 32 threads, which holds 32 blocked calls as ours must: both
    # run the blocking burst after each round's calls in flight.
    work32 = [
        Row(f"  against it on {IN_FLIGHT} threads: CPU, {IN_FLIGHT} in flight", "us", "", None),
        Row(f"  ... throughput, {IN_FLIGHT} in flight", "calls/s", "", None),
        Row(f"  ... {IN_FLIGHT} handlers blocked 5 ms", "calls/s", "", None),
    ]
    main = (p50, cpu_seq, cpu_par, tput)
    # Where each side's figures go: (rows for p50, CPU sequential, CPU in flight, throughput,
    # and the blocked calls; None for none), and the column.
    place: dict[str, list[tuple[tuple[Row | None, ...], str]]] = {
        "ours": [
            ((*main, blocked), "ours"),
            ((*work, None), "ours"),
            ((None, None, *work32), "ours"),
        ],
        "floor": [((*main, None), "floor"), ((*parsing, None), "floor")],
        "published": [((*main, blocked), "published")],
        WORK_FLOOR: [((*work, None), "floor"), ((*parsing, None), "ours")],
        WORK_FLOOR_32: [((None, None, *work32), "floor")],
    }
    env = host_env(PYTHONPATH=str(REPO / "generated"))
    floors = [Side(WORK_FLOOR, sys.executable, env), Side(WORK_FLOOR_32, sys.executable, env)]
    servers: dict[str, Process] = {}
    expect: dict[str, bytes] = {}
    try:
        for side in [*optional.sides(cols, "execute"), *floors]:
            with optional.guard(side, "execute"):
                servers[side.name] = server = launch(side, files)
                expect[side.name] = reply = server.unary(PLUGIN + "Execute")(c.execute_echo)
                check_echo(side.name, reply)
        blocked.add("floor", IN_FLIGHT / IO_SECONDS)
        for number in range(s.warmup + s.rounds):
            for side in turns([*optional.sides(cols, "execute"), *floors], number):
                with optional.guard(side, "execute"):
                    server = servers[side.name]
                    call = server.unary(PLUGIN + "Execute")
                    times = []
                    before = server.snapshot()
                    for _ in range(s.calls):
                        started = time.perf_counter()
                        call(c.execute_echo)
                        times.append(time.perf_counter() - started)
                    cpu = cpu_between(before, server.snapshot())
                    before = server.snapshot()
                    elapsed = in_flight(call, c.execute_echo, expect[side.name], s.in_flight_calls)
                    par = cpu_between(before, server.snapshot())
                    io_rate = None
                    if side.name not in ("floor", WORK_FLOOR):  # the sides that can block
                        io_reply = call(c.execute_io)
                        io_rate = s.io_calls / in_flight(call, c.execute_io, io_reply, s.io_calls)
                    if number < s.warmup:
                        continue
                    values = (
                        statistics.median(times) * 1e6,
                        cpu / s.calls * 1e6,
                        par / s.in_flight_calls * 1e6,
                        s.in_flight_calls / elapsed,
                        io_rate,
                    )
                    for rows, column in place[side.name]:
                        for row, value in zip(rows, values, strict=True):
                            if row is not None and value is not None:
                                row.add(column, value)
    finally:
        for server in servers.values():
            server.stop()
    return [p50, cpu_seq, cpu_par, tput, blocked, *work, *parsing, *work32]


@contextmanager
def probe(side: Side, target: str) -> Iterator[Callable[[dict[str, Any]], dict[str, Any]]]:
    """A ``probe.py client`` of ``side``; yields a function sending one command."""
    mode = "floor" if side.name == "floor" else "sdk"
    proc = subprocess.Popen(
        [side.python, str(HERE / "probe.py"), "client", mode],
        env=dict(side.env, GESTALT_INDEXEDDB_SOCKET=target),
        cwd=tempfile.gettempdir(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    stdin: IO[str] = proc.stdin  # type: ignore[assignment]
    stdout: IO[str] = proc.stdout  # type: ignore[assignment]

    def send(command: dict[str, Any]) -> dict[str, Any]:
        try:
            stdin.write(json.dumps(command) + "\n")
            stdin.flush()
        except BrokenPipeError:
            raise RuntimeError(f"{side.name}: probe.py client exited ({proc.wait()})") from None
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"{side.name}: probe.py client exited ({proc.wait()})")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{side.name}: {command['op']}: {answer['error']}")
        return answer

    try:
        yield send
    finally:
        with suppress(BrokenPipeError):  # the client already exited; its error was reported
            stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def indexeddb_rows(
    cols: list[Side], s: Settings, files: Path, c: Canned, optional: Published
) -> list[Row]:
    """``get_all`` and a cursor through each side's client, served canned bytes by the floor."""
    get_all = Row(
        f"IndexedDB get_all of {s.records:,} records", "records/s", ">= 0.4x", lambda r: r >= 0.4
    )
    get_all_cpu = Row("  client CPU per record", "us", "", None)
    parsed = Row("  against a floor that parses the reply (upb)", "records/s", "", None)
    dicts = Row("  against upb parse + a plain dict loop", "records/s", "", None)
    cursor = Row(
        f"IndexedDB cursor over {s.cursor_records:,} records",
        "records/s",
        ">= 0.95x",
        lambda r: r >= 0.95,
    )
    cursor_cpu = Row("  client CPU per record", "us", "", None)
    walk_parsed = Row("  against a floor that parses each answer (upb)", "records/s", "", None)
    walk_dicts = Row("  against upb parse + the plain dict loop", "records/s", "", None)
    command = [sys.executable, str(HERE / "floor_server.py"), str(files / "indexeddb.marshal")]
    ready = (INDEXEDDB + "GetAll", bytes.fromhex(c.client["get_all_request"]))
    server = Process(command, host_env(), ready)
    try:
        with ExitStack() as stack:
            clients = {side.name: stack.enter_context(probe(side, server.socket)) for side in cols}
            expected = record(0)
            for number in range(s.warmup + s.rounds):
                for side in turns(optional.sides(cols, "indexeddb"), number):
                    with optional.guard(side, "indexeddb"):
                        send = clients[side.name]
                        got = send(dict(c.client, op="get_all"))
                        walk = send(dict(c.client, op="cursor"))
                        if got["count"] != s.records or walk["count"] != s.cursor_records:
                            raise RuntimeError(f"{side.name}: read {got['count']}, {walk['count']}")
                        if side.name != "floor" and (
                            got["first"] != expected or walk["first"] != expected
                        ):
                            raise RuntimeError(f"{side.name}: first record {got['first']!r}")
                        if side.name == "floor":
                            parse = send(dict(c.client, op="get_all", decode="parse"))
                            loop = send(dict(c.client, op="get_all", decode="dicts"))
                            if loop["first"] != expected or parse["count"] != s.records:
                                raise RuntimeError(f"floor decoding: {loop['first']!r}")
                            walk_parse = send(dict(c.client, op="cursor", decode="parse"))
                            walk_loop = send(dict(c.client, op="cursor", decode="dicts"))
                            if walk_loop["first"] != expected or walk_parse["count"] != (
                                s.cursor_records
                            ):
                                raise RuntimeError(f"floor cursor: {walk_loop['first']!r}")
                        else:
                            walk_parse = walk_loop = walk
                        if number >= s.warmup:
                            if side.name == "floor":
                                parsed.add(side.name, s.records / parse["wall"])
                                dicts.add(side.name, s.records / loop["wall"])
                            else:
                                parsed.add(side.name, s.records / got["wall"])
                                dicts.add(side.name, s.records / got["wall"])
                            get_all.add(side.name, s.records / got["wall"])
                            get_all_cpu.add(side.name, got["cpu"] / s.records * 1e6)
                            cursor.add(side.name, s.cursor_records / walk["wall"])
                            cursor_cpu.add(side.name, walk["cpu"] / s.cursor_records * 1e6)
                            walk_parsed.add(side.name, s.cursor_records / walk_parse["wall"])
                            walk_dicts.add(side.name, s.cursor_records / walk_loop["wall"])
    finally:
        server.stop()
    return [get_all, get_all_cpu, parsed, dicts, cursor, cursor_cpu, walk_parsed, walk_dicts]


# -- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Parse the options, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short round of everything")
    parser.add_argument("--rounds", type=int, help="counted rounds per row (default 7)")
    parser.add_argument(
        "--published-python",
        help="an interpreter with a published gestalt-sdk installed, for a third column",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="run the providers on the last CPU and this benchmark's client on the others",
    )
    parser.add_argument(
        "--only",
        help=f"comma-separated groups of rows to measure (of {', '.join(GROUPS)}; default all)",
    )
    args = parser.parse_args(argv)
    only = frozenset(args.only.split(",")) if args.only else frozenset(GROUPS)
    if not only <= set(GROUPS):
        parser.error(f"--only: unknown groups {', '.join(sorted(only - set(GROUPS)))}")
    settings = QUICK if args.quick else FULL
    if args.rounds:
        settings = Settings(**{**vars(settings), "rounds": args.rounds, "starts": args.rounds})
    if args.published_python and not shutil.which(args.published_python):
        parser.error(f"--published-python {args.published_python}: not found")
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            parser.error("--pin needs at least two CPUs")
        provider_cpus.add(cpus[-1])
        os.sched_setaffinity(0, cpus[:-1])
    cols = sides(args.published_python)
    files = Path(tempfile.mkdtemp(prefix="gstbench-"))
    try:
        (files / "bench50.py").write_text(plugin_source(50))
        (files / "bench500.py").write_text(plugin_source(500))
        c = canned(settings.records, settings.cursor_records)
        with open(files / "provider.marshal", "wb") as f:
            marshal.dump(c.provider, f)
        with open(files / "indexeddb.marshal", "wb") as f:
            marshal.dump(c.indexeddb, f)
        optional = Published()
        rows = measure(cols, settings, files, c, optional, only)
    finally:
        shutil.rmtree(files, ignore_errors=True)
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(
        f"python {sys.version.split()[0]}, grpcio {grpc.__version__}, protobuf "
        f"{api_implementation.Type()}, {os.cpu_count()} cpus, load {' '.join(load)}; "
        f"medians of {settings.rounds} rounds{' (--quick)' if args.quick else ''}"
        f"{f'; providers pinned to CPU {min(provider_cpus)}' if provider_cpus else ''}"
    )
    for line in render(rows, [side.name for side in cols]):
        print(line)
    for note in optional.notes:
        print(f"not measured: {note}")
    print(
        "ours/ref: ours / floor unless marked (pub = ours / published); pub/floor: published / "
        "floor; each the median of the rounds' ratios. Verdicts are for this run on this "
        "machine; nothing is asserted."
    )


if __name__ == "__main__":
    main()
