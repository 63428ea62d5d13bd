"""An embedded authorization host service: an in-memory relationship store.

:class:`AuthorizationService` implements ``gestalt.provider.v1.AuthorizationProvider`` over
stored relationships ("``user:alice`` is ``viewer`` of ``doc:7``"), evaluating **direct**
relationships only (no usersets, no inheritance between resources):

* a subject may perform action *A* on a resource when a relationship of the subject to that
  very resource has relation *A*, or, once a model is written (``WriteModel`` or
  :meth:`~AuthorizationService.set_model`), when the model's resource type defines action
  *A* with a relation the subject has there;
* the searches list what that rule allows; ``SearchActions`` lists the subject's relations on
  the resource and the model actions they permit;
* pages hold ``page_size`` items (100 when zero, at most 1000), in the order relationships
  were written; a page token this service did not hand out is ``INVALID_ARGUMENT``;
* ``WriteRelationships`` removes ``deletes`` and then stores ``writes`` (writing an existing
  relationship replaces its properties); blank types, ids or relations are
  ``INVALID_ARGUMENT`` and nothing is changed.

A test seeds and reads the store from Python: :meth:`~AuthorizationService.write`,
:meth:`~AuthorizationService.delete`, :meth:`~AuthorizationService.relationships`,
:meth:`~AuthorizationService.check`, :meth:`~AuthorizationService.clear`; subjects and
resources as ``"type:id"`` strings, mirrors or messages, like the client takes them.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, Unpack, cast

import grpc
from google.protobuf import empty_pb2

from gestalt._clients.authorization import (
    RelationshipKeyLike,
    RelationshipLike,
    ResourceLike,
    SubjectLike,
    relationship_key_pb,
    relationship_pb,
    resource_pb,
    subject_pb,
)
from gestalt.gen import support as _support
from gestalt.gen.v1 import authorization_mirrors as mirrors
from gestalt.gen.v1 import authorization_pb2 as pb
from gestalt.gen.v1.authorization_servicers import add_authorization_provider_to_server
from gestalt.local._serving import LocalServer, Served, ServeOptions, Where

__all__ = ["AuthorizationService", "serve_authorization"]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

_Key = tuple[str, str, str, str, str]  # subject type, subject id, relation, resource type, id
T = TypeVar("T")


class _Invalid(ValueError):
    """A request the service refuses with ``INVALID_ARGUMENT``."""


def _key(subject: pb.Subject, relation: str, resource: pb.Resource) -> _Key:
    parts = (subject.type, subject.id, relation, resource.type, resource.id)
    if not all(part.strip() for part in parts):
        raise _Invalid("a relationship needs a subject type and id, a relation and a resource")
    return parts


class AuthorizationService:
    """In-memory relationships and authorization models; register it on any grpc server."""

    def __init__(self, *, now: Callable[[], dt.datetime] | None = None) -> None:
        self._lock = threading.Lock()
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self._relationships: dict[_Key, pb.Relationship] = {}
        self._models: list[tuple[pb.AuthorizationModelRef, pb.AuthorizationModel]] = []

    # -- Python API -------------------------------------------------------------------------

    def write(
        self,
        subject: SubjectLike,
        relation: str,
        resource: ResourceLike,
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        """Store one relationship (replacing the properties of an existing one)."""
        item = relationship_pb((subject, relation, resource))
        if properties is not None:
            item.properties.CopyFrom(_support.struct_to_pb(dict(properties)))
        self._apply([item], [])

    def delete(self, subject: SubjectLike, relation: str, resource: ResourceLike) -> bool:
        """Remove one relationship; whether it existed."""
        key = relationship_key_pb((subject, relation, resource))
        with self._lock:
            return (
                self._relationships.pop(_key(key.subject, key.relation, key.resource), None)
                is not None
            )

    def write_many(
        self, writes: Iterable[RelationshipLike] = (), deletes: Iterable[RelationshipKeyLike] = ()
    ) -> None:
        """Remove ``deletes`` and store ``writes``, all or nothing."""
        self._apply(
            [relationship_pb(item) for item in writes],
            [relationship_key_pb(item) for item in deletes],
        )

    def relationships(self) -> list[mirrors.Relationship]:
        """Every stored relationship, in the order written."""
        with self._lock:
            stored = list(self._relationships.values())
        return [mirrors.Relationship.from_pb(item) for item in stored]

    def check(self, subject: SubjectLike, action: str, resource: ResourceLike) -> bool:
        """Whether the store allows ``action`` (the same rule as ``Evaluate``)."""
        with self._lock:
            return self._allowed(subject_pb(subject), action, resource_pb(resource))

    def set_model(self, model: mirrors.AuthorizationModel | pb.AuthorizationModel) -> str:
        """Store ``model`` as the active one; its id."""
        message = model.to_pb() if isinstance(model, mirrors.AuthorizationModel) else model
        return self._store_model(message).id

    def clear(self) -> None:
        """Forget every relationship and model."""
        with self._lock:
            self._relationships.clear()
            self._models.clear()

    # -- rules --------------------------------------------------------------------------------

    def _apply(
        self, writes: Sequence[pb.Relationship], deletes: Sequence[pb.RelationshipKey]
    ) -> None:
        # Keys are computed before the lock so that a bad item changes nothing.
        gone = [_key(item.subject, item.relation, item.resource) for item in deletes]
        added = [(_key(item.subject, item.relation, item.resource), item) for item in writes]
        with self._lock:
            for key in gone:
                self._relationships.pop(key, None)
            for key, item in added:
                stored = pb.Relationship()
                stored.CopyFrom(item)
                self._relationships[key] = stored

    def _granting(self, resource_type: str, action: str) -> set[str]:
        """The relations that allow ``action`` on ``resource_type``: itself plus the model's."""
        relations = {action}
        if self._models:
            for kind in self._models[-1][1].resource_types:
                if kind.name == resource_type:
                    for defined in kind.actions:
                        if defined.name == action:
                            relations.update(defined.relations)
        return relations

    def _allowed(self, subject: pb.Subject, action: str, resource: pb.Resource) -> bool:
        return any(
            (subject.type, subject.id, relation, resource.type, resource.id) in self._relationships
            for relation in self._granting(resource.type, action)
        )

    def _model_id(self) -> str:
        return self._models[-1][0].id if self._models else ""

    def _store_model(self, model: pb.AuthorizationModel) -> pb.AuthorizationModelRef:
        with self._lock:
            ref = pb.AuthorizationModelRef(
                id=f"local-model-{len(self._models) + 1}", version=str(model.version)
            )
            ref.created_at.FromDatetime(self._now())
            stored = pb.AuthorizationModel()
            stored.CopyFrom(model)
            self._models.append((ref, stored))
            return ref

    # -- RPCs -------------------------------------------------------------------------------

    def evaluate(
        self, request: pb.AccessEvaluationRequest, context: grpc.ServicerContext
    ) -> pb.AccessDecision:
        """Decide one access question by the direct-relationship rule."""
        with self._lock:
            allowed = self._allowed(request.subject, request.action.name, request.resource)
            return pb.AccessDecision(allowed=allowed, model_id=self._model_id())

    def evaluate_many(
        self, request: pb.AccessEvaluationsRequest, context: grpc.ServicerContext
    ) -> pb.AccessEvaluationsResponse:
        """Decide each question, in order."""
        return pb.AccessEvaluationsResponse(
            decisions=[self.evaluate(item, context) for item in request.requests]
        )

    def search_resources(
        self, request: pb.ResourceSearchRequest, context: grpc.ServicerContext
    ) -> pb.ResourceSearchResponse:
        """Resources of the type the subject may act on, one page."""
        reply = self._search(request, context, request.subject, request.resource_type, True)
        return cast(pb.ResourceSearchResponse, reply)

    def search_subjects(
        self, request: pb.SubjectSearchRequest, context: grpc.ServicerContext
    ) -> pb.SubjectSearchResponse:
        """Subjects of the type (any type when empty) that may act on the resource, one page."""
        reply = self._search(request, context, request.resource, request.subject_type, False)
        return cast(pb.SubjectSearchResponse, reply)

    def _search(
        self,
        request: Any,
        context: grpc.ServicerContext,
        start: pb.Subject | pb.Resource,
        wanted: str,
        from_subject: bool,
    ) -> pb.ResourceSearchResponse | pb.SubjectSearchResponse:
        """One page of the far ends of the relationships from ``start`` that grant the
        request's action: from a subject its resources of type ``wanted``, from a resource
        its subjects of type ``wanted`` (of any type when that is empty)."""
        near, far = (0, 3) if from_subject else (3, 0)  # where each end's type is in a key
        with self._lock:
            relations = self._granting(wanted if from_subject else start.type, request.action.name)
            found = _unique(
                (key[far], key[far + 1])
                for key in self._relationships
                if (key[near], key[near + 1]) == (start.type, start.id)
                and key[2] in relations
                and (key[far] == wanted or not (wanted or from_subject))
            )
            model_id = self._model_id()
        page, token = _page(found, request.page_size, request.page_token, context)
        reply: pb.ResourceSearchResponse | pb.SubjectSearchResponse
        if from_subject:
            reply = pb.ResourceSearchResponse(
                resources=[pb.Resource(type=t, id=i) for t, i in page]
            )
        else:
            reply = pb.SubjectSearchResponse(subjects=[pb.Subject(type=t, id=i) for t, i in page])
        reply.next_page_token, reply.model_id = token, model_id
        return reply

    def search_actions(
        self, request: pb.ActionSearchRequest, context: grpc.ServicerContext
    ) -> pb.ActionSearchResponse:
        """Actions the subject may perform on the resource, one page."""
        subject, resource = request.subject, request.resource
        with self._lock:
            held = [
                key[2]
                for key in self._relationships
                if key[:2] == (subject.type, subject.id) and key[3:] == (resource.type, resource.id)
            ]
            actions = list(held)
            if self._models:
                for kind in self._models[-1][1].resource_types:
                    if kind.name == resource.type:
                        actions += [a.name for a in kind.actions if set(a.relations) & set(held)]
            model_id = self._model_id()
        page, token = _page(_unique(actions), request.page_size, request.page_token, context)
        return pb.ActionSearchResponse(
            actions=[pb.Action(name=name) for name in page],
            next_page_token=token,
            model_id=model_id,
        )

    def get_metadata(
        self, request: empty_pb2.Empty, context: grpc.ServicerContext
    ) -> pb.AuthorizationMetadata:
        """Capabilities (``local``, ``direct-relationships``) and the active model id."""
        with self._lock:
            model_id = self._model_id()
        return pb.AuthorizationMetadata(
            capabilities=["local", "direct-relationships"], active_model_id=model_id
        )

    def read_relationships(
        self, request: pb.ReadRelationshipsRequest, context: grpc.ServicerContext
    ) -> pb.ReadRelationshipsResponse:
        """Stored relationships matching the filter, one page."""
        subject = request.subject if request.HasField("subject") else None
        resource = request.resource if request.HasField("resource") else None
        with self._lock:
            found = [
                item
                for key, item in self._relationships.items()
                if (subject is None or key[:2] == (subject.type, subject.id))
                and (not request.relation or key[2] == request.relation)
                and (resource is None or key[3:] == (resource.type, resource.id))
            ]
            model_id = self._model_id()
        page, token = _page(found, request.page_size, request.page_token, context)
        return pb.ReadRelationshipsResponse(
            relationships=page, next_page_token=token, model_id=model_id
        )

    def write_relationships(
        self, request: pb.WriteRelationshipsRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Remove the deletes, then store the writes; all or nothing."""
        try:
            self._apply(list(request.writes), list(request.deletes))
        except _Invalid as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return empty_pb2.Empty()

    def get_active_model(
        self, request: empty_pb2.Empty, context: grpc.ServicerContext
    ) -> pb.GetActiveModelResponse:
        """The model written last (unset when none was)."""
        with self._lock:
            ref = self._models[-1][0] if self._models else None
        return pb.GetActiveModelResponse(model=ref)

    def list_models(
        self, request: pb.ListModelsRequest, context: grpc.ServicerContext
    ) -> pb.ListModelsResponse:
        """The stored models, oldest first, one page."""
        with self._lock:
            refs = [ref for ref, _ in self._models]
        page, token = _page(refs, request.page_size, request.page_token, context)
        return pb.ListModelsResponse(models=page, next_page_token=token)

    def write_model(
        self, request: pb.WriteModelRequest, context: grpc.ServicerContext
    ) -> pb.AuthorizationModelRef:
        """Store a model and make it the active one."""
        return self._store_model(request.model)


def _unique(items: Iterable[T]) -> list[T]:
    return list(dict.fromkeys(items))


def _page(
    items: list[T], page_size: int, page_token: str, context: grpc.ServicerContext
) -> tuple[list[T], str]:
    if page_size < 0:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_size must be >= 0")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    start = 0
    if page_token:
        number = page_token.removeprefix("offset-")
        if not number.isdigit() or number == page_token:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown page token {page_token!r}")
        start = int(number)
    end = start + size
    return items[start:end], (f"offset-{end}" if end < len(items) else "")


_SERVED = Served(
    "authorization", "authorization", add_authorization_provider_to_server, LocalServer
)


def serve_authorization(
    address: Where, *, service: AuthorizationService | None = None, **options: Unpack[ServeOptions]
) -> LocalServer[AuthorizationService]:
    """Serve an authorization store on ``address`` (socket path, ``unix://…``, ``tcp://…``).

    ``service`` defaults to a new, empty :class:`AuthorizationService`; ``options`` are those
    of every local server (:class:`~gestalt.local.ServeOptions`, 8 threads). Returns once the
    server is listening.
    """
    chosen = AuthorizationService() if service is None else service
    return _SERVED.serve(address, lambda: chosen, options)
