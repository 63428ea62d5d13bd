"""S3 client: objects in the host's S3 buckets, streamed in both directions.

``S3(name=None)`` finds its host through ``GESTALT_S3_SOCKET[_<NAME>]`` (plus the optional
``_TOKEN`` variable) and calls ``gestalt.provider.v1.S3`` and ``S3ObjectAccess`` through the
generated clients on plain pb2 messages. ``AsyncS3`` (:mod:`gestalt._clients.s3_aio`) has the same
methods as coroutines over ``grpc.aio``; ``S3Object``/``AsyncS3Object`` bind one object
reference. Transport, discovery and the channel pool are described in
:mod:`.transport`, the exceptions in :mod:`.errors`, the value types in
:mod:`gestalt._clients.s3_types` and the streams in :mod:`gestalt._clients.s3_stream`.

Semantics (those of the host): a missing object is ``S3NotFoundError`` except for
``delete_object``, which succeeds; failed ``if_match``/``if_none_match``/date conditions are
``S3PreconditionFailedError`` (copy conditions apply to the source, ``if_none_match="*"`` on a
write means "create only"); an unsatisfiable range is ``S3InvalidRangeError``;
``ByteRange.end`` is inclusive. ``read_object`` returns once the metadata frame arrived; the
body follows on the returned stream. ``write_object`` returns after the host committed the
object. ``presign_object`` asks the provider (or, for plugin bindings, the host) for a URL;
``create_object_access_url`` asks the host for a URL it serves itself.

Choices where the reference (gestalt-sdk 0.0.1a18) behaves differently, each deliberate:

* Q17: bodies are never copied whole. ``bytes``, ``bytearray``, ``memoryview`` (and any other
  C-contiguous buffer) are sliced through a ``memoryview`` into 64 KiB frames, and each frame's
  wire form is written straight from its slice (the reference copied ``bytearray`` and
  ``memoryview`` bodies first, then every frame again). Chunks of iterables and files larger
  than 64 KiB are sliced the same way, so no frame can exceed the host's 4 MiB limit.
* Q11 [compat]: a bad body is reported with its own exception, and nothing is stored. The body
  type is checked and its first chunk read before the call opens, so a ``str`` body, a ``str``
  or ``int`` chunk, a text file or a mapping is a ``TypeError`` that never reaches the host; an
  error raised later by an iterable or a file's ``read`` cancels the upload (the host discards
  it) and is re-raised as is. The reference turned all of these into
  ``RpcError(UNKNOWN, "Exception iterating requests!")``. The sync client lets grpc cancel
  the call and drops grpc's log record of that (a logging filter on ``grpc._channel`` that
  only matches the private exception used for it); the async client writes frame by frame
  on a ``grpc.aio`` call and cancels it. Both send ``WriteObject`` through a multicallable
  of their own on the shared channel, whose serializer writes data frames from slices.
* Bad arguments fail before any call: references need non-empty ``str`` bucket and key,
  options must be the documented classes with ``str`` fields and ``dict[str, str]`` maps,
  byte ranges are non-negative ints with ``start <= end`` (``ValueError``), ``max_keys`` is
  between 0 (host default) and 2**31-1.
* Q22 [compat]: ``PresignOptions.method`` must name GET, PUT, DELETE or HEAD (any case);
  another verb is a ``ValueError`` instead of silently asking for the host default and
  reporting the unknown verb back as a plain string. ``expires`` must be positive; a
  sub-second lifetime becomes 1 s instead of 0, which the host reads as "use the 15 minute
  default". Whole seconds are truncated as before.
* Q12: a ``FAILED_PRECONDITION`` from ``presign_object`` or ``create_object_access_url`` means
  the host cannot mint URLs (no base URL, no key, unsupported method); it is a plain
  :class:`~gestalt._clients.errors.HostServiceError`, not ``S3PreconditionFailedError``.
* Q25: through the public relay the host refuses ``S3ObjectAccess`` with ``PERMISSION_DENIED``
  ``host-service-relay-method-not-allowed``; ``create_object_access_url`` then asks
  ``S3/PresignObject``, which the relay allows and which mints the same hosted URL for plugin
  bindings.
* Q23 [compat]: ``S3Object.write_text`` stores ``text/plain; charset=<encoding>`` unless the
  options name a content type (the reference stored none).
* Q13, Q4 [compat]: every failure is a :class:`~gestalt._clients.errors.HostServiceError` (the three
  named S3 errors are subclasses) with ``.code`` and ``.message`` and the original
  ``grpc.RpcError`` as ``__cause__``; the reference re-raised unmapped errors with themselves
  as their cause.
* Q18: every method takes an optional ``timeout`` in seconds; the constructor's ``timeout``
  is the default (None: no deadline). For ``read_object`` the deadline covers reading the
  body, too. A host that disappears mid-stream fails the read or write with ``UNAVAILABLE``
  instead of hanging.
* Q8, Q24: 64 MiB messages and one shared channel per target (see :mod:`.transport`).
* Read streams (Q2's lesson applied to S3): closing the client cancels its open read
  streams, and reading one afterwards raises ``ValueError("s3 client is closed")``; a stream
  dropped without ``close()`` cancels its call when it is collected. Streams also offer
  ``readinto`` and ``readable``, so ``shutil.copyfileobj`` can read from them.
* Use after ``close()`` raises ``ValueError("s3 client is closed")``.
"""

