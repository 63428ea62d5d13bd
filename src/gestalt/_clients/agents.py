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
from typing import Any, Generic, TypeVar

from gestalt._clients.calls import Call, Scope, _AioClient, _Client, _SyncClient
from gestalt._clients.errors import ErrorMap, HostServiceTimeoutError
from gestalt._clients.transport import AGENT_HOST, AGENT_MANAGER
from gestalt.gen.hostcalls import count, each, required, struct, text
from gestalt.gen.v1 import agent_pb2
from gestalt.gen.v1.agent_clients import (
    AgentHostClient,
    AgentManagerHostClient,
    AsyncAgentHostClient,
    AsyncAgentManagerHostClient,
)
from gestalt.gen.v1.agent_methods import AgentHostMethods, AgentManagerHostMethods
from gestalt.gen.v1.agent_mirrors import (
    AgentExecutionStatus,
    AgentMessage,
    AgentToolRef,
    AgentToolSourceMode,
    AgentTurn,
    AgentTurnEvent,
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


# -- AgentManagerHost: the typed forms follow from the proto (gestalt.gen.v1.agent_methods)


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
        tool_refs=each("tool_refs", tool_refs, AgentToolRef),
        tool_source=AgentToolSourceMode(tool_source).value,  # type: ignore[arg-type]
        response_schema=struct("response_schema", response_schema),
        metadata=struct("metadata", metadata),
        provider_options=struct("provider_options", provider_options),
        idempotency_key=scope.key(idempotency_key),
        invocation_token=scope.invocation_token,
    )


#: What following a turn gives: an iterator on the sync client, an async one on the asyncio.
_Events = TypeVar("_Events", Iterator[AgentTurnEvent], AsyncIterator[AgentTurnEvent])


class _AgentManagerCalls(AgentManagerHostMethods, _Client, Generic[_Events]):
    """The AgentManagerHost methods and constructor, shared by :class:`AgentManager` and its
    asyncio twin; each twin runs the polling plan of :meth:`turn_events` with its driver."""

    __slots__ = ()

    def __init__(self, invocation_token: str, *, timeout: float | None = None) -> None:
        scope = Scope(invocation_token)
        super().__init__(AGENT_MANAGER.endpoint(), self._stubs, AGENT_ERRORS, scope, timeout)

    create_turn = Call(
        "create_turn", agent_pb2.AgentManagerCreateTurnRequest, _create_turn, AgentTurn.from_pb
    )

    def turn_events(
        self,
        turn_id: str,
        *,
        after_seq: int = 0,
        poll_interval: float = 0.5,
        timeout: float | None = None,
    ) -> _Events:
        """Yield the events of ``turn_id`` with a seq above ``after_seq`` as they arrive.

        An iterator of ``AgentTurnEvent`` mirrors (an async iterator on
        :class:`AsyncAgentManager`). Polls every ``poll_interval`` seconds while nothing new
        is recorded; ends once the turn has settled (no longer pending or running) and all its
        events were yielded. Raises :class:`HostServiceTimeoutError` when the turn has not
        settled after ``timeout`` seconds.
        """
        return self._run(_follow(self._scope, turn_id, after_seq, True, poll_interval, timeout))

    def _run(self, plan: _Plan) -> _Events:
        """The items ``plan`` emits, fetched through this client."""
        raise NotImplementedError


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
            request = calls.list_turn_events.build(scope, turn_id, after_seq=seq)
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
        turn: AgentTurn = yield _Fetch(calls.get_turn, calls.get_turn.build(scope, turn_id))
        if turn.status not in WORKING:
            settled = turn  # one more look at the events, then done
        else:
            yield _nap(turn_id, interval, deadline)


def _advance(plan: _Plan, reply: Any) -> _Step | None:
    """The plan's next step after handing it ``reply``; None once it is done."""
    try:
        return plan.send(reply)
    except StopIteration:
        return None


def _send(client: _SyncClient | _AioClient, fetch: _Fetch) -> Any:
    """Call the fetch step's method on ``client`` (an awaitable for an asyncio client)."""
    return fetch.call.__get__(client, type(client))(fetch.request)


