"""Clients for the host's workflow services: WorkflowManagerHost and WorkflowHost.

:class:`WorkflowManager` starts and signals runs, manages schedules and event triggers and
publishes events through the host, on behalf of the Execute call whose invocation token it
carries; :class:`WorkflowHost` is what a workflow provider calls to execute a run's target.
As for the agent clients, each method is declared once (a
:class:`~gestalt._clients.calls.Call`) for the sync and the asyncio class: the raw request
message gets the raw response, typed arguments get the mirrors of
:mod:`gestalt.gen.v1.workflow_mirrors`.

Targets are typed: a :class:`BoundWorkflowPluginTarget` (a plugin operation with its input),
a :class:`BoundWorkflowAgentTarget` (an agent run) or a :class:`BoundWorkflowTarget` holding
either; :func:`plugin_target` and :func:`agent_target` build them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gestalt._clients.agents import _messages
from gestalt._clients.calls import Call, Scope, _AioClient, _SyncClient
from gestalt._clients.errors import ErrorMap
from gestalt._clients.transport import WORKFLOW_HOST, WORKFLOW_MANAGER
from gestalt.gen import support as _s
from gestalt.gen.hostcalls import each, required, struct, text
from gestalt.gen.v1 import workflow_pb2
from gestalt.gen.v1.agent_mirrors import AgentMessage, AgentToolRef
from gestalt.gen.v1.workflow_clients import (
    AsyncWorkflowHostClient,
    AsyncWorkflowManagerHostClient,
    WorkflowHostClient,
    WorkflowManagerHostClient,
)
from gestalt.gen.v1.workflow_methods import WorkflowManagerHostMethods
from gestalt.gen.v1.workflow_mirrors import (
    BoundWorkflowAgentTarget,
    BoundWorkflowPluginTarget,
    BoundWorkflowTarget,
    InvokeWorkflowOperationResponse,
    ManagedWorkflowEventTrigger,
    ManagedWorkflowRun,
    ManagedWorkflowRunSignal,
    ManagedWorkflowSchedule,
    WorkflowActor,
    WorkflowEvent,
    WorkflowEventMatch,
    WorkflowOutputDelivery,
    WorkflowRunTrigger,
    WorkflowSignal,
)

__all__ = [
    "AsyncWorkflowHost",
    "AsyncWorkflowManager",
    "Target",
    "WorkflowContext",
    "WorkflowHost",
    "WorkflowManager",
    "agent_target",
    "plugin_target",
    "workflow_context",
]

#: Failures of the workflow services: every one a HostServiceError carrying its status code.
WORKFLOW_ERRORS = ErrorMap("workflow", {})

#: What a run, schedule or trigger executes.
Target = BoundWorkflowTarget | BoundWorkflowPluginTarget | BoundWorkflowAgentTarget


def plugin_target(
    plugin: str,
    operation: str,
    input: Mapping[str, Any] | None = None,
    *,
    connection: str = "",
    instance: str = "",
) -> BoundWorkflowTarget:
    """A target that calls ``operation`` of ``plugin`` with ``input``."""
    return BoundWorkflowTarget(
        plugin=BoundWorkflowPluginTarget(
            plugin_name=required("plugin", plugin),
            operation=required("operation", operation),
            input=None if input is None else dict(input),
            connection=text("connection", connection),
            instance=text("instance", instance),
        )
    )


def agent_target(
    provider_name: str,
    prompt: str = "",
    *,
    model: str = "",
    messages: Sequence[AgentMessage] = (),
    tool_refs: Sequence[AgentToolRef] = (),
    response_schema: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    provider_options: Mapping[str, Any] | None = None,
    timeout_seconds: int = 0,
    output_delivery: WorkflowOutputDelivery | None = None,
) -> BoundWorkflowTarget:
    """A target that runs the agent provider ``provider_name`` on ``prompt``."""
    _messages(messages)  # type checks only; the mirror keeps the objects
    each("tool_refs", tool_refs, AgentToolRef)
    return BoundWorkflowTarget(
        agent=BoundWorkflowAgentTarget(
            provider_name=required("provider_name", provider_name),
            model=text("model", model),
            prompt=text("prompt", prompt),
            messages=list(messages),
            tool_refs=list(tool_refs),
            response_schema=None if response_schema is None else dict(response_schema),
            metadata=None if metadata is None else dict(metadata),
            provider_options=None if provider_options is None else dict(provider_options),
            timeout_seconds=timeout_seconds,
            output_delivery=output_delivery,
        )
    )


def _target(value: Target) -> workflow_pb2.BoundWorkflowTarget:
    if isinstance(value, BoundWorkflowTarget):
        if value.plugin is None and value.agent is None:
            raise ValueError("target must name a plugin operation or an agent")
        return value.to_pb()
    if isinstance(value, BoundWorkflowPluginTarget):
        return workflow_pb2.BoundWorkflowTarget(plugin=value.to_pb())
    if isinstance(value, BoundWorkflowAgentTarget):
        return workflow_pb2.BoundWorkflowTarget(agent=value.to_pb())
    raise TypeError(
        "target must be a BoundWorkflowTarget, BoundWorkflowPluginTarget or "
        f"BoundWorkflowAgentTarget, not {type(value).__name__}"
    )


def _match(value: WorkflowEventMatch | str) -> workflow_pb2.WorkflowEventMatch:
    if isinstance(value, str):
        return workflow_pb2.WorkflowEventMatch(type=required("match", value))
    if not isinstance(value, WorkflowEventMatch):
        raise TypeError(
            f"match must be an event type or WorkflowEventMatch, not {type(value).__name__}"
        )
    if not (value.type or value.source or value.subject):
        raise ValueError("match must name an event type, source or subject")
    return value.to_pb()


def _signal(
    scope: Scope,
    name: str,
    payload: Mapping[str, Any] | None,
    metadata: Mapping[str, Any] | None,
    idempotency_key: str,
) -> workflow_pb2.WorkflowSignal:
    return workflow_pb2.WorkflowSignal(
        name=required("name", name),
        payload=struct("payload", payload),
        metadata=struct("metadata", metadata),
        idempotency_key=scope.key(idempotency_key),
    )


# -- runs ----------------------------------------------------------------------------------


def _start_run(
    scope: Scope,
    provider_name: str,
    target: Target,
    *,
    workflow_key: str = "",
    idempotency_key: str = "",
) -> workflow_pb2.WorkflowManagerStartRunRequest:
    """Start a run of ``target`` on the workflow provider ``provider_name``."""
    return workflow_pb2.WorkflowManagerStartRunRequest(
        provider_name=required("provider_name", provider_name),
        target=_target(target),
        idempotency_key=scope.key(idempotency_key),
        workflow_key=text("workflow_key", workflow_key),
        invocation_token=scope.invocation_token,
    )


def _signal_run(
    scope: Scope,
    run_id: str,
    name: str,
    payload: Mapping[str, Any] | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
    idempotency_key: str = "",
) -> workflow_pb2.WorkflowManagerSignalRunRequest:
    """Send the signal ``name`` with ``payload`` to the run ``run_id``."""
    return workflow_pb2.WorkflowManagerSignalRunRequest(
        run_id=required("run_id", run_id),
        signal=_signal(scope, name, payload, metadata, idempotency_key),
        invocation_token=scope.invocation_token,
    )


def _signal_or_start_run(
    scope: Scope,
    provider_name: str,
    workflow_key: str,
    target: Target,
    name: str,
    payload: Mapping[str, Any] | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
    idempotency_key: str = "",
) -> workflow_pb2.WorkflowManagerSignalOrStartRunRequest:
    """Signal the run named ``workflow_key``, starting it with ``target`` if there is none."""
    key = scope.key(idempotency_key)
    return workflow_pb2.WorkflowManagerSignalOrStartRunRequest(
        provider_name=required("provider_name", provider_name),
        workflow_key=required("workflow_key", workflow_key),
        target=_target(target),
        idempotency_key=key,
        signal=_signal(scope, name, payload, metadata, key),
        invocation_token=scope.invocation_token,
    )


# -- schedules -----------------------------------------------------------------------------


def _create_schedule(
    scope: Scope,
    provider_name: str,
    cron: str,
    target: Target,
    *,
    timezone: str = "",
    paused: bool = False,
    idempotency_key: str = "",
) -> workflow_pb2.WorkflowManagerCreateScheduleRequest:
    """Create a schedule that runs ``target`` on the ``cron`` expression."""
    return workflow_pb2.WorkflowManagerCreateScheduleRequest(
        provider_name=required("provider_name", provider_name),
        cron=required("cron", cron),
        timezone=text("timezone", timezone),
        target=_target(target),
        paused=bool(paused),
        idempotency_key=scope.key(idempotency_key),
        invocation_token=scope.invocation_token,
    )


def _update_schedule(
    scope: Scope,
    schedule_id: str,
    provider_name: str,
    cron: str,
    target: Target,
    *,
    timezone: str = "",
    paused: bool = False,
) -> workflow_pb2.WorkflowManagerUpdateScheduleRequest:
    """Replace the cron expression, time zone, target and paused flag of a schedule."""
    return workflow_pb2.WorkflowManagerUpdateScheduleRequest(
        schedule_id=required("schedule_id", schedule_id),
        provider_name=required("provider_name", provider_name),
        cron=required("cron", cron),
        timezone=text("timezone", timezone),
        target=_target(target),
        paused=bool(paused),
        invocation_token=scope.invocation_token,
    )


# -- event triggers ------------------------------------------------------------------------


def _create_trigger(
    scope: Scope,
    provider_name: str,
    match: WorkflowEventMatch | str,
    target: Target,
    *,
    paused: bool = False,
    idempotency_key: str = "",
) -> workflow_pb2.WorkflowManagerCreateEventTriggerRequest:
    """Create a trigger that runs ``target`` for each event ``match`` selects.

    ``match`` is an event type or a :class:`WorkflowEventMatch` (type, source, subject).
    """
    return workflow_pb2.WorkflowManagerCreateEventTriggerRequest(
        provider_name=required("provider_name", provider_name),
        match=_match(match),
        target=_target(target),
        paused=bool(paused),
        idempotency_key=scope.key(idempotency_key),
        invocation_token=scope.invocation_token,
    )


def _update_trigger(
    scope: Scope,
    trigger_id: str,
    provider_name: str,
    match: WorkflowEventMatch | str,
    target: Target,
    *,
    paused: bool = False,
) -> workflow_pb2.WorkflowManagerUpdateEventTriggerRequest:
    """Replace the event filter, target and paused flag of a trigger."""
    return workflow_pb2.WorkflowManagerUpdateEventTriggerRequest(
        trigger_id=required("trigger_id", trigger_id),
        provider_name=required("provider_name", provider_name),
        match=_match(match),
        target=_target(target),
        paused=bool(paused),
        invocation_token=scope.invocation_token,
    )


def _publish_event(
    scope: Scope,
    event: WorkflowEvent | str,
    data: Mapping[str, Any] | None = None,
    *,
    source: str = "",
    subject: str = "",
) -> workflow_pb2.WorkflowManagerPublishEventRequest:
    """Publish an event (a :class:`WorkflowEvent`, or its type with ``data``).

    Returns the event as the host recorded it; matching triggers start runs.
    """
    if isinstance(event, WorkflowEvent):
        if data is not None or source or subject:
            raise TypeError("give either a WorkflowEvent or its type with data, not both")
        message = event.to_pb()
        if not message.type:
            raise ValueError("event type must not be empty")
    else:
        message = workflow_pb2.WorkflowEvent(
            type=required("event", event),
            data=struct("data", data),
            source=text("source", source),
            subject=text("subject", subject),
        )
    return workflow_pb2.WorkflowManagerPublishEventRequest(
        event=message, invocation_token=scope.invocation_token
    )


W = workflow_pb2


class _WorkflowManagerCalls(WorkflowManagerHostMethods):
    """The WorkflowManagerHost methods, shared by the sync and asyncio managers."""

    __slots__ = ()

    start_run = Call(
        "start_run", W.WorkflowManagerStartRunRequest, _start_run, ManagedWorkflowRun.from_pb
    )
    signal_run = Call(
        "signal_run",
        W.WorkflowManagerSignalRunRequest,
        _signal_run,
        ManagedWorkflowRunSignal.from_pb,
    )
    signal_or_start_run = Call(
        "signal_or_start_run",
        W.WorkflowManagerSignalOrStartRunRequest,
        _signal_or_start_run,
        ManagedWorkflowRunSignal.from_pb,
    )
    create_schedule = Call(
        "create_schedule",
        W.WorkflowManagerCreateScheduleRequest,
        _create_schedule,
        ManagedWorkflowSchedule.from_pb,
    )
    update_schedule = Call(
        "update_schedule",
        W.WorkflowManagerUpdateScheduleRequest,
        _update_schedule,
        ManagedWorkflowSchedule.from_pb,
    )
    create_trigger = Call(
        "create_event_trigger",
        W.WorkflowManagerCreateEventTriggerRequest,
        _create_trigger,
        ManagedWorkflowEventTrigger.from_pb,
    )
    update_trigger = Call(
        "update_event_trigger",
        W.WorkflowManagerUpdateEventTriggerRequest,
        _update_trigger,
        ManagedWorkflowEventTrigger.from_pb,
    )
    publish_event = Call(
        "publish_event", W.WorkflowManagerPublishEventRequest, _publish_event, WorkflowEvent.from_pb
    )


class WorkflowManager(_WorkflowManagerCalls, _SyncClient):
    """Client for the host's workflow manager: runs, schedules, event triggers and events.

    ``invocation_token`` is the token of the Execute call the work is done for
    (:meth:`Request.workflow_manager` builds the client with it); ``idempotency_key``, when
    given, is sent with every typed call that takes one and is not given its own. The host is found
    through ``GESTALT_WORKFLOW_MANAGER_SOCKET`` (and its ``_TOKEN`` twin); ``timeout`` is the
    deadline in seconds of each call.
    """

    __slots__ = ()

    def __init__(
        self, invocation_token: str, *, idempotency_key: str = "", timeout: float | None = None
    ) -> None:
        scope = Scope(invocation_token, idempotency_key)
        super().__init__(
            WORKFLOW_MANAGER.endpoint(), WorkflowManagerHostClient, WORKFLOW_ERRORS, scope, timeout
        )


class AsyncWorkflowManager(_WorkflowManagerCalls, _AioClient):
    """Asyncio client for the host's workflow manager; the methods of :class:`WorkflowManager`."""

    __slots__ = ()

    def __init__(
        self, invocation_token: str, *, idempotency_key: str = "", timeout: float | None = None
    ) -> None:
        scope = Scope(invocation_token, idempotency_key)
        super().__init__(
            WORKFLOW_MANAGER.endpoint(),
            AsyncWorkflowManagerHostClient,
            WORKFLOW_ERRORS,
            scope,
            timeout,
        )


