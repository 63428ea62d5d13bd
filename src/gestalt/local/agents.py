"""An embedded, in-memory agent manager: sessions, turns, events and interactions.

:class:`AgentManagerService` implements ``gestalt.provider.v1.AgentManagerHost`` the way a
provider sees the host's: sessions belong to a named agent provider, a new turn is
``PENDING`` and then runs, its events get increasing ``seq`` numbers from 1, and
``ListTurnEvents`` returns those above ``after_seq`` in order. Unknown ids are ``NOT_FOUND``,
missing required fields ``INVALID_ARGUMENT``, resolving an interaction that is not pending
``FAILED_PRECONDITION``.

Who answers a turn: the ``responder`` given to the service, called in a thread of its own
with a :class:`LocalTurn` (the turn, ``emit()`` for events, ``ask()`` to raise an interaction
and wait for its resolution). What it returns becomes the turn's output: a str is the
output text, a mapping the structured output. An exception fails the turn with its message;
a canceled turn stays canceled. The default responder, :func:`echo`, answers with the text
of the last message, so a provider that starts turns runs under ``gestalt dev`` without a
model. ``responder=None`` leaves turns pending for a test to drive with :meth:`run_turn`.

Every invocation token that reached the service is kept in ``invocation_tokens``, in order.
:func:`serve_agent_manager` serves it on a unix socket or ``tcp://host:port``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, Unpack

import grpc
from google.protobuf import struct_pb2

from gestalt.gen import support as _s
from gestalt.gen.v1 import agent_pb2
from gestalt.gen.v1.agent_mirrors import (
    AgentInteraction,
    AgentInteractionType,
    AgentTurn,
)
from gestalt.gen.v1.agent_servicers import (
    AGENT_MANAGER_HOST_METHODS,
    add_agent_manager_host_to_server,
)
from gestalt.gen.v1.workflow_mirrors import BoundWorkflowAgentTarget
from gestalt.local._memory import _MemoryHost, copy, noting_tokens, now
from gestalt.local._serving import LocalServer, Served, ServeOptions, Where

__all__ = [
    "AgentManagerService",
    "LocalTurn",
    "Responder",
    "echo",
    "serve_agent_manager",
]

T = TypeVar("T")
Status = agent_pb2.AgentExecutionStatus
#: Statuses of a turn that has not finished yet.
_OPEN = (
    agent_pb2.AGENT_EXECUTION_STATUS_PENDING,
    agent_pb2.AGENT_EXECUTION_STATUS_RUNNING,
    agent_pb2.AGENT_EXECUTION_STATUS_WAITING_FOR_INPUT,
)


class _Canceled(Exception):
    """Raised inside a responder's ``ask``/``emit`` once its turn was canceled."""


