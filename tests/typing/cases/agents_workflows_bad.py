"""Wrong uses of the agent and workflow clients: mypy must reject each marked line."""

from __future__ import annotations

import gestalt
from gestalt.gen.v1 import agent_pb2, workflow_pb2
from gestalt.gen.v1.agent_mirrors import AgentSession


async def wrong(manager: gestalt.AgentManager, workflows: gestalt.WorkflowManager) -> None:
    manager.get_session(3)  # E: call-overload
    manager.create_session("p", model=1)  # E: call-overload
    manager.create_turn("s", "hi", unknown=True)  # E: call-overload
    manager.get_turn(agent_pb2.AgentManagerGetSessionRequest())  # E: call-overload
    request = agent_pb2.AgentManagerGetSessionRequest()
    raw: AgentSession = manager.get_session(request)  # E: assignment
    workflows.start_run("t", {"plugin": "p"})  # E: call-overload
    workflows.start_run(workflow_pb2.WorkflowManagerSignalRunRequest())  # E: call-overload
    await manager.list_sessions()  # E: misc
    async_manager = gestalt.AsyncAgentManager("token")
    session: AgentSession = async_manager.create_session("p")  # E: assignment
    gestalt.WorkflowManager("token", idempotency_key=5)  # E: arg-type
    print(raw, session)
