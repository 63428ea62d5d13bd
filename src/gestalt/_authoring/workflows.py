"""The base class of workflow providers: runs, signals, schedules, triggers and references.

Subclass :class:`WorkflowProvider` and implement the RPCs the host should reach, as snake_case
methods taking the request mirror and returning the response mirror of
:mod:`gestalt.gen.v1.workflow_mirrors` (``None`` for the deletes and ``publish_event``), plain
or ``async def``. What a subclass leaves out answers ``UNIMPLEMENTED``; raising
``LookupError`` answers ``NOT_FOUND``. A method written the raw way, taking
``(request, context)`` with the protobuf messages, is served as such. A workflow provider
executes a run's target through :class:`~gestalt.WorkflowHost`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gestalt._authoring.agents import Result
from gestalt._authoring.providers import ProviderKind, _Served

if TYPE_CHECKING:
    from gestalt.gen.v1.workflow_mirrors import (
        BoundWorkflowEventTrigger,
        BoundWorkflowRun,
        BoundWorkflowSchedule,
        CancelWorkflowProviderRunRequest,
        DeleteWorkflowProviderEventTriggerRequest,
        DeleteWorkflowProviderScheduleRequest,
        GetWorkflowExecutionReferenceRequest,
        GetWorkflowProviderEventTriggerRequest,
        GetWorkflowProviderRunRequest,
        GetWorkflowProviderScheduleRequest,
        ListWorkflowExecutionReferencesRequest,
        ListWorkflowExecutionReferencesResponse,
        ListWorkflowProviderEventTriggersRequest,
        ListWorkflowProviderEventTriggersResponse,
        ListWorkflowProviderRunsRequest,
        ListWorkflowProviderRunsResponse,
        ListWorkflowProviderSchedulesRequest,
        ListWorkflowProviderSchedulesResponse,
        PauseWorkflowProviderEventTriggerRequest,
        PauseWorkflowProviderScheduleRequest,
        PublishWorkflowProviderEventRequest,
        PutWorkflowExecutionReferenceRequest,
        ResumeWorkflowProviderEventTriggerRequest,
        ResumeWorkflowProviderScheduleRequest,
        SignalOrStartWorkflowProviderRunRequest,
        SignalWorkflowProviderRunRequest,
        SignalWorkflowRunResponse,
        StartWorkflowProviderRunRequest,
        UpsertWorkflowProviderEventTriggerRequest,
        UpsertWorkflowProviderScheduleRequest,
        WorkflowExecutionReference,
    )

__all__ = ["WorkflowProvider"]


class WorkflowProvider(_Served):
    """Base class for workflow providers (runtime kind ``workflow``)."""

    _kind = ProviderKind.WORKFLOW

    def start_run(self, request: StartWorkflowProviderRunRequest) -> Result[BoundWorkflowRun]:
        """Start a new run of the given target; return it."""
        raise NotImplementedError

    def get_run(self, request: GetWorkflowProviderRunRequest) -> Result[BoundWorkflowRun]:
        """Return one run by its id."""
        raise NotImplementedError

    def list_runs(
        self, request: ListWorkflowProviderRunsRequest
    ) -> Result[ListWorkflowProviderRunsResponse]:
        """List the runs known to the provider."""
        raise NotImplementedError

    def cancel_run(self, request: CancelWorkflowProviderRunRequest) -> Result[BoundWorkflowRun]:
        """Cancel a run; return its new state."""
        raise NotImplementedError

    def signal_run(
        self, request: SignalWorkflowProviderRunRequest
    ) -> Result[SignalWorkflowRunResponse]:
        """Deliver a signal to an existing run."""
        raise NotImplementedError

    def signal_or_start_run(
        self, request: SignalOrStartWorkflowProviderRunRequest
    ) -> Result[SignalWorkflowRunResponse]:
        """Signal the run of a workflow key, starting that run first if there is none."""
        raise NotImplementedError

    def upsert_schedule(
        self, request: UpsertWorkflowProviderScheduleRequest
    ) -> Result[BoundWorkflowSchedule]:
        """Create a schedule, or replaces the one with the same id,; return it."""
        raise NotImplementedError

    def get_schedule(
        self, request: GetWorkflowProviderScheduleRequest
    ) -> Result[BoundWorkflowSchedule]:
        """Return one schedule by its id."""
        raise NotImplementedError

    def list_schedules(
        self, request: ListWorkflowProviderSchedulesRequest
    ) -> Result[ListWorkflowProviderSchedulesResponse]:
        """List the schedules known to the provider."""
        raise NotImplementedError

    def delete_schedule(self, request: DeleteWorkflowProviderScheduleRequest) -> Result[None]:
        """Delete a schedule by its id."""
        raise NotImplementedError

    def pause_schedule(
        self, request: PauseWorkflowProviderScheduleRequest
    ) -> Result[BoundWorkflowSchedule]:
        """Pause a schedule so it stops starting runs,; return it."""
        raise NotImplementedError

    def resume_schedule(
        self, request: ResumeWorkflowProviderScheduleRequest
    ) -> Result[BoundWorkflowSchedule]:
        """Resume a paused schedule; return it."""
        raise NotImplementedError

    def upsert_event_trigger(
        self, request: UpsertWorkflowProviderEventTriggerRequest
    ) -> Result[BoundWorkflowEventTrigger]:
        """Create an event trigger, or replaces the one with the same id,; return it."""
        raise NotImplementedError

    def get_event_trigger(
        self, request: GetWorkflowProviderEventTriggerRequest
    ) -> Result[BoundWorkflowEventTrigger]:
        """Return one event trigger by its id."""
        raise NotImplementedError

    def list_event_triggers(
        self, request: ListWorkflowProviderEventTriggersRequest
    ) -> Result[ListWorkflowProviderEventTriggersResponse]:
        """List the event triggers known to the provider."""
        raise NotImplementedError

    def delete_event_trigger(
        self, request: DeleteWorkflowProviderEventTriggerRequest
    ) -> Result[None]:
        """Delete an event trigger by its id."""
        raise NotImplementedError

    def pause_event_trigger(
        self, request: PauseWorkflowProviderEventTriggerRequest
    ) -> Result[BoundWorkflowEventTrigger]:
        """Pause an event trigger so matching events no longer start runs,; return it."""
        raise NotImplementedError

    def resume_event_trigger(
        self, request: ResumeWorkflowProviderEventTriggerRequest
    ) -> Result[BoundWorkflowEventTrigger]:
        """Resume a paused event trigger; return it."""
        raise NotImplementedError

    def put_execution_reference(
        self, request: PutWorkflowExecutionReferenceRequest
    ) -> Result[WorkflowExecutionReference]:
        """Store an execution reference; return what was stored."""
        raise NotImplementedError

    def get_execution_reference(
        self, request: GetWorkflowExecutionReferenceRequest
    ) -> Result[WorkflowExecutionReference]:
        """Return one execution reference by its id."""
        raise NotImplementedError

    def list_execution_references(
        self, request: ListWorkflowExecutionReferencesRequest
    ) -> Result[ListWorkflowExecutionReferencesResponse]:
        """List stored execution references for a subject."""
        raise NotImplementedError

    def publish_event(self, request: PublishWorkflowProviderEventRequest) -> Result[None]:
        """Take an event to the provider so that matching event triggers can start runs."""
        raise NotImplementedError
