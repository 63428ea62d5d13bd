"""Workflow runs with agent targets on the local managers: the workflow manager, served on a
socket and reached with the SDK's ``WorkflowManager``, runs each agent target as one turn of
the local agent manager, acting with the invocation token of the call that started the run.
The run's body is the turn's output; a failed, unanswered or undeliverable agent run fails
the run with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from gestalt import AgentManager, WorkflowManager, agent_target, plugin_target
from gestalt.gen.v1.agent_mirrors import AgentExecutionStatus, AgentMessage, AgentTurn
from gestalt.gen.v1.workflow_mirrors import (
    BoundWorkflowPluginTarget,
    BoundWorkflowRun,
    WorkflowOutputDelivery,
    WorkflowRunStatus,
)
from gestalt.local import (
    AgentManagerService,
    LocalTurn,
    WorkflowManagerService,
    serve_agent_manager,
    serve_workflow_manager,
)
from gestalt.local._serving import LocalServer
from gestalt.local.workflows import invoker_executor

TOKEN = "caller-token-1"


class Managers:
    """The two local managers on sockets, the workflow one running agent targets."""

    def __init__(self, root: Path, agents: AgentManagerService) -> None:
        self.agents = agents
        # No plugin invoker runs: only agent targets are started here.
        execute = invoker_executor(str(root / "absent-invoker.sock"), timeout=5, agents=agents)
        self.workflows = WorkflowManagerService(execute)
        self._servers: list[LocalServer[Any]] = [
            serve_agent_manager(root / "agents.sock", service=agents),
            serve_workflow_manager(root / "workflows.sock", service=self.workflows),
        ]

    def run(self, target: Any) -> BoundWorkflowRun:
        """Start a run of ``target`` as a provider would and wait for it to finish."""
        with WorkflowManager(TOKEN) as manager:
            started = manager.start_run("local", target)
        assert started.run is not None
        return self.workflows.wait_for_run(started.run.id, timeout=15)

    def stop(self) -> None:
        for server in self._servers:
            server.stop()


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GESTALT_WORKFLOW_MANAGER_SOCKET", str(tmp_path / "workflows.sock"))
    monkeypatch.setenv("GESTALT_AGENT_MANAGER_SOCKET", str(tmp_path / "agents.sock"))
    return tmp_path


@pytest.fixture
def managers(root: Path) -> Iterator[Managers]:
    both = Managers(root, AgentManagerService())
    yield both
    both.stop()


def test_agent_target_runs_as_a_turn_acting_for_the_caller(managers: Managers) -> None:
    target = agent_target(
        "echo-agent",
        "summarise the tides",
        model="small",
        messages=[AgentMessage(role="system", text="be brief")],
        metadata={"team": "ops"},
    )
    run = managers.run(target)
    assert run.status is WorkflowRunStatus.SUCCEEDED, run.status_message
    assert run.result_body == "summarise the tides"
    assert managers.agents.invocation_tokens == [TOKEN]
    (turn,) = _turns()
    assert (turn.provider_name, turn.model) == ("echo-agent", "small")
    assert [(m.role, m.text) for m in turn.messages] == [
        ("system", "be brief"),
        ("user", "summarise the tides"),
    ]


def _turns() -> list[AgentTurn]:
    """Every turn of the agent manager, read through its socket."""
    with AgentManager("reader") as agents:
        return [
            turn for session in agents.list_sessions() for turn in agents.list_turns(session.id)
        ]


def test_structured_output_is_the_body(root: Path) -> None:
    def answer(turn: LocalTurn) -> Mapping[str, Any]:
        return {"summary": turn.last_text.upper()}

    managers = Managers(root, AgentManagerService(answer))
    try:
        run = managers.run(agent_target("planner", "plan"))
    finally:
        managers.stop()
    assert run.status is WorkflowRunStatus.SUCCEEDED, run.status_message
    assert json.loads(run.result_body) == {"summary": "PLAN"}


def test_failures_fail_the_run_with_the_reason(root: Path) -> None:
    def refuse(turn: LocalTurn) -> str:
        raise RuntimeError(f"cannot answer {turn.last_text!r}")

    managers = Managers(root, AgentManagerService(refuse))
    try:
        failed = managers.run(agent_target("picky", "hello"))
        delivery = WorkflowOutputDelivery(target=BoundWorkflowPluginTarget(plugin_name="p"))
        undelivered = managers.run(agent_target("picky", "x", output_delivery=delivery))
    finally:
        managers.stop()
    assert failed.status is WorkflowRunStatus.FAILED
    assert failed.status_message.endswith("did not succeed: cannot answer 'hello'")
    assert undelivered.status is WorkflowRunStatus.FAILED
    assert undelivered.status_message == (
        "output delivery of an agent target runs only on the Gestalt host"
    )


def test_an_unanswered_turn_times_out_and_is_canceled(root: Path) -> None:
    agents = AgentManagerService(responder=None)  # turns stay pending
    managers = Managers(root, agents)
    try:
        run = managers.run(agent_target("silent", "anyone?", timeout_seconds=1))
        assert run.status is WorkflowRunStatus.FAILED
        assert run.status_message.endswith("did not finish in time"), run.status_message
        (turn,) = _turns()
    finally:
        managers.stop()
    assert turn.status is AgentExecutionStatus.CANCELED


def test_plugin_targets_still_need_the_invoker(managers: Managers) -> None:
    run = managers.run(plugin_target("p", "op"))
    assert run.status is WorkflowRunStatus.FAILED
    assert run.status_message  # the absent invoker: the run fails, the service stays up
