"""S3 provider: an object store kept in memory, written against the raw S3 protocol.

S3 providers get no conversion layer: the runtime hands each ``gestalt.provider.v1.S3`` RPC to
the method of the same snake_case name, with the protocol request (or, for ``write_object``,
the iterator of request messages) and the gRPC servicer context, and sends back what the
method returns or yields. Failures are reported the way the host expects them:
``context.abort`` with NOT_FOUND for a missing object, FAILED_PRECONDITION for a failed
``if_match``/``if_none_match`` and OUT_OF_RANGE for a range outside the object.

Implemented: ``head_object``, ``read_object`` (the metadata first, then the body in 64 KiB
chunks, optionally only a byte range), ``write_object`` (an ``open`` header, then body
chunks), ``delete_object`` (deleting a missing object is fine) and ``list_objects`` (prefix,
delimiter, ``start_after``, pages of ``max_keys`` with a continuation token). ``copy_object``
and ``presign_object`` are left out on purpose: the runtime answers them UNIMPLEMENTED.
Buckets need no creation; objects live as long as the provider process.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import threading
from collections.abc import Iterator

import grpc
from google.protobuf import empty_pb2, timestamp_pb2

from gestalt import S3Provider
from gestalt.gen.v1 import s3_pb2

CHUNK_BYTES = 64 * 1024
DEFAULT_MAX_KEYS = 1000


@dataclasses.dataclass(frozen=True, slots=True)
class StoredObject:
    """One object: its body and what ``head_object`` reports about it."""

    bucket: str
    key: str
    data: bytes
    etag: str
    content_type: str
    metadata: dict[str, str]
    last_modified: dt.datetime

    def meta(self) -> s3_pb2.S3ObjectMeta:
        """The protocol's description of this object."""
        modified = timestamp_pb2.Timestamp()
        modified.FromDatetime(self.last_modified)
        return s3_pb2.S3ObjectMeta(
            ref=s3_pb2.S3ObjectRef(bucket=self.bucket, key=self.key),
            etag=self.etag,
            size=len(self.data),
            content_type=self.content_type,
            last_modified=modified,
            metadata=self.metadata,
        )


def etag_matches(condition: str, etag: str) -> bool:
    """Whether an ``If-Match``-style list of (quoted or weak) tags names ``etag`` or is ``*``."""
    tags = {part.strip().removeprefix("W/").strip('"') for part in condition.split(",")}
    return "*" in tags or etag in tags


