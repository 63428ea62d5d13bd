"""The ``with`` / ``async with`` plumbing every closable object shares, written once.

A class that has ``close()`` inherits :class:`Closing` and gets ``__enter__`` (returning the
object) and ``__exit__`` (calling ``close()``); one whose ``close()`` is a coroutine inherits
:class:`AsyncClosing` and gets ``__aenter__`` / ``__aexit__``. Neither suppresses the
exception of the block. Classes that do more on entry or exit (a transaction commits or
aborts, a cursor opens) define their own.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["AsyncClosing", "Closing"]


class Closing:
    """Mixin: ``with obj:`` gives ``obj`` and calls ``obj.close()`` when the block ends."""

    __slots__ = ()

    def close(self) -> None:
        """Release what the object holds; subclasses define it."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        """Return the object itself for ``with`` statements."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the object at the end of the ``with`` block."""
        self.close()


class AsyncClosing:
    """Mixin: ``async with obj:`` gives ``obj`` and awaits ``obj.close()`` when it ends."""

    __slots__ = ()

    async def close(self) -> None:
        """Release what the object holds; subclasses define it."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        """Return the object itself for ``async with`` statements."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the object at the end of the ``async with`` block."""
        await self.close()
