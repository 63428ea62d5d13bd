"""The runtime's worker pool: few threads while calls compute, more while they block.

Python runs one thread at a time, so CPU-bound handlers gain nothing from more worker threads
than a handful: each extra runnable thread only adds GIL hand-offs and cold caches (32 busy
threads cost about 30% more CPU per call than 4). Handlers that block (a database call, a
sleep, a barrier) need one thread each to stay in flight. :class:`ElasticPool` serves both, the
way Go's scheduler treats a thread stuck in a system call:

* at most ``core`` calls run at once, plus one for every blocked call. A call may be blocked
  once it has been running for longer than ``long_after`` seconds (1 ms; for a servicer that
  calls :func:`handler_started` and :func:`handler_finished`, only the handler's own time
  counts); on Linux its thread's system call then decides (:meth:`_Worker.blocked`): a thread
  that waits in none is computing (or waiting for a CPU) and keeps its place, one in a sleep
  or on a socket is blocked, and one waiting on a futex (a lock, or the GIL) is blocked only
  once the call has also outlived the GIL's switch interval. Calls beyond that wait in a
  first-in, first-out queue;
* a watcher thread, awake only while calls wait or long calls run, looks every ``tick``
  seconds (2 ms) for calls that turned blocked and starts waiting calls in their place, up
  to ``max_workers`` threads. On a loaded machine every thread runs late; the watcher
  measures how late it wakes itself and adds that (decaying) lag to ``long_after``. When
  ``core`` or more calls, and most running ones, are blocked, the young ones count as blocked
  too, and freed places outlive their calls by a few ticks (:func:`allowance`), so that a
  steady stream of blocking calls does not wait a tick each for a place;
* an idle thread takes the next call in last-in, first-out order, so a trickle of calls stays
  on one warm thread; threads beyond ``core`` end after ``idle`` seconds without work.

Short CPU-bound calls thus run on ``core`` threads, however a loaded machine stretches them,
while 32 handlers blocked on a barrier get 32 threads within some tens of milliseconds (a
few milliseconds when they sleep or wait on sockets).

``grpc.server`` and the event loop (as its default executor) use it as they would a
``ThreadPoolExecutor``. Its threads are daemons, so a handler that never returns cannot keep
the process from exiting.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

#: Calls that may run at once before any of them counts as blocked.
DEFAULT_CORE = 4
#: How long a call runs before it is presumed blocked and frees its place, in seconds.
DEFAULT_LONG_AFTER = 0.001
#: How often the watcher looks while calls wait or long calls run, in seconds.
DEFAULT_TICK = 0.002
#: How long a thread beyond the core may idle before it ends, in seconds.
DEFAULT_IDLE = 30.0

_Item = tuple["concurrent.futures.Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


_local = threading.local()


def handler_started() -> None:
    """Restart the current call's clock: its handler starts now.

    A gRPC call reaches the pool before its request has arrived and first waits for it, a
    wait that grows with the load rather than with the handler; the servicer calls this when
    it has the request, so that only the handler's own time can make the call count as
    blocked. Outside the pool's threads it does nothing.
    """
    worker = getattr(_local, "worker", None)
    if worker is not None:
        worker.started = time.monotonic()


def handler_finished() -> None:
    """The current call's handler returned: what is left (sending the reply) never blocks."""
    worker = getattr(_local, "worker", None)
    if worker is not None:
        worker.started = _NEVER


_NEVER = float("inf")
#: The futex system call's number, as ``/proc/<pid>/task/<tid>/syscall`` shows it (None: an
#: architecture not listed here, where every wait is treated as possibly a lock's).
_FUTEX = {"x86_64": b"202", "aarch64": b"98", "arm64": b"98"}.get(os.uname().machine)