class MemoryS3Provider(S3Provider):
    """Objects in a dict keyed by (bucket, key), guarded by a lock."""

    def __init__(self) -> None:
        self._objects: dict[tuple[str, str], StoredObject] = {}
        self._lock = threading.Lock()

    def head_object(
        self, request: s3_pb2.HeadObjectRequest, context: grpc.ServicerContext
    ) -> s3_pb2.HeadObjectResponse:
        """The metadata of an object."""
        return s3_pb2.HeadObjectResponse(meta=self._find(request.ref, context).meta())

    def read_object(
        self, request: s3_pb2.ReadObjectRequest, context: grpc.ServicerContext
    ) -> Iterator[s3_pb2.ReadObjectChunk]:
        """The metadata, then the selected bytes in chunks of at most 64 KiB."""
        obj = self._find(request.ref, context)
        if request.if_match and not etag_matches(request.if_match, obj.etag):
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "if_match: the etag differs")
        if request.if_none_match and etag_matches(request.if_none_match, obj.etag):
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "if_none_match: the etag matches")
        start, end = 0, len(obj.data)
        if request.HasField("range"):
            start, end = byte_range(request.range, len(obj.data), context)
        yield s3_pb2.ReadObjectChunk(meta=obj.meta())
        for offset in range(start, end, CHUNK_BYTES):
            yield s3_pb2.ReadObjectChunk(data=obj.data[offset : min(offset + CHUNK_BYTES, end)])

    def write_object(
        self, requests: Iterator[s3_pb2.WriteObjectRequest], context: grpc.ServicerContext
    ) -> s3_pb2.WriteObjectResponse:
        """Store the object described by the first (``open``) message and the data after it."""
        first = next(requests, None)
        if first is None or first.WhichOneof("msg") != "open":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be open")
        header = first.open
        check_ref(header.ref, context)
        parts = []
        for message in requests:
            if message.WhichOneof("msg") != "data":
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "only one open message allowed")
            parts.append(message.data)
        data = b"".join(parts)
        obj = StoredObject(
            bucket=header.ref.bucket,
            key=header.ref.key,
            data=data,
            etag=hashlib.md5(data, usedforsecurity=False).hexdigest(),
            content_type=header.content_type or "application/octet-stream",
            metadata=dict(header.metadata),
            last_modified=dt.datetime.now(dt.UTC),
        )
        with self._lock:
            current = self._objects.get((obj.bucket, obj.key))
            etag = current.etag if current is not None else None
            if header.if_match and not (etag and etag_matches(header.if_match, etag)):
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, "if_match: no such version")
            if header.if_none_match and etag and etag_matches(header.if_none_match, etag):
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, "if_none_match: it exists")
            self._objects[(obj.bucket, obj.key)] = obj
        return s3_pb2.WriteObjectResponse(meta=obj.meta())

    def delete_object(
        self, request: s3_pb2.DeleteObjectRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Remove an object if it exists."""
        check_ref(request.ref, context)
        with self._lock:
            self._objects.pop((request.ref.bucket, request.ref.key), None)
        return empty_pb2.Empty()

    def list_objects(
        self, request: s3_pb2.ListObjectsRequest, context: grpc.ServicerContext
    ) -> s3_pb2.ListObjectsResponse:
        """One page of a bucket's keys in order, grouped by ``delimiter`` when given.

        The continuation token is the last key or common prefix of the previous page.
        """
        if not request.bucket:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bucket is required")
        if request.max_keys < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "max_keys must not be negative")
        limit = min(request.max_keys or DEFAULT_MAX_KEYS, DEFAULT_MAX_KEYS)
        after = max(request.start_after, request.continuation_token)
        with self._lock:
            keys = sorted(k for b, k in self._objects if b == request.bucket)
            objects = {k: self._objects[(request.bucket, k)] for k in keys}
        entries: list[StoredObject | str] = []
        for key in keys:
            if not key.startswith(request.prefix) or key <= after:
                continue
            cut = key.find(request.delimiter, len(request.prefix)) if request.delimiter else -1
            if cut < 0:
                entries.append(objects[key])
                continue
            group = key[: cut + len(request.delimiter)]
            if group != after and (not entries or entries[-1] != group):
                entries.append(group)
        page, has_more = entries[:limit], len(entries) > limit
        last = page[-1] if page else ""
        return s3_pb2.ListObjectsResponse(
            objects=[e.meta() for e in page if isinstance(e, StoredObject)],
            common_prefixes=[e for e in page if isinstance(e, str)],
            next_continuation_token=(last if isinstance(last, str) else last.key)
            if has_more
            else "",
            has_more=has_more,
        )

    def _find(self, ref: s3_pb2.S3ObjectRef, context: grpc.ServicerContext) -> StoredObject:
        check_ref(ref, context)
        with self._lock:
            obj = self._objects.get((ref.bucket, ref.key))
        if obj is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"{ref.bucket}/{ref.key}: no such object")
        return obj


def check_ref(ref: s3_pb2.S3ObjectRef, context: grpc.ServicerContext) -> None:
    """Abort with INVALID_ARGUMENT unless ``ref`` names a bucket and a key."""
    if not ref.bucket or not ref.key:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "ref needs a bucket and a key")


def byte_range(
    requested: s3_pb2.ByteRange, size: int, context: grpc.ServicerContext
) -> tuple[int, int]:
    """``[start, end)`` of an inclusive byte range; OUT_OF_RANGE unless it fits the object."""
    start = requested.start if requested.HasField("start") else 0
    if not requested.HasField("end"):
        if start < 0 or start > size:
            context.abort(grpc.StatusCode.OUT_OF_RANGE, f"range start {start} is past {size}")
        return start, size
    end = requested.end
    if start < 0 or end < start or end >= size:
        context.abort(grpc.StatusCode.OUT_OF_RANGE, f"range {start}-{end} outside 0-{size - 1}")
    return start, end + 1


provider = MemoryS3Provider()
