"""Object bodies in motion: the read streams and the frames of a write.

Reading. :class:`S3ReadStream` (sync) and :class:`AsyncS3ReadStream` wrap the rest of a
``ReadObject`` call after its metadata frame. They hold at most one received frame (64 KiB
from the host) besides what the caller asked for, so an object of any size streams through
in constant memory. A stream that is closed, left by its ``with`` block, or dropped without
either cancels its call, which frees the host's stream and the channel's polling thread.

Writing. :func:`sync_frames` and :func:`aio_frames` turn a body into the data frames of a
``WriteObject`` call: buffers (``bytes``, ``bytearray``, ``memoryview``, any C-contiguous
buffer) are sliced through a ``memoryview`` into frames of at most :data:`CHUNK_SIZE` bytes
without copying the body; binary files are read :data:`CHUNK_SIZE` bytes at a time; chunks
of an iterable (or async iterable) larger than a frame are sliced the same way, and empty
ones dropped. :func:`serialize_write_frame` writes a data frame's wire form straight from the
slice, so each byte of the body is copied once, into the message grpc sends.
"""

from __future__ import annotations

import inspect
import io
import weakref
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from typing import Any, BinaryIO, Protocol

import grpc

from gestalt._clients.closing import AsyncClosing, Closing
from gestalt._clients.errors import S3_ERRORS
from gestalt._clients.wire import varint
from gestalt.gen.v1 import s3_pb2

__all__ = [
    "CHUNK_SIZE",
    "AsyncBody",
    "AsyncReadable",
    "AsyncS3ReadStream",
    "Body",
    "Frame",
    "Readable",
    "S3ReadStream",
    "aio_frames",
    "serialize_write_frame",
    "sync_frames",
]

#: Largest data frame sent or expected: the host forwards bodies in 64 KiB pieces.
CHUNK_SIZE = 64 * 1024

#: One data frame of a write: the bytes to send (never empty, at most CHUNK_SIZE long).
Frame = bytes | memoryview
#: A piece of a body: any bytes-like object.
Chunk = bytes | bytearray | memoryview


class Readable(Protocol):
    """A binary source: ``read(size)`` returns up to ``size`` bytes, ``b""`` (or None) at
    the end."""

    def read(self, size: int, /) -> Chunk | None: ...


class AsyncReadable(Protocol):
    """A binary source whose ``read(size)`` is awaitable (aiofiles, asyncio streams)."""

    def read(self, size: int, /) -> Awaitable[Chunk | None]: ...


#: What ``S3.write_object`` accepts as an object body.
Body = Chunk | BinaryIO | Readable | Iterable[Chunk] | None
#: What ``AsyncS3.write_object`` accepts: also async sources.
AsyncBody = Body | AsyncReadable | AsyncIterable[Chunk]

_OPEN, _DONE, _CLOSED, _ORPHANED = range(4)


def _cancel(cancel: Callable[[], object]) -> None:
    cancel()


