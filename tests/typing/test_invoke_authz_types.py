"""mypy --strict accepts the typed forms of the invoker and authorization clients, and
reports their misuse: ``invoke_authz_ok.py`` must pass, each marked line of
``invoke_authz_bad.py`` must be reported with its error code."""

from __future__ import annotations

from tests.typing.test_typing import CASES, _expected, _mypy, _reported


def test_typed_use_type_checks() -> None:
    run = _mypy(CASES / "invoke_authz_ok.py")
    assert run.returncode == 0, run.stdout + run.stderr


def test_misuse_is_reported() -> None:
    bad = CASES / "invoke_authz_bad.py"
    run = _mypy(bad)
    assert run.returncode == 1, run.stdout + run.stderr
    assert _reported(run.stdout, bad) == _expected(bad), run.stdout
