"""An embedded, in-memory workflow manager: runs, signals, schedules, triggers and events.

:class:`WorkflowManagerService` implements ``gestalt.provider.v1.WorkflowManagerHost`` as a
provider sees the host's:

* ``StartRun`` stores a ``PENDING`` run under the named workflow provider (the same run again
  for a repeated idempotency key) and hands it to the ``executor``, if the service has one,
  in a thread of its own, with the invocation token of the call that started it (a
  schedule's or trigger's runs get the token of the call that created it): the run is
  ``RUNNING`` meanwhile, then ``SUCCEEDED`` with the executor's body when its status is below
  400, else ``FAILED``; an exception fails the run with its message. Without an executor
  runs stay pending, for a test to look at (or to run with
  :meth:`~WorkflowManagerService.run_now`).
* ``SignalRun`` appends a signal (sequence numbers from 1) to a run that has not finished;
  ``SignalOrStartRun`` does so to the live run of the workflow key, starting one first when
  there is none.
* Schedules and event triggers are stored with their target, match and paused flag;
  ``Update*`` replaces them, ``Pause*``/``Resume*`` flip the flag, ``Delete*`` removes them.
  Schedules do not fire on their own here; :meth:`~WorkflowManagerService.fire_schedule`
  starts the run a schedule would start.
* ``PublishEvent`` records the event (an id and time are filled in when missing) and starts a
  run for every trigger that is not paused and whose non-empty match fields all equal the
  event's.

Unknown ids are ``NOT_FOUND``; missing required fields and a cron expression that is not five
or six fields are ``INVALID_ARGUMENT``. Invocation tokens that reached the service are kept in
``invocation_tokens``. :func:`serve_workflow_manager` serves it on a socket.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

import grpc
from google.protobuf import empty_pb2
from google.protobuf.message import Message

from gestalt.gen.v1 import workflow_pb2 as W
from gestalt.gen.v1.agent_mirrors import AgentExecutionStatus
from gestalt.gen.v1.workflow_mirrors import (
    BoundWorkflowAgentTarget,
    BoundWorkflowPluginTarget,
    BoundWorkflowRun,
)
from gestalt.gen.v1.workflow_servicers import (
    WORKFLOW_MANAGER_HOST_METHODS,
    add_workflow_manager_host_to_server,
)
from gestalt.local._memory import _MemoryHost, copy, noting_tokens, now
from gestalt.local._serving import LocalServer, Served, ServeOptions, Where

if TYPE_CHECKING:
    from gestalt.local.agents import AgentManagerService

__all__ = ["Executor", "WorkflowManagerService", "invoker_executor", "serve_workflow_manager"]

#: Executes a run's target, given the run and the invocation token of the call that started
#: it (or created its schedule or trigger): returns an HTTP-style status and a body.
Executor = Callable[[BoundWorkflowRun, str], "tuple[int, str]"]

_FINISHED = (
    W.WORKFLOW_RUN_STATUS_SUCCEEDED,
    W.WORKFLOW_RUN_STATUS_FAILED,
    W.WORKFLOW_RUN_STATUS_CANCELED,
)


class _Run:
    """A run with the provider holding it and the signals it received."""

    __slots__ = ("provider", "run", "signals", "token")

    def __init__(self, provider: str, run: W.BoundWorkflowRun, token: str) -> None:
        self.provider = provider
        self.run = run
        self.token = token
        self.signals: list[W.WorkflowSignal] = []


#: What the service keeps besides runs: kind (the field of the managed message holding the
#: bound one) -> its name in errors.
_KINDS = {"schedule": "schedule", "trigger": "event trigger"}

M = TypeVar("M", W.ManagedWorkflowSchedule, W.ManagedWorkflowEventTrigger)
_Handler = Callable[["WorkflowManagerService", Any, grpc.ServicerContext], Any]


def _get(kind: str) -> _Handler:
    def get(self: WorkflowManagerService, request: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            return self._lookup(kind, getattr(request, f"{kind}_id"), context)

    get.__doc__ = f"Return the {_KINDS[kind]}."
    return get


def _update(kind: str, fields: tuple[str, ...]) -> _Handler:
    def update(self: WorkflowManagerService, request: Any, context: grpc.ServicerContext) -> Any:
        if kind == "schedule":
            self._cron(request.cron, context)
        with self._lock:
            managed = self._lookup(kind, getattr(request, f"{kind}_id"), context)
            bound = getattr(managed, kind)
            for name in fields:
                value = getattr(request, name)
                if isinstance(value, Message):
                    getattr(bound, name).CopyFrom(value)
                else:
                    setattr(bound, name, value)
            bound.paused = request.paused
            bound.updated_at.CopyFrom(now())
            if request.provider_name:
                managed.provider_name = request.provider_name
            return managed

    update.__doc__ = f"Replace the {_KINDS[kind]}'s {', '.join(fields)} and paused flag."
    return update


def _delete(kind: str) -> _Handler:
    def delete(
        self: WorkflowManagerService, request: Any, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        item_id = getattr(request, f"{kind}_id")
        with self._lock:
            self._lookup(kind, item_id, context)
            del self._kept[kind][item_id]
        return empty_pb2.Empty()

    delete.__doc__ = f"Remove the {_KINDS[kind]}."
    return delete


def _pause(kind: str, paused: bool) -> _Handler:
    def pause(self: WorkflowManagerService, request: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            managed = self._lookup(kind, getattr(request, f"{kind}_id"), context)
            getattr(managed, kind).paused = paused
            getattr(managed, kind).updated_at.CopyFrom(now())
            return managed

    pause.__doc__ = f"{'Pause' if paused else 'Resume'} the {_KINDS[kind]}."
    return pause


class WorkflowManagerService(_MemoryHost):
    """In-memory ``WorkflowManagerHost``; see the module docstring for its behaviour."""

    def __init__(self, executor: Executor | None = None) -> None:
        super().__init__()
        self.executor = executor
        self.events: list[W.WorkflowEvent] = []
        self._runs: dict[str, _Run] = {}
        # (kind, provider or "", idempotency key) -> id; (provider, workflow key) -> run id
        self._keys: dict[tuple[str, str, str], str] = {}
        self._workflow_keys: dict[tuple[str, str], str] = {}
        # schedule or trigger id -> invocation token of the call that created it
        self._creators: dict[str, str] = {}
        # "schedule" or "trigger" -> id -> the managed schedule or trigger
        self._kept: dict[str, dict[str, Any]] = {kind: {} for kind in _KINDS}

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _need(context: grpc.ServicerContext, **fields: object) -> None:
        for name, value in fields.items():
            if not value:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{name} is required")

    @staticmethod
    def _cron(cron: str, context: grpc.ServicerContext) -> None:
        if len(cron.split()) not in (5, 6):
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"cron expression {cron!r} must have five or six fields",
            )

    def _start(
        self,
        provider: str,
        target: W.BoundWorkflowTarget,
        trigger: W.WorkflowRunTrigger,
        token: str,
        *,
        workflow_key: str = "",
        idempotency_key: str = "",
    ) -> _Run:
        """Store a new pending run (or the one of a repeated idempotency key) and start it."""
        with self._lock:
            key = ("run", provider, idempotency_key)
            if idempotency_key and key in self._keys:
                return self._runs[self._keys[key]]
            run = W.BoundWorkflowRun(
                id=self._new_id("run"),
                status=W.WORKFLOW_RUN_STATUS_PENDING,
                target=target,
                trigger=trigger,
                created_at=now(),
                workflow_key=workflow_key,
            )
            record = self._runs[run.id] = _Run(provider, run, token)
            if idempotency_key:
                self._keys[key] = run.id
            if workflow_key:
                self._workflow_keys[provider, workflow_key] = run.id
        if self.executor is not None:
            threading.Thread(
                target=self.run_now, args=(run.id,), name="gestalt-workflow-run", daemon=True
            ).start()
        return record

    def run_now(self, run_id: str, executor: Executor | None = None) -> BoundWorkflowRun:
        """Execute a pending run in this thread with ``executor`` (else the service's)."""
        execute = executor or self.executor
        if execute is None:
            raise ValueError("no executor to run the workflow with")
        with self._lock:
            run, token = self._runs[run_id].run, self._runs[run_id].token
            if run.status != W.WORKFLOW_RUN_STATUS_PENDING:
                raise ValueError(f"run {run_id} is not pending")
            run.status = W.WORKFLOW_RUN_STATUS_RUNNING
            run.started_at.CopyFrom(now())
            snapshot = BoundWorkflowRun.from_pb(run)
        try:
            status, body = execute(snapshot, token)
            outcome = (
                W.WORKFLOW_RUN_STATUS_SUCCEEDED if status < 400 else W.WORKFLOW_RUN_STATUS_FAILED
            )
            message = "" if status < 400 else f"target answered status {status}"
        except Exception as exc:  # the run fails with the reason; the service stays up
            outcome, body, message = (
                W.WORKFLOW_RUN_STATUS_FAILED,
                "",
                str(exc) or type(exc).__name__,
            )
        with self._lock:
            if run.status == W.WORKFLOW_RUN_STATUS_RUNNING:
                run.status, run.result_body, run.status_message = outcome, body, message
                run.completed_at.CopyFrom(now())
                self._lock.notify_all()
            return BoundWorkflowRun.from_pb(run)

    def _signal(
        self, record: _Run, signal: W.WorkflowSignal, started: bool
    ) -> W.ManagedWorkflowRunSignal:
        with self._lock:
            stored = copy(signal)
            stored.id = stored.id or self._new_id("signal")
            stored.sequence = len(record.signals) + 1
            stored.created_at.CopyFrom(now())
            record.signals.append(stored)
            return W.ManagedWorkflowRunSignal(
                provider_name=record.provider,
                run=record.run,
                signal=stored,
                started_run=started,
                workflow_key=record.run.workflow_key,
            )

    # -- runs ----------------------------------------------------------------------------

    def start_run(
        self, request: W.WorkflowManagerStartRunRequest, context: grpc.ServicerContext
    ) -> W.ManagedWorkflowRun:
        """Start a run of the request's target."""
        self._need(context, provider_name=request.provider_name, target=request.HasField("target"))
        trigger = W.WorkflowRunTrigger(manual=W.WorkflowManualTrigger())
        record = self._start(
            request.provider_name,
            request.target,
            trigger,
            request.invocation_token,
            workflow_key=request.workflow_key,
            idempotency_key=request.idempotency_key,
        )
        with self._lock:
            return W.ManagedWorkflowRun(provider_name=record.provider, run=record.run)

    def signal_run(
        self, request: W.WorkflowManagerSignalRunRequest, context: grpc.ServicerContext
    ) -> W.ManagedWorkflowRunSignal:
        """Deliver a signal to a run that has not finished."""
        with self._lock:
            record = self._found(self._runs, request.run_id, "workflow run", context)
            if record.run.status in _FINISHED:
                context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"workflow run {request.run_id!r} has finished",
                )
        return self._signal(record, request.signal, False)

    def signal_or_start_run(
        self, request: W.WorkflowManagerSignalOrStartRunRequest, context: grpc.ServicerContext
    ) -> W.ManagedWorkflowRunSignal:
        """Signal the live run of the workflow key, starting one first if there is none."""
        self._need(context, provider_name=request.provider_name, workflow_key=request.workflow_key)
        with self._lock:
            run_id = self._workflow_keys.get((request.provider_name, request.workflow_key))
            record = None if run_id is None else self._runs[run_id]
            live = record is not None and record.run.status not in _FINISHED
        if record is None or not live:
            self._need(context, target=request.HasField("target"))
            record = self._start(
                request.provider_name,
                request.target,
                W.WorkflowRunTrigger(manual=W.WorkflowManualTrigger()),
                request.invocation_token,
                workflow_key=request.workflow_key,
                idempotency_key=request.idempotency_key,
            )
        return self._signal(record, request.signal, not live)

    # -- schedules and event triggers ----------------------------------------------------

    def _keep(self, kind: str, request: Any, bound: Any, managed_type: type[M]) -> M:
        """Store a new schedule or trigger (``bound``, from ``request``) with the token of the
        call creating it; a repeated idempotency key gets the one stored before."""
        with self._lock:
            key = (kind, "", request.idempotency_key)
            if request.idempotency_key and key in self._keys:
                found: M = self._kept[kind][self._keys[key]]
                return found
            stamp = now()
            bound.id = self._new_id(kind)
            bound.created_at.CopyFrom(stamp)
            bound.updated_at.CopyFrom(stamp)
            managed = managed_type(provider_name=request.provider_name, **{kind: bound})
            self._kept[kind][bound.id] = managed
            self._creators[bound.id] = request.invocation_token
            if request.idempotency_key:
                self._keys[key] = bound.id
            return managed

    def _lookup(self, kind: str, item_id: str, context: grpc.ServicerContext) -> Any:
        """The stored schedule or trigger ``item_id``, under the lock; else ``NOT_FOUND``."""
        return self._found(self._kept[kind], item_id, _KINDS[kind], context)

    def create_schedule(
        self, request: W.WorkflowManagerCreateScheduleRequest, context: grpc.ServicerContext
    ) -> W.ManagedWorkflowSchedule:
        """Store a new schedule."""
        self._need(context, provider_name=request.provider_name, target=request.HasField("target"))
        self._cron(request.cron, context)
        schedule = W.BoundWorkflowSchedule(
            cron=request.cron,
            timezone=request.timezone,
            target=request.target,
            paused=request.paused,
        )
        return self._keep("schedule", request, schedule, W.ManagedWorkflowSchedule)

    def create_event_trigger(
        self, request: W.WorkflowManagerCreateEventTriggerRequest, context: grpc.ServicerContext
    ) -> W.ManagedWorkflowEventTrigger:
        """Store a new event trigger."""
        self._need(
            context,
            provider_name=request.provider_name,
            target=request.HasField("target"),
            match=request.match.type or request.match.source or request.match.subject,
        )
        trigger = W.BoundWorkflowEventTrigger(
            match=request.match, target=request.target, paused=request.paused
        )
        return self._keep("trigger", request, trigger, W.ManagedWorkflowEventTrigger)

    # Get, update (schedules: cron checked), delete, pause and resume, one definition each.
    get_schedule = _get("schedule")
    update_schedule = _update("schedule", ("cron", "timezone", "target"))
    delete_schedule = _delete("schedule")
    pause_schedule = _pause("schedule", True)
    resume_schedule = _pause("schedule", False)
    get_event_trigger = _get("trigger")
    update_event_trigger = _update("trigger", ("match", "target"))
    delete_event_trigger = _delete("trigger")
    pause_event_trigger = _pause("trigger", True)
    resume_event_trigger = _pause("trigger", False)

    def fire_schedule(self, schedule_id: str) -> BoundWorkflowRun:
        """Start the run the schedule would start now (a paused schedule starts none)."""
        with self._lock:
            managed = self._kept["schedule"][schedule_id]
            if managed.schedule.paused:
                raise ValueError(f"schedule {schedule_id} is paused")
            trigger = W.WorkflowRunTrigger(
                schedule=W.WorkflowScheduleTrigger(schedule_id=schedule_id, scheduled_for=now())
            )
        token = self._creators.get(schedule_id, "")
        record = self._start(managed.provider_name, managed.schedule.target, trigger, token)
        with self._lock:
            return BoundWorkflowRun.from_pb(record.run)

    def publish_event(
        self, request: W.WorkflowManagerPublishEventRequest, context: grpc.ServicerContext
    ) -> W.WorkflowEvent:
        """Record an event and start a run for each matching trigger that is not paused."""
        self._need(context, type=request.event.type)
        event = copy(request.event)
        event.id = event.id or self._new_id("event")
        event.spec_version = event.spec_version or "1.0"
        if not event.HasField("time"):
            event.time.CopyFrom(now())
        with self._lock:
            self.events.append(event)
            fired = [
                (trigger_id, copy(managed))
                for trigger_id, managed in self._kept["trigger"].items()
                if not managed.trigger.paused and _matches(managed.trigger.match, event)
            ]
        for trigger_id, managed in fired:
            invocation = W.WorkflowEventTriggerInvocation(trigger_id=trigger_id, event=event)
            self._start(
                managed.provider_name,
                managed.trigger.target,
                W.WorkflowRunTrigger(event=invocation),
                self._creators.get(trigger_id, ""),
            )
        return event

    # -- reading from Python ---------------------------------------------------------------

    def runs(self) -> list[BoundWorkflowRun]:
        """Every run so far, oldest first."""
        with self._lock:
            return [BoundWorkflowRun.from_pb(record.run) for record in self._runs.values()]

    def wait_for_run(self, run_id: str, timeout: float = 10.0) -> BoundWorkflowRun:
        """Wait until a run has finished and return it; ``TimeoutError`` otherwise."""
        with self._lock:
            run = self._runs[run_id].run
            self._wait(lambda: run.status in _FINISHED, timeout, f"workflow run {run_id}")
            return BoundWorkflowRun.from_pb(run)