from __future__ import annotations

import builtins
import json
import logging
import threading
import weakref
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import grpc

from gestalt._clients.errors import (
    S3_ACCESS_URL_ERRORS,
    S3_ERRORS,
    HostServiceError,
    S3NotFoundError,
)
from gestalt._clients.s3_stream import (
    Body,
    Frame,
    S3ReadStream,
    serialize_write_frame,
    sync_frames,
)
from gestalt._clients.s3_types import (
    CopyOptions,
    ListOptions,
    ListPage,
    ObjectMeta,
    ObjectRef,
    PresignOptions,
    PresignResult,
    ReadOptions,
    WriteOptions,
    copy_request,
    list_request,
    meta_from_pb,
    page_from_pb,
    presign_fields,
    presign_result,
    read_request,
    ref_to_pb,
    write_header,
)
from gestalt._clients.transport import S3 as S3_SERVICE
from gestalt._clients.transport import SyncConnection, check_timeout
from gestalt.gen.support import ErrorMapper
from gestalt.gen.v1 import s3_pb2
from gestalt.gen.v1.s3_clients import S3Client, S3ObjectAccessClient

__all__ = ["S3", "S3Object"]

#: The RPC both clients call with a multicallable of their own (see Q11, Q17 above).
WRITE_METHOD = "/gestalt.provider.v1.S3/WriteObject"
_RELAY_REFUSED = "host-service-relay-method-not-allowed"


class _SyncStubs:
    """What an S3 client calls on one channel; the pool builds it once per channel."""

    __slots__ = ("access", "objects", "urls", "write")

    def __init__(self, channel: grpc.Channel, *, error_mapper: ErrorMapper) -> None:
        self.objects = S3Client(channel, error_mapper=error_mapper)
        self.urls = S3Client(channel, error_mapper=S3_ACCESS_URL_ERRORS)
        self.access = S3ObjectAccessClient(channel, error_mapper=S3_ACCESS_URL_ERRORS)
        self.write: grpc.StreamUnaryMultiCallable[Any, s3_pb2.WriteObjectResponse]
        self.write = channel.stream_unary(
            WRITE_METHOD,
            request_serializer=serialize_write_frame,
            response_deserializer=s3_pb2.WriteObjectResponse.FromString,
        )


def relay_refused(error: HostServiceError) -> bool:
    """Whether the public relay refused the call because of its method (quirk Q25)."""
    return error.code == grpc.StatusCode.PERMISSION_DENIED and error.message == _RELAY_REFUSED


def text_type(encoding: str) -> str:
    """The content type ``write_text`` stores by default."""
    return f"text/plain; charset={encoding}"


def encode_text(body: object, encoding: object) -> bytes:
    """``body`` (a str) encoded for ``write_text``."""
    if not isinstance(body, str):
        raise TypeError(f"write_text body must be a str, not {type(body).__name__}")
    if not isinstance(encoding, str):
        raise TypeError(f"encoding must be a str, not {type(encoding).__name__}")
    return body.encode(encoding)