class _Reader:
    """What the sync and async read streams share: the buffered frame and the state."""

    __slots__ = ("__weakref__", "_buf", "_finalizer", "_pos", "_state")

    def __init__(self, stream: Any) -> None:
        self._buf = b""
        self._pos = 0
        self._state = _OPEN
        cancel = getattr(stream, "cancel", None)
        # Cancels the call when the stream is closed or dropped (the finalizer runs once).
        self._finalizer = weakref.finalize(self, _cancel, cancel) if callable(cancel) else None

    @property
    def closed(self) -> bool:
        """Whether the stream was closed (by :meth:`close`, a failure, or its client)."""
        return self._state in (_CLOSED, _ORPHANED)

    def readable(self) -> bool:
        """Always True: a read stream can be read (for code that expects a file)."""
        return True

    def _check(self) -> bool:
        """True while frames may still arrive; ValueError once the client was closed."""
        if self._state == _ORPHANED:
            raise ValueError("s3 client is closed")
        return self._state == _OPEN

    def _stop(self, state: int) -> None:
        if self._state == _OPEN:
            self._state = state
        self._buf, self._pos = b"", 0
        if self._finalizer is not None:
            self._finalizer()

    def _orphan(self) -> None:
        """Cancel because the client closed; later reads raise ValueError."""
        self._stop(_ORPHANED)

    def _close(self) -> None:
        self._stop(_CLOSED)
        self._state = _CLOSED

    def _data(self, chunk: Any) -> bytes:
        """A frame's body bytes; a second metadata frame is refused (a protocol error)."""
        data: bytes = chunk.data
        if not data and chunk.WhichOneof("result") == "meta":
            self._stop(_CLOSED)
            raise RuntimeError("s3: read stream yielded metadata after the first frame")
        return data

    def _fill(self, target: memoryview, filled: int) -> int:
        """Copy buffered bytes into ``target`` from ``filled`` on; returns the new fill."""
        parts, _ = self._take(len(target) - filled)
        for part in parts:
            target[filled : filled + len(part)] = part
            filled += len(part)
        return filled

    def _hold(self, data: bytes) -> None:
        """Buffer a whole received frame."""
        self._buf, self._pos = data, 0

    def _take(self, size: int) -> tuple[list[bytes | memoryview], int]:
        """Up to ``size`` buffered bytes (as parts to join) and how many are still needed."""
        buf, pos = self._buf, self._pos
        avail = len(buf) - pos
        if avail <= 0:
            return [], size
        if avail <= size:
            self._buf, self._pos = b"", 0
            return [buf if pos == 0 else memoryview(buf)[pos:]], size - avail
        self._pos = pos + size
        return [memoryview(buf)[pos : pos + size]], 0

    def _keep(self, data: bytes, need: int) -> list[bytes | memoryview]:
        """Use ``need`` bytes of a new frame and buffer the rest."""
        if len(data) <= need:
            return [data]
        self._buf, self._pos = data, need
        return [memoryview(data)[:need]]

    def _remainder(self) -> bytes | None:
        buf, pos = self._buf, self._pos
        self._buf, self._pos = b"", 0
        if pos >= len(buf):
            return None
        return buf if pos == 0 else buf[pos:]


def _join(parts: list[bytes | memoryview]) -> bytes:
    if len(parts) == 1 and type(parts[0]) is bytes:
        return parts[0]
    return b"".join(parts)


def _size(size: object) -> int:
    if size is None:
        return -1
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"size must be an int or None, not {type(size).__name__}")
    return size


def _writable_view(buffer: object) -> memoryview:
    view = memoryview(buffer)  # type: ignore[arg-type]
    if view.readonly:
        view.release()
        raise TypeError("readinto needs a writable buffer")
    return _flat(view)


def _flat(view: memoryview) -> memoryview:
    """``view`` as one dimension of bytes (the original is released when cast)."""
    if view.ndim != 1 or view.format != "B":
        flat = view.cast("B")
        view.release()
        return flat
    return view


class S3ReadStream(_Reader, Closing):
    """Streaming object body reader returned by :meth:`S3.read_object`.

    ``stream`` is the rest of a ``ReadObject`` call after its metadata frame: any iterator of
    ``ReadObjectChunk`` messages, with a ``cancel()`` method to end the call early. Read it
    with :meth:`read`, :meth:`readinto` or by iterating (frame by frame, as received);
    failures raise :class:`gestalt.HostServiceError` or its S3 subclasses. Not thread-safe,
    except that :meth:`close` may be called from another thread to stop a blocked read.
    """

    __slots__ = ("_it",)

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._it: Iterator[Any] = iter(stream)

    def _pull(self) -> bytes | None:
        """The next non-empty body frame, or None at the end of the body."""
        while self._state == _OPEN:
            try:
                chunk = next(self._it)
            except StopIteration:
                self._stop(_DONE)
                return None
            except Exception as exc:
                if self._state != _OPEN:  # closed meanwhile: the cancellation is expected
                    break
                self._stop(_CLOSED)
                if isinstance(exc, grpc.RpcError):  # a raw grpc call was passed in
                    raise S3_ERRORS(exc) from exc
                raise
            if data := self._data(chunk):
                return data
        self._check()
        return None

    def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes from the stream (all that is left when negative or None).

        Returns fewer bytes only at the end of the body, and ``b""`` after the end or
        :meth:`close`.
        """
        size = _size(size)
        if size == 0:
            self._check()
            return b""
        if size < 0:
            return b"".join(self.iter_chunks())
        parts, need = self._take(size)
        while need > 0:
            data = self._pull()
            if data is None:
                break
            parts += self._keep(data, need)
            need -= len(parts[-1])
        return _join(parts)

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` (any writable buffer) from the stream; returns the bytes written.

        Fewer than ``len(buffer)`` bytes are written only at the end of the body.
        """
        with _writable_view(buffer) as target:
            filled = self._fill(target, 0)
            while filled < len(target) and (data := self._pull()) is not None:
                self._hold(data)
                filled = self._fill(target, filled)
            return filled

    def iter_chunks(self) -> Iterator[bytes]:
        """Yield the remaining object body chunks (what is buffered first, then each frame)."""
        if self._check():
            rest = self._remainder()
            if rest is not None:
                yield rest
        while (data := self._pull()) is not None:
            yield data

    def __iter__(self) -> Iterator[bytes]:
        """Same as :meth:`iter_chunks`."""
        return self.iter_chunks()

    def close(self) -> None:
        """Cancel the underlying RPC stream and discard buffered bytes. Idempotent."""
        self._close()


