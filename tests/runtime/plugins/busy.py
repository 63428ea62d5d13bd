"""A plugin for process tests: concurrency, large messages, shutdown, failures."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time

from gestalt import Model, Plugin

plugin = Plugin("busy")

if os.environ.get("BUSY_GC_THRESHOLD"):  # a provider tuning the cycle collector itself
    gc.set_threshold(*(int(part) for part in os.environ["BUSY_GC_THRESHOLD"].split(",")))

#: Meeting point for ``meet``: only passes when 32 sync handlers run at the same time.
BARRIER = threading.Barrier(32, timeout=20)
_arrived = {"count": 0}
_everyone: asyncio.Event | None = None


class Nap(Model):
    """How long a handler sleeps."""

    seconds: float = 0.2


class Blob(Model):
    """A large string parameter."""

    blob: str


@plugin.operation
def nap(params: Nap) -> float:
    """Sleep in a worker thread; return the time the handler finished."""
    time.sleep(params.seconds)
    return time.time()


@plugin.operation
def meet() -> str:
    """Wait until 32 sync calls are in flight together."""
    BARRIER.wait()
    return "met"


@plugin.operation
async def ameet() -> str:
    """Wait until 32 async calls are in flight together on the one event loop."""
    global _everyone
    if _everyone is None:
        _everyone = asyncio.Event()
    _arrived["count"] += 1
    if _arrived["count"] >= 32:
        _everyone.set()
    await asyncio.wait_for(_everyone.wait(), timeout=20)
    return "met"


@plugin.operation
async def loop_id() -> int:
    """Identity of the event loop async handlers run on."""
    return id(asyncio.get_running_loop())


@plugin.operation
def size(params: Blob) -> int:
    """Length of a large parameter."""
    return len(params.blob)


@plugin.operation
def big() -> str:
    """A 5 MiB result."""
    return "x" * (5 * 1024 * 1024)


@plugin.operation
def boom() -> str:
    """Fail with a message that must stay in the provider's log."""
    raise RuntimeError("must not leak: secret-xyz")


@plugin.operation
def collector() -> dict[str, object]:
    """Whether the cycle collector runs, and how many start-up objects it leaves alone."""
    frozen = gc.get_freeze_count()
    gc.unfreeze()  # what start-up left as garbage would be frozen with the rest
    garbage = gc.collect()
    gc.freeze()
    return {
        "enabled": gc.isenabled(),
        "threshold": list(gc.get_threshold()),
        "frozen": frozen,
        "garbage": garbage,
    }


@plugin.on_close
def closed() -> None:
    """Record when shutdown ran, for the drain-then-close test."""
    marker = os.environ.get("BUSY_CLOSE_MARKER")
    if marker:
        with open(marker, "w", encoding="utf-8") as f:
            f.write(repr(time.time()))
