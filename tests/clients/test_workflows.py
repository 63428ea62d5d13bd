"""WorkflowManager and WorkflowHost against real gRPC servers on real sockets.

The manager side runs the embedded :mod:`gestalt.local.workflows` service with an executor
that really calls back into the test (so runs do finish); the workflow host side a small
servicer playing the host. Both are recorded server side.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

import gestalt
from gestalt._clients.transport import WORKFLOW_HOST, WORKFLOW_MANAGER
from gestalt.gen.v1 import workflow_pb2
from gestalt.gen.v1.workflow_mirrors import (
    BoundWorkflowPluginTarget,
    BoundWorkflowRun,
    BoundWorkflowTarget,
    ManagedWorkflowRun,
    WorkflowEvent,
    WorkflowEventMatch,
    WorkflowRunStatus,
    WorkflowSignal,
)
from gestalt.gen.v1.workflow_servicers import add_workflow_host_to_server
from gestalt.local._serving import LocalServer, parse_address, serve
from gestalt.local.workflows import WorkflowManagerService, serve_workflow_manager
from tests.clients.conftest import EnvBinder, RecordingInterceptor
from tests.clients.test_agents import _sent, clean_agent_env, recorder

TOKEN = "relay-secret"
INVOCATION = "inv-wf"
__all__ = ["clean_agent_env", "recorder"]  # shared fixtures, used by name


def _execute(run: BoundWorkflowRun, token: str) -> tuple[int, str]:
    """The executor: a plugin target's operation decides the outcome."""
    assert token == INVOCATION  # runs act for the call that started them
    assert run.target is not None and run.target.plugin is not None
    plugin = run.target.plugin
    if plugin.operation == "explode":
        raise RuntimeError("operation crashed")
    if plugin.operation == "reject":
        return 422, "bad input"
    return 200, f"{plugin.plugin_name}.{plugin.operation}({plugin.input})"


@pytest.fixture
def manager_env(
    socket_path: Callable[[str], Path], bind_env: EnvBinder, recorder: RecordingInterceptor
) -> Iterator[LocalServer[WorkflowManagerService]]:
    service = WorkflowManagerService(_execute)
    server = serve_workflow_manager(
        socket_path("wf"), service=service, relay_token=TOKEN, interceptors=[recorder]
    )
    bind_env(WORKFLOW_MANAGER, server.target, token=TOKEN)
    try:
        yield server
    finally:
        server.stop()


def _finished(
    server: LocalServer[WorkflowManagerService], run: ManagedWorkflowRun
) -> BoundWorkflowRun:
    assert run.run is not None
    return server.service.wait_for_run(run.run.id)


def test_runs_start_finish_and_take_signals(
    manager_env: LocalServer[WorkflowManagerService], recorder: RecordingInterceptor
) -> None:
    with gestalt.WorkflowManager(INVOCATION) as manager:
        started = manager.start_run("temporal", gestalt.plugin_target("crm", "sync", {"n": 1}))
        assert isinstance(started, ManagedWorkflowRun) and started.provider_name == "temporal"
        assert started.run is not None and started.run.trigger is not None
        assert started.run.trigger.manual is not None
        done = _finished(manager_env, started)
        assert done.status is WorkflowRunStatus.SUCCEEDED
        assert done.result_body == "crm.sync({'n': 1.0})"

        failed = _finished(
            manager_env, manager.start_run("t", gestalt.plugin_target("p", "reject"))
        )
        assert (failed.status, failed.status_message) == (
            WorkflowRunStatus.FAILED,
            "target answered status 422",
        )
        crashed = _finished(
            manager_env, manager.start_run("t", gestalt.plugin_target("p", "explode"))
        )
        assert crashed.status is WorkflowRunStatus.FAILED
        assert crashed.status_message == "operation crashed"

        with pytest.raises(gestalt.HostServiceError) as finished:
            manager.signal_run(done.id, "poke")
        assert finished.value.code is grpc.StatusCode.FAILED_PRECONDITION
    calls = recorder.take()
    assert all(("x-gestalt-host-service-relay-token", TOKEN) in c.metadata for c in calls)
    assert set(_sent(calls, "invocation_token")) == {INVOCATION}


