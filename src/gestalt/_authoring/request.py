"""The request context handed to handlers.

The host describes each call with a ``RequestContext``; the runtime turns it into the plain
dataclasses below (see ``gestalt._runtime.wire``) so handlers never touch protobuf messages.
The values handlers give back (``Response``, ``Error``) live in ``gestalt._authoring.response``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gestalt._authoring.invoker import PluginInvoker
    from gestalt._clients.agents import AgentManager, AsyncAgentManager
    from gestalt._clients.authorization import AuthorizationClient
    from gestalt._clients.workflows import AsyncWorkflowManager, WorkflowContext, WorkflowManager


@dataclass(slots=True)
class Subject:
    """Who is calling: the identity the host resolved for this request."""

    id: str = ""
    kind: str = ""
    display_name: str = ""
    auth_source: str = ""


@dataclass(slots=True)
class Credential:
    """Which stored credential the host chose to run this request with."""

    mode: str = ""
    subject_id: str = ""
    connection: str = ""
    instance: str = ""


@dataclass(slots=True)
class Access:
    """The authorization decision the host made: the policy that matched and the role granted."""

    policy: str = ""
    role: str = ""


@dataclass(slots=True)
class Request:
    """Everything the host tells a handler about one call besides its parameters.

    ``token`` is the resolved credential's access token, ``connection_params`` the connection's
    configured values, ``invocation_token`` a short-lived token for calling other plugins through
    the host, and ``workflow`` the workflow context exactly as sent (camelCase keys). Beyond the
    reference SDK, ``invocation_id`` (the host's correlation id) and
    ``idempotency_key`` are exposed as keyword-only fields. ``repr()`` leaves out both tokens,
    so logging a request does not leak a credential.
    """

    token: str = dataclasses.field(default="", repr=False)
    connection_params: dict[str, str] = dataclasses.field(default_factory=dict)
    subject: Subject = dataclasses.field(default_factory=Subject)
    credential: Credential = dataclasses.field(default_factory=Credential)
    access: Access = dataclasses.field(default_factory=Access)
    invocation_token: str = dataclasses.field(default="", repr=False)
    workflow: dict[str, Any] = dataclasses.field(default_factory=dict)
    invocation_id: str = dataclasses.field(default="", kw_only=True)
    idempotency_key: str = dataclasses.field(default="", kw_only=True)

    def connection_param(self, name: str) -> str | None:
        """Return the connection parameter ``name``, or ``None`` when it was not sent."""
        return self.connection_params.get(name)

    def invoker(self) -> PluginInvoker:
        """A :class:`~gestalt.PluginInvoker` carrying this call's invocation token.

        Raises ``RuntimeError`` when the host sent no token or set no invoker socket.
        """
        from gestalt._authoring.invoker import PluginInvoker

        return PluginInvoker(self.invocation_token)

    def authorization(self) -> AuthorizationClient:
        """The process's shared :class:`~gestalt.AuthorizationClient`."""
        from gestalt._clients.authorization import Authorization

        return Authorization()

    # -- agents and workflows, on behalf of this call --------------------------------------

    @property
    def workflow_context(self) -> WorkflowContext | None:
        """The typed view of :attr:`workflow`; None when the call is not part of a run."""
        from gestalt._clients.workflows import workflow_context

        return workflow_context(self.workflow)

    def agent_manager(self, *, timeout: float | None = None) -> AgentManager:
        """An :class:`AgentManager` acting for this call (its invocation token)."""
        from gestalt._clients.agents import AgentManager

        return AgentManager(self.invocation_token, timeout=timeout)

    def async_agent_manager(self, *, timeout: float | None = None) -> AsyncAgentManager:
        """An :class:`AsyncAgentManager` acting for this call (its invocation token)."""
        from gestalt._clients.agents import AsyncAgentManager

        return AsyncAgentManager(self.invocation_token, timeout=timeout)

    def workflow_manager(
        self, *, idempotency_key: str = "", timeout: float | None = None
    ) -> WorkflowManager:
        """A :class:`WorkflowManager` acting for this call (its invocation token)."""
        from gestalt._clients.workflows import WorkflowManager

        return WorkflowManager(
            self.invocation_token, idempotency_key=idempotency_key, timeout=timeout
        )

    def async_workflow_manager(
        self, *, idempotency_key: str = "", timeout: float | None = None
    ) -> AsyncWorkflowManager:
        """An :class:`AsyncWorkflowManager` acting for this call (its invocation token)."""
        from gestalt._clients.workflows import AsyncWorkflowManager

        return AsyncWorkflowManager(
            self.invocation_token, idempotency_key=idempotency_key, timeout=timeout
        )
