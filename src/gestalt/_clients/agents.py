"""Clients for the host's agent services: AgentManagerHost and AgentHost.

:class:`AgentManager` drives agent sessions and turns through the host on behalf of the
Execute call whose invocation token it carries; :class:`AgentHost` is what an agent provider
calls during a turn to search and run tools. Each method is declared once (a
:class:`~gestalt._clients.calls.Call`) and works on the sync and the asyncio class alike: with
the raw request message it returns the raw response, with typed arguments the dataclass
mirrors of :mod:`gestalt.gen.v1.agent_mirrors`.

Following a turn: :meth:`AgentManager.turn_events` yields the turn's events as they are
recorded, polling ``ListTurnEvents`` with ``after_seq``, and ends once the turn has settled
(finished, failed, canceled or waiting for input) and every event was read;
:meth:`AgentManager.wait` polls until the turn settles and returns it. The polling plan is
written once (:func:`_follow`) and run by a sync or an asyncio driver.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gestalt._clients.calls import Call, Scope, _AioClient, _SyncClient
from gestalt._clients.checks import count, required, struct, text
from gestalt._clients.errors import ErrorMap, HostServiceTimeoutError
from gestalt._clients.transport import AGENT_HOST, AGENT_MANAGER
from gestalt.gen.v1 import agent_pb2
from gestalt.gen.v1.agent_clients import (
    AgentHostClient,
    AgentManagerHostClient,
    AsyncAgentHostClient,
    AsyncAgentManagerHostClient,
)
from gestalt.gen.v1.agent_mirrors import (
    AgentExecutionStatus,
    AgentInteraction,
    AgentMessage,
    AgentSession,
    AgentSessionState,
    AgentToolRef,
    AgentToolSourceMode,
    AgentTurn,
    AgentTurnEvent,
    ExecuteAgentToolResponse,
    SearchAgentToolsResponse,
)

__all__ = ["AgentHost", "AgentManager", "AsyncAgentHost", "AsyncAgentManager"]

#: Failures of the agent services: every one a HostServiceError carrying its status code.
AGENT_ERRORS = ErrorMap("agent", {})

#: Statuses in which a turn is still working; any other status means it has settled.
WORKING = frozenset({AgentExecutionStatus.PENDING, AgentExecutionStatus.RUNNING})


# -- argument checks -----------------------------------------------------------------------


def _messages(value: str | Iterable[AgentMessage | str]) -> list[agent_pb2.AgentMessage]:
    items: Iterable[AgentMessage | str] = [value] if isinstance(value, str) else value
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(agent_pb2.AgentMessage(role="user", text=item))
        elif isinstance(item, AgentMessage):
            out.append(item.to_pb())
        else:
            raise TypeError(f"messages must be str or AgentMessage, not {type(item).__name__}")
    return out


def _tool_refs(value: Iterable[AgentToolRef]) -> list[agent_pb2.AgentToolRef]:
    out = []
    for ref in value:
        if not isinstance(ref, AgentToolRef):
            raise TypeError(f"tool refs must be AgentToolRef, not {type(ref).__name__}")
        out.append(ref.to_pb())
    return out


# -- AgentManagerHost requests -------------------------------------------------------------


def _create_session(
    scope: Scope,
    provider_name: str,
    *,
    model: str = "",
    client_ref: str = "",
    metadata: Mapping[str, Any] | None = None,
    provider_options: Mapping[str, Any] | None = None,
    idempotency_key: str = "",
) -> agent_pb2.AgentManagerCreateSessionRequest:
    """Create a session with the agent provider ``provider_name``; returns the session."""
    return agent_pb2.AgentManagerCreateSessionRequest(
        provider_name=required("provider_name", provider_name),
        model=text("model", model),
        client_ref=text("client_ref", client_ref),
        metadata=struct("metadata", metadata),
        provider_options=struct("provider_options", provider_options),
        idempotency_key=scope.key(idempotency_key),
        invocation_token=scope.invocation_token,
    )


def _get_session(scope: Scope, session_id: str) -> agent_pb2.AgentManagerGetSessionRequest:
    """Return the session ``session_id``."""
    return agent_pb2.AgentManagerGetSessionRequest(
        session_id=required("session_id", session_id), invocation_token=scope.invocation_token
    )


def _list_sessions(
    scope: Scope,
    provider_name: str = "",
    *,
    state: AgentSessionState = AgentSessionState.UNSPECIFIED,
    limit: int = 0,
    summary_only: bool = False,
) -> agent_pb2.AgentManagerListSessionsRequest:
    """List sessions (of ``provider_name`` when given, in ``state`` when given)."""
    return agent_pb2.AgentManagerListSessionsRequest(
        provider_name=text("provider_name", provider_name),
        state=AgentSessionState(state).value,  # type: ignore[arg-type]
        limit=count("limit", limit),
        summary_only=bool(summary_only),
        invocation_token=scope.invocation_token,
    )


def _update_session(
    scope: Scope,
    session_id: str,
    *,
    client_ref: str = "",
    state: AgentSessionState = AgentSessionState.UNSPECIFIED,
    metadata: Mapping[str, Any] | None = None,
) -> agent_pb2.AgentManagerUpdateSessionRequest:
    """Change a session's client reference, state or metadata; returns the session."""
    return agent_pb2.AgentManagerUpdateSessionRequest(
        session_id=required("session_id", session_id),
        client_ref=text("client_ref", client_ref),
        state=AgentSessionState(state).value,  # type: ignore[arg-type]
        metadata=struct("metadata", metadata),
        invocation_token=scope.invocation_token,
    )


