"""The base class of authorization providers: access decisions, searches, relationships, models.

Subclass :class:`AuthorizationProvider` and implement the RPCs to answer, as snake_case methods
taking the request mirror of :mod:`gestalt.gen.v1.authorization_mirrors` and returning the
response mirror, plain or ``async def``. ``get_metadata`` and ``get_active_model`` take no
argument; ``write_relationships`` returns ``None``. What a subclass leaves out answers
``UNIMPLEMENTED``; raising ``LookupError`` answers ``NOT_FOUND``. A method written the raw way,
taking ``(request, context)`` with the protobuf messages, is served as such.

The Gestalt host launches only its own (Go) authorization providers; this kind is served the
same way as the others (``python -m gestalt._runtime``) for local use, tests and hosts that
accept it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gestalt._authoring.agents import Result
from gestalt._authoring.providers import ProviderKind, _Served

if TYPE_CHECKING:
    from gestalt.gen.v1.authorization_mirrors import (
        AccessDecision,
        AccessEvaluationRequest,
        AccessEvaluationsRequest,
        AccessEvaluationsResponse,
        ActionSearchRequest,
        ActionSearchResponse,
        AuthorizationMetadata,
        AuthorizationModelRef,
        GetActiveModelResponse,
        ListModelsRequest,
        ListModelsResponse,
        ReadRelationshipsRequest,
        ReadRelationshipsResponse,
        ResourceSearchRequest,
        ResourceSearchResponse,
        SubjectSearchRequest,
        SubjectSearchResponse,
        WriteModelRequest,
        WriteRelationshipsRequest,
    )

__all__ = ["AuthorizationProvider"]


class AuthorizationProvider(_Served):
    """Base class for authorization providers (runtime kind ``authorization``)."""

    _kind = ProviderKind.AUTHORIZATION

    def evaluate(self, request: AccessEvaluationRequest) -> Result[AccessDecision]:
        """Decide whether the subject may perform the action on the resource."""
        raise NotImplementedError

    def evaluate_many(self, request: AccessEvaluationsRequest) -> Result[AccessEvaluationsResponse]:
        """Decide several access requests; one decision per request, in order."""
        raise NotImplementedError

    def search_resources(self, request: ResourceSearchRequest) -> Result[ResourceSearchResponse]:
        """One page of the resources of a type the subject may perform the action on."""
        raise NotImplementedError

    def search_subjects(self, request: SubjectSearchRequest) -> Result[SubjectSearchResponse]:
        """One page of the subjects of a type that may perform the action on the resource."""
        raise NotImplementedError

    def search_actions(self, request: ActionSearchRequest) -> Result[ActionSearchResponse]:
        """One page of the actions the subject may perform on the resource."""
        raise NotImplementedError

    def get_metadata(self) -> Result[AuthorizationMetadata]:
        """Report the provider's capabilities and the model in use."""
        raise NotImplementedError

    def read_relationships(
        self, request: ReadRelationshipsRequest
    ) -> Result[ReadRelationshipsResponse]:
        """One page of the stored relationships matching the request's filter."""
        raise NotImplementedError

    def write_relationships(self, request: WriteRelationshipsRequest) -> Result[None]:
        """Remove the request's deletes and store its writes, all or nothing."""
        raise NotImplementedError

    def get_active_model(self) -> Result[GetActiveModelResponse]:
        """Return a reference to the model currently in use (empty when there is none)."""
        raise NotImplementedError

    def list_models(self, request: ListModelsRequest) -> Result[ListModelsResponse]:
        """One page of the stored models."""
        raise NotImplementedError

    def write_model(self, request: WriteModelRequest) -> Result[AuthorizationModelRef]:
        """Store a new model and return a reference to it."""
        raise NotImplementedError
