"""AgentManager and AgentHost against real gRPC servers on real sockets.

The agent manager side runs the embedded :mod:`gestalt.local.agents` service; the agent host
side a small servicer in this file playing the host. Both are recorded server side, so the
tests see the relay token, the invocation token and the exact requests that arrived.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

import gestalt
from gestalt._clients.transport import AGENT_HOST, AGENT_MANAGER
from gestalt.gen.v1 import agent_pb2
from gestalt.gen.v1.agent_mirrors import (
    AgentExecutionStatus,
    AgentInteractionState,
    AgentMessage,
    AgentSession,
    AgentSessionState,
    AgentToolRef,
    AgentTurn,
)
from gestalt.gen.v1.agent_servicers import add_agent_host_to_server
from gestalt.local._serving import LocalServer, parse_address, serve
from gestalt.local.agents import AgentManagerService, LocalTurn, serve_agent_manager
from tests.clients.conftest import EnvBinder, RecordedCall, RecordingInterceptor

TOKEN = "relay-secret"
INVOCATION = "inv-token-1"


@pytest.fixture(autouse=True)
def clean_agent_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith(("GESTALT_AGENT_", "GESTALT_WORKFLOW_")):
            monkeypatch.delenv(var)


@pytest.fixture
def recorder() -> RecordingInterceptor:
    return RecordingInterceptor()


def _manager_server(
    path: Path, recorder: RecordingInterceptor, service: AgentManagerService, target: str = ""
) -> LocalServer[AgentManagerService]:
    return serve_agent_manager(
        target or path, service=service, relay_token=TOKEN, interceptors=[recorder]
    )


@pytest.fixture
def manager_env(
    socket_path: Callable[[str], Path], bind_env: EnvBinder, recorder: RecordingInterceptor
) -> Iterator[LocalServer[AgentManagerService]]:
    server = _manager_server(socket_path("agents"), recorder, AgentManagerService())
    bind_env(AGENT_MANAGER, server.target, token=TOKEN)
    try:
        yield server
    finally:
        server.stop()


def _sent(calls: list[RecordedCall], name: str) -> list[object]:
    """Field ``name`` of the first request of each recorded call."""
    return [getattr(call.requests[0], name) for call in calls]


def _fast(manager: gestalt.AgentManager, turn_id: str) -> AgentTurn:
    return manager.wait(turn_id, timeout=10, poll_interval=0.01)


# -- AgentManager, sync ---------------------------------------------------------------------


def test_sessions_and_a_turn_followed_to_the_end(
    manager_env: LocalServer[AgentManagerService], recorder: RecordingInterceptor
) -> None:
    with gestalt.AgentManager(INVOCATION) as manager:
        session = manager.create_session("simple", model="m1", metadata={"k": [1, "x"]})
        assert isinstance(session, AgentSession)
        assert session.provider_name == "simple" and session.model == "m1"
        assert session.state is AgentSessionState.ACTIVE
        assert session.metadata == {"k": [1.0, "x"]}
        assert manager.get_session(session.id) == session
        assert [s.id for s in manager.list_sessions("simple")] == [session.id]
        assert manager.list_sessions("other") == []
        updated = manager.update_session(session.id, client_ref="c-1")
        assert updated.client_ref == "c-1"

        turn = manager.create_turn(session.id, "hello there")
        assert turn.status in (AgentExecutionStatus.PENDING, AgentExecutionStatus.RUNNING)
        assert turn.messages == [AgentMessage(role="user", text="hello there", parts=[])]
        events = list(manager.turn_events(turn.id, poll_interval=0.01))
        assert [e.type for e in events] == ["turn.started", "assistant.message", "turn.completed"]
        assert [e.seq for e in events] == [1, 2, 3]
        assert events[1].data == {"text": "hello there"}
        # after_seq skips what was read already
        assert [e.seq for e in manager.turn_events(turn.id, after_seq=2)] == [3]
        assert manager.list_turn_events(turn.id, after_seq=1, limit=1)[0].seq == 2
        done = _fast(manager, turn.id)
        assert done.status is AgentExecutionStatus.SUCCEEDED
        assert done.output_text == "hello there"
        assert [t.id for t in manager.list_turns(session.id)] == [turn.id]
        assert manager.list_turns(session.id, status=AgentExecutionStatus.FAILED) == []
    calls = recorder.take()
    assert calls and all(("x-gestalt-host-service-relay-token", TOKEN) in c.metadata for c in calls)
    assert set(_sent(calls, "invocation_token")) == {INVOCATION}
    assert set(manager_env.service.invocation_tokens) == {INVOCATION}


def test_raw_request_messages_get_raw_responses_and_the_token(
    manager_env: LocalServer[AgentManagerService], recorder: RecordingInterceptor
) -> None:
    manager = gestalt.AgentManager(INVOCATION)
    request = agent_pb2.AgentManagerCreateSessionRequest(provider_name="p", model="m")
    session = manager.create_session(request)
    assert isinstance(session, agent_pb2.AgentSession) and session.model == "m"
    assert request.invocation_token == ""  # the caller's message is left alone
    explicit = agent_pb2.AgentManagerGetSessionRequest(
        session_id=session.id, invocation_token="their-own"
    )
    assert manager.get_session(explicit).id == session.id
    listed = manager.list_sessions(agent_pb2.AgentManagerListSessionsRequest())
    assert isinstance(listed, agent_pb2.AgentManagerListSessionsResponse)
    tokens = _sent(recorder.take(), "invocation_token")
    assert tokens == [INVOCATION, INVOCATION, INVOCATION]  # the client's token wins
    with pytest.raises(TypeError, match="not both"):
        manager.get_session(explicit, timeout=1)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="AgentManagerGetTurnRequest"):
        manager.get_turn(explicit)  # type: ignore[call-overload]
    manager.close()


def test_idempotency_keys_are_sent(
    manager_env: LocalServer[AgentManagerService], recorder: RecordingInterceptor
) -> None:
    manager = gestalt.AgentManager(INVOCATION)
    first = manager.create_session("p", idempotency_key="once")
    assert manager.create_session("p", idempotency_key="once").id == first.id
    assert manager.create_session("p").id != first.id
    keys = _sent(recorder.take(), "idempotency_key")
    assert keys == ["once", "once", ""]


def test_bad_arguments_fail_before_any_call(
    manager_env: LocalServer[AgentManagerService], recorder: RecordingInterceptor
) -> None:
    manager = gestalt.AgentManager(INVOCATION)
    with pytest.raises(ValueError, match="session_id must not be empty"):
        manager.get_session(" ")
    with pytest.raises(TypeError, match="turn_id must be a str"):
        manager.get_turn(7)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="metadata must be a mapping"):
        manager.create_session("p", metadata=[1])  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="messages must be str or AgentMessage"):
        manager.create_turn("s", [1])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="limit must not be negative"):
        manager.list_turn_events("t", limit=-1)
    with pytest.raises(ValueError, match="poll_interval"):
        manager.wait("t", poll_interval=0)
    with pytest.raises(TypeError, match="invocation_token must be a str"):
        gestalt.AgentManager(None)  # type: ignore[arg-type]
    assert recorder.take() == []


def test_errors_map_to_host_service_errors(manager_env: LocalServer[AgentManagerService]) -> None:
    manager = gestalt.AgentManager(INVOCATION)
    with pytest.raises(gestalt.HostServiceError) as caught:
        manager.get_session("nope")
    assert caught.value.code is grpc.StatusCode.NOT_FOUND
    assert "nope" in caught.value.message
    assert isinstance(caught.value.__cause__, grpc.RpcError)
    session = manager.create_session("p")
    manager.update_session(session.id, state=AgentSessionState.ARCHIVED)
    with pytest.raises(gestalt.HostServiceError) as refused:
        manager.create_turn(session.id, "hi")
    assert refused.value.code is grpc.StatusCode.FAILED_PRECONDITION


def test_wrong_relay_token_is_unauthenticated(
    manager_env: LocalServer[AgentManagerService], bind_env: EnvBinder
) -> None:
    bind_env(AGENT_MANAGER, manager_env.target, token="wrong")
    with pytest.raises(gestalt.HostServiceError) as caught:
        gestalt.AgentManager(INVOCATION).list_sessions()
    assert caught.value.code is grpc.StatusCode.UNAUTHENTICATED


def test_missing_environment_is_a_config_error() -> None:
    with pytest.raises(gestalt.HostServiceConfigError, match="GESTALT_AGENT_MANAGER_SOCKET"):
        gestalt.AgentManager(INVOCATION)
    with pytest.raises(gestalt.HostServiceConfigError, match="GESTALT_AGENT_HOST_SOCKET"):
        gestalt.AgentHost()


@pytest.mark.parametrize("form", ["bare", "unix", "tcp"])
def test_target_forms(
    form: str,
    socket_path: Callable[[str], Path],
    bind_env: EnvBinder,
    recorder: RecordingInterceptor,
) -> None:
    path = socket_path("forms")
    where = "tcp://127.0.0.1:0" if form == "tcp" else str(path)
    server = _manager_server(path, recorder, AgentManagerService(), where)
    try:
        target = {"bare": str(path), "unix": f"unix://{path}", "tcp": server.target}[form]
        if form == "tcp":
            assert target.startswith("tcp://127.0.0.1:")
        bind_env(AGENT_MANAGER, target, token=TOKEN)
        with gestalt.AgentManager(INVOCATION) as manager:
            assert manager.create_session("p").provider_name == "p"
    finally:
        server.stop()


def test_interactions_are_listed_and_resolved(
    socket_path: Callable[[str], Path], bind_env: EnvBinder, recorder: RecordingInterceptor
) -> None:
    def asks(turn: LocalTurn) -> str:
        answer = turn.ask("Proceed?", title="Check", request={"risk": "low"}, timeout=10)
        return f"approved={answer['ok']}"

    server = _manager_server(socket_path("ask"), recorder, AgentManagerService(asks))
    bind_env(AGENT_MANAGER, server.target, token=TOKEN)
    try:
        manager = gestalt.AgentManager(INVOCATION)
        turn = manager.create_turn(manager.create_session("p").id, "go")
        waiting = _fast(manager, turn.id)
        assert waiting.status is AgentExecutionStatus.WAITING_FOR_INPUT
        (pending,) = manager.list_interactions(turn.id)
        assert pending.state is AgentInteractionState.PENDING
        assert (pending.prompt, pending.title, pending.request) == (
            "Proceed?",
            "Check",
            {"risk": "low"},
        )
        resolved = manager.resolve_interaction(turn.id, pending.id, {"ok": True})
        assert resolved.state is AgentInteractionState.RESOLVED
        assert resolved.resolution == {"ok": True}
        with pytest.raises(gestalt.HostServiceError) as again:
            manager.resolve_interaction(turn.id, pending.id, {"ok": False})
        assert again.value.code is grpc.StatusCode.FAILED_PRECONDITION
        events = [e.type for e in manager.turn_events(turn.id, poll_interval=0.01)]
        assert events == [
            "turn.started",
            "interaction.requested",
            "assistant.message",
            "turn.completed",
        ]
        assert _fast(manager, turn.id).output_text == "approved=True"
    finally:
        server.stop()


def test_cancel_a_waiting_turn_and_wait_timeout(
    socket_path: Callable[[str], Path], bind_env: EnvBinder, recorder: RecordingInterceptor
) -> None:
    service = AgentManagerService(lambda turn: str(turn.ask("never answered", timeout=30)))
    server = _manager_server(socket_path("cancel"), recorder, service)
    bind_env(AGENT_MANAGER, server.target, token=TOKEN)
    try:
        manager = gestalt.AgentManager(INVOCATION)
        session = manager.create_session("p")
        turn = manager.create_turn(session.id, "go")
        assert _fast(manager, turn.id).status is AgentExecutionStatus.WAITING_FOR_INPUT
        canceled = manager.cancel_turn(turn.id, "user gave up")
        assert canceled.status is AgentExecutionStatus.CANCELED
        assert canceled.status_message == "user gave up"
        assert manager.list_turn_events(turn.id)[-1].type == "turn.canceled"
        # a turn nobody runs never settles: wait gives up with a timeout error
        service.responder = None
        stuck = manager.create_turn(session.id, "again")
        with pytest.raises(gestalt.HostServiceTimeoutError, match=stuck.id):
            manager.wait(stuck.id, timeout=0.2, poll_interval=0.05)
        with pytest.raises(gestalt.HostServiceTimeoutError, match=stuck.id):
            list(manager.turn_events(stuck.id, timeout=0.2, poll_interval=0.05))
        assert service.run_turn(stuck.id, lambda turn: {"n": 1}).structured_output == {"n": 1}
        assert _fast(manager, stuck.id).structured_output == {"n": 1}
    finally:
        server.stop()


def test_a_failing_responder_fails_the_turn(
    socket_path: Callable[[str], Path], bind_env: EnvBinder, recorder: RecordingInterceptor
) -> None:
    def broken(turn: LocalTurn) -> str:
        raise RuntimeError("model unavailable")

    server = _manager_server(socket_path("fail"), recorder, AgentManagerService(broken))
    bind_env(AGENT_MANAGER, server.target, token=TOKEN)
    try:
        manager = gestalt.AgentManager(INVOCATION)
        turn = manager.create_turn(manager.create_session("p").id, "go")
        failed = _fast(manager, turn.id)
        assert failed.status is AgentExecutionStatus.FAILED
        assert failed.status_message == "model unavailable"
        assert manager.list_turn_events(turn.id)[-1].data == {"error": "model unavailable"}
    finally:
        server.stop()


def test_eight_threads_share_one_client(manager_env: LocalServer[AgentManagerService]) -> None:
    manager = gestalt.AgentManager(INVOCATION)
    session = manager.create_session("p")

    def one(index: int) -> str:
        turn = manager.create_turn(session.id, f"msg {index}")
        return _fast(manager, turn.id).output_text

    with ThreadPoolExecutor(8) as pool:
        outputs = list(pool.map(one, range(32)))
    assert outputs == [f"msg {i}" for i in range(32)]
    assert len(manager.list_turns(session.id)) == 32
    manager.close()
    with pytest.raises(ValueError, match="closed"):
        manager.list_sessions()


# -- AgentManager, asyncio ------------------------------------------------------------------


async def test_async_manager_follows_a_turn(
    manager_env: LocalServer[AgentManagerService], recorder: RecordingInterceptor
) -> None:
    async with gestalt.AsyncAgentManager(INVOCATION) as manager:
        session = await manager.create_session("simple", client_ref="r")
        assert isinstance(session, AgentSession) and session.client_ref == "r"
        assert (await manager.get_session(session.id)).id == session.id
        turns = await asyncio.gather(*(manager.create_turn(session.id, f"m{i}") for i in range(8)))
        done = await asyncio.gather(
            *(manager.wait(t.id, timeout=10, poll_interval=0.01) for t in turns)
        )
        assert [t.output_text for t in done] == [f"m{i}" for i in range(8)]
        types = [e.type async for e in manager.turn_events(turns[0].id, poll_interval=0.01)]
        assert types == ["turn.started", "assistant.message", "turn.completed"]
        raw = await manager.get_turn(agent_pb2.AgentManagerGetTurnRequest(turn_id=turns[0].id))
        assert isinstance(raw, agent_pb2.AgentTurn) and raw.output_text == "m0"
        with pytest.raises(gestalt.HostServiceError) as caught:
            await manager.cancel_turn("missing")
        assert caught.value.code is grpc.StatusCode.NOT_FOUND
        with pytest.raises(ValueError, match="turn_id must not be empty"):
            manager.get_turn("")  # checked when called, before any await
    calls = recorder.take()
    assert all(("x-gestalt-host-service-relay-token", TOKEN) in c.metadata for c in calls)
    assert set(_sent(calls, "invocation_token")) == {INVOCATION}


# -- AgentHost ------------------------------------------------------------------------------


class FakeAgentHost:
    """Plays the host's AgentHost: a fixed tool catalogue, tool calls answered by echo."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.lock = threading.Lock()

    def search_tools(
        self, request: agent_pb2.SearchAgentToolsRequest, context: grpc.ServicerContext
    ) -> agent_pb2.SearchAgentToolsResponse:
        with self.lock:
            self.requests.append(request)
        if request.tool_grant != "grant":
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "bad tool grant")
        tools = [
            agent_pb2.ResolvedAgentTool(id=f"{ref.plugin}.{ref.operation}", name=ref.operation)
            for ref in request.load_refs
        ]
        return agent_pb2.SearchAgentToolsResponse(
            tools=tools,
            candidates=[agent_pb2.AgentToolCandidate(id="c1", name=request.query, score=0.5)],
            has_more=True,
        )

    def execute_tool(
        self, request: agent_pb2.ExecuteAgentToolRequest, context: grpc.ServicerContext
    ) -> agent_pb2.ExecuteAgentToolResponse:
        with self.lock:
            self.requests.append(request)
        body = f"{request.tool_id}:{dict(request.arguments)}"
        return agent_pb2.ExecuteAgentToolResponse(status=200, body=body)


