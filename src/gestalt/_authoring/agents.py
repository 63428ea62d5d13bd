"""The base class of agent providers: sessions, turns, events and interactions.

Subclass :class:`AgentProvider` and implement the RPCs the host should reach, as snake_case
methods taking the request mirror and returning the response mirror of
:mod:`gestalt.gen.v1.agent_mirrors`, plain or ``async def``. What a subclass leaves out answers
``UNIMPLEMENTED``; raising ``LookupError`` answers ``NOT_FOUND``. A method written the raw way,
taking ``(request, context)`` with the protobuf messages, is served as such.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeAlias, TypeVar

from gestalt._authoring.providers import ProviderKind, _Served

if TYPE_CHECKING:
    from gestalt.gen.v1.agent_mirrors import (
        AgentInteraction,
        AgentProviderCapabilities,
        AgentSession,
        AgentTurn,
        CancelAgentProviderTurnRequest,
        CreateAgentProviderSessionRequest,
        CreateAgentProviderTurnRequest,
        GetAgentProviderCapabilitiesRequest,
        GetAgentProviderInteractionRequest,
        GetAgentProviderSessionRequest,
        GetAgentProviderTurnRequest,
        ListAgentProviderInteractionsRequest,
        ListAgentProviderInteractionsResponse,
        ListAgentProviderSessionsRequest,
        ListAgentProviderSessionsResponse,
        ListAgentProviderTurnEventsRequest,
        ListAgentProviderTurnEventsResponse,
        ListAgentProviderTurnsRequest,
        ListAgentProviderTurnsResponse,
        ResolveAgentProviderInteractionRequest,
        UpdateAgentProviderSessionRequest,
    )

__all__ = ["AgentProvider", "Result"]

T = TypeVar("T")
#: A method's result, or an awaitable of it for ``async def`` methods.
Result: TypeAlias = T | Awaitable[T]


class AgentProvider(_Served):
    """Base class for agent providers (runtime kind ``agent``)."""

    _kind = ProviderKind.AGENT

    def create_session(self, request: CreateAgentProviderSessionRequest) -> Result[AgentSession]:
        """Create a new session under the id chosen by the host; return it."""
        raise NotImplementedError

    def get_session(self, request: GetAgentProviderSessionRequest) -> Result[AgentSession]:
        """Return one session by id."""
        raise NotImplementedError

    def list_sessions(
        self, request: ListAgentProviderSessionsRequest
    ) -> Result[ListAgentProviderSessionsResponse]:
        """List sessions matching the request's filters."""
        raise NotImplementedError

    def update_session(self, request: UpdateAgentProviderSessionRequest) -> Result[AgentSession]:
        """Change a session's client reference, state or metadata; return the session."""
        raise NotImplementedError

    def create_turn(self, request: CreateAgentProviderTurnRequest) -> Result[AgentTurn]:
        """Start a new turn (one round of model work) in a session; return it."""
        raise NotImplementedError

    def get_turn(self, request: GetAgentProviderTurnRequest) -> Result[AgentTurn]:
        """Return one turn by id."""
        raise NotImplementedError

    def list_turns(
        self, request: ListAgentProviderTurnsRequest
    ) -> Result[ListAgentProviderTurnsResponse]:
        """List the turns of a session matching the request's filters."""
        raise NotImplementedError

    def cancel_turn(self, request: CancelAgentProviderTurnRequest) -> Result[AgentTurn]:
        """Ask the provider to stop a turn; return the turn as it then stands."""
        raise NotImplementedError

    def list_turn_events(
        self, request: ListAgentProviderTurnEventsRequest
    ) -> Result[ListAgentProviderTurnEventsResponse]:
        """Return the events recorded for a turn, in sequence order."""
        raise NotImplementedError

    def get_interaction(
        self, request: GetAgentProviderInteractionRequest
    ) -> Result[AgentInteraction]:
        """Return one interaction by id."""
        raise NotImplementedError

    def list_interactions(
        self, request: ListAgentProviderInteractionsRequest
    ) -> Result[ListAgentProviderInteractionsResponse]:
        """List the interactions raised by a turn."""
        raise NotImplementedError

    def resolve_interaction(
        self, request: ResolveAgentProviderInteractionRequest
    ) -> Result[AgentInteraction]:
        """Supply the answer to a pending interaction; return the interaction."""
        raise NotImplementedError

    def get_capabilities(
        self, request: GetAgentProviderCapabilitiesRequest
    ) -> Result[AgentProviderCapabilities]:
        """Report which optional agent features the provider supports."""
        raise NotImplementedError
