"""S3 value types and their ``gestalt.provider.v1`` messages.

The dataclasses callers build and receive (:class:`ObjectRef`, :class:`ObjectMeta`, the
option classes, :class:`ListPage`, :class:`PresignResult`) and the functions that turn them
into request messages and responses back into them. Every builder checks its input and
raises :class:`TypeError` or :class:`ValueError` naming the offending field, so a bad
argument never reaches the host. Two of those value errors have their own types: a byte
range no object can satisfy is an ``S3InvalidRangeError`` (as the host's answer would be),
and a control character in a value bound for an HTTP header an ``S3HeaderValueError``.
See :mod:`gestalt._clients.s3` for the choices made here.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gestalt._clients.errors import S3HeaderValueError, _ClientRangeError
from gestalt.gen.support import timestamp_from_pb, timestamp_to_pb
from gestalt.gen.v1 import s3_pb2

__all__ = [
    "ByteRange",
    "CopyOptions",
    "ListOptions",
    "ListPage",
    "ObjectAccessURL",
    "ObjectAccessURLOptions",
    "ObjectMeta",
    "ObjectRef",
    "PresignMethod",
    "PresignOptions",
    "PresignResult",
    "ReadOptions",
    "WriteOptions",
    "copy_request",
    "list_request",
    "meta_from_pb",
    "page_from_pb",
    "presign_fields",
    "presign_result",
    "read_request",
    "ref_to_pb",
    "write_header",
]

_INT64_MAX = 2**63 - 1
_INT32_MAX = 2**31 - 1
# What an HTTP header value cannot carry: C0 controls (CR and LF among them) and DEL.
_CONTROL = re.compile("[\x00-\x1f\x7f]")


class PresignMethod(enum.StrEnum):
    """HTTP methods supported by presigned object URLs."""

    GET = "GET"
    PUT = "PUT"
    DELETE = "DELETE"
    HEAD = "HEAD"


@dataclass(slots=True)
class ObjectRef:
    """Reference to an S3 object, optionally pinned to a version."""

    bucket: str
    key: str
    version_id: str = ""


@dataclass(slots=True)
class ObjectMeta:
    """Object metadata returned by S3 operations.

    ``last_modified`` is an aware UTC datetime, or None when the host does not know it.
    """

    ref: ObjectRef
    etag: str = ""
    size: int = 0
    content_type: str = ""
    last_modified: dt.datetime | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    storage_class: str = ""


@dataclass(slots=True)
class ByteRange:
    """Inclusive byte range used for object reads.

    ``ByteRange(1, 3)`` selects bytes 1, 2 and 3; a missing ``start`` means from the first
    byte, a missing ``end`` up to the last one.
    """

    start: int | None = None
    end: int | None = None


@dataclass(slots=True)
class ReadOptions:
    """Conditional and ranged read options for an object request.

    Naive datetimes are taken as UTC. Empty strings and None mean "no condition".
    """

    range: ByteRange | None = None
    if_match: str = ""
    if_none_match: str = ""
    if_modified_since: dt.datetime | None = None
    if_unmodified_since: dt.datetime | None = None


@dataclass(slots=True)
class WriteOptions:
    """Metadata and precondition options for object writes.

    ``if_none_match="*"`` writes only when the object does not exist yet.
    """

    content_type: str = ""
    cache_control: str = ""
    content_disposition: str = ""
    content_encoding: str = ""
    content_language: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    if_match: str = ""
    if_none_match: str = ""


@dataclass(slots=True)
class ListOptions:
    """Query options for listing objects within a bucket.

    ``max_keys`` 0 lets the host pick the page size; pass a page's
    ``next_continuation_token`` back unchanged to get the next page.
    """

    bucket: str
    prefix: str = ""
    delimiter: str = ""
    continuation_token: str = ""
    start_after: str = ""
    max_keys: int = 0


@dataclass(slots=True)
class ListPage:
    """One page of object-listing results."""

    objects: list[ObjectMeta] = field(default_factory=list)
    common_prefixes: list[str] = field(default_factory=list)
    next_continuation_token: str = ""
    has_more: bool = False


@dataclass(slots=True)
class CopyOptions:
    """Conditional headers for copy operations, evaluated against the source object."""

    if_match: str = ""
    if_none_match: str = ""


@dataclass(slots=True)
class PresignOptions:
    """Options for generating a presigned object URL.

    ``method`` is a :class:`PresignMethod` or its name in any case (None or ``""``: the host's
    default, GET); ``expires`` a positive duration (None: the host's default).
    """

    method: PresignMethod | str | None = None
    expires: dt.timedelta | None = None
    content_type: str = ""
    content_disposition: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class PresignResult:
    """Presigned URL response returned by the provider.

    ``headers`` are the ones a request on ``url`` must carry.
    """

    url: str
    method: PresignMethod | str | None = None
    expires_at: dt.datetime | None = None
    headers: dict[str, str] = field(default_factory=dict)


#: The host's name for the options of an object-access URL (same fields).
ObjectAccessURLOptions = PresignOptions
#: The host's name for an object-access URL (same fields).
ObjectAccessURL = PresignResult


# -- checks --------------------------------------------------------------------------------


def _str(value: object, what: str) -> str:
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)
    raise TypeError(f"{what} must be a str, not {type(value).__name__}")


def _options(value: object, kind: type[Any], what: str) -> None:
    if not isinstance(value, kind):
        raise TypeError(f"{what} must be a {kind.__name__} or None, not {type(value).__name__}")


def _header(value: object, what: str) -> str:
    """A ``str`` that can travel as an HTTP header value (no control character)."""
    text = _str(value, what)
    found = _CONTROL.search(text)
    if found is not None:
        raise S3HeaderValueError(what, found.group(), found.start())
    return text


def _header_map(value: object, what: str) -> dict[str, str]:
    """A ``dict[str, str]`` whose keys and values can travel as HTTP headers."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping of str to str, not {type(value).__name__}")
    return {_header(k, f"{what} key {k!r}"): _header(v, f"{what}[{k!r}]") for k, v in value.items()}