@pytest.fixture
def agent_host(
    socket_path: Callable[[str], Path], bind_env: EnvBinder, recorder: RecordingInterceptor
) -> Iterator[LocalServer[FakeAgentHost]]:
    server = serve(
        LocalServer,
        parse_address(socket_path("agenthost")),
        FakeAgentHost,
        add_agent_host_to_server,
        name="agent-host",
        relay_token=TOKEN,
        interceptors=[recorder],
    )
    bind_env(AGENT_HOST, f"unix://{server.socket_path}", token=TOKEN)
    try:
        yield server
    finally:
        server.stop()


def test_agent_host_search_and_execute(
    agent_host: LocalServer[FakeAgentHost], recorder: RecordingInterceptor
) -> None:
    with gestalt.AgentHost() as host:
        found = host.search_tools(
            "s1",
            "t1",
            "weather",
            load_refs=[AgentToolRef(plugin="wx", operation="forecast")],
            tool_grant="grant",
        )
        assert [t.id for t in found.tools] == ["wx.forecast"]
        assert found.candidates[0].name == "weather" and found.has_more
        result = host.execute_tool("s1", "t1", "wx.forecast", {"city": "Oslo"}, tool_grant="g")
        assert (result.status, result.body) == (200, "wx.forecast:{'city': 'Oslo'}")
        raw = host.execute_tool(agent_pb2.ExecuteAgentToolRequest(tool_id="x"))
        assert isinstance(raw, agent_pb2.ExecuteAgentToolResponse)
        with pytest.raises(gestalt.HostServiceError) as denied:
            host.search_tools("s1", "t1", tool_grant="wrong")
        assert denied.value.code is grpc.StatusCode.PERMISSION_DENIED
    assert all(("x-gestalt-host-service-relay-token", TOKEN) in c.metadata for c in recorder.take())


async def test_async_agent_host(agent_host: LocalServer[FakeAgentHost]) -> None:
    host = gestalt.AsyncAgentHost()
    results = await asyncio.gather(
        *(host.execute_tool("s", "t", f"tool{i}", idempotency_key=f"k{i}") for i in range(8))
    )
    assert [r.body for r in results] == [f"tool{i}:{{}}" for i in range(8)]
    keys = sorted(r.idempotency_key for r in agent_host.service.requests)
    assert keys == sorted(f"k{i}" for i in range(8))
    await host.close()
