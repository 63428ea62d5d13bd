"""S3 client: objects in the host's S3 buckets, streamed in both directions.

``S3(name=None)`` finds its host through ``GESTALT_S3_SOCKET[_<NAME>]`` (plus the optional
``_TOKEN`` variable) and calls ``gestalt.provider.v1.S3`` and ``S3ObjectAccess`` through the
generated clients on plain pb2 messages. ``AsyncS3`` has the same methods as coroutines over
``grpc.aio``; ``S3Object``/``AsyncS3Object`` bind one object reference. Both clients share
one core written without I/O: each unary method is built once as a :class:`Call` (the stub
method, the checked request from :mod:`.s3_types`, the decoder and the call to make instead
when the relay refuses it), which the sync client runs with a blocking call and the asyncio
client awaits; the object helpers build their uploads once and the stream bookkeeping lives
in ``_Client``. Only the streams are moved separately, where the I/O really differs.
Asyncio differences: bodies may also be async iterables or objects with an async ``read``; a
blocking file's ``read`` runs on the event loop; an upload is written frame by frame on the
call, which is cancelled when the body fails; read streams are ``AsyncS3ReadStream``.
Transport, discovery and the channel pool are described in :mod:`.transport`, the
exceptions in :mod:`.errors`, the value types in :mod:`.s3_types` and the
streams in :mod:`.s3_stream`.

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
  byte ranges are non-negative ints with ``start <= end``, ``max_keys`` is between 0 (host
  default) and 2**31-1. A range that breaks those rules raises ``S3InvalidRangeError``, the
  host's error for a range it cannot serve, as an instance that is also a ``ValueError``.
* Header values (an addition): a control character (below U+0020, or U+007F; CR and LF
  among them) in an option that travels as an HTTP header (the write options' content
  headers, metadata keys and values, ``if_match``/``if_none_match`` of reads, writes and
  copies, presign content type, disposition and headers) raises ``S3HeaderValueError``
  naming the option before any call. The reference sent them on.
* Q22 [compat]: ``PresignOptions.method`` must name GET, PUT, DELETE or HEAD (any case);
  another verb is a ``ValueError`` instead of silently asking for the host default and
  reporting the unknown verb back as a plain string. ``expires`` must be positive; a
  sub-second lifetime becomes 1 s instead of 0, which the host reads as "use the 15 minute
  default". Whole seconds are truncated as before.
* Q12: a ``FAILED_PRECONDITION`` from ``presign_object`` or ``create_object_access_url`` means
  the host cannot mint URLs (no base URL, no key, unsupported method); it is a plain
  :class:`~.errors.HostServiceError`, not ``S3PreconditionFailedError``.
* Q25: through the public relay the host refuses ``S3ObjectAccess`` with ``PERMISSION_DENIED``
  ``host-service-relay-method-not-allowed``; ``create_object_access_url`` then asks
  ``S3/PresignObject``, which the relay allows and which mints the same hosted URL for plugin
  bindings.
* Q23 [compat]: ``S3Object.write_text`` stores ``text/plain; charset=<encoding>`` unless the
  options name a content type (the reference stored none).
* Q13, Q4 [compat]: every failure is a :class:`~.errors.HostServiceError` (the three
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
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import grpc
import grpc.aio

from gestalt._clients.closing import AsyncClosing, Closing
from gestalt._clients.errors import (
    S3_ACCESS_URL_ERRORS,
    S3_ERRORS,
    HostServiceError,
    S3NotFoundError,
)
from gestalt._clients.s3_stream import (
    AsyncBody,
    AsyncS3ReadStream,
    Body,
    Frame,
    S3ReadStream,
    _Reader,
    aio_frames,
    serialize_write_frame,
    sync_frames,
)
from gestalt._clients.transport import S3 as S3_SERVICE
from gestalt._clients.transport import AioConnection, CallOptions, SyncConnection, check_timeout
from gestalt.gen.support import ErrorMapper
from gestalt.gen.v1 import s3_pb2
from gestalt.gen.v1.s3_clients import (
    AsyncS3Client,
    AsyncS3ObjectAccessClient,
    S3Client,
    S3ObjectAccessClient,
)

# The option and result types, and the conversions building them, load on the first call
# that needs them (their ten dataclasses cost ~7 ms, more than the rest of this module).
if TYPE_CHECKING:
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
    )

__all__ = ["S3", "AsyncS3", "AsyncS3Object", "S3Object"]

#: The RPC both clients call with a multicallable of their own (see Q11, Q17 above).
WRITE_METHOD = "/gestalt.provider.v1.S3/WriteObject"
_RELAY_REFUSED = "host-service-relay-method-not-allowed"

_O = TypeVar("_O", bound="_Object[Any]")
_Objects = TypeVar("_Objects")
_Access = TypeVar("_Access")
_Write = TypeVar("_Write")
_C = TypeVar("_C")
_R = TypeVar("_R", bound=_Reader)
_T = TypeVar("_T")


class _Stubs(Generic[_Objects, _Access, _Write]):
    """What an S3 client calls on one channel; the pool builds it once per channel.

    ``_kinds`` are the generated S3 and S3ObjectAccess client classes for the channel's kind
    (sync or ``grpc.aio``). Writes go through a multicallable of our own (Q11, Q17).
    """

    __slots__ = ("access", "objects", "urls", "write")

    _kinds: tuple[Callable[..., _Objects], Callable[..., _Access]]

    def __init__(self, channel: Any, *, error_mapper: ErrorMapper) -> None:
        objects, access = self._kinds
        self.objects = objects(channel, error_mapper=error_mapper)
        self.urls = objects(channel, error_mapper=S3_ACCESS_URL_ERRORS)
        self.access = access(channel, error_mapper=S3_ACCESS_URL_ERRORS)
        self.write: _Write = channel.stream_unary(
            WRITE_METHOD,
            request_serializer=serialize_write_frame,
            response_deserializer=s3_pb2.WriteObjectResponse.FromString,
        )


# The multicallable types only exist for type checkers, hence the strings.
class _SyncStubs(
    _Stubs[
        S3Client,
        S3ObjectAccessClient,
        "grpc.StreamUnaryMultiCallable[Any, s3_pb2.WriteObjectResponse]",
    ]
):
    __slots__ = ()
    _kinds = (S3Client, S3ObjectAccessClient)


class _AioStubs(
    _Stubs[
        AsyncS3Client,
        AsyncS3ObjectAccessClient,
        "grpc.aio.StreamUnaryMultiCallable[Any, s3_pb2.WriteObjectResponse]",
    ]
):
    __slots__ = ()
    _kinds = (AsyncS3Client, AsyncS3ObjectAccessClient)


def relay_refused(error: HostServiceError) -> bool:
    """Whether the public relay refused the call because of its method (quirk Q25)."""
    return error.code == grpc.StatusCode.PERMISSION_DENIED and error.message == _RELAY_REFUSED


# -- calls (no I/O) ------------------------------------------------------------------------


class Call(Generic[_T]):
    """One unary S3 request without I/O.

    ``rpc`` picks the generated method from a channel's stubs (a :class:`_Stubs`),
    ``request`` is the checked message, ``decode`` turns the response into what the method
    returns, and ``instead`` is the call to make when the public relay refuses this one
    (quirk Q25). The sync client runs it with a blocking call, the asyncio client awaits it.
    (A plain class: a NamedTuple costs ~0.4 ms to define at import.)
    """

    __slots__ = ("decode", "instead", "request", "rpc")

    def __init__(
        self,
        rpc: Callable[[Any], Callable[..., Any]],
        request: Any,
        decode: Callable[[Any], _T],
        instead: Call[_T] | None = None,
    ) -> None:
        self.rpc = rpc
        self.request = request
        self.decode = decode
        self.instead = instead

    def after(self, error: HostServiceError) -> Call[_T] | None:
        """The call to make after this one failed with ``error``; None: raise ``error``."""
        return self.instead if relay_refused(error) else None


_HEAD = attrgetter("objects.head_object")
_DELETE = attrgetter("objects.delete_object")
_LIST = attrgetter("objects.list_objects")
_COPY = attrgetter("objects.copy_object")
_PRESIGN = attrgetter("urls.presign_object")
_ACCESS_URL = attrgetter("access.create_object_access_url")


def _meta(response: Any) -> ObjectMeta:
    from gestalt._clients.s3_types import meta_from_pb

    return meta_from_pb(response.meta)


def _nothing(response: Any) -> None:
    return None


def head_call(ref: ObjectRef) -> Call[ObjectMeta]:
    """``head_object``."""
    from gestalt._clients.s3_types import ref_to_pb

    return Call(_HEAD, s3_pb2.HeadObjectRequest(ref=ref_to_pb(ref)), _meta)


def delete_call(ref: ObjectRef) -> Call[None]:
    """``delete_object``."""
    from gestalt._clients.s3_types import ref_to_pb

    return Call(_DELETE, s3_pb2.DeleteObjectRequest(ref=ref_to_pb(ref)), _nothing)


def list_call(opts: ListOptions) -> Call[ListPage]:
    """``list_objects``."""
    from gestalt._clients.s3_types import list_request, page_from_pb

    return Call(_LIST, list_request(opts), page_from_pb)


def copy_call(
    source: ObjectRef, destination: ObjectRef, opts: CopyOptions | None
) -> Call[ObjectMeta]:
    """``copy_object``."""
    from gestalt._clients.s3_types import copy_request

    return Call(_COPY, copy_request(source, destination, opts), _meta)


def presign_call(ref: ObjectRef, opts: PresignOptions | None) -> Call[PresignResult]:
    """``presign_object``."""
    return _presign(ref, opts)[1]


def access_url_call(ref: ObjectRef, opts: PresignOptions | None) -> Call[PresignResult]:
    """``create_object_access_url``; through the public relay, ``PresignObject`` (Q25)."""
    fields, presign = _presign(ref, opts)
    request = s3_pb2.CreateObjectAccessURLRequest(**fields)
    return Call(_ACCESS_URL, request, presign.decode, presign)


def _presign(
    ref: ObjectRef, opts: PresignOptions | None
) -> tuple[dict[str, Any], Call[PresignResult]]:
    """The checked request fields of a presign, and the ``PresignObject`` call made of them."""
    from gestalt._clients.s3_types import presign_fields, presign_result

    fields, method = presign_fields(ref, opts)
    decode = partial(presign_result, requested=method)
    return fields, Call(_PRESIGN, s3_pb2.PresignObjectRequest(**fields), decode)


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


class _Client(Generic[_O]):
    """What S3 and AsyncS3 share: object helpers and the set of open read streams."""

    __slots__ = ("__weakref__", "_conn", "_lock", "_streams")

    _object_type: type[_O]
    _connection_type: Callable[..., Any]
    _stubs_type: Callable[..., Any]

    def __init__(self, name: str | None = None, *, timeout: float | None = None) -> None:
        default = check_timeout(timeout)  # checked before the environment is read
        endpoint = S3_SERVICE.endpoint(name)
        self._conn: Any = self._connection_type(endpoint, self._stubs_type, S3_ERRORS, default)
        self._lock = threading.Lock()
        self._streams: weakref.WeakSet[_Reader] = weakref.WeakSet()

    def _opts(self, timeout: float | None) -> CallOptions:
        options: CallOptions = self._conn.options(timeout)
        return options

    def object(self, bucket: str, key: str) -> _O:
        """Return an object helper for the latest version."""
        from gestalt._clients.s3_types import ObjectRef

        return self._object_type(self, ObjectRef(bucket, key))

    def object_version(self, bucket: str, key: str, version_id: str) -> _O:
        """Return an object helper pinned to a specific version."""
        from gestalt._clients.s3_types import ObjectRef

        return self._object_type(self, ObjectRef(bucket, key, version_id))

    def _opened(
        self, first: Any, stream: Any, reader: Callable[[Any], _R]
    ) -> tuple[ObjectMeta, _R]:
        """Check a read's first frame (the metadata) and track the stream of the body."""
        if first is None or first is grpc.aio.EOF:
            raise RuntimeError("s3: read stream ended before metadata")
        if first.WhichOneof("result") != "meta":
            stream.cancel()
            raise RuntimeError("s3: read stream did not start with metadata")
        body = reader(stream)
        with self._lock:
            self._streams.add(body)
        from gestalt._clients.s3_types import meta_from_pb

        return meta_from_pb(first.meta), body

    def _orphan_streams(self) -> None:
        """Cancel the open read streams; reading them later raises ``ValueError``."""
        with self._lock:
            streams = list(self._streams)
            self._streams.clear()
        for stream in streams:
            stream._orphan()