def _create_turn(
    scope: Scope,
    session_id: str,
    messages: str | Sequence[AgentMessage | str] = (),
    *,
    model: str = "",
    tool_refs: Sequence[AgentToolRef] = (),
    tool_source: AgentToolSourceMode = AgentToolSourceMode.UNSPECIFIED,
    response_schema: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    provider_options: Mapping[str, Any] | None = None,
    idempotency_key: str = "",
) -> agent_pb2.AgentManagerCreateTurnRequest:
    """Start a turn in ``session_id`` with ``messages`` (a str is one user message).

    Returns the turn as created; follow it with :meth:`turn_events` or :meth:`wait`.
    """
    return agent_pb2.AgentManagerCreateTurnRequest(
        session_id=required("session_id", session_id),
        model=text("model", model),
        messages=_messages(messages),
        tool_refs=_tool_refs(tool_refs),
        tool_source=AgentToolSourceMode(tool_source).value,  # type: ignore[arg-type]
        response_schema=struct("response_schema", response_schema),
        metadata=struct("metadata", metadata),
        provider_options=struct("provider_options", provider_options),
        idempotency_key=scope.key(idempotency_key),
        invocation_token=scope.invocation_token,
    )


def _get_turn(scope: Scope, turn_id: str) -> agent_pb2.AgentManagerGetTurnRequest:
    """Return the turn ``turn_id``."""
    return agent_pb2.AgentManagerGetTurnRequest(
        turn_id=required("turn_id", turn_id), invocation_token=scope.invocation_token
    )


def _list_turns(
    scope: Scope,
    session_id: str,
    *,
    status: AgentExecutionStatus = AgentExecutionStatus.UNSPECIFIED,
    limit: int = 0,
    summary_only: bool = False,
) -> agent_pb2.AgentManagerListTurnsRequest:
    """List the turns of ``session_id`` (in ``status`` when given)."""
    return agent_pb2.AgentManagerListTurnsRequest(
        session_id=required("session_id", session_id),
        status=AgentExecutionStatus(status).value,  # type: ignore[arg-type]
        limit=count("limit", limit),
        summary_only=bool(summary_only),
        invocation_token=scope.invocation_token,
    )


def _cancel_turn(
    scope: Scope, turn_id: str, reason: str = ""
) -> agent_pb2.AgentManagerCancelTurnRequest:
    """Ask for the turn ``turn_id`` to stop; returns the turn as it stands afterwards."""
    return agent_pb2.AgentManagerCancelTurnRequest(
        turn_id=required("turn_id", turn_id),
        reason=text("reason", reason),
        invocation_token=scope.invocation_token,
    )


def _list_turn_events(
    scope: Scope, turn_id: str, *, after_seq: int = 0, limit: int = 0
) -> agent_pb2.AgentManagerListTurnEventsRequest:
    """One page of the events of ``turn_id`` with a seq above ``after_seq``, in seq order."""
    return agent_pb2.AgentManagerListTurnEventsRequest(
        turn_id=required("turn_id", turn_id),
        after_seq=count("after_seq", after_seq),
        limit=count("limit", limit),
        invocation_token=scope.invocation_token,
    )


