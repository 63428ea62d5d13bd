"""One long-lived event loop for async handlers reached through the synchronous API.

``Plugin.execute`` and the other synchronous entry points may meet an ``async def`` handler.
Instead of a fresh loop per call (the reference's ``asyncio.run``, quirk 23), such coroutines
all run on a single daemon thread's loop, so async clients created by one call (HTTP sessions,
database pools) stay usable by the next. A runtime that owns an event loop should call the
``*_async`` methods instead; they await handlers on the caller's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


def _shared_loop() -> asyncio.AbstractEventLoop:
    # The same loop the generated servicer adapters use for async methods on sync servers;
    # imported here, not at module import, so ``import gestalt`` stays free of grpc.
    from gestalt.gen.serving import background_loop

    return background_loop()


async def _wait(awaitable: Awaitable[T]) -> T:
    return await awaitable


def run_sync(awaitable: Awaitable[T]) -> T:
    """Run ``awaitable`` on the shared loop and block the calling thread until it finishes."""
    loop = _shared_loop()
    try:
        current: Any = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    if current is loop:
        close = getattr(awaitable, "close", None)
        if callable(close):
            close()
        raise RuntimeError("cannot block the gestalt event loop; call the *_async method instead")
    return asyncio.run_coroutine_threadsafe(_wait(awaitable), loop).result()
