"""A plugin whose hooks reject or fail in every way a hook can, for the hook tests.

The HTTP-subject hook answers by request path; the other hooks raise the exceptions that only
an HTTP-subject hook may use to reject, with ``TOPSECRET`` text that must stay in the log.
"""

from __future__ import annotations

from typing import Any

from gestalt import Error, HTTPSubjectRequest, Plugin, Request, Subject, http_subject_error

plugin = Plugin("subjects")


@plugin.operation
def ping() -> str:
    """Something to serve."""
    return "pong"


@plugin.http_subject
def resolve(request: HTTPSubjectRequest, context: Request) -> Subject | None:
    """Reject, accept or fail according to the request path."""
    if request.path == "/error":
        raise Error(403, "members only")
    if request.path == "/error-default":
        raise Error(429)
    if request.path == "/error-bad-status":
        raise Error(0, "TOPSECRET-status")
    if request.path == "/rejection":
        raise http_subject_error(401, "who are you?")
    if request.path == "/boom":
        raise RuntimeError("TOPSECRET-boom")
    return Subject(id="user:1", kind="user")


@plugin.configure
def configure(name: str, config: dict[str, Any]) -> None:
    """An HTTP status from a configure hook is a failure like any exception."""
    if config.get("fail") == "error":
        raise Error(403, "TOPSECRET-configure-error")
    if config.get("fail") == "rejection":
        raise http_subject_error(401, "TOPSECRET-configure-rejection")


@plugin.session_catalog
def catalog(request: Request) -> None:
    """Neither is a session catalog hook's way to fail politely."""
    raise Error(404, "TOPSECRET-catalog")
