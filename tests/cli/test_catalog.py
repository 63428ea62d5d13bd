"""``gestalt catalog``: the static catalog exactly as the runtime exports it for the host."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from gestalt._runtime.launch import provider_env
from tests.cli.conftest import EXAMPLES, HELLO, gestalt, one_line_error


def runtime_export(root: Path, target: str, tmp_path: Path) -> str:
    """What the host's catalog-export run of ``python -m gestalt._runtime`` writes."""
    path = tmp_path / "exported.yaml"
    subprocess.run(
        [sys.executable, "-m", "gestalt._runtime", str(root), target],
        env=provider_env({"GESTALT_PLUGIN_WRITE_CATALOG": str(path)}),
        check=True,
        timeout=60,
    )
    return path.read_text(encoding="utf-8")


def test_prints_the_runtime_export(tmp_path: Path) -> None:
    expected = runtime_export(HELLO, "hello:plugin", tmp_path)
    printed = gestalt("catalog", HELLO, cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == expected
    assert printed.stderr == ""
    # ROOT defaults to the working directory.
    assert gestalt("catalog", cwd=HELLO).stdout == expected
    assert yaml.safe_load(expected)["operations"][0]["id"] == "greet"


def test_output_file_and_json(tmp_path: Path) -> None:
    expected = runtime_export(HELLO, "hello:plugin", tmp_path)
    target = tmp_path / "out" / "catalog.yaml"
    target.parent.mkdir()
    written = gestalt("catalog", HELLO, "--output", target, cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert written.stdout == f"wrote {target}\n"
    assert target.read_text(encoding="utf-8") == expected

    as_json = gestalt("--json", "catalog", HELLO, cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == yaml.safe_load(expected)

    short = gestalt("--json", "catalog", HELLO, "-o", "c.yaml", cwd=tmp_path)
    assert json.loads(short.stdout) == {"written": "c.yaml"}
    assert (tmp_path / "c.yaml").read_text(encoding="utf-8") == expected


def test_errors(tmp_path: Path) -> None:
    missing = one_line_error(gestalt("catalog", "missing", cwd=tmp_path))
    assert missing == "missing: no such directory"
    other_kind = one_line_error(gestalt("catalog", EXAMPLES / "cache_provider", cwd=tmp_path))
    assert other_kind == f"{EXAMPLES / 'cache_provider'}: only integration plugins have a catalog"