# -- WorkflowHost --------------------------------------------------------------------------


def _invoke_operation(
    scope: Scope,
    target: Target,
    *,
    run_id: str = "",
    trigger: WorkflowRunTrigger | None = None,
    input: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    created_by: WorkflowActor | None = None,
    execution_ref: str = "",
    signals: Sequence[WorkflowSignal] = (),
) -> workflow_pb2.InvokeWorkflowOperationRequest:
    """Ask the host to execute a run's ``target``; returns its status and body."""
    return workflow_pb2.InvokeWorkflowOperationRequest(
        target=_target(target),
        run_id=text("run_id", run_id),
        trigger=None if trigger is None else trigger.to_pb(),
        input=struct("input", input),
        metadata=struct("metadata", metadata),
        created_by=None if created_by is None else created_by.to_pb(),
        execution_ref=text("execution_ref", execution_ref),
        signals=[signal.to_pb() for signal in signals],
    )


class _WorkflowHostCalls:
    """The WorkflowHost methods, shared by :class:`WorkflowHost` and its asyncio twin."""

    __slots__ = ()

    invoke_operation = Call(
        "invoke_operation",
        W.InvokeWorkflowOperationRequest,
        _invoke_operation,
        InvokeWorkflowOperationResponse.from_pb,
    )


