"""Agent and workflow providers on the typed base classes, launched as the host launches them
(``python -m gestalt._runtime ROOT TARGET agent|workflow``) and called through the generated
clients: typed methods get and give mirrors, ``async def`` works, what a subclass leaves out
is ``UNIMPLEMENTED``, ``KeyError``/``LookupError`` is ``NOT_FOUND``, a failure's text stays in
the provider log, a raw ``(request, context)`` method is served as such, and the workflow
provider reaches the host's WorkflowHost through its environment.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2

from gestalt.gen.support import RPCError
from gestalt.gen.v1 import agent_clients, agent_pb2, runtime_clients, workflow_clients, workflow_pb2
from gestalt.gen.v1.workflow_servicers import add_workflow_host_to_server
from gestalt.local._serving import LocalServer, parse_address, serve
from tests.runtime.harness import PROVIDERS, TIMEOUT, Provider


@pytest.fixture(scope="module")
def agent() -> Iterator[Provider]:
    with Provider(PROVIDERS, "agents_workflows:agent", "agent") as provider:
        yield provider


def test_agent_identity_and_typed_sessions(agent: Provider) -> None:
    identity = runtime_clients.ProviderLifecycleClient(agent.channel).get_provider_identity(
        empty_pb2.Empty(), timeout=TIMEOUT
    )
    assert identity.kind == 11  # PROVIDER_KIND_AGENT
    client = agent_clients.AgentProviderClient(agent.channel)
    metadata = struct_pb2.Struct()
    metadata.update({"team": "a"})
    created = client.create_session(
        agent_pb2.CreateAgentProviderSessionRequest(
            session_id="s1", model="m1", client_ref="c", metadata=metadata
        ),
        timeout=TIMEOUT,
    )
    assert (created.id, created.model, created.provider_name) == ("s1", "m1", "memory")
    assert created.state == agent_pb2.AGENT_SESSION_STATE_ACTIVE
    assert dict(created.metadata) == {"team": "a"} and created.HasField("created_at")
    got = client.get_session(agent_pb2.GetAgentProviderSessionRequest(session_id="s1"))
    assert got == created
    listed = client.list_sessions(agent_pb2.ListAgentProviderSessionsRequest(), timeout=TIMEOUT)
    assert [s.id for s in listed.sessions] == ["s1"]
    capabilities = client.get_capabilities(agent_pb2.GetAgentProviderCapabilitiesRequest())
    assert capabilities.tool_calls and capabilities.interactions
    assert not capabilities.streaming_text


def test_agent_async_turns_from_many_threads(agent: Provider) -> None:
    client = agent_clients.AgentProviderClient(agent.channel)

    def turn(index: int) -> str:
        request = agent_pb2.CreateAgentProviderTurnRequest(
            turn_id=f"t{index}",
            session_id="s1",
            messages=[agent_pb2.AgentMessage(role="user", text=f"hello {index}")],
        )
        created = client.create_turn(request, timeout=TIMEOUT)
        again = client.get_turn(agent_pb2.GetAgentProviderTurnRequest(turn_id=f"t{index}"))
        assert again == created
        return created.output_text

    results: list[str] = [""] * 8
    threads = [
        threading.Thread(target=lambda i=i: results.__setitem__(i, turn(i))) for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert results == [f"{i} olleh" for i in range(8)]
    listed = client.list_turns(agent_pb2.ListAgentProviderTurnsRequest(session_id="s1"))
    assert sorted(t.id for t in listed.turns) == sorted(f"t{i}" for i in range(8))


def test_agent_errors(agent: Provider) -> None:
    client = agent_clients.AgentProviderClient(agent.channel)
    with pytest.raises(RPCError) as missing:
        client.get_session(agent_pb2.GetAgentProviderSessionRequest(session_id="nope"))
    assert missing.value.code is grpc.StatusCode.NOT_FOUND
    assert missing.value.message == "agent get_session: not found"
    with pytest.raises(RPCError) as left_out:
        client.cancel_turn(agent_pb2.CancelAgentProviderTurnRequest(turn_id="t0"))
    assert left_out.value.code is grpc.StatusCode.UNIMPLEMENTED
    boom = agent_pb2.CreateAgentProviderTurnRequest(
        turn_id="tb", messages=[agent_pb2.AgentMessage(text="boom")]
    )
    with pytest.raises(RPCError) as failed:
        client.create_turn(boom, timeout=TIMEOUT)
    assert failed.value.code is grpc.StatusCode.UNKNOWN
    assert failed.value.message == "agent create_turn: failed; details are in the provider log"
    assert "secret-api-key-123" in agent.stderr()


def test_agent_raw_style_method(agent: Provider) -> None:
    client = agent_clients.AgentProviderClient(agent.channel)
    known = client.get_interaction(
        agent_pb2.GetAgentProviderInteractionRequest(interaction_id="known")
    )
    assert (known.id, known.prompt) == ("known", "raw style")
    with pytest.raises(RPCError) as refused:
        client.get_interaction(agent_pb2.GetAgentProviderInteractionRequest(interaction_id="x"))
    assert refused.value.code is grpc.StatusCode.FAILED_PRECONDITION
    assert refused.value.message == "raw: only 'known' exists"


class RecordingWorkflowHost:
    """Plays the host's WorkflowHost: answers with the target it was asked to run."""

    def __init__(self) -> None:
        self.requests: list[workflow_pb2.InvokeWorkflowOperationRequest] = []

    def invoke_operation(
        self, request: workflow_pb2.InvokeWorkflowOperationRequest, context: grpc.ServicerContext
    ) -> workflow_pb2.InvokeWorkflowOperationResponse:
        self.requests.append(request)
        plugin = request.target.plugin
        status = 500 if plugin.operation == "fail" else 200
        body = f"{plugin.plugin_name}.{plugin.operation} for {request.run_id}"
        return workflow_pb2.InvokeWorkflowOperationResponse(status=status, body=body)