def _list_interactions(scope: Scope, turn_id: str) -> agent_pb2.AgentManagerListInteractionsRequest:
    """List the interactions raised by the turn ``turn_id``."""
    return agent_pb2.AgentManagerListInteractionsRequest(
        turn_id=required("turn_id", turn_id), invocation_token=scope.invocation_token
    )


def _resolve_interaction(
    scope: Scope, turn_id: str, interaction_id: str, resolution: Mapping[str, Any]
) -> agent_pb2.AgentManagerResolveInteractionRequest:
    """Answer the pending interaction ``interaction_id`` of ``turn_id`` with ``resolution``."""
    return agent_pb2.AgentManagerResolveInteractionRequest(
        turn_id=required("turn_id", turn_id),
        interaction_id=required("interaction_id", interaction_id),
        resolution=struct("resolution", resolution),
        invocation_token=scope.invocation_token,
    )


def _sessions(response: agent_pb2.AgentManagerListSessionsResponse) -> list[AgentSession]:
    return [AgentSession.from_pb(item) for item in response.sessions]


def _turns(response: agent_pb2.AgentManagerListTurnsResponse) -> list[AgentTurn]:
    return [AgentTurn.from_pb(item) for item in response.turns]


def _events(response: agent_pb2.AgentManagerListTurnEventsResponse) -> list[AgentTurnEvent]:
    return [AgentTurnEvent.from_pb(item) for item in response.events]


def _interactions(
    response: agent_pb2.AgentManagerListInteractionsResponse,
) -> list[AgentInteraction]:
    return [AgentInteraction.from_pb(item) for item in response.interactions]


M = agent_pb2


class _AgentManagerCalls:
    """The AgentManagerHost methods, shared by :class:`AgentManager` and its asyncio twin."""

    __slots__ = ()

    create_session = Call(
        "create_session",
        M.AgentManagerCreateSessionRequest,
        _create_session,
        AgentSession.from_pb,
    )
    get_session = Call(
        "get_session", M.AgentManagerGetSessionRequest, _get_session, AgentSession.from_pb
    )
    list_sessions = Call(
        "list_sessions", M.AgentManagerListSessionsRequest, _list_sessions, _sessions
    )
    update_session = Call(
        "update_session",
        M.AgentManagerUpdateSessionRequest,
        _update_session,
        AgentSession.from_pb,
    )
    create_turn = Call(
        "create_turn", M.AgentManagerCreateTurnRequest, _create_turn, AgentTurn.from_pb
    )
    get_turn = Call("get_turn", M.AgentManagerGetTurnRequest, _get_turn, AgentTurn.from_pb)
    list_turns = Call("list_turns", M.AgentManagerListTurnsRequest, _list_turns, _turns)
    cancel_turn = Call(
        "cancel_turn", M.AgentManagerCancelTurnRequest, _cancel_turn, AgentTurn.from_pb
    )
    list_turn_events = Call(
        "list_turn_events", M.AgentManagerListTurnEventsRequest, _list_turn_events, _events
    )
    list_interactions = Call(
        "list_interactions",
        M.AgentManagerListInteractionsRequest,
        _list_interactions,
        _interactions,
    )
    resolve_interaction = Call(
        "resolve_interaction",
        M.AgentManagerResolveInteractionRequest,
        _resolve_interaction,
        AgentInteraction.from_pb,
    )


# -- following a turn: one plan, two drivers ------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Fetch:
    """Step: call ``call`` with ``request`` and send back the decoded result."""

    call: Call[Any, Any, Any, Any]
    request: Any


@dataclass(frozen=True, slots=True)
class _Sleep:
    """Step: wait ``seconds`` before the next step."""

    seconds: float


@dataclass(frozen=True, slots=True)
class _Emit:
    """Step: hand ``item`` to the caller."""

    item: Any


_Step = _Fetch | _Sleep | _Emit
_Plan = Generator[_Step, Any, None]


def _interval(poll_interval: float) -> float:
    if isinstance(poll_interval, bool) or not isinstance(poll_interval, int | float):
        raise TypeError(f"poll_interval must be a number, not {type(poll_interval).__name__}")
    if not 0 < poll_interval < math.inf:
        raise ValueError(f"poll_interval must be a positive number, got {poll_interval!r}")
    return float(poll_interval)