class AsyncS3ReadStream(_Reader, AsyncClosing):
    """Streaming object body reader returned by :meth:`AsyncS3.read_object`.

    The methods of :class:`S3ReadStream` as coroutines; iterate with ``async for``.
    ``stream`` is the rest of a ``ReadObject`` call: an object whose ``read()`` coroutine
    returns the next ``ReadObjectChunk`` (None or ``grpc.aio.EOF`` at the end), or any async
    iterator of chunks; its ``cancel()``, if any, ends the call early.
    """

    __slots__ = ("_next",)

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        read = getattr(stream, "read", None)
        if callable(read):
            self._next: Callable[[], Any] = read
        else:
            iterator = aiter(stream)
            self._next = lambda: anext(iterator, None)

    async def _pull(self) -> bytes | None:
        while self._state == _OPEN:
            try:
                chunk = await self._next()
            except Exception as exc:
                if self._state != _OPEN:
                    break
                self._stop(_CLOSED)
                if isinstance(exc, grpc.RpcError):
                    raise S3_ERRORS(exc) from exc
                raise
            if chunk is None or chunk is grpc.aio.EOF:
                self._stop(_DONE)
                return None
            if data := self._data(chunk):
                return data
        self._check()
        return None

    async def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes (all that is left when negative); ``b""`` at the end."""
        size = _size(size)
        if size == 0:
            self._check()
            return b""
        if size < 0:
            return b"".join([chunk async for chunk in self.iter_chunks()])
        parts, need = self._take(size)
        while need > 0:
            data = await self._pull()
            if data is None:
                break
            parts += self._keep(data, need)
            need -= len(parts[-1])
        return _join(parts)

    async def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the stream; fewer bytes only at the end of the body."""
        with _writable_view(buffer) as target:
            filled = self._fill(target, 0)
            while filled < len(target) and (data := await self._pull()) is not None:
                self._hold(data)
                filled = self._fill(target, filled)
            return filled

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """Yield the remaining object body chunks (what is buffered first, then each frame)."""
        if self._check():
            rest = self._remainder()
            if rest is not None:
                yield rest
        while (data := await self._pull()) is not None:
            yield data

    def __aiter__(self) -> AsyncIterator[bytes]:
        """Same as :meth:`iter_chunks`."""
        return self.iter_chunks()

    async def close(self) -> None:
        """Cancel the underlying RPC stream and discard buffered bytes. Idempotent."""
        self._close()


# -- write frames --------------------------------------------------------------------------


_DATA_NUMBER = s3_pb2.WriteObjectRequest.DESCRIPTOR.fields_by_name["data"].number
_DATA_TAG = varint((_DATA_NUMBER << 3) | 2)  # length-delimited
_FULL_PREFIX = _DATA_TAG + varint(CHUNK_SIZE)


def serialize_write_frame(frame: s3_pb2.WriteObjectRequest | Frame) -> bytes:
    """Wire form of a write frame: the header message, or ``WriteObjectRequest{data}``
    written directly from the frame's bytes (identical to what protobuf produces)."""
    if isinstance(frame, s3_pb2.WriteObjectRequest):
        return frame.SerializeToString()
    size = len(frame)
    prefix = _FULL_PREFIX if size == CHUNK_SIZE else _DATA_TAG + varint(size)
    return prefix + frame