def _offset(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int or None, not {type(value).__name__}")
    if not 0 <= value <= _INT64_MAX:
        raise _ClientRangeError(f"{what} must be between 0 and 2**63-1, got {value}")
    return int(value)


def _time(value: object, what: str) -> Any:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{what} must be a datetime.datetime or None, not {type(value).__name__}")
    return timestamp_to_pb(value)


def ref_to_pb(ref: object, what: str = "ref") -> s3_pb2.S3ObjectRef:
    """The message for an :class:`ObjectRef`; bucket and key must be non-empty strings."""
    if not isinstance(ref, ObjectRef):
        raise TypeError(f"{what} must be an ObjectRef, not {type(ref).__name__}")
    bucket = _str(ref.bucket, f"{what}.bucket")
    key = _str(ref.key, f"{what}.key")
    version_id = _str(ref.version_id, f"{what}.version_id")
    if not bucket.strip():
        raise ValueError(f"{what}.bucket must not be empty")
    if not key:
        raise ValueError(f"{what}.key must not be empty")
    return s3_pb2.S3ObjectRef(bucket=bucket, key=key, version_id=version_id)


# -- requests ------------------------------------------------------------------------------


def read_request(ref: object, opts: object) -> s3_pb2.ReadObjectRequest:
    """``ReadObjectRequest`` for ``ref`` with the conditions and range of ``opts``."""
    pb_ref = ref_to_pb(ref)
    if opts is None:
        return s3_pb2.ReadObjectRequest(ref=pb_ref)
    _options(opts, ReadOptions, "opts")
    assert isinstance(opts, ReadOptions)
    pb_range = None
    if opts.range is not None:
        rng = opts.range
        if not isinstance(rng, ByteRange):
            raise TypeError(f"opts.range must be a ByteRange or None, not {type(rng).__name__}")
        start = _offset(rng.start, "range.start")
        end = _offset(rng.end, "range.end")
        if start is not None and end is not None and start > end:
            raise _ClientRangeError(
                f"range.end is inclusive and must not be before start ({start}-{end})"
            )
        pb_range = s3_pb2.ByteRange(start=start, end=end)
    return s3_pb2.ReadObjectRequest(
        ref=pb_ref,
        range=pb_range,
        if_match=_header(opts.if_match, "opts.if_match"),
        if_none_match=_header(opts.if_none_match, "opts.if_none_match"),
        if_modified_since=_time(opts.if_modified_since, "opts.if_modified_since"),
        if_unmodified_since=_time(opts.if_unmodified_since, "opts.if_unmodified_since"),
    )


def write_header(
    ref: object, opts: object, *, default_content_type: str = ""
) -> s3_pb2.WriteObjectRequest:
    """The ``open`` frame of a write; ``default_content_type`` fills an empty content type."""
    pb_ref = ref_to_pb(ref)
    if opts is None:
        return s3_pb2.WriteObjectRequest(
            open=s3_pb2.WriteObjectOpen(ref=pb_ref, content_type=default_content_type)
        )
    _options(opts, WriteOptions, "opts")
    assert isinstance(opts, WriteOptions)
    return s3_pb2.WriteObjectRequest(
        open=s3_pb2.WriteObjectOpen(
            ref=pb_ref,
            content_type=_header(opts.content_type, "opts.content_type") or default_content_type,
            cache_control=_header(opts.cache_control, "opts.cache_control"),
            content_disposition=_header(opts.content_disposition, "opts.content_disposition"),
            content_encoding=_header(opts.content_encoding, "opts.content_encoding"),
            content_language=_header(opts.content_language, "opts.content_language"),
            metadata=_header_map(opts.metadata, "opts.metadata"),
            if_match=_header(opts.if_match, "opts.if_match"),
            if_none_match=_header(opts.if_none_match, "opts.if_none_match"),
        )
    )


def list_request(opts: object) -> s3_pb2.ListObjectsRequest:
    """``ListObjectsRequest`` for ``opts`` (a :class:`ListOptions`; the bucket is required)."""
    if not isinstance(opts, ListOptions):
        raise TypeError(f"opts must be a ListOptions, not {type(opts).__name__}")
    bucket = _str(opts.bucket, "opts.bucket")
    if not bucket.strip():
        raise ValueError("opts.bucket must not be empty")
    max_keys = opts.max_keys
    if isinstance(max_keys, bool) or not isinstance(max_keys, int):
        raise TypeError(f"opts.max_keys must be an int, not {type(max_keys).__name__}")
    if not 0 <= max_keys <= _INT32_MAX:
        raise ValueError(
            f"opts.max_keys must be between 0 (host default) and 2**31-1, got {max_keys}"
        )
    return s3_pb2.ListObjectsRequest(
        bucket=bucket,
        prefix=_str(opts.prefix, "opts.prefix"),
        delimiter=_str(opts.delimiter, "opts.delimiter"),
        continuation_token=_str(opts.continuation_token, "opts.continuation_token"),
        start_after=_str(opts.start_after, "opts.start_after"),
        max_keys=int(max_keys),
    )


def copy_request(source: object, destination: object, opts: object) -> s3_pb2.CopyObjectRequest:
    """``CopyObjectRequest``; the conditions of ``opts`` apply to the source."""
    src = ref_to_pb(source, "source")
    dst = ref_to_pb(destination, "destination")
    if opts is None:
        return s3_pb2.CopyObjectRequest(source=src, destination=dst)
    _options(opts, CopyOptions, "opts")
    assert isinstance(opts, CopyOptions)
    return s3_pb2.CopyObjectRequest(
        source=src,
        destination=dst,
        if_match=_header(opts.if_match, "opts.if_match"),
        if_none_match=_header(opts.if_none_match, "opts.if_none_match"),
    )


_METHOD_ENUM = {
    PresignMethod.GET: s3_pb2.PRESIGN_METHOD_GET,
    PresignMethod.PUT: s3_pb2.PRESIGN_METHOD_PUT,
    PresignMethod.DELETE: s3_pb2.PRESIGN_METHOD_DELETE,
    PresignMethod.HEAD: s3_pb2.PRESIGN_METHOD_HEAD,
}
_ENUM_METHOD = {number: method for method, number in _METHOD_ENUM.items()}


def _method(value: object) -> PresignMethod | None:
    if value is None or isinstance(value, PresignMethod):
        return value
    if not isinstance(value, str):
        raise TypeError(
            f"opts.method must be a PresignMethod, a str or None, not {type(value).__name__}"
        )
    name = value.strip().upper()
    if not name:
        return None  # like None: the host's default
    try:
        return PresignMethod(name)
    except ValueError:
        raise ValueError(
            f"opts.method must be one of GET, PUT, DELETE, HEAD, got {value!r}"
        ) from None


def _expires_seconds(value: object) -> int:
    if value is None:
        return 0
    if not isinstance(value, dt.timedelta):
        raise TypeError(
            f"opts.expires must be a datetime.timedelta or None, not {type(value).__name__}"
        )
    seconds = value.total_seconds()
    if seconds <= 0:
        raise ValueError(f"opts.expires must be positive (None: the host's default), got {value!r}")
    # Whole seconds on the wire; a sub-second lifetime becomes the shortest one, 1 s.
    return max(1, math.floor(seconds))


def presign_fields(ref: object, opts: object) -> tuple[dict[str, Any], PresignMethod | None]:
    """Fields shared by ``PresignObjectRequest`` and ``CreateObjectAccessURLRequest``, and
    the method asked for."""
    fields: dict[str, Any] = {"ref": ref_to_pb(ref)}
    if opts is None:
        return fields, None
    _options(opts, PresignOptions, "opts")
    assert isinstance(opts, PresignOptions)
    method = _method(opts.method)
    if method is not None:
        fields["method"] = _METHOD_ENUM[method]
    fields["expires_seconds"] = _expires_seconds(opts.expires)
    fields["content_type"] = _header(opts.content_type, "opts.content_type")
    fields["content_disposition"] = _header(opts.content_disposition, "opts.content_disposition")
    fields["headers"] = _header_map(opts.headers, "opts.headers")
    return fields, method


# -- responses -----------------------------------------------------------------------------


def meta_from_pb(meta: s3_pb2.S3ObjectMeta) -> ObjectMeta:
    """An :class:`ObjectMeta` from its message (timestamps truncated to microseconds)."""
    ref = meta.ref
    return ObjectMeta(
        ref=ObjectRef(ref.bucket, ref.key, ref.version_id),
        etag=meta.etag,
        size=meta.size,
        content_type=meta.content_type,
        last_modified=timestamp_from_pb(meta.last_modified)
        if meta.HasField("last_modified")
        else None,
        metadata=dict(meta.metadata),
        storage_class=meta.storage_class,
    )


def page_from_pb(response: s3_pb2.ListObjectsResponse) -> ListPage:
    """A :class:`ListPage` from a ``ListObjectsResponse``."""
    return ListPage(
        objects=[meta_from_pb(meta) for meta in response.objects],
        common_prefixes=list(response.common_prefixes),
        next_continuation_token=response.next_continuation_token,
        has_more=response.has_more,
    )


def presign_result(
    response: s3_pb2.PresignObjectResponse | s3_pb2.CreateObjectAccessURLResponse,
    requested: PresignMethod | None,
) -> PresignResult:
    """A :class:`PresignResult`; an unspecified method falls back to the one requested."""
    method = _ENUM_METHOD.get(response.method, requested)
    return PresignResult(
        url=response.url,
        method=method,
        expires_at=timestamp_from_pb(response.expires_at)
        if response.HasField("expires_at")
        else None,
        headers=dict(response.headers),
    )
