"""Ending streams that stay idle too long, for the embedded services.

One :class:`IdleWatch` per service runs one daemon thread (started with the first watched
stream). A stream registers a :class:`Watched` entry, calls :meth:`Watched.touch` whenever
it makes progress (a cheap clock read) and :meth:`Watched.done` when it ends. An entry
untouched for ``timeout`` seconds has its ``on_idle`` callback run once on the watch
thread, which then forgets it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["IdleWatch", "Watched"]

_log = logging.getLogger("gestalt.local")


class Watched:
    """One watched stream: its last progress and what to do once it idles too long."""

    __slots__ = ("_watch", "busy", "expired", "last", "on_idle")

    def __init__(self, watch: IdleWatch, on_idle: Callable[[], None]) -> None:
        self._watch = watch
        self.on_idle = on_idle
        self.last = time.monotonic()
        self.busy = False
        self.expired = False  # set just before ``on_idle`` runs

    def touch(self) -> None:
        """Record progress now."""
        self.last = time.monotonic()

    def done(self) -> None:
        """Stop watching (idempotent)."""
        self._watch.forget(self)


class IdleWatch:
    """Runs ``on_idle`` of entries idle for more than ``timeout`` seconds (see module doc)."""

    def __init__(self, timeout: float, name: str) -> None:
        if not timeout > 0:
            raise ValueError(f"idle timeout must be positive, got {timeout}")
        self.timeout = timeout
        self._name = name
        self._entries: set[Watched] = set()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(self, on_idle: Callable[[], None]) -> Watched:
        """Start watching a stream; ``on_idle`` runs on the watch thread if it idles."""
        entry = Watched(self, on_idle)
        with self._cond:
            self._entries.add(entry)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._run, name=f"gestalt-{self._name}-idle", daemon=True
                )
                self._thread.start()
        return entry

    def forget(self, entry: Watched) -> None:
        """Stop watching ``entry``."""
        with self._cond:
            self._entries.discard(entry)

    def close(self) -> None:
        """Stop the watch thread; entries are no longer checked."""
        with self._cond:
            self._closed = True
            self._entries.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _run(self) -> None:
        period = min(max(self.timeout / 4, 0.01), 1.0)
        while True:
            with self._cond:
                self._cond.wait(period)
                if self._closed:
                    return
                cutoff = time.monotonic() - self.timeout
                expired = [e for e in self._entries if not e.busy and e.last < cutoff]
                self._entries.difference_update(expired)
            for entry in expired:
                entry.expired = True
                try:
                    entry.on_idle()
                except Exception:  # the watch must go on for the other streams
                    _log.exception("ending an idle %s stream failed", self._name)