def test_workflow_provider_runs_through_the_host(tmp_path: Path) -> None:
    host: LocalServer[RecordingWorkflowHost] = serve(
        LocalServer,
        parse_address(tmp_path / "wh.sock"),
        RecordingWorkflowHost,
        add_workflow_host_to_server,
        name="workflow-host",
        relay_token="relay",
    )
    try:
        with Provider(
            PROVIDERS,
            "agents_workflows:workflow",
            "workflow",
            GESTALT_WORKFLOW_HOST_SOCKET=f"unix://{host.socket_path}",
            GESTALT_WORKFLOW_HOST_SOCKET_TOKEN="relay",
        ) as provider:
            client = workflow_clients.WorkflowProviderClient(provider.channel)
            target = workflow_pb2.BoundWorkflowTarget(
                plugin=workflow_pb2.BoundWorkflowPluginTarget(plugin_name="crm", operation="sync")
            )
            run = client.start_run(
                workflow_pb2.StartWorkflowProviderRunRequest(target=target, workflow_key="k"),
                timeout=TIMEOUT,
            )
            assert run.status == workflow_pb2.WORKFLOW_RUN_STATUS_SUCCEEDED
            assert (run.result_body, run.workflow_key) == ("crm.sync for run-1", "k")
            assert run.trigger.HasField("manual")
            (sent,) = host.service.requests
            assert sent.run_id == "run-1" and sent.target == target
            got = client.get_run(workflow_pb2.GetWorkflowProviderRunRequest(run_id="run-1"))
            assert got == run
            listed = client.list_runs(workflow_pb2.ListWorkflowProviderRunsRequest())
            assert [r.id for r in listed.runs] == ["run-1"]
            deleted = client.delete_schedule(
                workflow_pb2.DeleteWorkflowProviderScheduleRequest(schedule_id="s1")
            )
            assert deleted == empty_pb2.Empty()
            with pytest.raises(RPCError) as missing:
                client.delete_schedule(
                    workflow_pb2.DeleteWorkflowProviderScheduleRequest(schedule_id="s2")
                )
            assert missing.value.code is grpc.StatusCode.NOT_FOUND
            with pytest.raises(RPCError) as left_out:
                client.publish_event(workflow_pb2.PublishWorkflowProviderEventRequest())
            assert left_out.value.code is grpc.StatusCode.UNIMPLEMENTED
            started = runtime_clients.ProviderLifecycleClient(provider.channel).start_provider(
                empty_pb2.Empty(), timeout=TIMEOUT
            )
            assert started.protocol_version == 3
    finally:
        host.stop()