def test_signal_or_start_and_signal_sequence(
    socket_path: Callable[[str], Path], bind_env: EnvBinder, recorder: RecordingInterceptor
) -> None:
    service = WorkflowManagerService()  # no executor: runs stay pending and take signals
    server = serve_workflow_manager(socket_path("sig"), service=service, interceptors=[recorder])
    bind_env(WORKFLOW_MANAGER, server.target)
    try:
        manager = gestalt.WorkflowManager(INVOCATION)
        target = BoundWorkflowPluginTarget(plugin_name="chat", operation="reply")
        first = manager.signal_or_start_run("t", "conv-1", target, "message", {"text": "hi"})
        assert first.started_run and first.workflow_key == "conv-1"
        assert first.signal is not None and first.signal.sequence == 1
        assert first.signal.payload == {"text": "hi"}
        second = manager.signal_or_start_run("t", "conv-1", target, "message", {"text": "again"})
        assert not second.started_run
        assert second.run is not None and first.run is not None and second.run.id == first.run.id
        assert second.signal is not None and second.signal.sequence == 2
        third = manager.signal_run(first.run.id, "stop", metadata={"why": "done"})
        assert third.signal is not None and third.signal.sequence == 3
        assert third.signal.metadata == {"why": "done"}
        assert len(service.runs()) == 1
        run = service.run_now(first.run.id, lambda run, token: (200, f"ran for {token}"))
        assert (run.status, run.result_body) == (WorkflowRunStatus.SUCCEEDED, "ran for inv-wf")
        # the keyed run finished: the next signal starts a new one
        fourth = manager.signal_or_start_run("t", "conv-1", target, "message")
        assert fourth.started_run and fourth.run is not None and fourth.run.id != run.id
        with pytest.raises(gestalt.HostServiceError) as missing:
            manager.signal_run("nope", "x")
        assert missing.value.code is grpc.StatusCode.NOT_FOUND
    finally:
        server.stop()


def test_default_idempotency_key_travels_and_dedupes(
    manager_env: LocalServer[WorkflowManagerService], recorder: RecordingInterceptor
) -> None:
    manager = gestalt.WorkflowManager(INVOCATION, idempotency_key="req-42")
    target = gestalt.plugin_target("p", "op")
    one = manager.start_run("t", target)
    two = manager.start_run("t", target)
    own = manager.start_run("t", target, idempotency_key="mine")
    assert one.run is not None and two.run is not None and own.run is not None
    assert one.run.id == two.run.id != own.run.id
    raw = manager.start_run(
        workflow_pb2.WorkflowManagerStartRunRequest(
            provider_name="t", target=workflow_pb2.BoundWorkflowTarget()
        )
    )
    assert isinstance(raw, workflow_pb2.ManagedWorkflowRun)
    calls = recorder.take()
    # a raw message goes as written, as with the published SDK
    assert _sent(calls, "idempotency_key") == ["req-42", "req-42", "mine", ""]
    assert set(_sent(calls, "invocation_token")) == {INVOCATION}


def test_schedules_lifecycle(manager_env: LocalServer[WorkflowManagerService]) -> None:
    manager = gestalt.WorkflowManager(INVOCATION)
    target = gestalt.plugin_target("reports", "daily", {"team": "a"})
    created = manager.create_schedule("t", "0 9 * * *", target, timezone="Europe/Oslo")
    assert created.schedule is not None
    schedule_id = created.schedule.id
    assert created.schedule.target == target and not created.schedule.paused
    assert manager.get_schedule(schedule_id) == created
    paused = manager.pause_schedule(schedule_id)
    assert paused.schedule is not None and paused.schedule.paused
    with pytest.raises(ValueError, match="paused"):
        manager_env.service.fire_schedule(schedule_id)
    resumed = manager.resume_schedule(schedule_id)
    assert resumed.schedule is not None and not resumed.schedule.paused
    other = gestalt.plugin_target("reports", "weekly")
    updated = manager.update_schedule(schedule_id, "t", "0 9 * * 1", other)
    assert updated.schedule is not None
    assert (updated.schedule.cron, updated.schedule.target) == ("0 9 * * 1", other)
    run = manager_env.service.fire_schedule(schedule_id)
    assert run.trigger is not None and run.trigger.schedule is not None
    assert run.trigger.schedule.schedule_id == schedule_id
    assert manager_env.service.wait_for_run(run.id).result_body == "reports.weekly(None)"
    assert manager.delete_schedule(schedule_id) is None
    with pytest.raises(gestalt.HostServiceError) as gone:
        manager.get_schedule(schedule_id)
    assert gone.value.code is grpc.StatusCode.NOT_FOUND
    with pytest.raises(gestalt.HostServiceError) as bad:
        manager.create_schedule("t", "every day", target)
    assert bad.value.code is grpc.StatusCode.INVALID_ARGUMENT


