"""The two IndexedDB bidi streams (cursor, transaction): plumbing and protocol state.

Both protocols are strict request/response: the client sends one frame and waits for one
answer. :class:`SyncExchange` runs that over a sync grpc call, :class:`AioExchange` over a
``grpc.aio`` call. They also own the clean-up that the reference lacked (quirk Q2):

* the sync request iterator reads a queue that wakes up with an end marker whenever the stream
  is half-closed, cancelled or abandoned, so grpc's request thread never stays blocked;
* every open exchange is listed in its client's ``streams`` set, so closing the client
  cancels them; cursors and transactions also cancel theirs when garbage collected;
* a per-step ``timeout`` cancels the call when the host does not answer in time and raises
  :class:`~.errors.HostServiceTimeoutError`. Sync exchanges share one watchdog thread
  for that (started on first use); asyncio ones use ``asyncio.timeout``;
* closing sends the last frame, half-closes and reads the stream to its end (bounded), so the
  host has finished with it when ``close`` returns. Not waiting would let grpc cancel the
  call when the object is dropped right after, which can overtake the last frame.

:class:`CursorState` and :class:`TransactionState` hold the protocol rules (contract
sections 3.8 and 3.9) that the sync and asyncio clients share: frames, positions, answer
checks and how a failure ends the stream.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final

import grpc

from gestalt._clients.errors import (
    HostServiceError,
    HostServiceTimeoutError,
    TransactionError,
    _ClientNotFoundError,
)
from gestalt._clients.indexeddb_codec import (
    check_name,
    check_stores,
    decode_key,
    decode_record,
    durability_hint_value,
    encode_key,
    encode_record,
    in_band_error,
    mode_value,
    protocol_error,
)
from gestalt.gen.support import AsyncResponseStream, ResponseStream
from gestalt.gen.v1 import datastore_pb2 as pb

if TYPE_CHECKING:
    import queue

__all__ = [
    "CURSOR_CLOSE_FRAME",
    "CURSOR_DELETE_FRAME",
    "CURSOR_NEXT_FRAME",
    "TRANSACTION_COMMIT_FRAME",
    "AioExchange",
    "CursorState",
    "SyncExchange",
    "TransactionState",
    "Watchdog",
    "abort_frame",
    "advance_frame",
    "begin_frame",
    "check_scope",
    "interrupted_error",
    "open_values",
    "seek_frame",
    "update_frame",
]

_END: Final = object()
# How long closing waits for the host to end a stream when no timeout was given.
_END_GRACE: Final = 5.0
_log = logging.getLogger(__name__)


def _nothing() -> None:
    return None


def _timeout_error(what: str, timeout: float) -> HostServiceTimeoutError:
    return HostServiceTimeoutError(f"the IndexedDB host did not answer the {what} in {timeout:g} s")


def _cancelled_error(what: str) -> HostServiceError:
    return HostServiceError(f"the {what} stream was cancelled", code=grpc.StatusCode.CANCELLED)


class _Alarm:
    __slots__ = ("action", "armed")

    def __init__(self, action: Callable[[], None]) -> None:
        self.action = action
        self.armed = True


class Watchdog:
    """Runs actions at deadlines on one daemon thread; used for sync per-step timeouts."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, _Alarm]] = []
        self._order = itertools.count()
        self._disarmed = 0
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, action: Callable[[], None]) -> _Alarm:
        """Run ``action`` in ``seconds`` unless :meth:`disarm` comes first."""
        alarm = _Alarm(action)
        entry = (time.monotonic() + seconds, next(self._order), alarm)
        with self._cond:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="gestalt-indexeddb-watchdog", daemon=True
                )
                self._thread.start()
            elif self._heap[0] is entry:
                self._cond.notify()
        return alarm

    def disarm(self, alarm: _Alarm) -> None:
        """Cancel an alarm (no effect once it has gone off)."""
        with self._cond:
            if not alarm.armed:
                return
            alarm.armed = False
            alarm.action = _nothing  # do not keep the stream alive until the deadline
            self._disarmed += 1
            # Drop dead entries in bulk so a busy stream with a long timeout stays small.
            if self._disarmed > 64 and self._disarmed * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if entry[2].armed]
                heapq.heapify(self._heap)
                self._disarmed = 0

    def _run(self) -> None:
        while True:
            due: list[_Alarm] = []
            with self._cond:
                while not due:
                    now = time.monotonic()
                    while self._heap and self._heap[0][0] <= now:
                        alarm = heapq.heappop(self._heap)[2]
                        if alarm.armed:
                            alarm.armed = False
                            due.append(alarm)
                        else:
                            self._disarmed -= 1
                    if due:
                        break
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
            for alarm in due:
                try:
                    alarm.action()
                except Exception:  # the watchdog must outlive any one stream
                    _log.exception("cancelling a timed-out IndexedDB stream failed")


