# pyright: strict
"""Correct use of the agent and workflow clients: typed forms give mirrors, raw forms pb2."""

from __future__ import annotations

import gestalt
from gestalt.gen.v1 import agent_pb2, workflow_pb2
from gestalt.gen.v1.agent_mirrors import AgentSession, AgentTurn, AgentTurnEvent
from gestalt.gen.v1.workflow_mirrors import (
    ManagedWorkflowRun,
    ManagedWorkflowSchedule,
    WorkflowEvent,
    WorkflowEventMatch,
)


def sync_use(request: gestalt.Request) -> str:
    manager: gestalt.AgentManager = request.agent_manager()
    session: AgentSession = manager.create_session("p", model="m", metadata={"a": 1})
    turn: AgentTurn = manager.create_turn(session.id, "hello", idempotency_key="k")
    events: list[AgentTurnEvent] = list(manager.turn_events(turn.id, after_seq=0))
    done: AgentTurn = manager.wait(turn.id, timeout=5.0)
    raw: agent_pb2.AgentSession = manager.get_session(
        agent_pb2.AgentManagerGetSessionRequest(session_id=session.id)
    )
    workflows: gestalt.WorkflowManager = request.workflow_manager(idempotency_key="x")
    run: ManagedWorkflowRun = workflows.start_run("t", gestalt.plugin_target("p", "op", {"a": 1}))
    schedule: ManagedWorkflowSchedule = workflows.create_schedule(
        "t", "0 * * * *", gestalt.agent_target("agent", "summarise"), paused=True
    )
    workflows.create_trigger("t", WorkflowEventMatch(type="x"), gestalt.plugin_target("p", "o"))
    event: WorkflowEvent = workflows.publish_event("thing.happened", {"n": 1}, source="me")
    workflows.delete_schedule(schedule.schedule.id if schedule.schedule else "")
    raw_run: workflow_pb2.ManagedWorkflowRun = workflows.start_run(
        workflow_pb2.WorkflowManagerStartRunRequest(provider_name="t")
    )
    context = request.workflow_context
    run_id = context.run_id if context is not None else ""
    parts = [str(len(events)), done.output_text, raw.id, run.provider_name, event.id]
    return " ".join([*parts, str(raw_run), run_id])


async def async_use(request: gestalt.Request) -> list[str]:
    async with request.async_agent_manager() as manager:
        session: AgentSession = await manager.create_session("p")
        turn = await manager.create_turn(session.id, ["hi"])
        types = [event.type async for event in manager.turn_events(turn.id)]
        done: AgentTurn = await manager.wait(turn.id)
    host = gestalt.AsyncAgentHost()
    result = await host.execute_tool("s", "t", "tool", {"q": "x"})
    async with gestalt.AsyncWorkflowManager("token") as workflows:
        await workflows.pause_trigger("trigger-1")
    return [*types, done.output_text, result.body]
