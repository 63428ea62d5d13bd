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

from gestalt._authoring.providers import ProviderKind, _Served
from gestalt.gen.v1.authorization_providers import AuthorizationProviderBase

__all__ = ["AuthorizationProvider"]


class AuthorizationProvider(AuthorizationProviderBase, _Served):
    """Base class for authorization providers (runtime kind ``authorization``)."""

    _kind = ProviderKind.AUTHORIZATION
