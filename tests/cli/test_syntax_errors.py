"""A syntax error in the provider's code is reported as ``FILE:LINE:COLUMN: message`` by every
command (``gestalt dev``, ``check``, ``invoke``) and by the runtime itself, never as a frame of
the import machinery."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import gestalt, one_line_error, user_env

PLUGIN = """\
from gestalt import Plugin

plugin = Plugin("typo")


@plugin.operation
def ping() -> dict[str, bool]:
{body}
"""
CACHE = """\
from gestalt import CacheProvider


class Cache(CacheProvider):
{body}


provider = Cache()
"""
#: A body with a syntax error, and where and what Python says it is.
BROKEN = {
    "invalid": ("    return {'pong': True", "1:12", "SyntaxError: '{' was never closed"),
    "indent": ("  x = 1\n    return x", "2:4", "IndentationError: unexpected indent"),
}


def broken_project(root: Path, kind: str, case: str) -> tuple[Path, str]:
    """A project of ``kind`` whose module has the syntax error ``case``; the module's path
    and the one line the error must be reported as."""
    body, where, message = BROKEN[case]
    root.mkdir()
    key, template = ("provider", PLUGIN) if kind == "integration" else ("cache", CACHE)
    (root / "pyproject.toml").write_text(f'[tool.gestalt]\n{key} = "typo"\n', encoding="utf-8")
    module = root / "typo.py"
    module.write_text(template.format(body=body), encoding="utf-8")
    first = template.splitlines().index("{body}") + 1
    line, column = where.split(":")
    return module, f"{module}:{first + int(line) - 1}:{column}: {message}"


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_runtime_reports_one_located_line(tmp_path: Path, case: str) -> None:
    module, expected = broken_project(tmp_path / "p", "integration", case)
    for args in ([str(module.parent)], [str(module.parent), "typo"]):
        run = subprocess.run(
            [sys.executable, "-m", "gestalt._runtime", *args],
            env={**user_env(), "GESTALT_PLUGIN_SOCKET": str(tmp_path / "s.sock")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (run.returncode, run.stdout) == (1, "")
        assert run.stderr == f"gestalt runtime: {expected}\n"


@pytest.mark.parametrize("kind", ["integration", "cache"])
def test_check_reports_the_location(tmp_path: Path, kind: str) -> None:
    module, expected = broken_project(tmp_path / "p", kind, "invalid")
    run = gestalt("check", module.parent, cwd=tmp_path, timeout=60)
    assert (run.returncode, run.stdout, run.stderr) == (1, f"error: {expected}\n", "")


def test_invoke_reports_the_location(tmp_path: Path) -> None:
    module, expected = broken_project(tmp_path / "p", "integration", "invalid")
    run = gestalt("invoke", "ping", "--root", module.parent, cwd=tmp_path, timeout=60)
    assert one_line_error(run) == f"the provider exited with status 1: {expected}"
    assert "frozen" not in run.stdout + run.stderr


def test_dev_reports_the_location(tmp_path: Path) -> None:
    module, expected = broken_project(tmp_path / "p", "integration", "invalid")
    run = gestalt("dev", module.parent, cwd=tmp_path, timeout=60)
    assert one_line_error(run) == f"the provider exited with status 1: {expected}"
    # The runtime's line also streamed by in the dev terminal, and nothing else.
    assert run.stdout.splitlines() == [f"[p] gestalt runtime: {expected}", "stopped"]
