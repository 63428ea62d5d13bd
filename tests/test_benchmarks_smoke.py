"""``benchmarks/bench_floor.py --quick`` runs end to end and prints every row of its table;
``bench_mirrors.py`` prints the mirrors against ``json_format`` for each of its messages.

Real processes throughout (providers launched like the host does, the raw-bytes floor server,
probe clients); nothing about timing is asserted, only that each row got a figure for ours and
for the floor, and a verdict.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import REPO

ROWS = [
    "cold start: spawn -> first GetMetadata (50 ops)",
    "provider peak RSS at that point",
    "import gestalt + Cache, S3, IndexedDB, Plugin",
    "import + register a 500-operation module",
    "catalog_dict() of it, repeated (per call)",
    "Execute echo, sequential p50",
    "provider CPU per Execute, sequential",
    "provider CPU per Execute, 32 in flight",
    "Execute, 32 in flight, throughput",
    "IndexedDB get_all of 1,000 records",
    "IndexedDB cursor over 100 records",
]
FLOOR_ROWS = [row for row in ROWS if not row.startswith(("import + register", "catalog_dict"))]
# Informative rows: ours against floor clients that also parse and decode the cursor's answers.
INFO_ROWS = [
    "  against a floor that parses each answer (upb)",
    "  against upb parse + the plain dict loop",
    # Ours against the floor that parses and answers, and that floor against the raw one.
    "  CPU per Execute, 32 in flight, against that",
    "  ... CPU per Execute, 32 in flight",
    "  against it on 32 threads: CPU, 32 in flight",
    "  ... 32 handlers blocked 5 ms",
]
NUMBER = r"[\d,]+(?:\.\d+)?(?:e[-+]?\d+)?"


def test_bench_floor_quick_prints_every_row() -> None:
    # --pin (providers on one CPU, the client on the others) wherever there are two CPUs.
    pin = ["--pin"] if len(os.sched_getaffinity(0)) > 1 else []
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_floor.py"), "--quick", *pin],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "protobuf" in lines[0] and "--quick" in lines[0]
    assert ("providers pinned to CPU" in lines[0]) == bool(pin)
    assert re.split(r"\s+", lines[1].strip())[:4] == ["path", "ours", "floor", "unit"]
    table = {
        row: line[len(row) :].split()
        for row in ROWS + INFO_ROWS
        for line in lines
        if line.startswith(row)
    }
    for row in ROWS:
        cells = table[row]
        assert re.fullmatch(NUMBER, cells[0]), (row, cells)
        # n/a: the goal of the 500-operation rows is relative to the published SDK (no column)
        assert cells[-1] in ("met", "n/a") or cells[-2:] == ["NOT", "MET"], (row, cells)
    for row in FLOOR_ROWS:
        assert re.fullmatch(NUMBER, table[row][1]), (row, table[row])
        assert re.fullmatch(NUMBER + "x", table[row][3]), (row, table[row])
    for row in INFO_ROWS:
        cells = table[row]
        assert re.fullmatch(NUMBER, cells[0]) and re.fullmatch(NUMBER, cells[1]), (row, cells)
        assert cells[-1] == "info", (row, cells)


MIRROR_ROWS = [
    "cache.CacheSetRequest",
    "plugin.ExecuteRequest",
    "datastore.Record (20 fields)",
    "agent.AgentTurn (4 msgs x 2 parts)",
]


def test_bench_mirrors_compares_with_json_format() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "bench_mirrors.py"),
            "--repeat=1",
            "--min-time=0.001",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr  # it checks both round trips before timing
    lines = done.stdout.splitlines()
    assert lines[1].split()[-2:] == ["mirror/json", "mirror/wire"]
    for row in MIRROR_ROWS:
        (line,) = [line for line in lines if line.startswith(row)]
        cells = line[len(row) :].split()
        assert len(cells) == 9 and all(re.fullmatch(NUMBER + "x?", cell) for cell in cells), cells