_WATCHDOG = Watchdog()


def _frames(frames: queue.SimpleQueue[Any]) -> Iterator[Any]:
    """The request iterator grpc reads on its own thread: ``frames`` until the end marker."""
    get = frames.get
    while (frame := get()) is not _END:
        yield frame


class SyncExchange:
    """A sync bidi call: send a frame, wait for the answer, half-close or cancel.

    ``open_call`` starts the call with the request iterator; ``streams`` is the owning
    client's set of open exchanges (this one stays listed until it ends). ``what`` names the
    stream in error messages. Not thread-safe: the owner serialises its steps.
    """

    __slots__ = (
        "__weakref__",
        "_ended",
        "_expired",
        "_next",
        "_put",
        "_responses",
        "_streams",
        "what",
    )

    def __init__(
        self,
        open_call: Callable[[Iterator[Any]], ResponseStream[Any]],
        streams: set[Any] | None,
        what: str,
    ) -> None:
        import queue  # here, not at import: most programs never open a sync stream (~0.7 ms)

        self.what = what
        frames: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._put = frames.put
        self._ended = False
        self._expired = False
        self._streams = streams
        self._responses = open_call(_frames(frames))
        self._next = self._responses.__next__
        if streams is not None:
            streams.add(self)

    @property
    def ended(self) -> bool:
        """Whether the exchange was half-closed, cancelled or failed."""
        return self._ended

    def request(self, frame: Any, timeout: float | None) -> Any | None:
        """Send ``frame`` and return the answer, or None if the host ended the stream.

        A failed stream raises the mapped error (the exchange is then over); a step that
        outlives ``timeout`` cancels the call and raises ``HostServiceTimeoutError``.
        """
        if self._ended:
            raise _cancelled_error(self.what)
        self._put(frame)
        if timeout is not None:
            return self.receive(timeout)
        # The common case, inlined: this runs once per cursor step.
        try:
            answer = self._next()
        except StopIteration:
            answer = None
        except HostServiceError:
            self._finish()
            raise
        if answer is None:
            self._finish()
        return answer

    def receive(self, timeout: float) -> Any | None:
        """Wait up to ``timeout`` for the next answer (None when the stream has ended)."""
        alarm = _WATCHDOG.arm(timeout, self._expire)
        try:
            answer = next(self._responses, None)
        except HostServiceError as exc:
            self._finish()
            if self._expired:
                raise _timeout_error(self.what, timeout) from exc
            raise
        finally:
            _WATCHDOG.disarm(alarm)
        if answer is None:
            self._finish()
        return answer

    def _expire(self) -> None:
        self._expired = True
        self._responses.cancel()

    def _finish(self) -> None:
        if not self._ended:
            self._ended = True
            self._put(_END)
            if self._streams is not None:
                self._streams.discard(self)

    def close(self, frame: Any | None = None, timeout: float | None = None) -> None:
        """Send an optional last frame, half-close and wait for the host to end the stream.

        Whatever the host still sends is read and dropped. The wait is bounded by
        ``timeout`` (5 s when None); a stream that fails or outlives it is cancelled, and
        nothing is raised: the exchange's work was done before it was closed.
        """
        if self._ended:
            return
        if frame is not None:
            self._put(frame)
        self._put(_END)
        try:
            while self.receive(timeout or _END_GRACE) is not None:
                pass
        except HostServiceError as exc:
            _log.debug("IndexedDB %s stream ended badly after its last step: %s", self.what, exc)
        except BaseException:
            self.cancel()
            raise

    def cancel(self) -> None:
        """Cancel the call and release grpc's request thread; idempotent."""
        ended = self._ended
        self._finish()
        if not ended:
            self._responses.cancel()


