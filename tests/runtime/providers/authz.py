"""An authorization provider on the typed base class: relationships in memory.

``evaluate`` is plain and ``evaluate_many`` ``async def``; ``get_metadata`` and
``get_active_model`` take no argument; ``write_relationships`` returns ``None``;
``list_models`` is written the raw way (protobuf request and gRPC context). A subject may do
action *A* on a resource when it holds relation *A* to it. ``read_relationships`` of a
subject type it does not know raises ``KeyError``; evaluating the action ``explode`` raises
an exception carrying a secret, which must not reach the host. The searches of subjects and
actions and the model writes are left to the base class.
"""

from __future__ import annotations

import threading

import grpc

from gestalt import AuthorizationProvider
from gestalt.gen.v1 import authorization_pb2
from gestalt.gen.v1.authorization_mirrors import (
    AccessDecision,
    AccessEvaluationRequest,
    AccessEvaluationsRequest,
    AccessEvaluationsResponse,
    AuthorizationMetadata,
    GetActiveModelResponse,
    ReadRelationshipsRequest,
    ReadRelationshipsResponse,
    Relationship,
    Resource,
    ResourceSearchRequest,
    ResourceSearchResponse,
    Subject,
    WriteRelationshipsRequest,
)

Key = tuple[str, str, str, str, str]


def _key(subject_type: str, subject_id: str, relation: str, resource: Resource | None) -> Key:
    resource = resource or Resource()
    return (subject_type, subject_id, relation, resource.type, resource.id)


class MemoryAuthorization(AuthorizationProvider):
    """Direct relationships only; no models."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tuples: set[Key] = set()

    def evaluate(self, request: AccessEvaluationRequest) -> AccessDecision:
        subject = request.subject
        action = request.action.name if request.action else ""
        if action == "explode":
            raise RuntimeError("evaluation failed, key=secret-authz-key-42")
        with self.lock:
            allowed = subject is not None and (
                _key(subject.type, subject.id, action, request.resource) in self.tuples
            )
        return AccessDecision(allowed=allowed, model_id="none")

    async def evaluate_many(self, request: AccessEvaluationsRequest) -> AccessEvaluationsResponse:
        return AccessEvaluationsResponse(decisions=[self.evaluate(r) for r in request.requests])

    def search_resources(self, request: ResourceSearchRequest) -> ResourceSearchResponse:
        subject = request.subject
        action = request.action.name if request.action else ""
        with self.lock:
            found = [
                Resource(type=t[3], id=t[4])
                for t in sorted(self.tuples)
                if subject is not None
                and t[:3] == (subject.type, subject.id, action)
                and t[3] == request.resource_type
            ]
        return ResourceSearchResponse(resources=found)

    def get_metadata(self) -> AuthorizationMetadata:
        return AuthorizationMetadata(capabilities=["relationships"], active_model_id="")

    async def get_active_model(self) -> GetActiveModelResponse:
        return GetActiveModelResponse()

    def read_relationships(self, request: ReadRelationshipsRequest) -> ReadRelationshipsResponse:
        subject_type = request.subject.type if request.subject else ""
        with self.lock:
            if subject_type and all(t[0] != subject_type for t in self.tuples):
                raise KeyError(subject_type)
            stored = sorted(t for t in self.tuples if not subject_type or t[0] == subject_type)
        return ReadRelationshipsResponse(
            relationships=[
                Relationship(
                    subject=Subject(type=t[0], id=t[1]),
                    relation=t[2],
                    resource=Resource(type=t[3], id=t[4]),
                )
                for t in stored
            ]
        )

    def write_relationships(self, request: WriteRelationshipsRequest) -> None:
        with self.lock:
            for key in request.deletes:
                subject = key.subject
                if subject is not None:
                    self.tuples.discard(_key(subject.type, subject.id, key.relation, key.resource))
            for rel in request.writes:
                subject = rel.subject
                if subject is not None:
                    self.tuples.add(_key(subject.type, subject.id, rel.relation, rel.resource))

    def list_models(  # type: ignore[override]  # the raw form, for published-SDK code
        self, request: authorization_pb2.ListModelsRequest, context: grpc.ServicerContext
    ) -> authorization_pb2.ListModelsResponse:
        if request.page_token:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "raw: no pages")
        return authorization_pb2.ListModelsResponse()


provider = MemoryAuthorization()
