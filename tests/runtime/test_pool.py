"""The runtime's worker pool: few threads for short calls, one per blocked call, a hard cap.

Real threads throughout. Growth is proven with barriers that only open once enough calls run
together; "no growth" uses a ``long_after`` far above the calls' length, so that a loaded
machine cannot turn a short call into a long one.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

import pytest

from gestalt._runtime.pool import ElasticPool, allowance, handler_finished, handler_started


def spin(seconds: float, step: Callable[[], object] | None = None) -> int:
    """Hold the CPU (and the GIL, between checks) for ``seconds``, calling ``step`` each turn."""
    end = time.perf_counter() + seconds
    turns = 0
    while True:  # at least one turn, even when the thread lost the CPU before its first
        if step is not None:
            step()
        turns += 1
        if time.perf_counter() >= end:
            return turns


def test_blocked_calls_get_a_thread_each_up_to_32() -> None:
    pool = ElasticPool(32)
    barrier = threading.Barrier(32, timeout=20)
    try:
        futures = [pool.submit(barrier.wait) for _ in range(32)]
        assert sorted(f.result(timeout=30) for f in futures) == list(range(32))
        assert pool.stats()[1] == 32
    finally:
        pool.shutdown()


def test_short_calls_stay_on_the_core_threads() -> None:
    pool = ElasticPool(32, core=4, long_after=5.0)
    try:
        futures = [pool.submit(spin, 0.001) for _ in range(64)]
        assert all(f.result(timeout=30) > 0 for f in futures)
        assert pool.stats() == (4, 4)
    finally:
        pool.shutdown()


def test_sequential_calls_reuse_a_warm_thread() -> None:
    pool = ElasticPool(32, core=4)
    try:
        names = {pool.submit(lambda: threading.current_thread().name).result() for _ in range(200)}
        assert len(names) <= 4
    finally:
        pool.shutdown()


def test_max_workers_caps_the_threads_and_queued_calls_still_run() -> None:
    pool = ElasticPool(8, core=2, long_after=0.001)
    release = threading.Event()
    barrier = threading.Barrier(8, timeout=20)

    def held() -> str:
        barrier.wait()
        release.wait(20)
        return "done"

    try:
        futures = [pool.submit(held) for _ in range(8)]
        extra = [pool.submit(lambda: "later") for _ in range(5)]
        deadline = time.monotonic() + 20
        while not all(f.running() for f in futures):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not any(f.done() for f in extra)
        release.set()
        assert [f.result(timeout=30) for f in futures + extra] == ["done"] * 8 + ["later"] * 5
        assert pool.stats()[1] == 8
    finally:
        release.set()
        pool.shutdown()


def test_exceptions_reach_the_future() -> None:
    pool = ElasticPool(4)
    try:
        with pytest.raises(ZeroDivisionError):
            pool.submit(lambda: 1 / 0).result(timeout=10)
        assert pool.submit(lambda: "still works").result(timeout=10) == "still works"
    finally:
        pool.shutdown()


def test_shutdown_cancels_or_finishes_queued_calls_and_refuses_new_ones() -> None:
    pool = ElasticPool(1, core=1, long_after=60)
    gate = threading.Event()
    first = pool.submit(gate.wait, 20)
    queued = pool.submit(lambda: "queued")
    pool.shutdown(wait=False, cancel_futures=True)
    assert queued.cancelled()
    gate.set()
    assert first.result(timeout=10) is True
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)

    pool = ElasticPool(1, core=1, long_after=60)
    gate = threading.Event()
    first = pool.submit(gate.wait, 20)
    queued = pool.submit(lambda: "queued")
    threading.Timer(0.05, gate.set).start()
    pool.shutdown(wait=True)
    assert queued.result(timeout=0) == "queued"
    assert pool.stats()[0] == 0


def test_threads_beyond_the_core_end_when_idle() -> None:
    pool = ElasticPool(8, core=2, idle=0.05)
    barrier = threading.Barrier(6, timeout=20)
    try:
        for future in [pool.submit(barrier.wait) for _ in range(6)]:
            future.result(timeout=30)
        assert pool.stats()[1] == 6
        deadline = time.monotonic() + 10
        while pool.stats()[0] > 2:
            assert time.monotonic() < deadline, pool.stats()
            time.sleep(0.02)
        assert pool.submit(lambda: "ok").result(timeout=10) == "ok"
    finally:
        pool.shutdown()


def test_only_the_handler_window_counts_as_blocking() -> None:
    def blocked_in_handler() -> str:
        handler_started()
        time.sleep(0.1)
        handler_finished()
        return threading.current_thread().name

    def slow_after_handler() -> str:
        handler_started()
        handler_finished()
        time.sleep(0.05)  # e.g. sending a large reply: the call's place is not given away
        return threading.current_thread().name

    handler_started()  # outside the pool: nothing happens
    handler_finished()
    pool = ElasticPool(8, core=1, long_after=0.005)
    try:
        assert len({f.result(30) for f in [pool.submit(slow_after_handler) for _ in range(4)]}) == 1
        assert pool.stats() == (1, 1)
        names = {f.result(30) for f in [pool.submit(blocked_in_handler) for _ in range(4)]}
        assert len(names) > 1 and pool.stats()[1] > 1
    finally:
        pool.shutdown()


def test_allowance_counts_blocked_calls_and_keeps_their_places_a_while() -> None:
    # Nothing blocked: the core only.
    assert allowance(4, 32, 4, 4, 0) == 4
    # A few of many running calls blocked: each frees one place.
    assert allowance(4, 32, 4, 10, 3) == 7
    # Most running calls blocked: the young ones are presumed blocked too...
    assert allowance(4, 32, 4, 20, 12) == 24
    # ... but not when fewer than the core are (a loaded machine can stretch a few calls).
    assert allowance(4, 32, 4, 6, 3) == 7
    # Never beyond max_workers.
    assert allowance(4, 32, 4, 32, 32) == 32
    # Blocked calls gone: the places they freed halve every tick, back to the core.
    shrinking = [32]
    while shrinking[-1] > 4:
        shrinking.append(allowance(4, 32, shrinking[-1], 4, 0))
    assert shrinking == [32, 18, 11, 7, 5, 4]


def test_a_stream_of_blocked_calls_keeps_its_threads() -> None:
    # 32 calls in flight, each blocking 5 ms, each one's end submitting the next (a host
    # keeping 32 calls going). If places came back only as calls turned long, every new call
    # would look short and wait a tick for one: about 6 ran at a time (at most 10-14).
    pool = ElasticPool(32, core=2, long_after=0.002, tick=0.002)
    lock = threading.Lock()
    running = [0, 0]
    submitted = [32]
    finished = threading.Event()

    def blocked() -> None:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.005)
        with lock:
            running[0] -= 1

    def next_call(_: object) -> None:
        with lock:
            if submitted[0] == 640:
                finished.set()
                return
            submitted[0] += 1
        pool.submit(blocked).add_done_callback(next_call)

    try:
        for _ in range(32):
            pool.submit(blocked).add_done_callback(next_call)
        assert finished.wait(60)
        assert running[1] >= 20
    finally:
        pool.shutdown()


def test_a_computing_call_keeps_its_place_however_long_it_runs() -> None:
    # Each call computes for 10 ms, far beyond long_after, mostly without the GIL (so the
    # watcher wakes on time): its thread is running, not blocked, so no second thread may
    # start. When every long call counted as blocked, more threads started.
    pool = ElasticPool(8, core=1, long_after=0.0005, tick=0.001)
    try:
        data = b"x" * 262_144  # hashlib lets go of the GIL while it hashes this much
        futures = [pool.submit(spin, 0.01, lambda: hashlib.sha256(data)) for _ in range(20)]
        assert all(f.result(timeout=30) > 0 for f in futures)
        # One thread on a quiet machine; on a loaded one a thread waiting for the GIL past the
        # switch interval may let one more start. Counting long calls as blocked started 8.
        _, peak = pool.stats()
        assert peak <= 2
    finally:
        pool.shutdown()