class _Object(Generic[_C]):
    """What S3Object and AsyncS3Object share: the client and the checked reference."""

    __slots__ = ("_client", "ref")

    def __init__(self, client: _C, ref: ObjectRef) -> None:
        from gestalt._clients.s3_types import ref_to_pb

        ref_to_pb(ref)  # checks the reference now rather than at the first call
        self._client = client
        self.ref = ref

    def _text(
        self, body: object, opts: WriteOptions | None, encoding: object
    ) -> tuple[s3_pb2.WriteObjectRequest, bytes]:
        """``write_text``'s upload: the header (``text/plain; charset=<encoding>`` unless the
        options name a content type) and the encoded body."""
        plain = f"text/plain; charset={encoding}"
        from gestalt._clients.s3_types import write_header

        header = write_header(self.ref, opts, default_content_type=plain)
        if not isinstance(body, str):
            raise TypeError(f"write_text body must be a str, not {type(body).__name__}")
        if not isinstance(encoding, str):
            raise TypeError(f"encoding must be a str, not {type(encoding).__name__}")
        return header, body.encode(encoding)

    def _json(
        self, value: object, opts: WriteOptions | None
    ) -> tuple[s3_pb2.WriteObjectRequest, bytes]:
        """``write_json``'s upload: the header (``application/json`` unless the options name
        a content type) and the value as JSON (Python's defaults, UTF-8)."""
        from gestalt._clients.s3_types import write_header

        header = write_header(self.ref, opts, default_content_type="application/json")
        return header, json.dumps(value).encode("utf-8")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.ref!r})"


