"""An agent provider and a workflow provider written against the typed base classes.

``agent`` keeps sessions and turns in memory: plain methods for sessions, ``async def`` for
turns, ``get_interaction`` written the raw way (protobuf request and gRPC context) and
``ListTurns`` named like the RPC, as code for the published SDK is, unknown ids
raise ``KeyError`` and everything not written here is left to the base class. A turn whose
text is ``boom`` raises an exception carrying a secret, which must not reach the host.

``workflow`` starts runs and executes each at once through the host's WorkflowHost
(``GESTALT_WORKFLOW_HOST_SOCKET``), recording the status and body it answers.
"""

from __future__ import annotations

import datetime as dt
import threading

import grpc

from gestalt import AgentProvider, AsyncWorkflowHost, WorkflowProvider
from gestalt.gen.v1 import agent_pb2
from gestalt.gen.v1.agent_mirrors import (
    AgentExecutionStatus,
    AgentProviderCapabilities,
    AgentSession,
    AgentSessionState,
    AgentTurn,
    CreateAgentProviderSessionRequest,
    CreateAgentProviderTurnRequest,
    GetAgentProviderCapabilitiesRequest,
    GetAgentProviderSessionRequest,
    GetAgentProviderTurnRequest,
    ListAgentProviderSessionsRequest,
    ListAgentProviderSessionsResponse,
)
from gestalt.gen.v1.workflow_mirrors import (
    BoundWorkflowRun,
    DeleteWorkflowProviderScheduleRequest,
    GetWorkflowProviderRunRequest,
    ListWorkflowProviderRunsRequest,
    ListWorkflowProviderRunsResponse,
    StartWorkflowProviderRunRequest,
    WorkflowManualTrigger,
    WorkflowRunStatus,
    WorkflowRunTrigger,
)


class MemoryAgent(AgentProvider):
    """Sessions and turns in memory; a turn answers with its messages' text reversed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sessions: dict[str, AgentSession] = {}
        self.turns: dict[str, AgentTurn] = {}

    def create_session(self, request: CreateAgentProviderSessionRequest) -> AgentSession:
        session = AgentSession(
            id=request.session_id,
            provider_name="memory",
            model=request.model,
            client_ref=request.client_ref,
            state=AgentSessionState.ACTIVE,
            metadata=request.metadata,
            created_at=dt.datetime.now(dt.UTC),
        )
        with self.lock:
            self.sessions[session.id] = session
        return session

    def get_session(self, request: GetAgentProviderSessionRequest) -> AgentSession:
        with self.lock:
            return self.sessions[request.session_id]  # KeyError: NOT_FOUND

    def list_sessions(
        self, request: ListAgentProviderSessionsRequest
    ) -> ListAgentProviderSessionsResponse:
        with self.lock:
            found = [
                s
                for s in self.sessions.values()
                if s.id in request.session_ids or not request.session_ids
            ]
        return ListAgentProviderSessionsResponse(sessions=found)

    async def create_turn(self, request: CreateAgentProviderTurnRequest) -> AgentTurn:
        text = " ".join(message.text for message in request.messages)
        if text == "boom":
            raise RuntimeError("secret-api-key-123 leaked in an error")
        turn = AgentTurn(
            id=request.turn_id,
            session_id=request.session_id,
            model=request.model,
            status=AgentExecutionStatus.SUCCEEDED,
            messages=request.messages,
            output_text=text[::-1],
        )
        with self.lock:
            self.turns[turn.id] = turn
        return turn

    async def get_turn(self, request: GetAgentProviderTurnRequest) -> AgentTurn:
        with self.lock:
            return self.turns[request.turn_id]

    def get_interaction(  # type: ignore[override]  # the raw form, for published-SDK code
        self, request: agent_pb2.GetAgentProviderInteractionRequest, context: grpc.ServicerContext
    ) -> agent_pb2.AgentInteraction:
        if request.interaction_id != "known":
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "raw: only 'known' exists")
        return agent_pb2.AgentInteraction(id="known", prompt="raw style")

    def ListTurns(  # the published SDK's style: named like the RPC, raw messages
        self, request: agent_pb2.ListAgentProviderTurnsRequest, context: grpc.ServicerContext
    ) -> agent_pb2.ListAgentProviderTurnsResponse:
        with self.lock:
            found = [t.to_pb() for t in self.turns.values() if t.session_id == request.session_id]
        return agent_pb2.ListAgentProviderTurnsResponse(turns=found)

    def get_capabilities(
        self, request: GetAgentProviderCapabilitiesRequest
    ) -> AgentProviderCapabilities:
        return AgentProviderCapabilities(tool_calls=True, interactions=True)


class HostRunWorkflows(WorkflowProvider):
    """Runs executed at once through the host's WorkflowHost."""

    def __init__(self) -> None:
        self.runs: dict[str, BoundWorkflowRun] = {}
        self.count = 0

    async def start_run(self, request: StartWorkflowProviderRunRequest) -> BoundWorkflowRun:
        self.count += 1
        run_id = f"run-{self.count}"
        trigger = WorkflowRunTrigger(manual=WorkflowManualTrigger())
        assert request.target is not None
        async with AsyncWorkflowHost() as host:
            result = await host.invoke_operation(
                request.target, run_id=run_id, trigger=trigger, created_by=request.created_by
            )
        run = BoundWorkflowRun(
            id=run_id,
            status=WorkflowRunStatus.SUCCEEDED if result.status < 400 else WorkflowRunStatus.FAILED,
            target=request.target,
            trigger=trigger,
            result_body=result.body,
            workflow_key=request.workflow_key,
        )
        self.runs[run_id] = run
        return run

    def get_run(self, request: GetWorkflowProviderRunRequest) -> BoundWorkflowRun:
        return self.runs[request.run_id]

    def list_runs(
        self, request: ListWorkflowProviderRunsRequest
    ) -> ListWorkflowProviderRunsResponse:
        return ListWorkflowProviderRunsResponse(runs=list(self.runs.values()))

    def delete_schedule(self, request: DeleteWorkflowProviderScheduleRequest) -> None:
        if request.schedule_id != "s1":
            raise LookupError(request.schedule_id)


agent = MemoryAgent()
workflow = HostRunWorkflows()