def allowance(core: int, most: int, previous: int, busy: int, long: int) -> int:
    """How many calls may run at once, given ``long`` of the ``busy`` calls look blocked.

    Each blocked call frees its place; when at least ``core`` calls and most running calls are
    blocked, the young ones (not yet old enough to look blocked) are presumed blocked too,
    since handlers that block tend to keep coming: a stream of blocked calls would otherwise
    see each new call wait a tick for a place. Freed places outlive their calls by a few ticks
    (the excess over ``core`` halves every tick).
    """
    if long >= core and long * 2 >= busy:
        long = busy
    return min(most, core + max(long, (previous - core) // 2))


class _Worker:
    """One thread's mailbox: ``wake`` is released when ``item`` is set (or at shutdown)."""

    __slots__ = ("item", "started", "tid", "wake")

    def __init__(self) -> None:
        self.item: _Item | None = None
        self.started = 0.0
        self.tid = 0
        self.wake = threading.Lock()
        self.wake.acquire()

    def blocked(self, cutoff: float, lock_cutoff: float) -> bool:
        """Whether this thread's call, started before ``cutoff``, is blocked, not computing.

        Linux tells what a thread waits in (``/proc/self/task/<tid>/syscall``): nothing
        (``running``: it computes, or waits for a CPU) keeps the call's place; a futex (a lock,
        or the GIL, which a thread rarely waits for longer than the switch interval) frees it
        only for a call started before ``lock_cutoff``; any other system call (a sleep, a
        socket, a pipe...) frees it. Without that file, every long call counts as blocked.
        """
        started = self.started
        if started >= cutoff:
            return False
        try:
            fd = os.open(f"/proc/self/task/{self.tid}/syscall", os.O_RDONLY)
            try:
                waiting = os.read(fd, 16).split(None, 1)[0]
            finally:
                os.close(fd)
        except (OSError, IndexError):
            return True
        if waiting == b"running":
            return False
        if waiting == _FUTEX or _FUTEX is None:
            return started < lock_cutoff
        return True


class ElasticPool(concurrent.futures.ThreadPoolExecutor):
    """Runs calls on ``core`` threads, and on up to ``max_workers`` while calls block.

    See the module docstring for the policy. ``stats()`` reports the live thread count and the
    most threads ever live, for tests and benchmarks. It subclasses ``ThreadPoolExecutor``
    only because ``asyncio``'s ``set_default_executor`` accepts nothing else; it overrides
    everything it uses and never runs the base class's ``__init__``.
    """

    def __init__(
        self,
        max_workers: int,
        *,
        core: int = DEFAULT_CORE,
        long_after: float = DEFAULT_LONG_AFTER,
        tick: float = DEFAULT_TICK,
        idle: float = DEFAULT_IDLE,
        name: str = "gestalt",
    ) -> None:  # no super().__init__(): see the class docstring
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._max = max_workers
        self._core = self._allowed = max(1, min(core, max_workers))
        self._long_after = long_after
        self._tick = tick
        self._idle_seconds = idle
        self._name = name
        self._lock = threading.Lock()
        self._watch = threading.Condition(self._lock)
        self._pending: collections.deque[_Item] = collections.deque()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._threads: set[threading.Thread] = set()
        self._peak = 0
        self._count = 0
        self._watching = False
        self._watcher: threading.Thread | None = None
        self._shutdown = False

    # -- Executor -------------------------------------------------------------------------

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        """Schedule ``fn(*args, **kwargs)``: at once if a place is free, else in the queue."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        item: _Item = (future, fn, args, kwargs)
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new calls after the pool shut down")
            if not (len(self._busy) < self._allowed and self._dispatch(item)):
                self._pending.append(item)
                self._watch_soon()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new calls; finish (or with ``cancel_futures`` cancel) the waiting ones."""
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while self._pending:
                    self._pending.popleft()[0].cancel()
            else:
                self._allowed = self._max  # drain the queue on every thread there is
                while self._pending and self._dispatch(self._pending[0]):
                    self._pending.popleft()
            while self._idle:
                self._idle.pop().wake.release()
            self._watch.notify_all()
            threads = list(self._threads)
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()

    def stats(self) -> tuple[int, int]:
        """``(threads alive now, most threads ever alive at once)``."""
        with self._lock:
            return len(self._threads), self._peak

    # -- internals (called with the lock held unless noted) -------------------------------

    def _dispatch(self, item: _Item) -> bool:
        """Hand ``item`` to an idle thread or a new one; False when at ``max_workers``."""
        if self._idle:
            worker = self._idle.pop()
            worker.item = item
            worker.started = time.monotonic()
            self._busy.add(worker)
            worker.wake.release()
            return True
        if len(self._threads) >= self._max:
            return False
        worker = _Worker()
        worker.started = time.monotonic()
        self._busy.add(worker)
        self._count += 1
        thread = threading.Thread(
            target=self._work, args=(worker, item), name=f"{self._name}_{self._count}", daemon=True
        )
        self._threads.add(thread)
        self._peak = max(self._peak, len(self._threads))
        thread.start()
        return True

    def _watch_soon(self) -> None:
        if self._watching:
            return
        self._watching = True
        if self._watcher is None:
            self._watcher = threading.Thread(
                target=self._watch_long_calls, name=f"{self._name}-watch", daemon=True
            )
            self._watcher.start()
        else:
            self._watch.notify()

    def _work(self, worker: _Worker, item: _Item | None) -> None:
        """A worker thread (lock not held): run calls until shutdown or too long idle."""
        _local.worker = worker
        worker.tid = threading.get_native_id()
        lock = self._lock
        while item is not None:
            future, fn, args, kwargs = item
            item = None
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    future.set_exception(exc)
                    del exc
                else:
                    future.set_result(result)
                    del result
            del future, fn, args, kwargs
            with lock:
                if self._pending and len(self._busy) <= self._allowed:
                    item = self._pending.popleft()
                    worker.started = time.monotonic()
                    continue
                self._busy.discard(worker)
                if self._shutdown:
                    break
                self._idle.append(worker)
            item = self._wait(worker)
        with lock:
            self._threads.discard(threading.current_thread())

    def _wait(self, worker: _Worker) -> _Item | None:
        """Block (lock not held) until handed a call; None to end this thread."""
        if not worker.wake.acquire(timeout=self._idle_seconds):
            with self._lock:
                if worker in self._idle and len(self._threads) > self._core:
                    self._idle.remove(worker)
                    return None
            worker.wake.acquire()  # handed a call as the timeout passed, or staying as core
        item, worker.item = worker.item, None
        return item

    def _watch_long_calls(self) -> None:
        """The watcher thread: let calls running longer than ``long_after`` free their place.

        While it finds no long call it looks less and less often (down to every eighth tick),
        so that a queue of short computing calls costs it little; a long call brings it back
        to every tick.
        """
        lag = 0.0
        interval = self._tick
        with self._lock:
            while not self._shutdown:
                if not self._pending and self._allowed == self._core:
                    self._watching = False
                    interval = self._tick
                    self._watch.wait()
                    continue
                asleep = time.monotonic()
                self._watch.wait(interval)
                now = time.monotonic()
                # How late this thread woke says how long any thread may now wait for the GIL
                # or a CPU; a call is only presumed blocked once it ran well past that.
                lag = max(now - asleep - interval, lag * 0.8)
                cutoff = now - self._long_after - lag
                lock_cutoff = cutoff - sys.getswitchinterval()
                candidates = [worker for worker in self._busy if worker.started < cutoff]
                long = 0
                if candidates:  # reading /proc takes a while: not with the lock held
                    self._lock.release()
                    try:
                        long = sum(1 for w in candidates if w.blocked(cutoff, lock_cutoff))
                    finally:
                        self._lock.acquire()
                interval = self._tick if long else min(2 * interval, 8 * self._tick)
                self._allowed = allowance(
                    self._core, self._max, self._allowed, len(self._busy), long
                )
                while self._pending and len(self._busy) < self._allowed:
                    if not self._dispatch(self._pending[0]):
                        break
                    self._pending.popleft()