class AioExchange:
    """A ``grpc.aio`` bidi call: send a frame, await the answer, half-close or cancel.

    ``stream`` is the generated client's stream opened without a request iterable; it is
    bound to the running event loop. ``streams`` and ``what`` as for :class:`SyncExchange`.
    """

    __slots__ = ("__weakref__", "_ended", "_loop", "_stream", "_streams", "what")

    def __init__(
        self, stream: AsyncResponseStream[Any, Any], streams: set[Any] | None, what: str
    ) -> None:
        self.what = what
        self._stream = stream
        self._streams = streams
        self._loop = asyncio.get_running_loop()
        self._ended = False
        if streams is not None:
            streams.add(self)

    @property
    def ended(self) -> bool:
        """Whether the exchange was half-closed, cancelled or failed."""
        return self._ended

    async def request(self, frame: Any, timeout: float | None) -> Any | None:
        """Send ``frame`` and return the answer, or None if the host ended the stream."""
        if self._ended:
            raise _cancelled_error(self.what)
        try:
            if timeout is None:
                await self._stream.write(frame)
                answer = await self._stream.read()
            else:
                async with asyncio.timeout(timeout):
                    await self._stream.write(frame)
                    answer = await self._stream.read()
        except HostServiceError:
            self._finish()
            raise
        except TimeoutError:
            self.cancel()
            raise _timeout_error(self.what, timeout or 0.0) from None
        except asyncio.InvalidStateError as exc:  # grpc.aio: the call is already over
            self.cancel()
            raise protocol_error(f"the IndexedDB {self.what} stream is already over") from exc
        except BaseException:
            # Cancelled mid-step (or worse): the stream is in an unknown state, so end it.
            self.cancel()
            raise
        if answer is None:
            self._finish()
        return answer

    def _finish(self) -> None:
        if not self._ended:
            self._ended = True
            if self._streams is not None:
                self._streams.discard(self)

    async def close(self, frame: Any | None = None, timeout: float | None = None) -> None:
        """Send an optional last frame, half-close and wait for the host to end the stream.

        As :meth:`SyncExchange.close`: bounded by ``timeout`` (5 s when None), a stream that
        fails or outlives it is cancelled and nothing is raised.
        """
        if self._ended:
            return
        stream = self._stream
        try:
            async with asyncio.timeout(timeout or _END_GRACE):
                if frame is not None:
                    await stream.write(frame)
                await stream.done_writing()
                while await stream.read() is not None:
                    pass
        except (HostServiceError, TimeoutError, asyncio.InvalidStateError) as exc:
            _log.debug("IndexedDB %s stream ended badly after its last step: %s", self.what, exc)
            self.cancel()
        except BaseException:
            self.cancel()
            raise
        self._finish()

    def cancel(self) -> None:
        """Cancel the call; idempotent. Safe from any thread and from finalizers."""
        ended = self._ended
        self._finish()
        if ended:
            return
        loop = self._loop
        if loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._stream.cancel()
        else:
            loop.call_soon_threadsafe(self._stream.cancel)


# -- cursor protocol state -------------------------------------------------------------------

