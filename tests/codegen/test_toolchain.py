"""The generator refuses other toolchain versions than its pins."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

from codegen import toolchain
from tests.conftest import REPO


def test_pins_match_installed_versions() -> None:
    toolchain.check()


def test_pins_match_pyproject() -> None:
    text = (REPO / "pyproject.toml").read_text()
    for dist, version in toolchain.PINS.items():
        assert f'"{dist}=={version}"' in text


def test_mismatch_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(toolchain.PINS, "ruff", "0.0.1")
    with pytest.raises(toolchain.ToolchainError, match=r"ruff .* pinned to 0\.0\.1"):
        toolchain.check()


def test_missing_tool_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(toolchain.PINS, "no-such-dist-gestalt", "1.0")
    with pytest.raises(toolchain.ToolchainError, match="no-such-dist-gestalt is not installed"):
        toolchain.check()


def test_cli_exits_2_on_mismatch(tmp_path: object) -> None:
    code = (
        "import sys; from codegen import toolchain; toolchain.PINS['Jinja2'] = '0.1';"
        "from codegen.__main__ import main; sys.exit(main(['--check']))"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 2
    assert "refusing to generate" in run.stderr
    assert metadata.version("Jinja2") in run.stderr
