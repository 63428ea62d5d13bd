"""``Response``: a handler result with an explicit status, and ``OK``.

Its own module so that what builds responses (the plugin invoker's results) and what hands
out those builders (``Request``) can both import it; ``gestalt._authoring.request``
re-exports both names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

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
