"""mypy --strict accepts the typed and raw forms of the agent and workflow clients and reports
wrong arguments, raw messages of the wrong type and a forgotten ``await``."""

from __future__ import annotations

from tests.typing.test_typing import CASES, _expected, _mypy, _reported


def test_agent_and_workflow_clients_type_check() -> None:
    run = _mypy(CASES / "agents_workflows_ok.py")
    assert run.returncode == 0, run.stdout + run.stderr


def test_wrong_uses_of_agent_and_workflow_clients_are_reported() -> None:
    bad = CASES / "agents_workflows_bad.py"
    run = _mypy(bad)
    assert run.returncode == 1
    assert _reported(run.stdout, bad) == _expected(bad), run.stdout
