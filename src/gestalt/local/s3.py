"""The host's S3 and S3ObjectAccess services, embedded, on a local directory.

:class:`S3Service` implements every RPC of ``gestalt.provider.v1.S3`` and
``gestalt.provider.v1.S3ObjectAccess`` with the host's statuses and messages
(``s3: not found``, ``s3: precondition failed``, ``s3: invalid range``, ...), storing
objects under a root directory (layout and atomicity: :mod:`gestalt.local._s3_store`).
Presigned and object-access URLs point at a small HTTP endpoint on ``127.0.0.1`` that
the service starts and that really serves them (:mod:`gestalt.local._s3_http`).
:func:`serve_s3` runs both services on a unix socket (or ``tcp://host:port``)::

    with serve_s3(tmp_path / "s3.sock", root=tmp_path / "data") as s3:
        os.environ["GESTALT_S3_SOCKET"] = s3.target
        ...

Host semantics worth knowing: ``ByteRange.end`` is inclusive and must lie inside the
object; ``if_none_match="*"`` on a write means "create only"; copy conditions apply to
the source; deleting a missing object succeeds; listings are in UTF-8 byte order, 1000
entries per page at most, and the continuation token is the last key (or common prefix)
of the page. Versions are not kept: ``version_id`` is ignored and never reported. ETags
are the SHA-256 of the body in hex.

Guards of the embedded service: content headers and metadata with control characters
(CR, LF, ...) are ``INVALID_ARGUMENT``; a read or write stream that makes no progress for
``idle_timeout`` seconds (the client sends nothing, or reads nothing) is cancelled, and
with every worker busy :func:`serve_s3` refuses further calls at once with
``RESOURCE_EXHAUSTED``. Storage failures are ``INTERNAL`` with a message naming the
object; the underlying error is only logged.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import secrets
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeAlias, Unpack

import grpc
from google.protobuf import empty_pb2, timestamp_pb2

from gestalt._clients.closing import Closing
from gestalt.gen.v1 import s3_pb2
from gestalt.gen.v1.s3_servicers import add_s3_object_access_to_server, add_s3_to_server
from gestalt.local._files import private_dir
from gestalt.local._idle import IdleWatch, Watched
from gestalt.local._s3_http import Grant, ObjectHttpServer, UrlSigner, normalize_headers
from gestalt.local._s3_store import (
    CHUNK_SIZE,
    Conditions,
    LocalObjectStore,
    ObjectHeaders,
    RangeRequest,
    S3ServiceError,
    StoredObject,
    check_header_fields,
)
from gestalt.local._serving import LocalServer, Served, ServeOptions, Where

__all__ = ["S3Service", "S3ServiceHandle", "serve_s3"]

#: Lifetime of a URL minted without ``expires_seconds`` (the host's default).
DEFAULT_URL_TTL = 15 * 60
#: Longest lifetime a URL may have (the host's cap).
MAX_URL_TTL = 24 * 60 * 60
#: Seconds a read or write stream may go without progress before it is cancelled.
DEFAULT_IDLE_TIMEOUT = 60.0

_log = logging.getLogger("gestalt.local.s3")

_METHOD_NAMES = {
    s3_pb2.PRESIGN_METHOD_GET: "GET",
    s3_pb2.PRESIGN_METHOD_PUT: "PUT",
    s3_pb2.PRESIGN_METHOD_DELETE: "DELETE",
    s3_pb2.PRESIGN_METHOD_HEAD: "HEAD",
}
_METHOD_ENUMS = {name: number for number, name in _METHOD_NAMES.items()}


def _timestamp_us(ts: timestamp_pb2.Timestamp) -> int:
    return ts.seconds * 1_000_000 + ts.nanos // 1000


@contextlib.contextmanager
def _statuses(context: grpc.ServicerContext, what: str) -> Iterator[None]:
    """Turn store errors into the call's status; storage failures become ``INTERNAL``."""
    try:
        yield
    except S3ServiceError as err:
        context.abort(err.code, err.message)
    except (sqlite3.Error, OSError) as exc:
        _log.warning("s3: storage failure while %s: %s", what, exc)
        context.abort(grpc.StatusCode.INTERNAL, f"s3: storage failure while {what}")


_UrlRequest: TypeAlias = s3_pb2.PresignObjectRequest | s3_pb2.CreateObjectAccessURLRequest


def _meta(obj: StoredObject) -> s3_pb2.S3ObjectMeta:
    seconds, micros = divmod(obj.last_modified_us, 1_000_000)
    return s3_pb2.S3ObjectMeta(
        ref=s3_pb2.S3ObjectRef(bucket=obj.bucket, key=obj.key),
        etag=obj.etag,
        size=obj.size,
        content_type=obj.headers.content_type,
        last_modified=timestamp_pb2.Timestamp(seconds=seconds, nanos=micros * 1000),
        metadata=dict(obj.headers.metadata),
    )


