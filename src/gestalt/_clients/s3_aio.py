"""AsyncS3 and AsyncS3Object: the S3 client's methods as coroutines over ``grpc.aio``.

Behaviour, choices and quirks are those of :mod:`gestalt._clients.s3`. Differences that come with
asyncio: bodies may also be async iterables or objects with an async ``read``; a blocking
file's ``read`` runs on the event loop; an upload is written frame by frame on the call,
which is cancelled when the body fails; read streams are :class:`AsyncS3ReadStream`.
"""

from __future__ import annotations

import builtins
import json
import weakref
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any

import grpc
import grpc.aio

from gestalt._clients.errors import (
    S3_ACCESS_URL_ERRORS,
    S3_ERRORS,
    HostServiceError,
    S3NotFoundError,
)
from gestalt._clients.s3 import WRITE_METHOD, encode_json, encode_text, relay_refused, text_type
from gestalt._clients.s3_stream import (
    AsyncBody,
    AsyncS3ReadStream,
    Frame,
    aio_frames,
    serialize_write_frame,
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
from gestalt._clients.transport import AioConnection, check_timeout
from gestalt.gen.support import ErrorMapper
from gestalt.gen.v1 import s3_pb2
from gestalt.gen.v1.s3_clients import AsyncS3Client, AsyncS3ObjectAccessClient

__all__ = ["AsyncS3", "AsyncS3Object"]


class _AioStubs:
    """What an AsyncS3 client calls on one ``grpc.aio`` channel."""

    __slots__ = ("access", "objects", "urls", "write")

    def __init__(self, channel: grpc.aio.Channel, *, error_mapper: ErrorMapper) -> None:
        self.objects = AsyncS3Client(channel, error_mapper=error_mapper)
        self.urls = AsyncS3Client(channel, error_mapper=S3_ACCESS_URL_ERRORS)
        self.access = AsyncS3ObjectAccessClient(channel, error_mapper=S3_ACCESS_URL_ERRORS)
        self.write: grpc.aio.StreamUnaryMultiCallable[Any, s3_pb2.WriteObjectResponse]
        self.write = channel.stream_unary(
            WRITE_METHOD,
            request_serializer=serialize_write_frame,
            response_deserializer=s3_pb2.WriteObjectResponse.FromString,
        )


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


class AsyncS3:
    """Asyncio client for a host-provided Gestalt S3 runtime.

    The methods of :class:`S3` as coroutines, over ``grpc.aio``; bodies may also be async
    iterables or files with an async ``read``. The object may be built outside a running
    loop and used from any loop; close it with ``await s3.close()`` or ``async with``.
    """

    __slots__ = ("__weakref__", "_conn", "_metadata", "_streams", "_timeout")

    def __init__(self, name: str | None = None, *, timeout: float | None = None) -> None:
        self._timeout = check_timeout(timeout)
        self._conn: AioConnection[_AioStubs] = AioConnection(
            S3_SERVICE.endpoint(name), _AioStubs, S3_ERRORS
        )
        self._metadata = self._conn.metadata
        self._streams: weakref.WeakSet[AsyncS3ReadStream] = weakref.WeakSet()

    def _deadline(self, timeout: float | None) -> float | None:
        return self._timeout if timeout is None else check_timeout(timeout)

    async def close(self) -> None:
        """Close the client and cancel its open read streams; idempotent."""
        streams = list(self._streams)
        self._streams.clear()
        for stream in streams:
            stream._orphan()
        await self._conn.close()

    def object(self, bucket: str, key: str) -> AsyncS3Object:
        """Return an object helper for the latest version."""
        return AsyncS3Object(self, ObjectRef(bucket, key))

    def object_version(self, bucket: str, key: str, version_id: str) -> AsyncS3Object:
        """Return an object helper pinned to a specific version."""
        return AsyncS3Object(self, ObjectRef(bucket, key, version_id))

    async def head_object(self, ref: ObjectRef, *, timeout: float | None = None) -> ObjectMeta:
        """Fetch metadata for an object without reading its body."""
        response = await self._conn.stub().objects.head_object(
            s3_pb2.HeadObjectRequest(ref=ref_to_pb(ref)),
            timeout=self._deadline(timeout),
            metadata=self._metadata,
        )
        return meta_from_pb(response.meta)

    async def read_object(
        self, ref: ObjectRef, opts: ReadOptions | None = None, *, timeout: float | None = None
    ) -> tuple[ObjectMeta, AsyncS3ReadStream]:
        """Open a streaming read: the metadata and a stream of the body (``async for``)."""
        request = read_request(ref, opts)
        stream = self._conn.stub().objects.read_object(
            request, timeout=self._deadline(timeout), metadata=self._metadata
        )
        try:
            first = await stream.read()
        except BaseException:
            stream.cancel()
            raise
        if first is None:
            raise RuntimeError("s3: read stream ended before metadata")
        if first.WhichOneof("result") != "meta":
            stream.cancel()
            raise RuntimeError("s3: read stream did not start with metadata")
        reader = AsyncS3ReadStream(stream)
        self._streams.add(reader)
        return meta_from_pb(first.meta), reader

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
        return await self._write(write_header(ref, opts), body, timeout)

    async def _write(
        self, header: s3_pb2.WriteObjectRequest, body: builtins.object, timeout: float | None
    ) -> ObjectMeta:
        stubs = self._conn.stub()
        deadline = self._deadline(timeout)
        frames = aio_frames(body)
        first = await _first_frame(frames)  # a body that fails at once never opens a call
        call = stubs.write(timeout=deadline, metadata=self._metadata)
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
            return meta_from_pb(response.meta)
        call.cancel()
        try:
            raise failure
        finally:
            del failure

    async def delete_object(self, ref: ObjectRef, *, timeout: float | None = None) -> None:
        """Delete an object (a missing object is not an error)."""
        await self._conn.stub().objects.delete_object(
            s3_pb2.DeleteObjectRequest(ref=ref_to_pb(ref)),
            timeout=self._deadline(timeout),
            metadata=self._metadata,
        )

    async def list_objects(self, opts: ListOptions, *, timeout: float | None = None) -> ListPage:
        """List objects within a bucket, one page per call."""
        response = await self._conn.stub().objects.list_objects(
            list_request(opts), timeout=self._deadline(timeout), metadata=self._metadata
        )
        return page_from_pb(response)

    async def copy_object(
        self,
        source: ObjectRef,
        destination: ObjectRef,
        opts: CopyOptions | None = None,
        *,
        timeout: float | None = None,
    ) -> ObjectMeta:
        """Copy an object and return metadata for the destination."""
        response = await self._conn.stub().objects.copy_object(
            copy_request(source, destination, opts),
            timeout=self._deadline(timeout),
            metadata=self._metadata,
        )
        return meta_from_pb(response.meta)

    async def presign_object(
        self, ref: ObjectRef, opts: PresignOptions | None = None, *, timeout: float | None = None
    ) -> PresignResult:
        """Generate a presigned URL for an object operation."""
        fields, method = presign_fields(ref, opts)
        response = await self._conn.stub().urls.presign_object(
            s3_pb2.PresignObjectRequest(**fields),
            timeout=self._deadline(timeout),
            metadata=self._metadata,
        )
        return presign_result(response, method)

    async def create_object_access_url(
        self, ref: ObjectRef, opts: PresignOptions | None = None, *, timeout: float | None = None
    ) -> PresignResult:
        """Create a host-mediated object access URL (served by the host itself)."""
        fields, method = presign_fields(ref, opts)
        stubs = self._conn.stub()
        deadline = self._deadline(timeout)
        try:
            response: Any = await stubs.access.create_object_access_url(
                s3_pb2.CreateObjectAccessURLRequest(**fields),
                timeout=deadline,
                metadata=self._metadata,
            )
        except HostServiceError as err:
            if not relay_refused(err):
                raise
            response = await stubs.urls.presign_object(
                s3_pb2.PresignObjectRequest(**fields), timeout=deadline, metadata=self._metadata
            )
        return presign_result(response, method)

    async def create_access_url(
        self, ref: ObjectRef, opts: PresignOptions | None = None, *, timeout: float | None = None
    ) -> PresignResult:
        """Create a host-mediated object access URL (same as :meth:`create_object_access_url`)."""
        return await self.create_object_access_url(ref, opts, timeout=timeout)

    async def __aenter__(self) -> AsyncS3:
        """Return the client for ``async with`` statements."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the client at the end of an ``async with`` block."""
        await self.close()


class AsyncS3Object:
    """The helpers of :class:`S3Object` as coroutines, on an :class:`AsyncS3` client."""

    __slots__ = ("_client", "ref")

    def __init__(self, client: AsyncS3, ref: ObjectRef) -> None:
        ref_to_pb(ref)
        self._client = client
        self.ref = ref

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
        header = write_header(self.ref, opts, default_content_type=text_type(encoding))
        return await self._client._write(header, encode_text(body, encoding), timeout)

    async def write_json(
        self, value: Any, opts: WriteOptions | None = None, *, timeout: float | None = None
    ) -> ObjectMeta:
        """Encode and write JSON; the content type defaults to ``application/json``."""
        header = write_header(self.ref, opts, default_content_type="application/json")
        return await self._client._write(header, encode_json(value), timeout)

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

    def __repr__(self) -> str:
        return f"AsyncS3Object({self.ref!r})"