_UNPOSITIONED: Final = 0
_POSITIONED: Final = 1
_EXHAUSTED: Final = 2
_CLOSED: Final = 3
_FAILED: Final = 4

#: The frames of a cursor stream that carry no argument.
CURSOR_NEXT_FRAME: Final = pb.CursorClientMessage(command=pb.CursorCommand(next=True))
CURSOR_DELETE_FRAME: Final = pb.CursorClientMessage(command=pb.CursorCommand(delete=True))
CURSOR_CLOSE_FRAME: Final = pb.CursorClientMessage(command=pb.CursorCommand(close=True))

_UNSET: Final = object()


def interrupted_error() -> HostServiceError:
    """The failure a cursor keeps after a step was interrupted (cancelled task, Ctrl-C)."""
    return HostServiceError("the cursor step was interrupted", code=grpc.StatusCode.CANCELLED)


def advance_frame(count: object) -> pb.CursorClientMessage:
    """The ``advance`` command; ``count`` must be a positive int32."""
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(f"advance count must be an int, not {type(count).__name__}")
    if not 0 < count < 2**31:
        raise ValueError(f"advance count must be a positive int32, got {count}")
    return pb.CursorClientMessage(command=pb.CursorCommand(advance=count))


def seek_frame(key: Any, *, index: bool) -> pb.CursorClientMessage:
    """The ``continue_to_key`` command."""
    frame = pb.CursorClientMessage()
    frame.command.continue_to_key.key.extend(encode_key(key, index=index))
    return frame


def update_frame(value: object) -> pb.CursorClientMessage:
    """The ``update`` command with the new record."""
    frame = pb.CursorClientMessage()
    frame.command.update.CopyFrom(encode_record(value))
    return frame


def open_values(values: object, index: object) -> tuple[str, tuple[Any, ...]]:
    """Check a cursor's ``index`` (``""`` for the store) and index ``values``."""
    if not isinstance(index, str):
        raise TypeError(f"index must be a str, not {type(index).__name__}")
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise TypeError(f"values must be a tuple of index values, not {type(values).__name__}")
    result = tuple(values)
    if result and not index:
        raise ValueError("values select index entries; they need an index")
    return str(index), result


