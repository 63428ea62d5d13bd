"""What the in-memory host services (agent and workflow managers) share.

:class:`_MemoryHost` holds the lock, the id counter and the invocation tokens seen (noted
by the handlers :func:`noting_tokens` registers, before each call runs); :func:`now`
stamps records; :func:`copy` gives a caller a message it may keep.
"""

from __future__ import annotations

import itertools
import threading
import types
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf import timestamp_pb2
from google.protobuf.message import Message

from gestalt.gen.serving import MethodSpec

__all__ = ["copy", "noting_tokens", "now"]

K = TypeVar("K")
T = TypeVar("T", bound=Message)


def now() -> timestamp_pb2.Timestamp:
    """The current time as a protobuf timestamp."""
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def copy(message: T) -> T:
    """A deep copy of ``message``."""
    duplicate = type(message)()
    duplicate.CopyFrom(message)
    return duplicate


def noting_tokens(
    methods: Sequence[MethodSpec], add: Callable[[object, grpc.Server], None]
) -> Callable[[_MemoryHost, grpc.Server], None]:
    """How to register a memory host's ``methods`` with ``add`` (the generated
    ``add_*_to_server``): each handler notes its request's invocation token, then runs."""

    def register(service: _MemoryHost, server: grpc.Server) -> None:
        def noting(fn: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
            def handler(request: Any, context: grpc.ServicerContext) -> Any:
                service._seen(request.invocation_token)
                return fn(request, context)

            return handler

        handlers = {spec.attr: noting(getattr(service, spec.attr)) for spec in methods}
        add(types.SimpleNamespace(**handlers), server)

    return register


class _MemoryHost:
    """Base of the in-memory host services: a condition lock, ids, and tokens seen."""

    def __init__(self) -> None:
        #: Every invocation token that reached the service, in order.
        self.invocation_tokens: list[str] = []
        self._lock = threading.Condition()
        self._ids = itertools.count(1)

    def _seen(self, token: str) -> None:
        with self._lock:
            self.invocation_tokens.append(token)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}-{uuid.uuid4().hex[:8]}"

    def _wait(self, done: Callable[[], bool], timeout: float | None, what: str) -> None:
        """Wait, holding the lock, until ``done()``; ``TimeoutError`` naming ``what`` if not."""
        if not self._lock.wait_for(done, timeout):
            raise TimeoutError(f"{what} did not finish in time")

    @staticmethod
    def _found(table: dict[str, K], key: str, what: str, context: grpc.ServicerContext) -> K:
        """``table[key]``, or the call ends ``NOT_FOUND`` naming ``what``."""
        item = table.get(key)
        if item is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"{what} {key!r} not found")
        return item