def test_triggers_fire_on_published_events(
    manager_env: LocalServer[WorkflowManagerService],
) -> None:
    manager = gestalt.WorkflowManager(INVOCATION)
    target = gestalt.plugin_target("crm", "on_signup")
    by_type = manager.create_trigger("t", "user.created", target)
    narrow = manager.create_trigger(
        "t", WorkflowEventMatch(type="user.created", source="billing"), target, paused=True
    )
    assert by_type.trigger is not None and narrow.trigger is not None
    assert narrow.trigger.paused and manager.get_trigger(narrow.trigger.id) == narrow

    event = manager.publish_event("user.created", {"id": 7}, source="signup")
    assert isinstance(event, WorkflowEvent) and event.id and event.spec_version == "1.0"
    assert event.time is not None and event.data == {"id": 7.0}
    runs = manager_env.service.runs()
    assert len(runs) == 1  # the paused trigger did not fire
    trigger = runs[0].trigger
    assert trigger is not None and trigger.event is not None
    assert trigger.event.trigger_id == by_type.trigger.id
    assert trigger.event.event is not None and trigger.event.event.data == {"id": 7.0}

    manager.resume_trigger(narrow.trigger.id)
    manager.publish_event(WorkflowEvent(type="user.created", source="billing"))
    assert len(manager_env.service.runs()) == 3  # both triggers now
    manager.pause_trigger(by_type.trigger.id)
    updated = manager.update_trigger(narrow.trigger.id, "t", "user.deleted", target)
    assert updated.trigger is not None and updated.trigger.match is not None
    assert updated.trigger.match.type == "user.deleted"
    manager.publish_event("user.created")
    assert len(manager_env.service.runs()) == 3
    assert manager.delete_trigger(by_type.trigger.id) is None
    with pytest.raises(gestalt.HostServiceError) as gone:
        manager.resume_trigger(by_type.trigger.id)
    assert gone.value.code is grpc.StatusCode.NOT_FOUND
    for run in manager_env.service.runs():
        assert manager_env.service.wait_for_run(run.id).status is WorkflowRunStatus.SUCCEEDED


def test_bad_arguments_fail_before_any_call(
    manager_env: LocalServer[WorkflowManagerService], recorder: RecordingInterceptor
) -> None:
    manager = gestalt.WorkflowManager(INVOCATION)
    with pytest.raises(TypeError, match="target must be"):
        manager.start_run("t", {"plugin": "x"})  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="target must name"):
        manager.start_run("t", BoundWorkflowTarget())
    with pytest.raises(ValueError, match="match must name"):
        manager.create_trigger("t", WorkflowEventMatch(), gestalt.plugin_target("p", "o"))
    with pytest.raises(ValueError, match="plugin must not be empty"):
        gestalt.plugin_target("", "o")
    with pytest.raises(TypeError, match="not both"):
        manager.publish_event(WorkflowEvent(type="x"), {"a": 1})
    with pytest.raises(ValueError, match="schedule_id must not be empty"):
        manager.delete_schedule("")
    with pytest.raises(TypeError, match="idempotency_key must be a str"):
        gestalt.WorkflowManager(INVOCATION, idempotency_key=None)  # type: ignore[arg-type]
    assert recorder.take() == []


def test_agent_targets_and_missing_environment(
    manager_env: LocalServer[WorkflowManagerService], monkeypatch: pytest.MonkeyPatch
) -> None:
    manager_env.service.executor = None
    manager = gestalt.WorkflowManager(INVOCATION)
    target = gestalt.agent_target("claude", "Summarise the day", model="m", timeout_seconds=30)
    started = manager.start_run("t", target)
    assert started.run is not None and started.run.target == target
    assert started.run.status is WorkflowRunStatus.PENDING
    assert [run.id for run in manager_env.service.runs()] == [started.run.id]
    monkeypatch.delenv(WORKFLOW_MANAGER.socket_env())
    with pytest.raises(gestalt.HostServiceConfigError, match="GESTALT_WORKFLOW_MANAGER_SOCKET"):
        gestalt.WorkflowManager(INVOCATION)


@pytest.mark.parametrize("form", ["bare", "unix", "tcp"])
def test_target_forms(form: str, socket_path: Callable[[str], Path], bind_env: EnvBinder) -> None:
    path = socket_path("wfforms")
    server = serve_workflow_manager(
        "tcp://127.0.0.1:0" if form == "tcp" else path, relay_token=TOKEN
    )
    try:
        target = {"bare": str(path), "unix": f"unix://{path}", "tcp": server.target}[form]
        bind_env(WORKFLOW_MANAGER, target, token=TOKEN)
        with gestalt.WorkflowManager(INVOCATION) as manager:
            assert manager.publish_event("ping").type == "ping"
        bind_env(WORKFLOW_MANAGER, target, token="wrong")
        with pytest.raises(gestalt.HostServiceError) as refused:
            gestalt.WorkflowManager(INVOCATION).publish_event("ping")
        assert refused.value.code is grpc.StatusCode.UNAUTHENTICATED
    finally:
        server.stop()


