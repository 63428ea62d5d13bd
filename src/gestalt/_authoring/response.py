"""What handlers and hooks give back: ``Response`` and ``OK``, or raise: ``Error``.

``Response`` carries a handler result with an explicit status; ``Error`` and
``HTTPSubjectResolutionError`` end a call or reject a request with one; ``HookError`` is what
a failed hook becomes, here so that the runtime can catch it without loading the hook
machinery (``hooks.py``) for a plugin that has no hooks. Their own module,
apart from the request dataclasses, so that ``Plugin`` and the hooks can map results and
failures without building ``Request`` and its parts at import, and so that what builds
responses (the plugin invoker's results) and what hands out those builders (``Request``) can
both import it. Statuses are checked when a result is mapped (``plugin.py``): anything
outside 100-599 becomes a 500, because the host writes the status straight into an HTTP
response (contract quirk 7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from http import HTTPStatus

T = TypeVar("T")


@dataclass(slots=True)
class Response(Generic[T]):
    """A handler result with an explicit HTTP status; ``None`` means 200.

    Only a top-level ``Response`` sets the status; one nested inside another value is encoded
    as an ordinary object with ``status`` and ``body`` keys.
    """

    status: int | None
    body: T


def OK(body: T) -> Response[T]:
    """Return ``body`` as a ``200 OK`` response."""
    return Response(status=200, body=body)


def reason_phrase(status: int) -> str:
    """Return the standard HTTP reason phrase for ``status``, or ``""`` when there is none."""
    from http import HTTPStatus  # imported here: only error paths need a phrase

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class _StatusError(Exception):
    """An exception carrying an HTTP ``status`` and a ``message`` (by default its phrase)."""

    status: int
    message: str

    def __init__(self, status: int | HTTPStatus, message: str = "") -> None:
        self.status = int(status)
        self.message = message or reason_phrase(self.status)
        super().__init__(self.message)


class Error(_StatusError):
    """Raise from a handler to answer with ``status`` and ``{"error": message}``.

    An empty message is replaced by the status's reason phrase (``Error(404)`` reads
    ``"Not Found"``). Raised from an HTTP-subject hook it rejects the request, exactly like
    ``HTTPSubjectResolutionError``.
    """


class HTTPSubjectResolutionError(_StatusError):
    """Raise from an HTTP-subject hook to reject the inbound request with ``status``.

    The message defaults to the status's reason phrase, like ``Error`` (which a hook may raise
    instead, to the same effect). The host receives both as ``reject_status`` and
    ``reject_message``; from any other hook either is an ordinary failure.
    """


class HookError(RuntimeError):
    """A provider hook failed or returned something unusable.

    ``str()`` reads ``"<label>: <detail>"`` and never contains the hook's exception text, so the
    runtime can send it to the host; the traceback was logged when the error was raised.
    """

    def __init__(self, label: str, detail: str = "") -> None:
        self.label = label
        self.detail = detail or "hook failed; details are in the provider log"
        super().__init__(f"{label}: {self.detail}")


def http_subject_error(status: int | HTTPStatus, message: str = "") -> HTTPSubjectResolutionError:
    """Build the exception an HTTP-subject hook raises to reject a request."""
    return HTTPSubjectResolutionError(status, message)