class WorkflowHost(_WorkflowHostCalls, _SyncClient):
    """Client a workflow provider uses to have the host execute the target of a run.

    Found through ``GESTALT_WORKFLOW_HOST_SOCKET`` (and its ``_TOKEN`` twin).
    """

    __slots__ = ()

    def __init__(self, *, timeout: float | None = None) -> None:
        super().__init__(
            WORKFLOW_HOST.endpoint(), WorkflowHostClient, WORKFLOW_ERRORS, Scope(), timeout
        )


class AsyncWorkflowHost(_WorkflowHostCalls, _AioClient):
    """Asyncio client of the workflow host; :meth:`invoke_operation` returns an awaitable."""

    __slots__ = ()

    def __init__(self, *, timeout: float | None = None) -> None:
        super().__init__(
            WORKFLOW_HOST.endpoint(), AsyncWorkflowHostClient, WORKFLOW_ERRORS, Scope(), timeout
        )


# -- the workflow context of an Execute call -----------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkflowContext:
    """The workflow run an Execute call is part of, as the host described it.

    Read from ``Request.workflow`` (the host's lowerCamelCase JSON) by
    :attr:`Request.workflow_context`: the run's id, its target and trigger, the input and
    metadata, who created it, its execution reference and the signals delivered so far.
    ``raw`` keeps the dict as sent.
    """

    run_id: str = ""
    target: BoundWorkflowTarget | None = None
    trigger: WorkflowRunTrigger | None = None
    input: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    created_by: WorkflowActor | None = None
    execution_ref: str = ""
    signals: list[WorkflowSignal] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)


def workflow_context(data: Mapping[str, Any]) -> WorkflowContext | None:
    """The typed view of a workflow context dict; None when the dict is empty.

    Raises ``ValueError`` naming the problem when the dict does not have the form of a
    workflow invocation (unknown keys are ignored, for hosts newer than this SDK).
    """
    if not data:
        return None
    from google.protobuf import json_format

    message = workflow_pb2.InvokeWorkflowOperationRequest()
    try:
        json_format.ParseDict(dict(data), message, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise ValueError(f"the workflow context is not a workflow invocation: {exc}") from None
    return WorkflowContext(
        run_id=message.run_id,
        target=BoundWorkflowTarget.from_pb(message.target) if message.HasField("target") else None,
        trigger=WorkflowRunTrigger.from_pb(message.trigger)
        if message.HasField("trigger")
        else None,
        input=_s.struct_from_pb(message.input) if message.HasField("input") else None,
        metadata=_s.struct_from_pb(message.metadata) if message.HasField("metadata") else None,
        created_by=WorkflowActor.from_pb(message.created_by)
        if message.HasField("created_by")
        else None,
        execution_ref=message.execution_ref,
        signals=[WorkflowSignal.from_pb(signal) for signal in message.signals],
        raw=dict(data),
    )
