"""What the two connection hooks receive: ``ConnectedToken`` and ``HTTPSubjectRequest``.

Kept apart from ``request`` because most plugins register neither hook: these two
dataclasses (about 3 ms to build at import) load when a plugin or the runtime first needs them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

__all__ = ["ConnectedToken", "HTTPSubjectRequest"]


@dataclass(frozen=True, slots=True)
class ConnectedToken:
    """The credential the host just stored for a new connection, given to post-connect hooks.

    Timestamps are timezone-aware UTC datetimes, ``None`` when the host left them unset.
    ``metadata`` is ``metadata_json`` parsed when it holds a JSON object (values as strings).
    ``repr()`` leaves out the access and refresh tokens.
    """

    id: str = ""
    subject_id: str = ""
    integration: str = ""
    connection: str = ""
    instance: str = ""
    access_token: str = dataclasses.field(default="", repr=False)
    refresh_token: str = dataclasses.field(default="", repr=False)
    scopes: str = ""
    expires_at: dt.datetime | None = None
    last_refreshed_at: dt.datetime | None = None
    refresh_error_count: int = 0
    metadata_json: str = ""
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(slots=True)
class HTTPSubjectRequest:
    """An inbound hosted-HTTP request, as seen by an HTTP-subject hook.

    ``headers`` and ``query`` keep every value of repeated keys; ``params`` holds the decoded
    body parameters, ``raw_body`` the bytes as received, and the ``verified_*`` fields what the
    host's security scheme already checked.
    """

    binding: str = ""
    method: str = ""
    path: str = ""
    content_type: str = ""
    headers: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    query: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    raw_body: bytes = b""
    security_scheme: str = ""
    verified_subject: str = ""
    verified_claims: dict[str, str] = dataclasses.field(default_factory=dict)