def invoker_executor(
    target: str, timeout: float = 60.0, *, agents: AgentManagerService | None = None
) -> Executor:
    """An executor that runs plugin targets through a PluginInvoker service at ``target`` and
    agent targets on the local agent manager ``agents``.

    A run acts for the call that started it. For a plugin target its invocation token is
    exchanged for a fresh one (same caller, same grants) and the target is one ``Invoke`` with
    it, so the run reaches the providers the invoker routes to, as the caller it acts for.
    An agent target is one turn of ``agents`` (see
    :meth:`~gestalt.local.AgentManagerService.run_target`) acting with the run's token; the
    run's body is the turn's output text, or its structured output as JSON, and a turn that
    fails, is canceled or times out fails the run. A run without a token fails, and so does
    an agent target without ``agents`` or with an output delivery, which runs only on the host.
    """
    from gestalt._clients.transport import parse_target

    address = parse_target(target, "plugin invoker").grpc_target

    def execute(run: BoundWorkflowRun, token: str) -> tuple[int, str]:
        if not token:
            raise ValueError("the run has no invocation token to act with")
        agent = None if run.target is None else run.target.agent
        if agent is not None:
            return _run_agent(agents, agent, token, run.id, timeout)
        plugin = None if run.target is None else run.target.plugin
        if plugin is None:
            raise ValueError("the run has no target")
        return _invoke_plugin(address, plugin, token, run.id, timeout)

    return execute