def _deadline(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    return time.monotonic() + timeout


def _nap(turn_id: str, interval: float, deadline: float | None) -> _Sleep:
    if deadline is None:
        return _Sleep(interval)
    left = deadline - time.monotonic()
    if left <= 0:
        raise HostServiceTimeoutError(f"turn {turn_id} did not settle in time")
    return _Sleep(min(interval, left))


def _follow(
    scope: Scope,
    turn_id: str,
    *,
    after_seq: int,
    events: bool,
    poll_interval: float,
    timeout: float | None,
) -> _Plan:
    """Poll a turn until it settles, emitting its events (``events``) and then the turn."""
    turn_id = required("turn_id", turn_id)
    interval, deadline = _interval(poll_interval), _deadline(timeout)
    seq = count("after_seq", after_seq)
    calls = _AgentManagerCalls
    settled: AgentTurn | None = None
    while True:
        if events:
            request = _list_turn_events(scope, turn_id, after_seq=seq)
            page: list[AgentTurnEvent] = yield _Fetch(calls.list_turn_events, request)
            for event in page:
                seq = max(seq, event.seq)
                yield _Emit(event)
            if page:
                continue
        if settled is not None:
            if not events:
                yield _Emit(settled)
            return
        turn: AgentTurn = yield _Fetch(calls.get_turn, _get_turn(scope, turn_id))
        if turn.status not in WORKING:
            settled = turn  # one more look at the events, then done
        else:
            yield _nap(turn_id, interval, deadline)


def _drive(client: _SyncClient, plan: _Plan) -> Iterator[Any]:
    reply: Any = None
    while True:
        try:
            step = plan.send(reply)
        except StopIteration:
            return
        reply = None
        if isinstance(step, _Emit):
            yield step.item
        elif isinstance(step, _Sleep):
            time.sleep(step.seconds)
        else:
            reply = step.call.__get__(client, type(client))(step.request)
            reply = step.call.decode(reply)


async def _adrive(client: _AioClient, plan: _Plan) -> AsyncIterator[Any]:
    reply: Any = None
    while True:
        try:
            step = plan.send(reply)
        except StopIteration:
            return
        reply = None
        if isinstance(step, _Emit):
            yield step.item
        elif isinstance(step, _Sleep):
            await asyncio.sleep(step.seconds)
        else:
            reply = step.call.decode(await step.call.__get__(client, type(client))(step.request))


class AgentManager(_AgentManagerCalls, _SyncClient):
    """Client for the host's agent manager: sessions and turns with agent providers.

    ``invocation_token`` is the token of the Execute call the work is done for
    (``request.invocation_token``; :meth:`Request.agent_manager` builds the client with it).
    The host is found through ``GESTALT_AGENT_MANAGER_SOCKET`` (and its ``_TOKEN`` twin);
    ``timeout`` is the deadline in seconds of each call. Use as a context manager or call
    :meth:`close`.
    """

    __slots__ = ()

    def __init__(self, invocation_token: str, *, timeout: float | None = None) -> None:
        scope = Scope(invocation_token)
        super().__init__(
            AGENT_MANAGER.endpoint(), AgentManagerHostClient, AGENT_ERRORS, scope, timeout
        )

    def turn_events(
        self,
        turn_id: str,
        *,
        after_seq: int = 0,
        poll_interval: float = 0.5,
        timeout: float | None = None,
    ) -> Iterator[AgentTurnEvent]:
        """Yield the events of ``turn_id`` with a seq above ``after_seq`` as they arrive.

        Polls every ``poll_interval`` seconds while nothing new is recorded; ends once the
        turn has settled (no longer pending or running) and all its events were yielded.
        Raises :class:`HostServiceTimeoutError` when the turn has not settled after
        ``timeout`` seconds.
        """
        plan = _follow(
            self._scope,
            turn_id,
            after_seq=after_seq,
            events=True,
            poll_interval=poll_interval,
            timeout=timeout,
        )
        return _drive(self, plan)

    def wait(
        self, turn_id: str, *, timeout: float | None = None, poll_interval: float = 0.5
    ) -> AgentTurn:
        """Poll ``turn_id`` until it is no longer pending or running, and return it.

        Raises :class:`HostServiceTimeoutError` when ``timeout`` seconds pass first.
        """
        plan = _follow(
            self._scope,
            turn_id,
            after_seq=0,
            events=False,
            poll_interval=poll_interval,
            timeout=timeout,
        )
        turn: AgentTurn
        (turn,) = _drive(self, plan)
        return turn


class AsyncAgentManager(_AgentManagerCalls, _AioClient):
    """Asyncio client for the host's agent manager; the methods of :class:`AgentManager`.

    Every call returns an awaitable; :meth:`turn_events` is an async iterator. Close with
    ``await manager.close()`` or ``async with``.
    """

    __slots__ = ()

    def __init__(self, invocation_token: str, *, timeout: float | None = None) -> None:
        scope = Scope(invocation_token)
        super().__init__(
            AGENT_MANAGER.endpoint(), AsyncAgentManagerHostClient, AGENT_ERRORS, scope, timeout
        )

    def turn_events(
        self,
        turn_id: str,
        *,
        after_seq: int = 0,
        poll_interval: float = 0.5,
        timeout: float | None = None,
    ) -> AsyncIterator[AgentTurnEvent]:
        """Async-iterate the events of ``turn_id`` as they arrive (see AgentManager)."""
        plan = _follow(
            self._scope,
            turn_id,
            after_seq=after_seq,
            events=True,
            poll_interval=poll_interval,
            timeout=timeout,
        )
        return _adrive(self, plan)

    async def wait(
        self, turn_id: str, *, timeout: float | None = None, poll_interval: float = 0.5
    ) -> AgentTurn:
        """Poll ``turn_id`` until it settles and return it (see :meth:`AgentManager.wait`)."""
        plan = _follow(
            self._scope,
            turn_id,
            after_seq=0,
            events=False,
            poll_interval=poll_interval,
            timeout=timeout,
        )
        turns = [turn async for turn in _adrive(self, plan)]
        return turns[0]  # type: ignore[no-any-return]


# -- AgentHost -----------------------------------------------------------------------------


def _search_tools(
    scope: Scope,
    session_id: str,
    turn_id: str,
    query: str = "",
    *,
    max_results: int = 0,
    candidate_limit: int = 0,
    load_refs: Sequence[AgentToolRef] = (),
    tool_grant: str = "",
) -> agent_pb2.SearchAgentToolsRequest:
    """Search the tools available to a turn; ``load_refs`` resolves earlier candidates."""
    return agent_pb2.SearchAgentToolsRequest(
        session_id=required("session_id", session_id),
        turn_id=required("turn_id", turn_id),
        query=text("query", query),
        max_results=count("max_results", max_results),
        candidate_limit=count("candidate_limit", candidate_limit),
        load_refs=_tool_refs(load_refs),
        tool_grant=text("tool_grant", tool_grant),
    )


def _execute_tool(
    scope: Scope,
    session_id: str,
    turn_id: str,
    tool_id: str,
    arguments: Mapping[str, Any] | None = None,
    *,
    tool_call_id: str = "",
    tool_grant: str = "",
    idempotency_key: str = "",
) -> agent_pb2.ExecuteAgentToolRequest:
    """Run one tool call on the host; returns its status and body."""
    return agent_pb2.ExecuteAgentToolRequest(
        session_id=required("session_id", session_id),
        turn_id=required("turn_id", turn_id),
        tool_call_id=text("tool_call_id", tool_call_id),
        tool_id=required("tool_id", tool_id),
        arguments=struct("arguments", arguments),
        tool_grant=text("tool_grant", tool_grant),
        idempotency_key=scope.key(idempotency_key),
    )


class _AgentHostCalls:
    """The AgentHost methods, shared by :class:`AgentHost` and :class:`AsyncAgentHost`."""

    __slots__ = ()

    search_tools = Call(
        "search_tools",
        M.SearchAgentToolsRequest,
        _search_tools,
        SearchAgentToolsResponse.from_pb,
    )
    execute_tool = Call(
        "execute_tool",
        M.ExecuteAgentToolRequest,
        _execute_tool,
        ExecuteAgentToolResponse.from_pb,
    )


class AgentHost(_AgentHostCalls, _SyncClient):
    """Client an agent provider uses during a turn to search for and run tools.

    Found through ``GESTALT_AGENT_HOST_SOCKET`` (and its ``_TOKEN`` twin); ``timeout`` is the
    deadline in seconds of each call.
    """

    __slots__ = ()

    def __init__(self, *, timeout: float | None = None) -> None:
        super().__init__(AGENT_HOST.endpoint(), AgentHostClient, AGENT_ERRORS, Scope(), timeout)


class AsyncAgentHost(_AgentHostCalls, _AioClient):
    """Asyncio client of the agent host; the methods of :class:`AgentHost` as awaitables."""

    __slots__ = ()

    def __init__(self, *, timeout: float | None = None) -> None:
        super().__init__(
            AGENT_HOST.endpoint(), AsyncAgentHostClient, AGENT_ERRORS, Scope(), timeout
        )