class CursorState:
    """Position, current entry and failure of a cursor; shared by sync and async cursors.

    Methods that read an answer raise :class:`HostServiceError` for a broken protocol and
    leave the state failed; the caller then cancels its stream.
    """

    __slots__ = ("entry", "failure", "index", "keys_only", "state", "value")

    def __init__(self, index: str, keys_only: bool) -> None:
        self.index = index
        self.keys_only = keys_only
        self.state = _UNPOSITIONED
        self.entry: pb.CursorEntry | None = None
        self.value: Any = _UNSET
        self.failure: HostServiceError | None = None

    @property
    def failed(self) -> bool:
        """Whether the stream broke."""
        return self.state == _FAILED

    def check_movable(self) -> bool:
        """False when exhausted (nothing to send); raises when closed or failed."""
        state = self.state
        if state == _CLOSED:
            raise ValueError("cursor is closed")
        if state == _FAILED:
            raise self.again()
        return state != _EXHAUSTED

    def check_on_entry(self, action: str, *, mutation: bool = False) -> None:
        """Raise unless the cursor is on an entry that ``action`` can apply to.

        A ``mutation`` (update, delete) of an exhausted cursor is a ``NotFoundError``, the
        type the reference names for it (also a ``ValueError``); other misuse a ``ValueError``.
        """
        state = self.state
        if state == _POSITIONED:
            return
        if state == _CLOSED:
            raise ValueError("cursor is closed")
        if state == _FAILED:
            raise self.again()
        if state == _EXHAUSTED:
            message = f"cannot {action}: the cursor is exhausted"
            raise _ClientNotFoundError(message) if mutation else ValueError(message)
        raise ValueError(f"cannot {action}: the cursor is not on an entry yet (call continue_())")

    def again(self) -> HostServiceError:
        """A fresh copy of the failure that broke the stream, chained to it."""
        failure = self.failure
        assert failure is not None
        error = type(failure)(f"cursor failed earlier: {failure.message}", code=failure.code)
        error.__cause__ = failure
        return error

    def fail(self, error: HostServiceError) -> HostServiceError:
        """Note the failure that ended the stream; returns it for raising."""
        self.state = _FAILED
        self.failure = error
        self.entry = None
        self.value = _UNSET
        return error

    def opened(self, answer: pb.CursorResponse | None) -> None:
        """Check the acknowledgement of the open frame (any frame will do)."""
        if answer is None:
            raise self.fail(protocol_error("the IndexedDB host ended the cursor stream at open"))

    def moved(self, answer: pb.CursorResponse | None) -> bool:
        """Apply the answer to a move: True on an entry, False at the end."""
        if answer is None:
            raise self.fail(protocol_error("the IndexedDB host ended the cursor stream early"))
        which = answer.WhichOneof("result")
        if which == "entry":
            self.entry = answer.entry
            self.value = _UNSET
            self.state = _POSITIONED
            return True
        if which == "done" and answer.done:
            self.entry = None
            self.value = _UNSET
            self.state = _EXHAUSTED
            return False
        raise self.fail(protocol_error("the IndexedDB host answered a cursor move with no entry"))

    def updated(self, answer: pb.CursorResponse | None) -> None:
        """Apply the answer to an update: the refreshed entry."""
        if answer is None or answer.WhichOneof("result") != "entry":
            raise self.fail(protocol_error("the IndexedDB host did not answer a cursor update"))
        self.entry = answer.entry
        self.value = _UNSET

    def deleted(self, answer: pb.CursorResponse | None) -> None:
        """Check the answer to a delete: an acknowledgement (the entry stays readable)."""
        if answer is None or answer.WhichOneof("result") != "done":
            raise self.fail(protocol_error("the IndexedDB host did not acknowledge a delete"))

    def close(self) -> bool | None:
        """Mark closed; returns None if it already was, else whether the stream had failed."""
        previous = self.state
        if previous == _CLOSED:
            return None
        self.state = _CLOSED
        self.entry = None
        self.value = _UNSET
        return previous == _FAILED

    @property
    def key(self) -> Any:
        """The current entry's key (a list on index cursors), None off an entry."""
        entry = self.entry
        return None if entry is None else decode_key(entry.key, index=bool(self.index))

    @property
    def primary_key(self) -> str | None:
        """The current entry's primary key, None off an entry."""
        entry = self.entry
        return None if entry is None else entry.primary_key

    def record(self) -> dict[str, Any]:
        """The current entry's record, decoded once per entry."""
        if self.keys_only:
            raise TypeError("cursor opened with keys_only=True has no value")
        entry = self.entry
        if entry is None:
            self.check_on_entry("read a value")
            raise AssertionError("unreachable")  # pragma: no cover
        value = self.value
        if value is _UNSET:
            value = self.value = decode_record(entry.record)
        record: dict[str, Any] = value
        return record


# -- transaction protocol state --------------------------------------------------------------

TRANSACTION_COMMIT_FRAME: Final = pb.TransactionClientMessage(commit=pb.TransactionCommitRequest())


def _stream_ended(step: str) -> TransactionError:
    return TransactionError(
        f"transaction stream ended during {step}", code=grpc.StatusCode.INTERNAL
    )


def _unexpected(step: str) -> TransactionError:
    return TransactionError(f"expected transaction {step} response", code=grpc.StatusCode.INTERNAL)


def begin_frame(
    stores: object, mode: object, durability_hint: object
) -> pb.TransactionClientMessage:
    """The ``begin`` frame, after checking the scope, mode and durability hint."""
    begin = pb.BeginTransactionRequest(
        stores=check_stores(stores),
        mode=mode_value(mode),
        durability_hint=durability_hint_value(durability_hint),
    )
    return pb.TransactionClientMessage(begin=begin)


