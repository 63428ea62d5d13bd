"""What a provider run by ``gestalt dev`` (or a one-shot ``gestalt invoke``) reports per call.

Only the dev host sets the variables read here; the Gestalt host never does, so a provider it
launches serves exactly as before. With ``GESTALT_DEV_EVENTS_FD`` naming a pipe the dev host
reads, every unary call (but the start-up handshake) adds one JSON line to it: the operation (or
RPC) name, its status (the HTTP status of an ``Execute``, the gRPC code otherwise) and its
duration in milliseconds. A call carrying the ``gestalt-dev-call`` metadata (32 hex digits,
sent by ``gestalt invoke``) also has the log records emitted while it ran, tracebacks
included, written to ``GESTALT_DEV_CALLS_DIR/<id>.log`` before its answer leaves; that file is
how ``gestalt --debug invoke`` shows a failure whose details never go over the wire.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import threading
import time
from typing import TYPE_CHECKING, Any

import grpc

from gestalt.telemetry._wrapping import Behaviour, Details, Handler, WrappingInterceptor

EVENTS_FD_ENV = "GESTALT_DEV_EVENTS_FD"
CALLS_DIR_ENV = "GESTALT_DEV_CALLS_DIR"
CALL_ID_KEY = "gestalt-dev-call"
EXECUTE = "/gestalt.provider.v1.IntegrationProvider/Execute"
#: The host's start-up calls: part of every (re)start, not calls anyone made.
HANDSHAKE = frozenset(
    {
        "/gestalt.provider.v1.IntegrationProvider/GetMetadata",
        "/gestalt.provider.v1.IntegrationProvider/StartProvider",
        "/gestalt.provider.v1.ProviderLifecycle/GetProviderIdentity",
        "/gestalt.provider.v1.ProviderLifecycle/ConfigureProvider",
    }
)
logger = logging.getLogger("gestalt.runtime")
_CALL_ID = re.compile(r"[0-9a-f]{32}")
_captured: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "gestalt_dev_captured", default=None
)

if TYPE_CHECKING:
    from pathlib import Path


class _Capture(logging.Handler):
    """Keeps the records of the call running in the current context, formatted."""

    def emit(self, record: logging.LogRecord) -> None:
        lines = _captured.get()
        if lines is not None:
            lines.append(self.format(record))


def interceptors(log_format: str) -> list[grpc.ServerInterceptor]:
    """The call reporter when the dev host asked for one, else nothing.

    ``log_format`` formats the log records captured for ``gestalt --debug invoke``.
    """
    raw = os.environ.get(EVENTS_FD_ENV, "").strip()
    if not raw.isdigit():
        return []
    capture = _Capture()
    capture.setFormatter(logging.Formatter(log_format))
    logging.getLogger().addHandler(capture)
    calls = os.environ.get(CALLS_DIR_ENV, "").strip()
    from pathlib import Path  # only under gestalt dev

    return [_Reporter(int(raw), Path(calls) if calls else None)]


class _Reporter(WrappingInterceptor):
    """Times every unary call and reports it on the events pipe."""

    def __init__(self, fd: int, calls_dir: Path | None) -> None:
        self.fd: int | None = fd
        self.calls_dir = calls_dir
        self.lock = threading.Lock()

    def wrap(self, details: Details, handler: Handler, behaviour: Behaviour) -> Behaviour | None:
        """Unary calls (but the handshake) run timed, with their log records captured."""
        method: str = details.method
        if handler.request_streaming or handler.response_streaming or method in HANDSHAKE:
            return None
        call_id = next(
            (str(v) for k, v in details.invocation_metadata or () if k == CALL_ID_KEY), ""
        )
        if not _CALL_ID.fullmatch(call_id):
            call_id = ""

        def timed(request: Any, context: grpc.ServicerContext) -> Any:
            lines: list[str] = []
            token = _captured.set(lines)
            start = time.perf_counter()
            name, status = method.rpartition("/")[2], "OK"
            try:
                response = behaviour(request, context)
                if method == EXECUTE:
                    name, status = request.operation, str(response.status)
                return response
            except BaseException:
                code = context.code() if hasattr(context, "code") else None
                status = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
                raise
            finally:
                _captured.reset(token)
                elapsed = (time.perf_counter() - start) * 1000
                self._report(name, status, elapsed, call_id, lines)

        return timed

    def _report(self, name: str, status: str, ms: float, call_id: str, lines: list[str]) -> None:
        if call_id and lines and self.calls_dir is not None:
            path = self.calls_dir / f"{call_id}.log"
            draft = path.with_suffix(".draft")
            try:
                draft.write_text("\n".join(lines) + "\n", encoding="utf-8")
                draft.replace(path)
            except OSError as exc:  # the dev host removed the directory, say
                logger.warning("cannot keep the log of call %s: %s", call_id, exc)
        event = json.dumps({"name": name, "status": status, "ms": round(ms, 2)}) + "\n"
        with self.lock:
            if self.fd is None:
                return
            try:
                os.write(self.fd, event.encode())
            except OSError as exc:
                self.fd = None  # the dev host is gone; keep serving
                logger.warning("cannot report calls to gestalt dev any more: %s", exc)