class LocalTurn:
    """What a responder gets: the turn, and ways to record events and ask the user."""

    __slots__ = ("_service", "turn")

    def __init__(self, service: AgentManagerService, turn: AgentTurn) -> None:
        self._service = service
        #: The turn as it was when it started running.
        self.turn = turn

    @property
    def last_text(self) -> str:
        """Text of the turn's last message (its parts' text when the message has none)."""
        if not self.turn.messages:
            return ""
        message = self.turn.messages[-1]
        return message.text or "".join(part.text for part in message.parts)

    def emit(self, type: str, data: Mapping[str, Any] | None = None) -> int:
        """Record an event of ``type`` with ``data`` on the turn; returns its seq."""
        return self._service._emit(self.turn.id, type, data, source="agent")

    def ask(
        self,
        prompt: str,
        *,
        type: AgentInteractionType = AgentInteractionType.INPUT,
        title: str = "",
        request: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Raise an interaction and wait until it is resolved; return the resolution.

        The turn is ``WAITING_FOR_INPUT`` meanwhile. ``TimeoutError`` after ``timeout``
        seconds.
        """
        return self._service._ask(self.turn.id, prompt, type, title, request, timeout)


#: Produces a turn's output: text, or a mapping for structured output.
Responder = Callable[[LocalTurn], "str | Mapping[str, Any]"]


def echo(turn: LocalTurn) -> str:
    """The default responder: answer with the text of the turn's last message."""
    return turn.last_text


def _first(items: list[T], limit: int) -> list[T]:
    """The first ``limit`` items when ``limit`` is positive, else all."""
    return items[:limit] if limit > 0 else items


class _Record:
    """One turn with its events and interactions."""

    __slots__ = ("events", "interactions", "turn")

    def __init__(self, turn: agent_pb2.AgentTurn) -> None:
        self.turn = turn
        self.events: list[agent_pb2.AgentTurnEvent] = []
        self.interactions: dict[str, agent_pb2.AgentInteraction] = {}


class AgentManagerService(_MemoryHost):
    """In-memory ``AgentManagerHost``; see the module docstring for its behaviour."""

    def __init__(self, responder: Responder | None = echo) -> None:
        super().__init__()
        self.responder = responder
        self._sessions: dict[str, agent_pb2.AgentSession] = {}
        self._turns: dict[str, _Record] = {}
        self._by_key: dict[tuple[str, str], str] = {}

    # -- helpers -------------------------------------------------------------------------

    def _session(self, session_id: str, context: grpc.ServicerContext) -> agent_pb2.AgentSession:
        return self._found(self._sessions, session_id, "agent session", context)

    def _record(self, turn_id: str, context: grpc.ServicerContext) -> _Record:
        return self._found(self._turns, turn_id, "agent turn", context)

    def _open_session(
        self,
        provider_name: str,
        model: str,
        metadata: struct_pb2.Struct | None,
        idempotency_key: str,
        *,
        client_ref: str = "",
    ) -> agent_pb2.AgentSession:
        """A new active session (the one of a repeated idempotency key); under the lock."""
        key = ("session", idempotency_key)
        if idempotency_key and key in self._by_key:
            return self._sessions[self._by_key[key]]
        session = agent_pb2.AgentSession(
            provider_name=provider_name, model=model, client_ref=client_ref, metadata=metadata
        )
        session.id = self._new_id("session")
        session.state = agent_pb2.AGENT_SESSION_STATE_ACTIVE
        session.created_at.CopyFrom(now())
        session.updated_at.CopyFrom(session.created_at)
        self._sessions[session.id] = session
        if idempotency_key:
            self._by_key[key] = session.id
        return session

    def _add_turn(
        self,
        session: agent_pb2.AgentSession,
        messages: Iterable[agent_pb2.AgentMessage],
        model: str,
        idempotency_key: str,
    ) -> agent_pb2.AgentTurn:
        """Add a pending turn to ``session`` and start the responder on it; return a copy."""
        with self._lock:
            key = ("turn", idempotency_key)
            if idempotency_key and key in self._by_key:
                return copy(self._turns[self._by_key[key]].turn)
            stamp = now()
            turn = agent_pb2.AgentTurn(
                id=self._new_id("turn"),
                session_id=session.id,
                provider_name=session.provider_name,
                model=model or session.model,
                status=agent_pb2.AGENT_EXECUTION_STATUS_PENDING,
                messages=messages,
                created_at=stamp,
            )
            self._turns[turn.id] = _Record(turn)
            if idempotency_key:
                self._by_key[key] = turn.id
            session.last_turn_at.CopyFrom(stamp)
            answer = copy(turn)
        if self.responder is not None:
            threading.Thread(
                target=self.run_turn, args=(turn.id,), name="gestalt-agent-turn", daemon=True
            ).start()
        return answer

    def _append(
        self, record: _Record, type: str, data: Mapping[str, Any] | None, source: str
    ) -> int:
        seq = len(record.events) + 1
        record.events.append(
            agent_pb2.AgentTurnEvent(
                id=f"{record.turn.id}-event-{seq}",
                turn_id=record.turn.id,
                seq=seq,
                type=type,
                source=source,
                data=None if data is None else _s.struct_to_pb(dict(data)),
                created_at=now(),
            )
        )
        self._lock.notify_all()
        return seq

    def _emit(self, turn_id: str, type: str, data: Mapping[str, Any] | None, *, source: str) -> int:
        with self._lock:
            record = self._turns[turn_id]
            if record.turn.status == agent_pb2.AGENT_EXECUTION_STATUS_CANCELED:
                raise _Canceled(turn_id)
            return self._append(record, type, data, source)

    def _finish(
        self,
        turn_id: str,
        status: Status.ValueType,
        event: str,
        data: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> bool:
        """Record the last event and settle a turn still at work; False if it had settled."""
        with self._lock:
            record = self._turns[turn_id]
            turn = record.turn
            if turn.status not in _OPEN:
                return False
            self._append(record, event, data, "host")
            turn.status = status
            turn.completed_at.CopyFrom(now())
            for name, value in fields.items():
                if name == "structured_output":
                    turn.structured_output.CopyFrom(_s.struct_to_pb(dict(value)))
                else:
                    setattr(turn, name, value)
            return True

    def _ask(
        self,
        turn_id: str,
        prompt: str,
        type: AgentInteractionType,
        title: str,
        request: Mapping[str, Any] | None,
        timeout: float | None,
    ) -> dict[str, Any]:
        interaction_id = self._new_id("interaction")
        with self._lock:
            record = self._turns[turn_id]
            if record.turn.status == agent_pb2.AGENT_EXECUTION_STATUS_CANCELED:
                raise _Canceled(turn_id)
            interaction = agent_pb2.AgentInteraction(
                id=interaction_id,
                type=int(type),  # type: ignore[arg-type]
                state=agent_pb2.AGENT_INTERACTION_STATE_PENDING,
                title=title,
                prompt=prompt,
                request=None if request is None else _s.struct_to_pb(dict(request)),
                created_at=now(),
                turn_id=turn_id,
                session_id=record.turn.session_id,
            )
            record.interactions[interaction_id] = interaction
            record.turn.status = agent_pb2.AGENT_EXECUTION_STATUS_WAITING_FOR_INPUT
            self._lock.notify_all()
        self._emit(
            turn_id, "interaction.requested", {"interaction_id": interaction_id}, source="host"
        )
        with self._lock:
            done = self._lock.wait_for(
                lambda: (
                    interaction.state != agent_pb2.AGENT_INTERACTION_STATE_PENDING
                    or record.turn.status == agent_pb2.AGENT_EXECUTION_STATUS_CANCELED
                ),
                timeout,
            )
            if record.turn.status == agent_pb2.AGENT_EXECUTION_STATUS_CANCELED:
                raise _Canceled(turn_id)
            if not done:
                raise TimeoutError(f"interaction {interaction_id} was not resolved in time")
            record.turn.status = agent_pb2.AGENT_EXECUTION_STATUS_RUNNING
            return _s.struct_from_pb(interaction.resolution)

    def run_turn(self, turn_id: str, responder: Responder | None = None) -> AgentTurn:
        """Run a pending turn now, in this thread, with ``responder`` (else the service's).

        Returns the settled turn. Used by the service's own threads and by tests that
        drive turns themselves (``responder=None`` on the service).
        """
        answer = responder or self.responder or echo
        with self._lock:
            record = self._turns[turn_id]
            if record.turn.status != agent_pb2.AGENT_EXECUTION_STATUS_PENDING:
                raise ValueError(f"turn {turn_id} is not pending")
            record.turn.status = agent_pb2.AGENT_EXECUTION_STATUS_RUNNING
            record.turn.started_at.CopyFrom(now())
            snapshot = AgentTurn.from_pb(record.turn)
        try:
            self._emit(turn_id, "turn.started", None, source="host")
            result = answer(LocalTurn(self, snapshot))
            fields: dict[str, Any]
            if isinstance(result, str):
                event, data = "assistant.message", {"text": result}
                fields = {"output_text": result}
            elif isinstance(result, Mapping):
                event, data = "assistant.output", dict(result)
                fields = {"structured_output": result}
            else:
                raise TypeError(
                    f"a responder returns str or a mapping, not {type(result).__name__}"
                )
            self._emit(turn_id, event, data, source="agent")
            status = agent_pb2.AGENT_EXECUTION_STATUS_SUCCEEDED
            self._finish(turn_id, status, "turn.completed", None, **fields)
        except _Canceled:
            pass
        except Exception as exc:  # the turn fails with the reason; the service stays up
            message = str(exc) or type(exc).__name__
            self._finish(
                turn_id,
                agent_pb2.AGENT_EXECUTION_STATUS_FAILED,
                "turn.failed",
                {"error": message},
                status_message=message,
            )
        with self._lock:
            return AgentTurn.from_pb(self._turns[turn_id].turn)

    # -- sessions ------------------------------------------------------------------------

    def create_session(
        self, request: agent_pb2.AgentManagerCreateSessionRequest, context: grpc.ServicerContext
    ) -> agent_pb2.AgentSession:
        """Create a session with the named provider (idempotent per idempotency key)."""
        if not request.provider_name:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "provider_name is required")
        metadata = request.metadata if request.HasField("metadata") else None
        with self._lock:
            return self._open_session(
                request.provider_name,
                request.model,
                metadata,
                request.idempotency_key,
                client_ref=request.client_ref,
            )

    def get_session(
        self, request: agent_pb2.AgentManagerGetSessionRequest, context: grpc.ServicerContext
    ) -> agent_pb2.AgentSession:
        """Return one session."""
        with self._lock:
            return self._session(request.session_id, context)

    def list_sessions(
        self, request: agent_pb2.AgentManagerListSessionsRequest, context: grpc.ServicerContext
    ) -> agent_pb2.AgentManagerListSessionsResponse:
        """Sessions matching the provider and state filters, oldest first."""
        with self._lock:
            found = [
                session
                for session in self._sessions.values()
                if (not request.provider_name or session.provider_name == request.provider_name)
                and (not request.state or session.state == request.state)
            ]
        return agent_pb2.AgentManagerListSessionsResponse(sessions=_first(found, request.limit))

    def update_session(
        self, request: agent_pb2.AgentManagerUpdateSessionRequest, context: grpc.ServicerContext
    ) -> agent_pb2.AgentSession:
        """Change the fields the request sets (non-empty client_ref, a state, metadata)."""
        with self._lock:
            session = self._session(request.session_id, context)
            if request.client_ref:
                session.client_ref = request.client_ref
            if request.state:
                session.state = request.state
            if request.HasField("metadata"):
                session.metadata.CopyFrom(request.metadata)
            session.updated_at.CopyFrom(now())
            return session

    # -- turns ---------------------------------------------------------------------------

    def create_turn(
        self, request: agent_pb2.AgentManagerCreateTurnRequest, context: grpc.ServicerContext
    ) -> agent_pb2.AgentTurn:
        """Add a pending turn to a session and start the responder on it."""
        with self._lock:
            session = self._session(request.session_id, context)
            if session.state == agent_pb2.AGENT_SESSION_STATE_ARCHIVED:
                context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"agent session {session.id!r} is archived",
                )
        return self._add_turn(session, request.messages, request.model, request.idempotency_key)

    def get_turn(
        self, request: agent_pb2.AgentManagerGetTurnRequest, context: grpc.ServicerContext
    ) -> agent_pb2.AgentTurn:
        """Return one turn as it stands."""
        with self._lock:
            return self._record(request.turn_id, context).turn

    def list_turns(
        self, request: agent_pb2.AgentManagerListTurnsRequest, context: grpc.ServicerContext
    ) -> agent_pb2.AgentManagerListTurnsResponse:
        """The turns of a session (in a status when given), oldest first."""
        with self._lock:
            self._session(request.session_id, context)
            found = [
                record.turn
                for record in self._turns.values()
                if record.turn.session_id == request.session_id
                and (not request.status or record.turn.status == request.status)
            ]
        return agent_pb2.AgentManagerListTurnsResponse(turns=_first(found, request.limit))

    def cancel_turn(
        self, request: agent_pb2.AgentManagerCancelTurnRequest, context: grpc.ServicerContext
    ) -> agent_pb2.AgentTurn:
        """Cancel a turn that has not finished; a finished turn is returned unchanged."""
        with self._lock:
            self._record(request.turn_id, context)
        self._finish(
            request.turn_id,
            agent_pb2.AGENT_EXECUTION_STATUS_CANCELED,
            "turn.canceled",
            status_message=request.reason,
        )
        with self._lock:
            return self._turns[request.turn_id].turn

    def list_turn_events(
        self, request: agent_pb2.AgentManagerListTurnEventsRequest, context: grpc.ServicerContext
    ) -> agent_pb2.AgentManagerListTurnEventsResponse:
        """Events with a seq above ``after_seq``, at most ``limit`` when it is positive."""
        with self._lock:
            events = self._record(request.turn_id, context).events[max(request.after_seq, 0) :]
        return agent_pb2.AgentManagerListTurnEventsResponse(events=_first(events, request.limit))

    def list_interactions(
        self, request: agent_pb2.AgentManagerListInteractionsRequest, context: grpc.ServicerContext
    ) -> agent_pb2.AgentManagerListInteractionsResponse:
        """The interactions a turn raised, oldest first."""
        with self._lock:
            found = list(self._record(request.turn_id, context).interactions.values())
        return agent_pb2.AgentManagerListInteractionsResponse(interactions=found)

    def resolve_interaction(
        self,
        request: agent_pb2.AgentManagerResolveInteractionRequest,
        context: grpc.ServicerContext,
    ) -> agent_pb2.AgentInteraction:
        """Answer a pending interaction; the waiting responder goes on."""
        with self._lock:
            record = self._record(request.turn_id, context)
            interaction = record.interactions.get(request.interaction_id)
            if interaction is None:
                context.abort(
                    grpc.StatusCode.NOT_FOUND,
                    f"interaction {request.interaction_id!r} not found",
                )
            if interaction.state != agent_pb2.AGENT_INTERACTION_STATE_PENDING:
                context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"interaction {request.interaction_id!r} is not pending",
                )
            interaction.state = agent_pb2.AGENT_INTERACTION_STATE_RESOLVED
            interaction.resolution.CopyFrom(request.resolution)
            interaction.resolved_at.CopyFrom(now())
            self._lock.notify_all()
            answer = agent_pb2.AgentInteraction()
            answer.CopyFrom(interaction)
        return answer

    def run_target(
        self,
        target: BoundWorkflowAgentTarget,
        token: str = "",
        *,
        idempotency_key: str = "",
        timeout: float = 60.0,
    ) -> AgentTurn:
        """Run a workflow's agent target, in this thread, and return the settled turn.

        A new session with the target's provider, model and metadata gets one turn with the
        target's messages followed by its prompt as a user message; the service's responder
        answers it (a service without one leaves it to :meth:`run_turn`). ``token`` is the
        invocation token the run acts with. A turn still at work after the target's
        ``timeout_seconds`` (else ``timeout``) is canceled, and ``TimeoutError`` raised.
        """
        self._seen(token)
        agent = target.to_pb()
        if not agent.provider_name:
            raise ValueError("the agent target names no provider")
        messages = list(agent.messages)
        if agent.prompt:
            messages.append(agent_pb2.AgentMessage(role="user", text=agent.prompt))
        metadata = agent.metadata if agent.HasField("metadata") else None
        session_key = f"{idempotency_key}-session" if idempotency_key else ""
        with self._lock:
            session = self._open_session(agent.provider_name, agent.model, metadata, session_key)
        turn = self._add_turn(session, messages, agent.model, idempotency_key)
        record = self._turns[turn.id]
        try:
            with self._lock:
                limit = agent.timeout_seconds or timeout
                self._wait(lambda: record.turn.status not in _OPEN, limit, f"agent turn {turn.id}")
        except TimeoutError:
            status = agent_pb2.AGENT_EXECUTION_STATUS_CANCELED
            self._finish(turn.id, status, "turn.canceled", status_message="timed out")
            raise
        with self._lock:
            return AgentTurn.from_pb(record.turn)

    # -- reading from Python ---------------------------------------------------------------

    def interactions(self, turn_id: str) -> list[AgentInteraction]:
        """The interactions of a turn, for tests."""
        with self._lock:
            return [AgentInteraction.from_pb(i) for i in self._turns[turn_id].interactions.values()]


_REGISTER = noting_tokens(AGENT_MANAGER_HOST_METHODS, add_agent_manager_host_to_server)
_SERVED = Served("agent manager", "agent-manager", _REGISTER, LocalServer)


def serve_agent_manager(
    address: Where, *, service: AgentManagerService | None = None, **options: Unpack[ServeOptions]
) -> LocalServer[AgentManagerService]:
    """Serve an agent manager on ``address`` (socket path, ``unix://…`` or ``tcp://host:port``).

    ``service`` defaults to a new :class:`AgentManagerService` with the echo responder;
    ``options`` are those of every local server (:class:`~gestalt.local.ServeOptions`, 8
    threads). Returns once the server is listening.
    """
    chosen = AgentManagerService() if service is None else service
    return _SERVED.serve(address, lambda: chosen, options)
