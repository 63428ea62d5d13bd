"""Conversions between ``gestalt.provider.v1`` messages and the authoring dataclasses.

Used by the runtime (and the tests) so that handlers and hooks only ever see ``Request``,
``ConnectedToken``, ``HTTPSubjectRequest`` and ``Subject``. Importing this module loads the
generated protobuf code, so the authoring modules import it lazily, never at import time.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from google.protobuf import struct_pb2, timestamp_pb2

from gestalt._authoring.request import Access, Credential, Request, Subject
from gestalt.gen.v1 import plugin_pb2

if TYPE_CHECKING:
    from gestalt._authoring.hook_inputs import ConnectedToken, HTTPSubjectRequest


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """Convert a ``Struct`` to a dict (numbers come out as floats, as protobuf carries them).

    A direct walk, the common kinds tested first: this runs on every ``Execute``.
    """
    out: dict[str, Any] = {}
    fields = struct.fields
    for key in fields:  # indexing beats .items(), whose view iterates in Python
        value = fields[key]
        kind = value.WhichOneof("kind")
        if kind == "string_value":
            out[key] = value.string_value
        elif kind == "bool_value":
            out[key] = value.bool_value
        elif kind == "number_value":
            out[key] = value.number_value
        else:
            out[key] = _nested(value, kind)
    return out


def _value(value: struct_pb2.Value) -> Any:
    return _nested(value, value.WhichOneof("kind"))


def _nested(value: struct_pb2.Value, kind: str | None) -> Any:
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return [_value(item) for item in value.list_value.values]
    if kind is None or kind == "null_value":
        return None
    return getattr(value, kind)


def execute_params(message: plugin_pb2.ExecuteRequest) -> dict[str, Any]:
    """Return an ``ExecuteRequest``'s parameters; an unset ``params`` reads as ``{}``."""
    return struct_to_dict(message.params) if message.HasField("params") else {}


def execute_request(message: plugin_pb2.ExecuteRequest) -> Request:
    """Build the handler's ``Request`` from an ``ExecuteRequest`` (one constructor call)."""
    params = message.connection_params
    connection = dict(params) if params else {}
    if not message.HasField("context"):
        return Request(
            message.token,
            connection,
            invocation_token=message.invocation_token,
            invocation_id=message.invocation_id,
            idempotency_key=message.idempotency_key.strip(),
        )
    context = message.context
    subject, credential, access = context.subject, context.credential, context.access
    return Request(
        message.token,
        connection,
        Subject(subject.id, subject.kind, subject.display_name, subject.auth_source),
        Credential(
            credential.mode, credential.subject_id, credential.connection, credential.instance
        ),
        Access(access.policy, access.role),
        message.invocation_token,
        struct_to_dict(context.workflow) if context.HasField("workflow") else {},
        invocation_id=message.invocation_id,
        idempotency_key=message.idempotency_key.strip(),
    )


def request_from_pb(
    message: plugin_pb2.ExecuteRequest | plugin_pb2.GetSessionCatalogRequest,
) -> Request:
    """Build the handler's ``Request`` from an Execute or GetSessionCatalog request."""
    if isinstance(message, plugin_pb2.ExecuteRequest):
        return execute_request(message)
    request = context_request(message.context if message.HasField("context") else None)
    request.token = message.token
    request.connection_params = dict(message.connection_params)
    return request


def context_request(context: plugin_pb2.RequestContext | None) -> Request:
    """Build a ``Request`` carrying only the subject/credential/access/workflow context."""
    if context is None:
        return Request()
    subject, credential, access = context.subject, context.credential, context.access
    return Request(
        subject=Subject(subject.id, subject.kind, subject.display_name, subject.auth_source),
        credential=Credential(
            credential.mode, credential.subject_id, credential.connection, credential.instance
        ),
        access=Access(access.policy, access.role),
        workflow=struct_to_dict(context.workflow) if context.HasField("workflow") else {},
    )


def connected_token_from_pb(credential: plugin_pb2.PostConnectCredential | None) -> ConnectedToken:
    """Build a ``ConnectedToken``; ``None`` (an unset token) gives all defaults.

    ``metadata`` is ``metadata_json`` parsed when it holds a JSON object; string values are
    kept, other values are written back as compact JSON (the reference used Python ``str()``).
    """
    from gestalt._authoring.hook_inputs import ConnectedToken  # only post-connect hooks need it

    if credential is None:
        return ConnectedToken()
    return ConnectedToken(
        id=credential.id,
        subject_id=credential.subject_id,
        integration=credential.integration,
        connection=credential.connection,
        instance=credential.instance,
        access_token=credential.access_token,
        refresh_token=credential.refresh_token,
        scopes=credential.scopes,
        expires_at=_time(credential, "expires_at"),
        last_refreshed_at=_time(credential, "last_refreshed_at"),
        refresh_error_count=credential.refresh_error_count,
        metadata_json=credential.metadata_json,
        metadata=_metadata(credential.metadata_json),
        created_at=_time(credential, "created_at"),
        updated_at=_time(credential, "updated_at"),
    )


def http_subject_request_from_pb(message: plugin_pb2.HTTPSubjectRequest) -> HTTPSubjectRequest:
    """Build the ``HTTPSubjectRequest`` handed to HTTP-subject hooks."""
    from gestalt._authoring.hook_inputs import HTTPSubjectRequest  # only these hooks need it

    return HTTPSubjectRequest(
        binding=message.binding,
        method=message.method,
        path=message.path,
        content_type=message.content_type,
        headers={k: list(v.values) for k, v in message.headers.items()},
        query={k: list(v.values) for k, v in message.query.items()},
        params=struct_to_dict(message.params) if message.HasField("params") else {},
        raw_body=bytes(message.raw_body),
        security_scheme=message.security_scheme,
        verified_subject=message.verified_subject,
        verified_claims=dict(message.verified_claims),
    )


def subject_to_pb(subject: Subject) -> plugin_pb2.SubjectContext:
    """Convert a hook's ``Subject`` into the response message (fields trimmed)."""
    return plugin_pb2.SubjectContext(
        id=subject.id.strip(),
        kind=subject.kind.strip(),
        display_name=subject.display_name.strip(),
        auth_source=subject.auth_source.strip(),
    )


def _time(message: plugin_pb2.PostConnectCredential, name: str) -> dt.datetime | None:
    if not message.HasField(name):  # type: ignore[arg-type]
        return None
    stamp: timestamp_pb2.Timestamp = getattr(message, name)
    if stamp.seconds == 0 and stamp.nanos == 0:
        return None
    from gestalt.gen.support import timestamp_from_pb  # only post-connect tokens carry times

    return timestamp_from_pb(stamp)


def _metadata(text: str) -> dict[str, str]:
    try:
        data = json.loads(text) if text.strip() else None
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(k): v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
        for k, v in data.items()
    }
