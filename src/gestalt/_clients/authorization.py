"""Client for the host's authorization service (``GESTALT_AUTHORIZATION_SOCKET``).

Two layers on one connection:

* the published shape: :meth:`AuthorizationClient.evaluate`, ``search_resources``,
  ``search_subjects``, ``search_actions``, ``read_relationships`` and ``get_metadata`` take a
  request (a pb2 message, its dataclass mirror from ``gestalt.gen.v1.authorization_mirrors``
  or a dict in protobuf JSON form) and return the pb2 reply unchanged;
* typed forms: :meth:`~AuthorizationClient.check` answers a bool, ``check_many`` a list of
  them, the ``iter_*`` methods walk every page of a search or of the stored relationships and
  yield mirrors, and :meth:`~AuthorizationClient.write_relationships` adds and removes
  relationships.

Subjects and resources may be written ``"type:id"`` (split at the first colon), as mirrors or
as pb2 messages; actions as a name, a mirror or a message. Request building, validation and
reply decoding are the plain functions below, shared by :class:`AuthorizationClient` and its
asyncio twin :class:`AsyncAuthorizationClient`, which only move messages.

:func:`Authorization` returns one client shared by the process (built on first use, rebuilt
if closed), as the reference does. Failed calls raise
:class:`~gestalt._clients.errors.HostServiceError` with the status code (the reference let
raw ``grpc.RpcError`` escape; see the errors module, Q4).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeAlias, TypedDict, TypeVar, Unpack, cast

from gestalt._clients.calls import Scope, _AioClient, _Client, _SyncClient
from gestalt._clients.errors import AUTHORIZATION_ERRORS, HostServiceError
from gestalt._clients.transport import AUTHORIZATION, Endpoint, check_timeout
from gestalt.gen import support as _support
from gestalt.gen.hostcalls import Pages, TypedCall, nothing
from gestalt.gen.v1 import authorization_mirrors as mirrors
from gestalt.gen.v1 import authorization_pb2 as pb
from gestalt.gen.v1.authorization_clients import (
    AsyncAuthorizationProviderClient,
    AuthorizationProviderClient,
)
from gestalt.gen.v1.authorization_methods import AuthorizationProviderMethods

__all__ = [
    "ActionLike",
    "AsyncAuthorizationClient",
    "Authorization",
    "AuthorizationClient",
    "RelationshipKeyLike",
    "RelationshipLike",
    "ResourceLike",
    "SubjectLike",
]

#: A subject: ``"type:id"``, a mirror or a pb2 message.
SubjectLike: TypeAlias = "str | mirrors.Subject | pb.Subject"
#: A resource: ``"type:id"``, a mirror or a pb2 message.
ResourceLike: TypeAlias = "str | mirrors.Resource | pb.Resource"
#: An action: its name, a mirror or a pb2 message.
ActionLike: TypeAlias = "str | mirrors.Action | pb.Action"
#: A relationship: a mirror, a pb2 message or ``(subject, relation, resource)``.
RelationshipLike: TypeAlias = (
    "mirrors.Relationship | pb.Relationship | tuple[SubjectLike, str, ResourceLike]"
)
#: A relationship to delete: a key or relationship (mirror or message) or a triple.
RelationshipKeyLike: TypeAlias = "mirrors.RelationshipKey | pb.RelationshipKey | RelationshipLike"


# -- request building (shared by both clients) ---------------------------------------------


def _typed_pair(value: str, what: str) -> tuple[str, str]:
    kind, sep, ident = value.partition(":")
    if not sep or not kind.strip() or not ident.strip():
        raise ValueError(f"{what} {value!r} must be written 'type:id'")
    return kind.strip(), ident.strip()


Entity = TypeVar("Entity", pb.Subject, pb.Resource)


def _entity(value: object, cls: type[Entity], mirror: type[Any], what: str) -> Entity:
    if isinstance(value, cls):
        return value
    if isinstance(value, mirror):
        return cast(Entity, value.to_pb())
    if isinstance(value, str):
        kind, ident = _typed_pair(value, what)
        return cls(type=kind, id=ident)
    name = cls.__name__
    raise TypeError(f"{what} must be 'type:id', a {name} or a pb2 {name}, not {_name(value)}")


def subject_pb(value: SubjectLike) -> pb.Subject:
    """A subject as its pb2 message; ``"user:alice"`` is type ``user``, id ``alice``."""
    return _entity(value, pb.Subject, mirrors.Subject, "subject")


def resource_pb(value: ResourceLike) -> pb.Resource:
    """A resource as its pb2 message; ``"doc:7"`` is type ``doc``, id ``7``."""
    return _entity(value, pb.Resource, mirrors.Resource, "resource")


def action_pb(value: ActionLike) -> pb.Action:
    """An action as its pb2 message."""
    if isinstance(value, pb.Action):
        return value
    if isinstance(value, mirrors.Action):
        return value.to_pb()
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("action name must not be blank")
        return pb.Action(name=value.strip())
    raise TypeError(f"action must be a name, an Action or a pb2 Action, not {_name(value)}")


def _name(value: object) -> str:
    return type(value).__name__


def _context(context: Mapping[str, Any] | None) -> Any:
    return None if context is None else _support.struct_to_pb(dict(context))


def _page_size(page_size: int) -> int:
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 0:
        raise ValueError(f"page_size must be a non-negative int, got {page_size!r}")
    return page_size


def evaluation(
    subject: SubjectLike,
    action: ActionLike,
    resource: ResourceLike,
    context: Mapping[str, Any] | None = None,
) -> pb.AccessEvaluationRequest:
    """The question "may ``subject`` do ``action`` on ``resource``?" as a message."""
    return pb.AccessEvaluationRequest(
        subject=subject_pb(subject),
        action=action_pb(action),
        resource=resource_pb(resource),
        context=_context(context),
    )


def evaluations(
    checks: Iterable[tuple[SubjectLike, ActionLike, ResourceLike]],
) -> pb.AccessEvaluationsRequest:
    """Several questions, in order, for one ``EvaluateMany`` call."""
    return pb.AccessEvaluationsRequest(
        requests=[evaluation(*_triple(item, "check")) for item in checks]
    )


def _triple(item: Any, what: str) -> tuple[Any, Any, Any]:
    if not isinstance(item, tuple) or len(item) != 3:
        raise TypeError(f"each {what} must be a (subject, action/relation, resource) tuple")
    return item


def decisions(
    request: pb.AccessEvaluationsRequest, response: pb.AccessEvaluationsResponse
) -> list[bool]:
    """The ``allowed`` flags of an ``EvaluateMany`` reply, one per question."""
    if len(response.decisions) != len(request.requests):
        raise HostServiceError(
            f"authorization answered {len(response.decisions)} decisions "
            f"for {len(request.requests)} questions"
        )
    return [decision.allowed for decision in response.decisions]


def relationship_pb(value: RelationshipLike) -> pb.Relationship:
    """A relationship to write, as its pb2 message."""
    if isinstance(value, pb.Relationship):
        return value
    if isinstance(value, mirrors.Relationship):
        return value.to_pb()
    subject, relation, resource = _triple(value, "relationship")
    return pb.Relationship(
        subject=subject_pb(subject), relation=_relation(relation), resource=resource_pb(resource)
    )


def relationship_key_pb(value: RelationshipKeyLike) -> pb.RelationshipKey:
    """A relationship to delete, as its pb2 key."""
    if isinstance(value, pb.RelationshipKey):
        return value
    if isinstance(value, mirrors.RelationshipKey):
        return value.to_pb()
    if isinstance(value, mirrors.Relationship):
        value = value.to_pb()
    if isinstance(value, pb.Relationship):
        return pb.RelationshipKey(
            subject=value.subject, relation=value.relation, resource=value.resource
        )
    subject, relation, resource = _triple(value, "relationship")
    return pb.RelationshipKey(
        subject=subject_pb(subject), relation=_relation(relation), resource=resource_pb(resource)
    )


def _relation(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"relation must be a non-blank str, got {value!r}")
    return value.strip()


def write_request(
    writes: Iterable[RelationshipLike] | pb.WriteRelationshipsRequest,
    deletes: Iterable[RelationshipKeyLike] = (),
    model_id: str = "",
) -> pb.WriteRelationshipsRequest:
    """One ``WriteRelationships`` message (a raw request passes through unchanged)."""
    if isinstance(writes, pb.WriteRelationshipsRequest):
        return writes
    return pb.WriteRelationshipsRequest(
        writes=[relationship_pb(item) for item in writes],
        deletes=[relationship_key_pb(item) for item in deletes],
        model_id=model_id,
    )


class SearchOptions(TypedDict, total=False):
    """Keyword options of the search iterators: decision ``context``, ``page_size`` (zero:
    the provider's default) and ``timeout`` of each page's call."""

    context: Mapping[str, Any] | None
    page_size: int
    timeout: float | None


class RelationshipFilter(TypedDict, total=False):
    """Keyword options of ``iter_relationships``: the filter (unset: any), ``page_size``,
    ``model_id`` and ``timeout`` of each page's call."""

    subject: SubjectLike | None
    relation: str
    resource: ResourceLike | None
    page_size: int
    model_id: str
    timeout: float | None


Search = TypeVar(
    "Search", pb.ResourceSearchRequest, pb.SubjectSearchRequest, pb.ActionSearchRequest
)


def _search(cls: type[Search], options: SearchOptions, **values: Any) -> Search:
    """The first request of a search (with the options' context and page size)."""
    page_size = _page_size(options.get("page_size", 0))
    return cls(context=_context(options.get("context")), page_size=page_size, **values)


def _resources(
    scope: Scope,
    subject: SubjectLike,
    action: ActionLike,
    kind: str,
    **options: Unpack[SearchOptions],
) -> pb.ResourceSearchRequest:
    """Every resource of type ``kind`` on which ``subject`` may do ``action``."""
    return _search(
        pb.ResourceSearchRequest,
        options,
        subject=subject_pb(subject),
        action=action_pb(action),
        resource_type=kind,
    )


def _subjects(
    scope: Scope,
    resource: ResourceLike,
    action: ActionLike,
    kind: str,
    **options: Unpack[SearchOptions],
) -> pb.SubjectSearchRequest:
    """Every subject of type ``kind`` that may do ``action`` on ``resource``."""
    return _search(
        pb.SubjectSearchRequest,
        options,
        resource=resource_pb(resource),
        action=action_pb(action),
        subject_type=kind,
    )


def _actions(
    scope: Scope, subject: SubjectLike, resource: ResourceLike, **options: Unpack[SearchOptions]
) -> pb.ActionSearchRequest:
    """Every action ``subject`` may do on ``resource``."""
    return _search(
        pb.ActionSearchRequest, options, subject=subject_pb(subject), resource=resource_pb(resource)
    )


def _relationships(
    scope: Scope, **options: Unpack[RelationshipFilter]
) -> pb.ReadRelationshipsRequest:
    """Every stored relationship matching the filter (all of them without one)."""
    subject, resource = options.get("subject"), options.get("resource")
    return pb.ReadRelationshipsRequest(
        subject=None if subject is None else subject_pb(subject),
        relation=options.get("relation", ""),
        resource=None if resource is None else resource_pb(resource),
        page_size=_page_size(options.get("page_size", 0)),
        model_id=options.get("model_id", ""),
    )


def _found_resources(reply: pb.ResourceSearchResponse) -> Iterator[mirrors.Resource]:
    return map(mirrors.Resource.from_pb, reply.resources)


def _found_subjects(reply: pb.SubjectSearchResponse) -> Iterator[mirrors.Subject]:
    return map(mirrors.Subject.from_pb, reply.subjects)


def _found_actions(reply: pb.ActionSearchResponse) -> Iterator[mirrors.Action]:
    return map(mirrors.Action.from_pb, reply.actions)


def _stored(reply: pb.ReadRelationshipsResponse) -> Iterator[mirrors.Relationship]:
    return map(mirrors.Relationship.from_pb, reply.relationships)


def _repeated(token: str) -> HostServiceError:
    return HostServiceError(f"authorization repeated the page token {token!r}")


def endpoint(socket_target: str | None, relay_token: str | None) -> Endpoint:
    """The binding: each of target and token from the environment unless given."""
    var, token_var = AUTHORIZATION.socket_env(), AUTHORIZATION.token_env()
    env = {
        var: os.environ.get(var, "") if socket_target is None else socket_target,
        token_var: os.environ.get(token_var, "") if relay_token is None else relay_token,
    }
    return AUTHORIZATION.endpoint(environ=env)


# -- the clients -------------------------------------------------------------------------

_Timeout = float | None
_Checks = Iterable[tuple[SubjectLike, ActionLike, ResourceLike]]
_Writes = Iterable[RelationshipLike] | pb.WriteRelationshipsRequest
_Deletes = Iterable[RelationshipKeyLike]
_Ctx = Mapping[str, Any] | None


def _check(
    scope: Scope,
    subject: SubjectLike,
    action: ActionLike,
    resource: ResourceLike,
    *,
    context: _Ctx = None,
    timeout: _Timeout = None,
) -> pb.AccessEvaluationRequest:
    """Whether ``subject`` may do ``action`` on ``resource``."""
    return evaluation(subject, action, resource, context)


def _allowed(decision: pb.AccessDecision) -> bool:
    return decision.allowed


def _write(
    scope: Scope,
    writes: _Writes = (),
    deletes: _Deletes = (),
    *,
    model_id: str = "",
    timeout: _Timeout = None,
) -> pb.WriteRelationshipsRequest:
    """Add ``writes`` and remove ``deletes`` in one call (or send a raw request)."""
    return write_request(writes, deletes, model_id)


class _AuthorizationCalls(AuthorizationProviderMethods, _Client):
    """What :class:`AuthorizationClient` and its asyncio twin share: the constructor and
    every method but ``check_many``."""

    __slots__ = ()

    def __init__(
        self,
        socket_target: str | None = None,
        relay_token: str | None = None,
        *,
        timeout: _Timeout = None,
    ) -> None:
        check_timeout(timeout)  # checked before the environment is read
        at = endpoint(socket_target, relay_token)
        super().__init__(at, self._stubs, AUTHORIZATION_ERRORS, Scope(), timeout)

    check = TypedCall("evaluate", pb.AccessEvaluationRequest, _check, _allowed)
    write_relationships = TypedCall(
        "write_relationships", pb.WriteRelationshipsRequest, _write, nothing
    )
    iter_resources = Pages(
        "search_resources", pb.ResourceSearchRequest, _resources, _found_resources, _repeated
    )
    iter_subjects = Pages(
        "search_subjects", pb.SubjectSearchRequest, _subjects, _found_subjects, _repeated
    )
    iter_actions = Pages(
        "search_actions", pb.ActionSearchRequest, _actions, _found_actions, _repeated
    )
    iter_relationships = Pages(
        "read_relationships", pb.ReadRelationshipsRequest, _relationships, _stored, _repeated
    )


class AuthorizationClient(_AuthorizationCalls, _SyncClient):
    """Client for the host's authorization service; see the module text for the forms.

    ``socket_target`` and ``relay_token`` default to ``GESTALT_AUTHORIZATION_SOCKET`` and its
    ``_TOKEN`` twin; ``timeout`` is the default deadline of every call in seconds. A missing
    variable raises ``RuntimeError``. Use as a context manager or call :meth:`close`.
    """

    __slots__ = ()
    _stubs = AuthorizationProviderClient

    def check_many(self, checks: _Checks, *, timeout: _Timeout = None) -> list[bool]:
        """Answer several ``(subject, action, resource)`` questions in one call, in order."""
        request = evaluations(checks)
        return decisions(request, self.evaluate_many(request, timeout=timeout))


class AsyncAuthorizationClient(_AuthorizationCalls, _AioClient):
    """Asyncio twin of :class:`AuthorizationClient`: the same methods as coroutines.

    The ``iter_*`` methods return async iterators (``async for``). Build it anywhere and use
    it from any event loop; close it with ``await client.close()`` or ``async with``.
    """

    __slots__ = ()
    _stubs = AsyncAuthorizationProviderClient

    async def check_many(self, checks: _Checks, *, timeout: _Timeout = None) -> list[bool]:
        """Answer several ``(subject, action, resource)`` questions in one call, in order."""
        request = evaluations(checks)
        return decisions(request, await self.evaluate_many(request, timeout=timeout))


_shared: AuthorizationClient | None = None
_shared_lock = threading.Lock()


def Authorization() -> AuthorizationClient:
    """The process's shared :class:`AuthorizationClient`, built on first use.

    Every call returns the same client while ``GESTALT_AUTHORIZATION_SOCKET`` (and its token)
    keep their values and the client is open; otherwise a new one is built (so a test that
    starts another local host gets a client for it). Raises ``RuntimeError`` when the
    variable is not set.
    """
    global _shared
    wanted = AUTHORIZATION.endpoint()
    with _shared_lock:
        client = _shared
        if client is None or client._conn.closed or client._conn.endpoint != wanted:
            client = _shared = AuthorizationClient()
        return client