class S3Object(_Object["S3"]):
    """Convenience wrapper for a single S3 object reference (``ref``) on a client."""

    __slots__ = ()

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
        return self._client._write(*self._text(body, opts, encoding), timeout)

    def write_json(
        self, value: Any, opts: WriteOptions | None = None, *, timeout: float | None = None
    ) -> ObjectMeta:
        """Encode and write JSON; the content type defaults to ``application/json``."""
        return self._client._write(*self._json(value, opts), timeout)

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


class S3(_Client[S3Object], Closing):
    """Client for a host-provided Gestalt S3 runtime.

    ``name`` selects the binding (``GESTALT_S3_SOCKET_<NAME>``); ``timeout`` is the default
    deadline in seconds for every call (None: no deadline). Raises ``RuntimeError`` when the
    binding's variable is not set. Use as a context manager or call :meth:`close`.
    """

    __slots__ = ()

    _object_type = S3Object
    _connection_type = SyncConnection
    _stubs_type = _SyncStubs
    _conn: SyncConnection[_SyncStubs]

    def close(self) -> None:
        """Close the client and cancel its open read streams; idempotent."""
        self._orphan_streams()
        self._conn.close()

    def _run(self, call: Call[_T], timeout: float | None) -> _T:
        """Make ``call`` (and what it says to make instead) and decode the response."""
        stubs, options = self._conn.stub, self._opts(timeout)
        try:
            response = call.rpc(stubs)(call.request, **options)
        except HostServiceError as error:
            then = call.after(error)
            if then is None:
                raise
            call, response = then, then.rpc(stubs)(then.request, **options)
        return call.decode(response)

    def head_object(self, ref: ObjectRef, *, timeout: float | None = None) -> ObjectMeta:
        """Fetch metadata for an object without reading its body."""
        return self._run(head_call(ref), timeout)

    def read_object(
        self, ref: ObjectRef, opts: ReadOptions | None = None, *, timeout: float | None = None
    ) -> tuple[ObjectMeta, S3ReadStream]:
        """Open a streaming read for an object: its metadata and a stream of its body.

        Close the stream (or use it in a ``with`` block) when not reading it to the end.
        """
        from gestalt._clients.s3_types import read_request

        request = read_request(ref, opts)
        stream = self._conn.stub.objects.read_object(request, **self._opts(timeout))
        try:
            first = next(stream, None)
        except BaseException:
            stream.cancel()
            raise
        return self._opened(first, stream, S3ReadStream)

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
        from gestalt._clients.s3_types import write_header

        return self._write(write_header(ref, opts), body, timeout)

    def _write(
        self, header: s3_pb2.WriteObjectRequest, body: builtins.object, timeout: float | None
    ) -> ObjectMeta:
        stubs = self._conn.stub
        options = self._opts(timeout)
        frames = sync_frames(body)
        first = next(frames, None)  # a body that fails at once never opens a call
        upload = _Upload(frames)
        try:
            response = stubs.write(upload.requests(header, first), **options)
        except grpc.RpcError as exc:
            if upload.failure is None:
                raise S3_ERRORS(exc) from exc
        else:
            from gestalt._clients.s3_types import meta_from_pb

            return meta_from_pb(response.meta)
        failure, upload.failure = upload.failure, None
        try:
            raise failure
        finally:
            del failure

    def delete_object(self, ref: ObjectRef, *, timeout: float | None = None) -> None:
        """Delete an object (a missing object is not an error)."""
        self._run(delete_call(ref), timeout)

    def list_objects(self, opts: ListOptions, *, timeout: float | None = None) -> ListPage:
        """List objects within a bucket, one page per call."""
        return self._run(list_call(opts), timeout)

    def copy_object(
        self,
        source: ObjectRef,
        destination: ObjectRef,
        opts: CopyOptions | None = None,
        *,
        timeout: float | None = None,
    ) -> ObjectMeta:
        """Copy an object and return metadata for the destination."""
        return self._run(copy_call(source, destination, opts), timeout)

    def presign_object(
        self, ref: ObjectRef, opts: PresignOptions | None = None, *, timeout: float | None = None
    ) -> PresignResult:
        """Generate a presigned URL for an object operation."""
        return self._run(presign_call(ref, opts), timeout)

    def create_object_access_url(
        self, ref: ObjectRef, opts: PresignOptions | None = None, *, timeout: float | None = None
    ) -> PresignResult:
        """Create a host-mediated object access URL (served by the host itself)."""
        return self._run(access_url_call(ref, opts), timeout)

    def create_access_url(
        self, ref: ObjectRef, opts: PresignOptions | None = None, *, timeout: float | None = None
    ) -> PresignResult:
        """Create a host-mediated object access URL (same as :meth:`create_object_access_url`)."""
        return self.create_object_access_url(ref, opts, timeout=timeout)


