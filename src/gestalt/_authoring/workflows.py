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

from gestalt._authoring.providers import ProviderKind, _Served
from gestalt.gen.v1.workflow_providers import WorkflowProviderBase

__all__ = ["WorkflowProvider"]


class WorkflowProvider(WorkflowProviderBase, _Served):
    """Base class for workflow providers (runtime kind ``workflow``)."""

    _kind = ProviderKind.WORKFLOW