def _invoke_plugin(
    address: str, plugin: BoundWorkflowPluginTarget, token: str, run_id: str, timeout: float
) -> tuple[int, str]:
    from gestalt.gen.hostcalls import struct
    from gestalt.gen.v1 import plugin_pb2
    from gestalt.gen.v1.plugin_clients import PluginInvokerClient

    channel = grpc.insecure_channel(address)  # runs are few locally: no pool
    try:
        invoker = PluginInvokerClient(channel)
        exchange = plugin_pb2.ExchangeInvocationTokenRequest(parent_invocation_token=token)
        own = invoker.exchange_invocation_token(exchange, timeout=timeout).invocation_token
        request = plugin_pb2.PluginInvokeRequest(
            plugin=plugin.plugin_name,
            operation=plugin.operation,
            params=struct("input", plugin.input),
            connection=plugin.connection,
            instance=plugin.instance,
            invocation_token=own,
            idempotency_key=run_id,
        )
        result = invoker.invoke(request, timeout=timeout)
        return result.status, result.body
    finally:
        channel.close()


def _run_agent(
    agents: AgentManagerService | None,
    agent: BoundWorkflowAgentTarget,
    token: str,
    run_id: str,
    timeout: float,
) -> tuple[int, str]:
    if agents is None:
        raise ValueError("agent targets need a local agent manager to run on")
    if agent.output_delivery is not None:
        raise ValueError("output delivery of an agent target runs only on the Gestalt host")
    turn = agents.run_target(agent, token, idempotency_key=run_id, timeout=timeout)
    if turn.status is not AgentExecutionStatus.SUCCEEDED:
        reason = turn.status_message or turn.status.name.lower()
        raise ValueError(f"agent turn {turn.id} did not succeed: {reason}")
    if turn.structured_output is not None:
        return 200, json.dumps(turn.structured_output)
    return 200, turn.output_text


def _matches(match: W.WorkflowEventMatch, event: W.WorkflowEvent) -> bool:
    return all(
        not wanted or wanted == actual
        for wanted, actual in (
            (match.type, event.type),
            (match.source, event.source),
            (match.subject, event.subject),
        )
    )


_REGISTER = noting_tokens(WORKFLOW_MANAGER_HOST_METHODS, add_workflow_manager_host_to_server)
_SERVED = Served("workflow manager", "workflow-manager", _REGISTER, LocalServer)


def serve_workflow_manager(
    address: Where,
    *,
    service: WorkflowManagerService | None = None,
    **options: Unpack[ServeOptions],
) -> LocalServer[WorkflowManagerService]:
    """Serve a workflow manager on ``address`` (socket path, ``unix://…`` or ``tcp://…``).

    ``service`` defaults to a new :class:`WorkflowManagerService` without an executor;
    ``options`` are those of every local server (:class:`~gestalt.local.ServeOptions`, 8
    threads). Returns once the server is listening.
    """
    chosen = WorkflowManagerService() if service is None else service
    return _SERVED.serve(address, lambda: chosen, options)