# -- asyncio -------------------------------------------------------------------------------


class _BodyFailed(Exception):
    """Carries an exception raised by the body of an async write out of the send loop."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


async def _first_frame(frames: Iterator[Frame] | AsyncIterator[Frame]) -> Frame | None:
    if isinstance(frames, AsyncIterator):
        return await anext(frames, None)
    return next(frames, None)


async def _send_frames(
    call: grpc.aio.StreamUnaryCall[Any, Any], frames: Iterator[Frame] | AsyncIterator[Frame]
) -> None:
    while True:
        try:
            if isinstance(frames, AsyncIterator):
                frame = await anext(frames)
            else:
                frame = next(frames)
        except (StopIteration, StopAsyncIteration):
            return
        except Exception as exc:
            raise _BodyFailed(exc) from None
        await call.write(frame)


class AsyncS3Object(_Object["AsyncS3"]):
    """The helpers of :class:`S3Object` as coroutines, on an :class:`AsyncS3` client."""

    __slots__ = ()

    async def stat(self, *, timeout: float | None = None) -> ObjectMeta:
        """Fetch object metadata."""
        return await self._client.head_object(self.ref, timeout=timeout)

    async def exists(self, *, timeout: float | None = None) -> bool:
        """Return whether the object exists (other failures propagate)."""
        try:
            await self._client.head_object(self.ref, timeout=timeout)
        except S3NotFoundError:
            return False
        return True

    async def stream(
        self, opts: ReadOptions | None = None, *, timeout: float | None = None
    ) -> tuple[ObjectMeta, AsyncS3ReadStream]:
        """Open a streaming read for the object."""
        return await self._client.read_object(self.ref, opts, timeout=timeout)

    async def bytes(
        self, opts: ReadOptions | None = None, *, timeout: float | None = None
    ) -> builtins.bytes:
        """Read the full object body as bytes."""
        _, stream = await self._client.read_object(self.ref, opts, timeout=timeout)
        async with stream:
            return await stream.read()

    async def text(
        self,
        opts: ReadOptions | None = None,
        *,
        encoding: str = "utf-8",
        timeout: float | None = None,
    ) -> str:
        """Read the full object body as text (strict decoding)."""
        return (await self.bytes(opts, timeout=timeout)).decode(encoding)

    async def json(self, opts: ReadOptions | None = None, *, timeout: float | None = None) -> Any:
        """Read and decode the full object body as JSON."""
        return json.loads(await self.bytes(opts, timeout=timeout))

    async def write(
        self,
        body: AsyncBody = None,
        opts: WriteOptions | None = None,
        *,
        timeout: float | None = None,
    ) -> ObjectMeta:
        """Write an object body (see :meth:`AsyncS3.write_object`)."""
        return await self._client.write_object(self.ref, body, opts, timeout=timeout)

    async def write_bytes(
        self,
        body: builtins.bytes | bytearray | memoryview,
        opts: WriteOptions | None = None,
        *,
        timeout: float | None = None,
    ) -> ObjectMeta:
        """Write bytes to the object."""
        return await self._client.write_object(self.ref, body, opts, timeout=timeout)

    async def write_text(
        self,
        body: str,
        opts: WriteOptions | None = None,
        *,
        encoding: str = "utf-8",
        timeout: float | None = None,
    ) -> ObjectMeta:
        """Encode and write text; the content type defaults to ``text/plain; charset=...``."""
        return await self._client._write(*self._text(body, opts, encoding), timeout)

    async def write_json(
        self, value: Any, opts: WriteOptions | None = None, *, timeout: float | None = None
    ) -> ObjectMeta:
        """Encode and write JSON; the content type defaults to ``application/json``."""
        return await self._client._write(*self._json(value, opts), timeout)

    async def delete(self, *, timeout: float | None = None) -> None:
        """Delete the object."""
        await self._client.delete_object(self.ref, timeout=timeout)

    async def presign(
        self, opts: PresignOptions | None = None, *, timeout: float | None = None
    ) -> PresignResult:
        """Generate a presigned URL for this object."""
        return await self._client.presign_object(self.ref, opts, timeout=timeout)

    async def create_access_url(
        self, opts: PresignOptions | None = None, *, timeout: float | None = None
    ) -> PresignResult:
        """Create a host-mediated object access URL for this object."""
        return await self._client.create_object_access_url(self.ref, opts, timeout=timeout)


class AsyncS3(_Client[AsyncS3Object], AsyncClosing):
    """Asyncio client for a host-provided Gestalt S3 runtime.

    The methods of :class:`S3` as coroutines, over ``grpc.aio``; bodies may also be async
    iterables or files with an async ``read``. The object may be built outside a running
    loop and used from any loop; close it with ``await s3.close()`` or ``async with``.
    """

    __slots__ = ()

    _object_type = AsyncS3Object
    _connection_type = AioConnection
    _stubs_type = _AioStubs
    _conn: AioConnection[_AioStubs]

    async def close(self) -> None:
        """Close the client and cancel its open read streams; idempotent."""
        self._orphan_streams()
        await self._conn.close()

    async def _run(self, call: Call[_T], timeout: float | None) -> _T:
        """Make ``call`` (and what it says to make instead) and decode the response."""
        stubs, options = self._conn.stub(), self._opts(timeout)
        try:
            response = await call.rpc(stubs)(call.request, **options)
        except HostServiceError as error:
            then = call.after(error)
            if then is None:
                raise
            call, response = then, await then.rpc(stubs)(then.request, **options)
        return call.decode(response)

    async def head_object(self, ref: ObjectRef, *, timeout: float | None = None) -> ObjectMeta:
        """Fetch metadata for an object without reading its body."""
        return await self._run(head_call(ref), timeout)

    async def read_object(
        self, ref: ObjectRef, opts: ReadOptions | None = None, *, timeout: float | None = None
    ) -> tuple[ObjectMeta, AsyncS3ReadStream]:
        """Open a streaming read: the metadata and a stream of the body (``async for``)."""
        from gestalt._clients.s3_types import read_request

        request = read_request(ref, opts)
        stream = self._conn.stub().objects.read_object(request, **self._opts(timeout))
        try:
            first = await stream.read()
        except BaseException:
            stream.cancel()
            raise
        return self._opened(first, stream, AsyncS3ReadStream)

    async def write_object(
        self,
        ref: ObjectRef,
        body: AsyncBody = None,
        opts: WriteOptions | None = None,
        *,
        timeout: float | None = None,
    ) -> ObjectMeta:
        """Write an object body and return the resulting metadata (see :meth:`S3.write_object`).

        A file whose ``read`` is blocking is read on the event loop; pass an async iterable
        or a file with an async ``read`` to keep slow sources off the loop.
        """
        from gestalt._clients.s3_types import write_header

        return await self._write(write_header(ref, opts), body, timeout)

    async def _write(
        self, header: s3_pb2.WriteObjectRequest, body: builtins.object, timeout: float | None
    ) -> ObjectMeta:
        stubs = self._conn.stub()
        options = self._opts(timeout)
        frames = aio_frames(body)
        first = await _first_frame(frames)  # a body that fails at once never opens a call
        call = stubs.write(**options)
        failure: Exception | None = None
        try:
            await call.write(header)
            if first is not None:
                await call.write(first)
                await _send_frames(call, frames)
            await call.done_writing()
            response = await call
        except _BodyFailed as failed:
            failure = failed.error
        except grpc.RpcError as exc:
            raise S3_ERRORS(exc) from exc
        except BaseException:
            call.cancel()
            raise
        else:
            from gestalt._clients.s3_types import meta_from_pb

            return meta_from_pb(response.meta)
        call.cancel()
        try:
            raise failure
        finally:
            del failure

    async def delete_object(self, ref: ObjectRef, *, timeout: float | None = None) -> None:
        """Delete an object (a missing object is not an error)."""
        await self._run(delete_call(ref), timeout)

    async def list_objects(self, opts: ListOptions, *, timeout: float | None = None) -> ListPage:
        """List objects within a bucket, one page per call."""
        return await self._run(list_call(opts), timeout)

    async def copy_object(
        self,
        source: ObjectRef,
        destination: ObjectRef,
        opts: CopyOptions | None = None,
        *,
        timeout: float | None = None,
    ) -> ObjectMeta:
        """Copy an object and return metadata for the destination."""
        return await self._run(copy_call(source, destination, opts), timeout)

    async def presign_object(
        self, ref: ObjectRef, opts: PresignOptions | None = None, *, timeout: float | None = None
    ) -> PresignResult:
        """Generate a presigned URL for an object operation."""
        return await self._run(presign_call(ref, opts), timeout)

    async def create_object_access_url(
        self, ref: ObjectRef, opts: PresignOptions | None = None, *, timeout: float | None = None
    ) -> PresignResult:
        """Create a host-mediated object access URL (served by the host itself)."""
        return await self._run(access_url_call(ref, opts), timeout)

    async def create_access_url(
        self, ref: ObjectRef, opts: PresignOptions | None = None, *, timeout: float | None = None
    ) -> PresignResult:
        """Create a host-mediated object access URL (same as :meth:`create_object_access_url`)."""
        return await self.create_object_access_url(ref, opts, timeout=timeout)