def _drive(client: _SyncClient, plan: _Plan) -> Iterator[Any]:
    step = _advance(plan, None)
    while step is not None:
        if isinstance(step, _Sleep):
            time.sleep(step.seconds)
        elif isinstance(step, _Emit):
            yield step.item
        reply = step.call.decode(_send(client, step)) if isinstance(step, _Fetch) else None
        step = _advance(plan, reply)


async def _adrive(client: _AioClient, plan: _Plan) -> AsyncIterator[Any]:
    step = _advance(plan, None)
    while step is not None:
        if isinstance(step, _Sleep):
            await asyncio.sleep(step.seconds)
        elif isinstance(step, _Emit):
            yield step.item
        reply = step.call.decode(await _send(client, step)) if isinstance(step, _Fetch) else None
        step = _advance(plan, reply)


class AgentManager(_AgentManagerCalls[Iterator[AgentTurnEvent]], _SyncClient):
    """Client for the host's agent manager: sessions and turns with agent providers.

    ``invocation_token`` is the token of the Execute call the work is done for
    (``request.invocation_token``; :meth:`Request.agent_manager` builds the client with it).
    The host is found through ``GESTALT_AGENT_MANAGER_SOCKET`` (and its ``_TOKEN`` twin);
    ``timeout`` is the deadline in seconds of each call. Use as a context manager or call
    :meth:`close`.
    """

    __slots__ = ()
    _stubs = AgentManagerHostClient

    def _run(self, plan: _Plan) -> Iterator[AgentTurnEvent]:
        return _drive(self, plan)

    def wait(
        self, turn_id: str, *, timeout: float | None = None, poll_interval: float = 0.5
    ) -> AgentTurn:
        """Poll ``turn_id`` until it is no longer pending or running, and return it.

        Raises :class:`HostServiceTimeoutError` when ``timeout`` seconds pass first.
        """
        plan = _follow(self._scope, turn_id, 0, False, poll_interval, timeout)
        turn: AgentTurn
        (turn,) = _drive(self, plan)
        return turn


class AsyncAgentManager(_AgentManagerCalls[AsyncIterator[AgentTurnEvent]], _AioClient):
    """Asyncio client for the host's agent manager; the methods of :class:`AgentManager`.

    Every call returns an awaitable; :meth:`turn_events` is an async iterator. Close with
    ``await manager.close()`` or ``async with``.
    """

    __slots__ = ()
    _stubs = AsyncAgentManagerHostClient

    def _run(self, plan: _Plan) -> AsyncIterator[AgentTurnEvent]:
        return _adrive(self, plan)

    async def wait(
        self, turn_id: str, *, timeout: float | None = None, poll_interval: float = 0.5
    ) -> AgentTurn:
        """Poll ``turn_id`` until it settles and return it (see :meth:`AgentManager.wait`)."""
        plan = _follow(self._scope, turn_id, 0, False, poll_interval, timeout)
        turns = [turn async for turn in _adrive(self, plan)]
        return turns[0]  # type: ignore[no-any-return]


# -- AgentHost --------------------------------------------------------------------------------


class AgentHost(AgentHostMethods, _SyncClient):
    """Client an agent provider uses during a turn to search for and run tools.

    Found through ``GESTALT_AGENT_HOST_SOCKET`` (and its ``_TOKEN`` twin); ``timeout`` is the
    deadline in seconds of each call.
    """

    __slots__ = ()

    def __init__(self, *, timeout: float | None = None) -> None:
        super().__init__(AGENT_HOST.endpoint(), AgentHostClient, AGENT_ERRORS, Scope(), timeout)


class AsyncAgentHost(AgentHostMethods, _AioClient):
    """Asyncio client of the agent host; the methods of :class:`AgentHost` as awaitables."""

    __slots__ = ()

    def __init__(self, *, timeout: float | None = None) -> None:
        super().__init__(
            AGENT_HOST.endpoint(), AsyncAgentHostClient, AGENT_ERRORS, Scope(), timeout
        )