def test_eight_threads_share_one_manager(manager_env: LocalServer[WorkflowManagerService]) -> None:
    manager = gestalt.WorkflowManager(INVOCATION)

    def one(index: int) -> str:
        run = manager.start_run("t", gestalt.plugin_target("p", f"op{index}"))
        return _finished(manager_env, run).result_body

    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(one, range(24)))
    assert bodies == [f"p.op{i}(None)" for i in range(24)]


async def test_async_manager(
    manager_env: LocalServer[WorkflowManagerService], recorder: RecordingInterceptor
) -> None:
    async with gestalt.AsyncWorkflowManager(INVOCATION, idempotency_key="k") as manager:
        runs = await asyncio.gather(
            *(
                manager.start_run("t", gestalt.plugin_target("p", "op"), idempotency_key=f"k{i}")
                for i in range(8)
            )
        )
        assert len({r.run.id for r in runs if r.run is not None}) == 8
        schedule = await manager.create_schedule(
            "t", "*/5 * * * *", gestalt.plugin_target("p", "o")
        )
        assert schedule.schedule is not None
        assert (await manager.pause_schedule(schedule.schedule.id)).schedule is not None
        await manager.delete_schedule(schedule.schedule.id)
        with pytest.raises(gestalt.HostServiceError) as deleted:
            await manager.get_schedule(schedule.schedule.id)
        assert deleted.value.code is grpc.StatusCode.NOT_FOUND
        event = await manager.publish_event("async.event", {"ok": True})
        assert event.type == "async.event"
        with pytest.raises(gestalt.HostServiceError) as missing:
            await manager.get_trigger("nope")
        assert missing.value.code is grpc.StatusCode.NOT_FOUND
    calls = recorder.take()
    assert set(_sent(calls, "invocation_token")) == {INVOCATION}
    assert all(("x-gestalt-host-service-relay-token", TOKEN) in c.metadata for c in calls)


# -- WorkflowHost ---------------------------------------------------------------------------


class FakeWorkflowHost:
    """Plays the host's WorkflowHost: executes a plugin target by describing it."""

    def __init__(self) -> None:
        self.requests: list[workflow_pb2.InvokeWorkflowOperationRequest] = []
        self.lock = threading.Lock()

    def invoke_operation(
        self, request: workflow_pb2.InvokeWorkflowOperationRequest, context: grpc.ServicerContext
    ) -> workflow_pb2.InvokeWorkflowOperationResponse:
        with self.lock:
            self.requests.append(request)
        if not request.target.HasField("plugin"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "only plugin targets")
        plugin = request.target.plugin
        return workflow_pb2.InvokeWorkflowOperationResponse(
            status=200, body=f"{plugin.plugin_name}.{plugin.operation}:{request.run_id}"
        )


@pytest.fixture
def workflow_host(
    socket_path: Callable[[str], Path], bind_env: EnvBinder
) -> Iterator[LocalServer[FakeWorkflowHost]]:
    server: LocalServer[FakeWorkflowHost] = serve(
        LocalServer,
        parse_address(socket_path("wfhost")),
        FakeWorkflowHost,
        add_workflow_host_to_server,
        name="workflow-host",
        relay_token=TOKEN,
    )
    bind_env(WORKFLOW_HOST, server.target, token=TOKEN)
    try:
        yield server
    finally:
        server.stop()


def test_workflow_host_invoke_operation(workflow_host: LocalServer[FakeWorkflowHost]) -> None:
    with gestalt.WorkflowHost() as host:
        result = host.invoke_operation(
            gestalt.plugin_target("crm", "sync"),
            run_id="run-1",
            input={"a": 1},
            signals=[WorkflowSignal(name="go", sequence=1)],
        )
        assert (result.status, result.body) == (200, "crm.sync:run-1")
        (sent,) = workflow_host.service.requests
        assert sent.signals[0].name == "go" and dict(sent.input) == {"a": 1.0}
        with pytest.raises(gestalt.HostServiceError) as refused:
            host.invoke_operation(gestalt.agent_target("a", "hi"))
        assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT


async def test_async_workflow_host(workflow_host: LocalServer[FakeWorkflowHost]) -> None:
    host = gestalt.AsyncWorkflowHost()
    results = await asyncio.gather(
        *(host.invoke_operation(gestalt.plugin_target("p", "o"), run_id=f"r{i}") for i in range(8))
    )
    assert [r.body for r in results] == [f"p.o:r{i}" for i in range(8)]
    request = workflow_pb2.InvokeWorkflowOperationRequest(run_id="raw")
    request.target.plugin.plugin_name = "p"
    raw = await host.invoke_operation(request)
    assert isinstance(raw, workflow_pb2.InvokeWorkflowOperationResponse) and raw.body == "p.:raw"
    await host.close()