class S3Service(Closing):
    """Real S3 host services on a directory, for :func:`add_s3_to_server` and friends.

    ``root`` keeps objects across restarts; without it a temporary directory is used and
    removed by :meth:`close`. Register on any ``grpc.Server`` or ``grpc.aio.Server`` with
    :meth:`add_to_server`. The HTTP endpoint behind presigned and object-access URLs
    starts on first use (or on :attr:`http_base_url`) and stops in :meth:`close`.
    URLs are signed with a secret drawn per instance, so they do not outlive it.
    Read and write streams without progress for ``idle_timeout`` seconds are cancelled.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self._idle = IdleWatch(idle_timeout, "s3")
        self._owns_root = root is None
        self._root = Path(tempfile.mkdtemp(prefix="gestalt-s3-")) if root is None else Path(root)
        try:
            private_dir(self._root)
            self._store = LocalObjectStore(self._root)
        except BaseException:
            if self._owns_root:
                shutil.rmtree(self._root, ignore_errors=True)
            raise
        self._signer = UrlSigner(secrets.token_bytes(32))
        self._http: ObjectHttpServer | None = None
        self._lock = threading.Lock()
        self._active_reads = 0
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """Directory holding the objects."""
        return self._root

    @property
    def http_base_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the URL endpoint, started if not running yet."""
        with self._lock:
            if self._closed:
                raise RuntimeError("S3Service is closed")
            if self._http is None:
                self._http = ObjectHttpServer(self._store, self._signer)
            return self._http.base_url

    @property
    def active_reads(self) -> int:
        """ReadObject streams currently holding an object open (for leak checks)."""
        with self._lock:
            return self._active_reads

    def add_to_server(self, server: grpc.Server | grpc.aio.Server) -> None:
        """Serve ``S3`` and ``S3ObjectAccess`` from this instance on ``server``."""
        add_s3_to_server(self, server)
        add_s3_object_access_to_server(self, server)

    def close(self) -> None:
        """Stop the HTTP endpoint, close the index and drop a temporary root. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            http, self._http = self._http, None
        if http is not None:
            http.stop()
        self._idle.close()
        self._store.close()
        if self._owns_root:
            shutil.rmtree(self._root, ignore_errors=True)

    # -- S3 -----------------------------------------------------------------------------

    def head_object(
        self, request: s3_pb2.HeadObjectRequest, context: grpc.ServicerContext
    ) -> s3_pb2.HeadObjectResponse:
        """The object's metadata, or ``NOT_FOUND``."""
        with _statuses(context, f"reading {request.ref.bucket}/{request.ref.key}"):
            obj = self._store.head(request.ref.bucket, request.ref.key)
        return s3_pb2.HeadObjectResponse(meta=_meta(obj))

    def read_object(
        self, request: s3_pb2.ReadObjectRequest, context: grpc.ServicerContext
    ) -> Iterator[s3_pb2.ReadObjectChunk]:
        """Metadata first, then the selected bytes in frames of at most 64 KiB.

        Errors found before streaming (missing object, failed condition, bad range) end
        the call with no frames. The body is read from disk one frame at a time.
        """
        rng = None
        if request.HasField("range"):
            r = request.range
            rng = RangeRequest(
                start=r.start if r.HasField("start") else None,
                end=r.end if r.HasField("end") else None,
            )
        cond = Conditions(
            if_match=request.if_match,
            if_none_match=request.if_none_match,
            if_modified_since_us=_timestamp_us(request.if_modified_since)
            if request.HasField("if_modified_since")
            else None,
            if_unmodified_since_us=_timestamp_us(request.if_unmodified_since)
            if request.HasField("if_unmodified_since")
            else None,
        )
        what = f"reading {request.ref.bucket}/{request.ref.key}"
        with _statuses(context, what):
            reader = self._store.open_read(request.ref.bucket, request.ref.key, cond, rng)
        with self._lock:
            self._active_reads += 1
        watched = self._idle.watch(functools.partial(_end_idle, context, "download"))
        try:
            with reader, _statuses(context, what):
                yield s3_pb2.ReadObjectChunk(meta=_meta(reader.obj))
                is_active = getattr(context, "is_active", None)
                for data in reader.chunks(CHUNK_SIZE):
                    if is_active is not None and not is_active():
                        return
                    watched.touch()
                    yield s3_pb2.ReadObjectChunk(data=data)
        finally:
            watched.done()
            with self._lock:
                self._active_reads -= 1

    def write_object(
        self, requests: Iterator[s3_pb2.WriteObjectRequest], context: grpc.ServicerContext
    ) -> s3_pb2.WriteObjectResponse:
        """Store the streamed body once the client half-closes; answer with its metadata."""
        watched = self._idle.watch(functools.partial(_end_idle, context, "upload"))
        try:
            return self._write(requests, context, watched)
        finally:
            watched.done()

    def _write(
        self,
        requests: Iterator[s3_pb2.WriteObjectRequest],
        context: grpc.ServicerContext,
        watched: Watched,
    ) -> s3_pb2.WriteObjectResponse:
        try:
            first = next(requests, None)
        except grpc.RpcError:
            # Cancelled before the first frame arrived; nothing to store.
            context.abort(grpc.StatusCode.CANCELLED, "s3: upload cancelled by the client")
        if first is None or first.WhichOneof("msg") != "open":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "first message must be WriteObjectOpen")
        header = first.open
        headers = ObjectHeaders(
            content_type=header.content_type,
            cache_control=header.cache_control,
            content_disposition=header.content_disposition,
            content_encoding=header.content_encoding,
            content_language=header.content_language,
            metadata=dict(header.metadata),
        )
        cond = Conditions(if_match=header.if_match, if_none_match=header.if_none_match)
        try:
            check_header_fields(_header_fields(header), headers.metadata)
        except S3ServiceError as err:
            context.abort(err.code, err.message)

        def body() -> Iterator[bytes]:
            for message in requests:
                watched.touch()
                kind = message.WhichOneof("msg")
                if kind == "open":
                    raise S3ServiceError(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "only the first message may be WriteObjectOpen",
                    )
                if message.data:
                    yield message.data
            # grpc may report a client's cancel as a normal end of the request stream; an
            # upload is only stored when the call is still alive once the body is complete.
            if watched.expired or not context.is_active():
                raise S3ServiceError(
                    grpc.StatusCode.CANCELLED, "s3: upload cancelled by the client"
                )

        what = f"writing {header.ref.bucket}/{header.ref.key}"
        try:
            with _statuses(context, what):
                obj = self._store.write(header.ref.bucket, header.ref.key, body(), headers, cond)
        except grpc.RpcError:
            # The client cancelled or vanished mid-upload; nothing was stored.
            context.abort(grpc.StatusCode.CANCELLED, "s3: upload cancelled by the client")
        return s3_pb2.WriteObjectResponse(meta=_meta(obj))

    def delete_object(
        self, request: s3_pb2.DeleteObjectRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Remove the object; a missing object is not an error."""
        with _statuses(context, f"deleting {request.ref.bucket}/{request.ref.key}"):
            self._store.delete(request.ref.bucket, request.ref.key)
        return empty_pb2.Empty()

    def list_objects(
        self, request: s3_pb2.ListObjectsRequest, context: grpc.ServicerContext
    ) -> s3_pb2.ListObjectsResponse:
        """One page of the bucket (see the module docstring for order and tokens)."""
        with _statuses(context, f"listing bucket {request.bucket}"):
            page = self._store.list(
                request.bucket,
                prefix=request.prefix,
                delimiter=request.delimiter,
                after=request.continuation_token or request.start_after,
                max_keys=request.max_keys,
            )
        return s3_pb2.ListObjectsResponse(
            objects=[_meta(obj) for obj in page.objects],
            common_prefixes=page.common_prefixes,
            next_continuation_token=page.next_token,
            has_more=page.has_more,
        )

    def copy_object(
        self, request: s3_pb2.CopyObjectRequest, context: grpc.ServicerContext
    ) -> s3_pb2.CopyObjectResponse:
        """Copy an object; ``if_match``/``if_none_match`` are checked on the source."""
        source, destination = request.source, request.destination
        what = f"copying {source.bucket}/{source.key} to {destination.bucket}/{destination.key}"
        with _statuses(context, what):
            obj = self._store.copy(
                (source.bucket, source.key),
                (destination.bucket, destination.key),
                Conditions(if_match=request.if_match, if_none_match=request.if_none_match),
            )
        return s3_pb2.CopyObjectResponse(meta=_meta(obj))

    def presign_object(
        self, request: s3_pb2.PresignObjectRequest, context: grpc.ServicerContext
    ) -> s3_pb2.PresignObjectResponse:
        """A presigned URL on the local HTTP endpoint (method defaults to GET)."""
        return s3_pb2.PresignObjectResponse(**self._url("presign", request, context))

    # -- S3ObjectAccess -----------------------------------------------------------------

    def create_object_access_url(
        self, request: s3_pb2.CreateObjectAccessURLRequest, context: grpc.ServicerContext
    ) -> s3_pb2.CreateObjectAccessURLResponse:
        """A host-style ``/api/v1/s3/object-access/<token>`` URL on the local endpoint."""
        return s3_pb2.CreateObjectAccessURLResponse(**self._url("access", request, context))

    # -- URLs of either kind -----------------------------------------------------------

    def _url(
        self, kind: str, request: _UrlRequest, context: grpc.ServicerContext
    ) -> dict[str, Any]:
        """The fields of the answer to a URL request (both answers have the same ones)."""
        try:
            grant, headers = self._grant(kind, request)
        except S3ServiceError as err:
            context.abort(err.code, err.message)
        mint = self._signer.presigned_url if kind == "presign" else self._signer.access_url
        return {
            "url": mint(self.http_base_url, grant),
            "method": _METHOD_ENUMS[grant.method],
            "expires_at": timestamp_pb2.Timestamp(seconds=grant.expires),
            "headers": headers,
        }

    def _grant(self, kind: str, request: _UrlRequest) -> tuple[Grant, dict[str, str]]:
        """The grant a URL request asks for, and the headers the caller must send.

        Problems are ``FAILED_PRECONDITION``, as the host reports them for access URLs.
        """
        failed = grpc.StatusCode.FAILED_PRECONDITION
        if not request.ref.bucket.strip():
            raise S3ServiceError(failed, "s3 object bucket is required")
        if not request.ref.key:
            raise S3ServiceError(failed, "s3 object key is required")
        if request.method == s3_pb2.PRESIGN_METHOD_UNSPECIFIED:
            method = "GET"
        elif request.method in _METHOD_NAMES:
            method = _METHOD_NAMES[request.method]
        else:
            raise S3ServiceError(failed, f"unsupported s3 presign method {request.method}")
        check_header_fields(
            {
                "content_type": request.content_type,
                "content_disposition": request.content_disposition,
            },
            dict(request.headers),
        )
        ttl = request.expires_seconds if request.expires_seconds > 0 else DEFAULT_URL_TTL
        required = normalize_headers(request.headers)
        headers = dict(request.headers)
        if method == "PUT" and request.content_type and "content-type" not in dict(required):
            headers["Content-Type"] = request.content_type
        grant = Grant(
            kind=kind,
            method=method,
            bucket=request.ref.bucket,
            key=request.ref.key,
            expires=int(time.time()) + min(ttl, MAX_URL_TTL),
            content_type=request.content_type,
            content_disposition=request.content_disposition,
            headers=required,
        )
        return grant, headers


def _header_fields(header: s3_pb2.WriteObjectOpen) -> dict[str, str]:
    return {
        "content_type": header.content_type,
        "cache_control": header.cache_control,
        "content_disposition": header.content_disposition,
        "content_encoding": header.content_encoding,
        "content_language": header.content_language,
    }


def _end_idle(context: grpc.ServicerContext, kind: str) -> None:
    """Cancel a stream that made no progress for too long (runs on the watch thread)."""
    _log.info("s3: cancelled an %s stream that stayed idle too long", kind)
    context.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve S3 until SIGINT or SIGTERM; prints the target on stdout first.

    ``--root DIR`` keeps the objects in that folder (a temporary one without it). A
    problem starting it is one line on stderr and exit status 2.
    """
    from gestalt.local._main import run

    option = ("--root", "root", "data folder (default: temporary)")
    return run("gestalt.local.s3", "Serve Gestalt S3 on a local folder.", serve_s3, argv, option)


class S3ServiceHandle(LocalServer[S3Service]):
    """A running :func:`serve_s3`; stopping it also closes the service.

    The shared :class:`~gestalt.local._serving.LocalServer` plus :attr:`http_base_url`.
    ``target`` is what ``GESTALT_S3_SOCKET`` takes (``unix:<path>`` for a socket).
    """

    @functools.cached_property
    def http_base_url(self) -> str:
        """Base URL of the endpoint serving presigned and object-access URLs."""
        return self.service.http_base_url


_SERVED = Served("s3", "s3", S3Service.add_to_server, S3ServiceHandle, workers=16, streams=True)


def serve_s3(
    socket_path: Where,
    *,
    root: str | os.PathLike[str] | None = None,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    **options: Unpack[ServeOptions],
) -> S3ServiceHandle:
    """Serve ``S3`` and ``S3ObjectAccess`` on ``socket_path``, storing objects in ``root``.

    ``socket_path`` is a unix socket path, ``unix://…`` or ``tcp://host:port``; a stale
    socket file there is replaced, anything else existing is an error. ``options`` are those
    of every local server (:class:`~gestalt.local.ServeOptions`). Each open read or write
    stream occupies one of ``max_workers`` threads (16 by default); with all of them busy
    further calls fail at once with ``RESOURCE_EXHAUSTED``, and streams idle for
    ``idle_timeout`` seconds are cancelled, so stalled clients cannot wedge the service.
    Returns once the server accepts calls; stop it with :meth:`S3ServiceHandle.stop` or
    ``with``.
    """
    return _SERVED.serve(socket_path, lambda: S3Service(root, idle_timeout=idle_timeout), options)


if __name__ == "__main__":
    sys.exit(main())
