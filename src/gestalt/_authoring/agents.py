"""The base class of agent providers: sessions, turns, events and interactions.

Subclass :class:`AgentProvider` and implement the RPCs the host should reach, as snake_case
methods taking the request mirror and returning the response mirror of
:mod:`gestalt.gen.v1.agent_mirrors`, plain or ``async def``. What a subclass leaves out answers
``UNIMPLEMENTED``; raising ``LookupError`` answers ``NOT_FOUND``. A method written the raw way,
taking ``(request, context)`` with the protobuf messages, is served as such.
"""

from __future__ import annotations

from gestalt._authoring.providers import ProviderKind, _Served
from gestalt.gen.v1.agent_providers import AgentProviderBase

__all__ = ["AgentProvider"]


class AgentProvider(AgentProviderBase, _Served):
    """Base class for agent providers (runtime kind ``agent``)."""

    _kind = ProviderKind.AGENT