def check_scope(store: object, stores: tuple[str, ...]) -> str:
    """A store name that is in the transaction's scope.

    The host would answer ``NOT_FOUND`` for any other store, which ends the transaction;
    refusing it here with a ``NotFoundError`` (also a ``ValueError``) keeps it alive.
    """
    name = check_name(store, "store name")
    if name not in stores:
        raise _ClientNotFoundError(
            f"store {name!r} is not in the transaction's scope ({', '.join(stores)})"
        )
    return name


def abort_frame(reason: object) -> pb.TransactionClientMessage:
    """The ``abort`` frame carrying ``reason``."""
    if not isinstance(reason, str):
        raise TypeError(f"reason must be a str, not {type(reason).__name__}")
    return pb.TransactionClientMessage(abort=pb.TransactionAbortRequest(reason=reason))


class TransactionState:
    """Request ids, answer checks and the end of a transaction; shared by sync and async.

    After a failure, :attr:`rolled_back` says whether the host reported it in-band (it has
    rolled back and waits for the client to half-close) or the stream itself broke (the
    caller cancels it).
    """

    __slots__ = ("failure", "finished", "last_id", "rolled_back")

    def __init__(self) -> None:
        self.finished = False
        self.failure: BaseException | None = None
        self.last_id = 0
        self.rolled_back = False

    def check_open(self) -> None:
        """Raise ``TransactionError`` once finished, naming the failure that ended it."""
        if not self.finished:
            return
        failure = self.failure
        if failure is None:
            raise TransactionError("transaction is already finished")
        if isinstance(failure, HostServiceError):
            reason = f"it failed with {failure.message!r}"
        elif isinstance(failure, Exception):
            reason = f"it failed with {type(failure).__name__}: {failure}"
        else:  # a cancelled task, Ctrl-C
            reason = f"it was interrupted ({type(failure).__name__})"
        raise TransactionError(f"transaction is already finished: {reason}") from failure

    def began(self, answer: pb.TransactionServerMessage | None) -> None:
        """Check the host's answer to ``begin``."""
        if answer is None:
            raise _stream_ended("begin")
        if answer.WhichOneof("msg") != "begin":
            raise _unexpected("begin")

    def operation(self, op: str, request: Any) -> pb.TransactionClientMessage:
        """The next ``operation`` frame (request ids count up from 1)."""
        self.check_open()
        self.last_id += 1
        frame = pb.TransactionClientMessage()
        operation = frame.operation
        operation.request_id = self.last_id
        getattr(operation, op).CopyFrom(request)
        return frame

    def fail(self, error: BaseException) -> BaseException:
        """Note the failure that ended the transaction; returns it for raising."""
        self.finished = True
        if self.failure is None:
            self.failure = error
        return error

    def result(self, answer: pb.TransactionServerMessage | None, field: str) -> Any:
        """The ``field`` of the operation answer; raises (and fails) on an error."""
        if answer is None:
            raise self.fail(_stream_ended("operation"))
        if answer.WhichOneof("msg") != "operation":
            raise self.fail(_unexpected("operation"))
        response = answer.operation
        if response.request_id != self.last_id:
            raise self.fail(
                TransactionError(
                    "transaction response request_id mismatch", code=grpc.StatusCode.INTERNAL
                )
            )
        if response.HasField("error") and response.error.code:
            self.rolled_back = True
            raise self.fail(in_band_error(response.error))
        return getattr(response, field)

    def ended(self, answer: pb.TransactionServerMessage | None, step: str) -> None:
        """Check the answer to ``commit`` or ``abort``."""
        if answer is None:
            raise self.fail(_stream_ended(step))
        if answer.WhichOneof("msg") != step:
            raise self.fail(_unexpected(step))
        status = answer.commit.error if step == "commit" else answer.abort.error
        if status.code:
            raise self.fail(in_band_error(status))
