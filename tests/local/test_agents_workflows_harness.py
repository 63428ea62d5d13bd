"""A provider that starts workflows and agent turns, run by ``gestalt.testing`` the way the host
runs it: the embedded agent and workflow managers reach it through its environment, the
Execute call's invocation token travels with every manager call, a workflow run executes an
operation of the provider through the local plugin invoker (or, for an agent target, a turn of
the local agent manager), and the workflow context the host
sends reads back typed.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from gestalt.gen.v1.workflow_mirrors import WorkflowRunStatus
from gestalt.testing import JSONInput, start_provider

PROVIDER = '''
from __future__ import annotations

from typing import Any

from gestalt import Model, Plugin, Request, agent_target, plugin_target

plugin = Plugin("flows")


class Topic(Model):
    topic: str = ""


@plugin.operation
def kick(params: Topic, request: Request) -> dict[str, Any]:
    """Start a workflow run and an agent turn for ``topic``; report both."""
    topic = params.topic
    with request.workflow_manager() as workflows:
        started = workflows.start_run("local", plugin_target("flows", "work", {"topic": topic}))
        workflows.publish_event("topic.kicked", {"topic": topic})
    with request.agent_manager() as agents:
        session = agents.create_session("echo-agent")
        turn = agents.create_turn(session.id, f"about {topic}")
        done = agents.wait(turn.id, timeout=25, poll_interval=0.01)
        events = [event.type for event in agents.turn_events(turn.id)]
    context = request.workflow_context
    plugin_target_of_run = context.target.plugin if context and context.target else None
    return {
        "run": started.run.id if started.run else "",
        "answer": done.output_text,
        "events": events,
        "in_run": context.run_id if context else "",
        "target": plugin_target_of_run.plugin_name if plugin_target_of_run else "",
    }


@plugin.operation
def work(params: Topic) -> dict[str, str]:
    """What a workflow run of this plugin executes."""
    return {"worked_on": params.topic}


@plugin.operation
def delegate(params: Topic, request: Request) -> dict[str, str]:
    """Start a workflow run whose target is an agent."""
    with request.workflow_manager() as workflows:
        target = agent_target("echo-agent", f"brief on {params.topic}")
        started = workflows.start_run("local", target)
    return {"run": started.run.id if started.run else ""}


@plugin.operation
async def kick_async(params: Topic, request: Request) -> dict[str, Any]:
    """The same through the asyncio clients."""
    async with request.async_agent_manager() as agents:
        session = await agents.create_session("echo-agent")
        turn = await agents.create_turn(session.id, "async hello")
        done = await agents.wait(turn.id, timeout=25, poll_interval=0.01)
    async with request.async_workflow_manager(idempotency_key="same") as workflows:
        first = await workflows.start_run("local", plugin_target("flows", "work"))
        again = await workflows.start_run("local", plugin_target("flows", "work"))
    return {"answer": done.output_text, "same_run": first.run == again.run}
'''


def _project(root: Path) -> Path:
    (root / "flows.py").write_text(PROVIDER)
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [project]
            name = "flows"
            version = "0.1.0"

            [tool.gestalt]
            provider = "flows:plugin"
            """
        )
    )
    return root


@pytest.mark.parametrize("mode", ["subprocess", "inprocess"])
def test_provider_uses_the_local_agent_and_workflow_managers(tmp_path: Path, mode: str) -> None:
    root = _project(tmp_path)
    with start_provider(root, mode=mode, name="flows") as provider:  # type: ignore[arg-type]
        assert provider.services is not None
        agents, workflows = provider.services.agents, provider.services.workflows
        assert agents is not None and workflows is not None
        workflow: dict[str, JSONInput] = {
            "runId": "run-9",
            "target": {"plugin": {"pluginName": "flows"}},
        }
        kicked = provider.invoke("kick", {"topic": "tides"}, context={"workflow": workflow})
        assert kicked.status == 200, kicked.raw_body
        body = kicked.body
        assert isinstance(body, dict)
        assert body["answer"] == "about tides"
        assert body["events"] == ["turn.started", "assistant.message", "turn.completed"]
        assert (body["in_run"], body["target"]) == ("run-9", "flows")
        (run,) = workflows.runs()
        assert run.id == body["run"]
        assert run.target is not None and run.target.plugin is not None
        assert run.target.plugin.input == {"topic": "tides"}
        # the run executed the plugin's own operation through the local plugin invoker
        done = workflows.wait_for_run(run.id, timeout=30)
        assert done.status is WorkflowRunStatus.SUCCEEDED, done.status_message
        assert json.loads(done.result_body) == {"worked_on": "tides"}
        assert [event.type for event in workflows.events] == ["topic.kicked"]
        # each manager call carried the Execute call's invocation token, minted by the harness
        (token,) = set(agents.invocation_tokens)
        assert token.startswith("local-invocation-")
        assert set(workflows.invocation_tokens) == {token}

        again = provider.invoke("kick_async", {})
        assert again.body == {"answer": "async hello", "same_run": True}

        # an agent target runs as a turn of the local agent manager, acting for the caller
        delegated = provider.invoke("delegate", {"topic": "tides"})
        assert delegated.status == 200, delegated.raw_body
        assert isinstance(delegated.body, dict)
        agent_run = workflows.wait_for_run(str(delegated.body["run"]), timeout=30)
        assert agent_run.status is WorkflowRunStatus.SUCCEEDED, agent_run.status_message
        assert agent_run.result_body == "brief on tides"
        assert agents.invocation_tokens[-1] == workflows.invocation_tokens[-1] != token