def encode_json(value: object) -> bytes:
    """``value`` as the JSON ``write_json`` stores (Python's defaults, UTF-8)."""
    return json.dumps(value).encode("utf-8")


# -- sync ----------------------------------------------------------------------------------


class _BodyAbort(Exception):
    """Raised into grpc's request thread to cancel a sync write whose body failed."""


def _not_body_abort(record: logging.LogRecord) -> bool:
    """Logging filter: drop grpc's report of a :class:`_BodyAbort` (the caller gets the cause)."""
    error = record.exc_info[1] if record.exc_info else None
    return not isinstance(error, _BodyAbort)


# grpc logs every exception of a request iterator before cancelling the call; for a failed
# body that would report, with a misleading traceback, an error the caller receives anyway.
logging.getLogger("grpc._channel").addFilter(_not_body_abort)


class _Upload:
    """The request side of a sync write: the header, then the body's frames.

    grpc pulls :meth:`requests` on its own thread. If the body raises there, the error is
    kept in :attr:`failure` and :class:`_BodyAbort` makes grpc cancel the call, so the host
    never commits a partial object and the caller can raise the body's own exception.
    """

    __slots__ = ("_frames", "failure")

    def __init__(self, frames: Iterator[Frame]) -> None:
        self._frames = frames
        self.failure: Exception | None = None

    def requests(self, header: s3_pb2.WriteObjectRequest, first: Frame | None) -> Iterator[Any]:
        yield header
        if first is None:
            return
        yield first
        frames = self._frames
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                return
            except Exception as exc:
                self.failure = exc
                raise _BodyAbort from None
            yield frame


