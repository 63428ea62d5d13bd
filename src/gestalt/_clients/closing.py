"""The ``with`` / ``async with`` plumbing of every client, stream and server, written once.

:class:`Context` gives ``__enter__`` (returning the object) and ``__exit__``, which hands
the block's exception (or None) to ``_exit``; :class:`AsyncContext` does the same for
``async with`` with ``_aexit``. Neither suppresses the exception. :class:`Closing` and
:class:`AsyncClosing` are the common case: ``_exit`` calls ``close()``. A class that ends
differently (a transaction commits or aborts) overrides ``_exit`` / ``_aexit``; one that
does more on entry (an async cursor opens) overrides ``__aenter__``.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["AsyncClosing", "AsyncContext", "Closing", "Context"]


class Context:
    """Mixin: ``with obj:`` gives ``obj`` and calls ``obj._exit(exc)`` when the block ends."""

    __slots__ = ()

    def __enter__(self) -> Self:
        """Return the object itself for ``with`` statements."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close (or finish) the object at the end of the block; its exception propagates."""
        self._exit(exc)

    def _exit(self, exc: BaseException | None) -> None:
        raise NotImplementedError


class AsyncContext:
    """Mixin: ``async with obj:`` gives ``obj`` and awaits ``obj._aexit(exc)`` at the end."""

    __slots__ = ()

    async def __aenter__(self) -> Self:
        """Return the object itself for ``async with`` statements."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close (or finish) the object at the end of the block; its exception propagates."""
        await self._aexit(exc)

    async def _aexit(self, exc: BaseException | None) -> None:
        raise NotImplementedError


class Closing(Context):
    """Mixin for objects with ``close()``: ``with`` closes them at the end of the block."""

    __slots__ = ()

    def close(self) -> None:
        """Release what the object holds; subclasses define it."""
        raise NotImplementedError

    def _exit(self, exc: BaseException | None) -> None:
        self.close()


class AsyncClosing(AsyncContext):
    """Mixin for objects with ``async close()``: ``async with`` closes them at the end."""

    __slots__ = ()

    async def close(self) -> None:
        """Release what the object holds; subclasses define it."""
        raise NotImplementedError

    async def _aexit(self, exc: BaseException | None) -> None:
        await self.close()