def _buffer(value: object) -> memoryview | None:
    """A flat byte view of a buffer object, or None when ``value`` is not a buffer."""
    try:
        view = memoryview(value)  # type: ignore[arg-type]
    except TypeError:
        return None
    if not view.c_contiguous:
        view.release()
        raise TypeError("a body buffer must be C-contiguous")
    return _flat(view)


def _chunk(value: object) -> Frame:
    """One chunk of an iterable or file body, checked to be bytes-like."""
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        raise TypeError("write_object body chunks must be bytes-like, not str; encode text first")
    view = _buffer(value)
    if view is None:
        raise TypeError(
            f"write_object body chunks must be bytes-like (bytes, bytearray, memoryview), "
            f"not {type(value).__name__}"
        )
    return view


def _slices(data: Frame) -> Iterator[Frame]:
    size = len(data)
    if size <= CHUNK_SIZE:
        if size:
            yield data
        return
    view = memoryview(data)
    for start in range(0, size, CHUNK_SIZE):
        yield view[start : start + CHUNK_SIZE]


def _from_iterable(items: Iterator[object]) -> Iterator[Frame]:
    for item in items:
        yield from _slices(_chunk(item))


def _from_file(read: Callable[[int], object]) -> Iterator[Frame]:
    while True:
        data = read(CHUNK_SIZE)
        if data is None:
            return
        chunk = _chunk(data)
        if not len(chunk):
            return
        yield from _slices(chunk)


async def _from_async_iterable(items: AsyncIterable[object]) -> AsyncIterator[Frame]:
    async for item in items:
        for frame in _slices(_chunk(item)):
            yield frame


async def _from_async_file(read: Callable[[int], object]) -> AsyncIterator[Frame]:
    while True:
        data = read(CHUNK_SIZE)
        if inspect.isawaitable(data):
            data = await data
        if data is None:
            return
        chunk = _chunk(data)
        if not len(chunk):
            return
        for frame in _slices(chunk):
            yield frame


def _kind(body: object, *, allow_async: bool) -> str:
    """Classify a body, raising TypeError for what cannot be one."""
    if isinstance(body, str):
        raise TypeError("write_object body must be bytes-like, not str; encode text first")
    if isinstance(body, io.TextIOBase):
        raise TypeError("write_object body is a text file; open it in binary mode")
    if callable(getattr(body, "read", None)):
        return "file"
    if isinstance(body, Mapping):
        raise TypeError("write_object body must not be a mapping")
    if isinstance(body, Iterable):
        return "iterable"
    if isinstance(body, AsyncIterable):
        if not allow_async:
            raise TypeError("write_object body is an async iterable; use AsyncS3 for it")
        return "async iterable"
    raise TypeError(
        "write_object body must be bytes-like, a binary file, an iterable of bytes or None, "
        f"not {type(body).__name__}"
    )


def _buffer_frames(body: object) -> Iterator[Frame] | None:
    if body is None:
        return iter(())
    if type(body) is bytes:
        return _slices(body)
    view = _buffer(body)
    return None if view is None else _slices(view)


def sync_frames(body: object) -> Iterator[Frame]:
    """The data frames of ``body``; its type is checked now, its chunks as they are read."""
    frames = _buffer_frames(body)
    if frames is not None:
        return frames
    kind = _kind(body, allow_async=False)
    if kind == "file":
        return _from_file(body.read)  # type: ignore[attr-defined]
    return _from_iterable(iter(body))  # type: ignore[call-overload]


def aio_frames(body: object) -> Iterator[Frame] | AsyncIterator[Frame]:
    """Like :func:`sync_frames`, also for async iterables and files with an async ``read``."""
    frames = _buffer_frames(body)
    if frames is not None:
        return frames
    kind = _kind(body, allow_async=True)
    if kind == "file":
        read = body.read  # type: ignore[attr-defined]
        if inspect.iscoroutinefunction(read) or not isinstance(body, io.IOBase):
            return _from_async_file(read)
        return _from_file(read)
    if kind == "async iterable":
        return _from_async_iterable(body)  # type: ignore[arg-type]
    return _from_iterable(iter(body))  # type: ignore[call-overload]