class S3:
    """Client for a host-provided Gestalt S3 runtime.

    ``name`` selects the binding (``GESTALT_S3_SOCKET_<NAME>``); ``timeout`` is the default
    deadline in seconds for every call (None: no deadline). Raises ``RuntimeError`` when the
    binding's variable is not set. Use as a context manager or call :meth:`close`.
    """

    __slots__ = ("__weakref__", "_conn", "_lock", "_metadata", "_streams", "_timeout")

    def __init__(self, name: str | None = None, *, timeout: float | None = None) -> None:
        self._timeout = check_timeout(timeout)
        self._conn: SyncConnection[_SyncStubs] = SyncConnection(
            S3_SERVICE.endpoint(name), _SyncStubs, S3_ERRORS
        )
        self._metadata = self._conn.metadata
        self._lock = threading.Lock()
        self._streams: weakref.WeakSet[S3ReadStream] = weakref.WeakSet()

    def _deadline(self, timeout: float | None) -> float | None:
        return self._timeout if timeout is None else check_timeout(timeout)

    def close(self) -> None:
        """Close the client and cancel its open read streams; idempotent."""
        with self._lock:
            streams = list(self._streams)
            self._streams.clear()
        for stream in streams:
            stream._orphan()
        self._conn.close()

    def object(self, bucket: str, key: str) -> S3Object:
        """Return an object helper for the latest version."""
        return S3Object(self, ObjectRef(bucket, key))

    def object_version(self, bucket: str, key: str, version_id: str) -> S3Object:
        """Return an object helper pinned to a specific version."""
        return S3Object(self, ObjectRef(bucket, key, version_id))

    def head_object(self, ref: ObjectRef, *, timeout: float | None = None) -> ObjectMeta:
        """Fetch metadata for an object without reading its body."""
        response = self._conn.stub.objects.head_object(
            s3_pb2.HeadObjectRequest(ref=ref_to_pb(ref)),
            timeout=self._deadline(timeout),
            metadata=self._metadata,
        )
        return meta_from_pb(response.meta)

    def read_object(
        self, ref: ObjectRef, opts: ReadOptions | None = None, *, timeout: float | None = None
    ) -> tuple[ObjectMeta, S3ReadStream]:
        """Open a streaming read for an object: its metadata and a stream of its body.

        Close the stream (or use it in a ``with`` block) when not reading it to the end.
        """
        request = read_request(ref, opts)
        stream = self._conn.stub.objects.read_object(
            request, timeout=self._deadline(timeout), metadata=self._metadata
        )
        try:
            first = next(stream)
        except StopIteration:
            raise RuntimeError("s3: read stream ended before metadata") from None
        except BaseException:
            stream.cancel()
            raise
        if first.WhichOneof("result") != "meta":
            stream.cancel()
            raise RuntimeError("s3: read stream did not start with metadata")
        reader = S3ReadStream(stream)
        with self._lock:
            self._streams.add(reader)
        return meta_from_pb(first.meta), reader

    def write_object(
        self,
        ref: ObjectRef,
        body: Body = None,
        opts: WriteOptions | None = None,
        *,
        timeout: float | None = None,
    ) -> ObjectMeta:
        """Write an object body and return the resulting metadata.

        ``body`` may be bytes-like, a binary file (read 64 KiB at a time), an iterable of
        bytes-like chunks, or None for an empty object; it is streamed, never copied whole.
        """
        return self._write(write_header(ref, opts), body, timeout)

    def _write(
        self, header: s3_pb2.WriteObjectRequest, body: builtins.object, timeout: float | None
    ) -> ObjectMeta:
        stubs = self._conn.stub
        deadline = self._deadline(timeout)
        frames = sync_frames(body)
        first = next(frames, None)  # a body that fails at once never opens a call
        upload = _Upload(frames)
        try:
            response = stubs.write(
                upload.requests(header, first), timeout=deadline, metadata=self._metadata
            )
        except grpc.RpcError as exc:
            if upload.failure is None:
                raise S3_ERRORS(exc) from exc
        else:
            return meta_from_pb(response.meta)
        failure, upload.failure = upload.failure, None
        try:
            raise failure
        finally:
            del failure

    def delete_object(self, ref: ObjectRef, *, timeout: float | None = None) -> None:
        """Delete an object (a missing object is not an error)."""
        self._conn.stub.objects.delete_object(
            s3_pb2.DeleteObjectRequest(ref=ref_to_pb(ref)),
            timeout=self._deadline(timeout),
            metadata=self._metadata,
        )

    def list_objects(self, opts: ListOptions, *, timeout: float | None = None) -> ListPage:
        """List objects within a bucket, one page per call."""
        response = self._conn.stub.objects.list_objects(
            list_request(opts), timeout=self._deadline(timeout), metadata=self._metadata
        )
        return page_from_pb(response)

    def copy_object(
        self,
        source: ObjectRef,
        destination: ObjectRef,
        opts: CopyOptions | None = None,
        *,
        timeout: float | None = None,
    ) -> ObjectMeta:
        """Copy an object and return metadata for the destination."""
        response = self._conn.stub.objects.copy_object(
            copy_request(source, destination, opts),
            timeout=self._deadline(timeout),
            metadata=self._metadata,
        )
        return meta_from_pb(response.meta)

    def presign_object(
        self, ref: ObjectRef, opts: PresignOptions | None = None, *, timeout: float | None = None
    ) -> PresignResult:
        """Generate a presigned URL for an object operation."""
        fields, method = presign_fields(ref, opts)
        response = self._conn.stub.urls.presign_object(
            s3_pb2.PresignObjectRequest(**fields),
            timeout=self._deadline(timeout),
            metadata=self._metadata,
        )
        return presign_result(response, method)

    def create_object_access_url(
        self, ref: ObjectRef, opts: PresignOptions | None = None, *, timeout: float | None = None
    ) -> PresignResult:
        """Create a host-mediated object access URL (served by the host itself)."""
        fields, method = presign_fields(ref, opts)
        stubs = self._conn.stub
        deadline = self._deadline(timeout)
        try:
            response: Any = stubs.access.create_object_access_url(
                s3_pb2.CreateObjectAccessURLRequest(**fields),
                timeout=deadline,
                metadata=self._metadata,
            )
        except HostServiceError as err:
            if not relay_refused(err):
                raise
            response = stubs.urls.presign_object(
                s3_pb2.PresignObjectRequest(**fields), timeout=deadline, metadata=self._metadata
            )
        return presign_result(response, method)

    def create_access_url(
        self, ref: ObjectRef, opts: PresignOptions | None = None, *, timeout: float | None = None
    ) -> PresignResult:
        """Create a host-mediated object access URL (same as :meth:`create_object_access_url`)."""
        return self.create_object_access_url(ref, opts, timeout=timeout)

    def __enter__(self) -> S3:
        """Return the client for with statements."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the client at the end of a context manager block."""
        self.close()


