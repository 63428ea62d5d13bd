"""Type checking of the plugin runtime kind, the runtime log clients and ``gestalt.telemetry``."""

from __future__ import annotations

from pathlib import Path

from tests.typing.test_typing import _expected, _mypy, _pyright, _reported

CASES = Path(__file__).parent / "cases"


def test_correct_use_type_checks_under_mypy() -> None:
    run = _mypy(CASES / "runtime_telemetry_ok.py")
    assert run.returncode == 0, run.stdout + run.stderr


def test_correct_use_type_checks_under_pyright_strict() -> None:
    run = _pyright(CASES / "telemetry_pyright_ok.py")
    assert run.returncode == 0, run.stdout + run.stderr


def test_wrong_uses_are_reported() -> None:
    bad = CASES / "runtime_telemetry_bad.py"
    run = _mypy(bad)
    assert run.returncode == 1
    assert _reported(run.stdout, bad) == _expected(bad), run.stdout