class S3Object:
    """Convenience wrapper for a single S3 object reference (``ref``) on a client."""

    __slots__ = ("_client", "ref")

    def __init__(self, client: S3, ref: ObjectRef) -> None:
        ref_to_pb(ref)  # checks the reference now rather than at the first call
        self._client = client
        self.ref = ref

    def stat(self, *, timeout: float | None = None) -> ObjectMeta:
        """Fetch object metadata."""
        return self._client.head_object(self.ref, timeout=timeout)

    def exists(self, *, timeout: float | None = None) -> bool:
        """Return whether the object exists (other failures propagate)."""
        try:
            self._client.head_object(self.ref, timeout=timeout)
        except S3NotFoundError:
            return False
        return True

    def stream(
        self, opts: ReadOptions | None = None, *, timeout: float | None = None
    ) -> tuple[ObjectMeta, S3ReadStream]:
        """Open a streaming read for the object."""
        return self._client.read_object(self.ref, opts, timeout=timeout)

    def bytes(
        self, opts: ReadOptions | None = None, *, timeout: float | None = None
    ) -> builtins.bytes:
        """Read the full object body as bytes."""
        _, stream = self._client.read_object(self.ref, opts, timeout=timeout)
        with stream:
            return stream.read()

    def text(
        self,
        opts: ReadOptions | None = None,
        *,
        encoding: str = "utf-8",
        timeout: float | None = None,
    ) -> str:
        """Read the full object body as text (strict decoding)."""
        return self.bytes(opts, timeout=timeout).decode(encoding)

    def json(self, opts: ReadOptions | None = None, *, timeout: float | None = None) -> Any:
        """Read and decode the full object body as JSON."""
        return json.loads(self.bytes(opts, timeout=timeout))

    def write(
        self, body: Body = None, opts: WriteOptions | None = None, *, timeout: float | None = None
    ) -> ObjectMeta:
        """Write an object body (see :meth:`S3.write_object`)."""
        return self._client.write_object(self.ref, body, opts, timeout=timeout)

    def write_bytes(
        self,
        body: builtins.bytes | bytearray | memoryview,
        opts: WriteOptions | None = None,
        *,
        timeout: float | None = None,
    ) -> ObjectMeta:
        """Write bytes to the object."""
        return self._client.write_object(self.ref, body, opts, timeout=timeout)

    def write_text(
        self,
        body: str,
        opts: WriteOptions | None = None,
        *,
        encoding: str = "utf-8",
        timeout: float | None = None,
    ) -> ObjectMeta:
        """Encode and write text; the content type defaults to ``text/plain; charset=...``."""
        header = write_header(self.ref, opts, default_content_type=text_type(encoding))
        return self._client._write(header, encode_text(body, encoding), timeout)

    def write_json(
        self, value: Any, opts: WriteOptions | None = None, *, timeout: float | None = None
    ) -> ObjectMeta:
        """Encode and write JSON; the content type defaults to ``application/json``."""
        header = write_header(self.ref, opts, default_content_type="application/json")
        return self._client._write(header, encode_json(value), timeout)

    def delete(self, *, timeout: float | None = None) -> None:
        """Delete the object."""
        self._client.delete_object(self.ref, timeout=timeout)

    def presign(
        self, opts: PresignOptions | None = None, *, timeout: float | None = None
    ) -> PresignResult:
        """Generate a presigned URL for this object."""
        return self._client.presign_object(self.ref, opts, timeout=timeout)

    def create_access_url(
        self, opts: PresignOptions | None = None, *, timeout: float | None = None
    ) -> PresignResult:
        """Create a host-mediated object access URL for this object."""
        return self._client.create_object_access_url(self.ref, opts, timeout=timeout)

    def __repr__(self) -> str:
        return f"S3Object({self.ref!r})"
