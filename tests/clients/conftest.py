"""Fixtures for the host-service client tests (Cache here; IndexedDB and S3 reuse them).

* Every test starts with no ``GESTALT_{CACHE,INDEXEDDB,S3}_SOCKET*`` variables
  (``clean_host_env``, autouse); :func:`bind_env` sets a binding's variables for one test.
* :func:`socket_path` gives unix socket paths short enough for ``AF_UNIX`` (under
  ``tmp_path`` when it is short, else under a private temporary directory).
* :class:`RecordingInterceptor` (fixture ``recorder``) records, server side, every call's
  method, ``x-gestalt-*`` metadata, request and response messages, for any call shape; pass
  it to a ``serve_*`` function's ``interceptors``.
* ``cache_server`` / ``cache_env`` start the embedded cache (recorded) and bind it.
* :func:`parse_transcript` reads a golden wire transcript of ``examples/clients`` into steps
  (label, calls with metadata and frames, returned/raised outcome); :func:`stable_repr`
  prints results the way the transcripts do.
* :func:`service_process` runs an embedded service in a child process (for thread counts
  that must not include the server's threads); :func:`wait_for_thread_count` waits for
  threads to wind down.
"""

from __future__ import annotations

import ast
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import text_format
from google.protobuf.message import Message

from gestalt._clients.transport import HostService
from gestalt.local.cache import CacheServer, CacheService, serve_cache

HOST_ENV_PREFIXES = (
    "GESTALT_CACHE_SOCKET",
    "GESTALT_INDEXEDDB_SOCKET",
    "GESTALT_S3_SOCKET",
    "GESTALT_PLUGIN_INVOKER_SOCKET",
    "GESTALT_AUTHORIZATION_SOCKET",
)
# AF_UNIX paths are limited to 107 bytes; leave room for the file name.
_MAX_SOCKET_DIR = 80


@pytest.fixture(autouse=True)
def clean_host_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every host-service binding variable for the duration of the test."""
    for var in list(os.environ):
        if var.startswith(HOST_ENV_PREFIXES):
            monkeypatch.delenv(var)


@pytest.fixture
def socket_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory whose paths fit in a unix socket address."""
    if len(str(tmp_path)) <= _MAX_SOCKET_DIR:
        yield tmp_path
        return
    short = Path(tempfile.mkdtemp(prefix="gs-"))
    try:
        yield short
    finally:
        shutil.rmtree(short, ignore_errors=True)


@pytest.fixture
def socket_path(socket_dir: Path) -> Callable[[str], Path]:
    """``socket_path(name)``: a fresh socket path in :func:`socket_dir`."""
    return lambda name: socket_dir / f"{name}.sock"


class EnvBinder:
    """Sets a binding's target and token variables for one test (undone afterwards)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch

    def __call__(
        self,
        service: HostService,
        target: str,
        *,
        name: str | None = None,
        token: str | None = None,
    ) -> None:
        """Point binding ``name`` of ``service`` at ``target``, with an optional token."""
        self._monkeypatch.setenv(service.socket_env(name), target)
        if token is None:
            self._monkeypatch.delenv(service.token_env(name), raising=False)
        else:
            self._monkeypatch.setenv(service.token_env(name), token)


@pytest.fixture
def bind_env(monkeypatch: pytest.MonkeyPatch) -> EnvBinder:
    """An :class:`EnvBinder` for this test."""
    return EnvBinder(monkeypatch)


# -- recording ------------------------------------------------------------------------------


@dataclass
class RecordedCall:
    """One call as the server saw it."""

    method: str
    metadata: list[tuple[str, str]]
    requests: list[Message] = field(default_factory=list)
    responses: list[Message] = field(default_factory=list)

    def request_text(self, index: int = 0) -> list[str]:
        """A request in protobuf text format, one list item per line, as the goldens print it."""
        text = text_format.MessageToString(self.requests[index], as_utf8=True)
        return text.rstrip("\n").split("\n") if text.strip() else ["<empty message>"]


class RecordingInterceptor(grpc.ServerInterceptor):
    """Records every call passing through a (sync) grpc server, for any call shape."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[RecordedCall] = []

    def clear(self) -> None:
        """Forget what was recorded."""
        with self._lock:
            self.calls.clear()

    def take(self) -> list[RecordedCall]:
        """Return and forget what was recorded."""
        with self._lock:
            calls, self.calls = self.calls, []
        return calls

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """Wrap the handler so requests and responses are noted as they pass."""
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        metadata = [
            (str(key), str(value))
            for key, value in handler_call_details.invocation_metadata or ()
            if str(key).startswith("x-gestalt")
        ]
        call = RecordedCall(handler_call_details.method, metadata)
        with self._lock:
            self.calls.append(call)

        def requests(items: Iterator[Message]) -> Iterator[Message]:
            for item in items:
                call.requests.append(item)
                yield item

        def responses(items: Iterator[Message]) -> Iterator[Message]:
            for item in items:
                call.responses.append(item)
                yield item

        def unary_in(request: Message) -> Message:
            call.requests.append(request)
            return request

        def unary_out(response: Message) -> Message:
            call.responses.append(response)
            return response

        kind = (handler.request_streaming, handler.response_streaming)
        options = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if kind == (False, False):
            inner_uu = handler.unary_unary
            assert inner_uu is not None
            return grpc.unary_unary_rpc_method_handler(
                lambda req, ctx: unary_out(inner_uu(unary_in(req), ctx)), **options
            )
        if kind == (False, True):
            inner_us = handler.unary_stream
            assert inner_us is not None
            return grpc.unary_stream_rpc_method_handler(
                lambda req, ctx: responses(iter(inner_us(unary_in(req), ctx))), **options
            )
        if kind == (True, False):
            inner_su = handler.stream_unary
            assert inner_su is not None
            return grpc.stream_unary_rpc_method_handler(
                lambda reqs, ctx: unary_out(inner_su(requests(reqs), ctx)), **options
            )
        inner_ss = handler.stream_stream
        assert inner_ss is not None
        return grpc.stream_stream_rpc_method_handler(
            lambda reqs, ctx: responses(iter(inner_ss(requests(reqs), ctx))), **options
        )


@pytest.fixture
def recorder() -> RecordingInterceptor:
    """A fresh :class:`RecordingInterceptor`."""
    return RecordingInterceptor()


# -- embedded cache -------------------------------------------------------------------------


@pytest.fixture
def cache_server(
    socket_path: Callable[[str], Path], recorder: RecordingInterceptor
) -> Iterator[CacheServer[CacheService]]:
    """An embedded cache on a unix socket, recorded by ``recorder``; stopped after the test."""
    with serve_cache(socket_path("cache"), interceptors=[recorder]) as server:
        yield server


@pytest.fixture
def cache_env(
    cache_server: CacheServer[CacheService], bind_env: EnvBinder
) -> CacheServer[CacheService]:
    """``cache_server`` bound as the default cache (``GESTALT_CACHE_SOCKET``)."""
    from gestalt._clients.transport import CACHE

    bind_env(CACHE, cache_server.target)
    return cache_server


# -- processes and threads ------------------------------------------------------------------


@contextmanager
def service_process(module: str, address: str, *args: str, timeout: float = 20.0) -> Iterator[str]:
    """Run ``python -m <module> <address> [args]``; yields the target it prints first."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, address, *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"{module} did not report its target within {timeout} s")
        target = proc.stdout.readline().strip()
        if not target:
            raise RuntimeError(f"{module} exited with {proc.wait(timeout)} before serving")
        yield target
    finally:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def wait_for_thread_count(limit: int, timeout: float = 5.0) -> int:
    """Wait until at most ``limit`` threads are alive (or ``timeout``); returns the count."""
    deadline = time.monotonic() + timeout
    count = threading.active_count()
    while count > limit and time.monotonic() < deadline:
        time.sleep(0.01)
        count = threading.active_count()
    return count


# -- golden transcripts ---------------------------------------------------------------------


@dataclass
class GoldenFrame:
    """One message (or final status) of a golden call: ``-->`` client, ``<--`` host."""

    direction: str
    name: str
    lines: list[str] = field(default_factory=list)


@dataclass
class GoldenCall:
    """One RPC the reference client opened, with its ``x-gestalt-*`` metadata and frames."""

    method: str
    kind: str
    metadata: list[tuple[str, str]] = field(default_factory=list)
    frames: list[GoldenFrame] = field(default_factory=list)

    def sent(self) -> list[GoldenFrame]:
        """The frames the client sent (the golden part)."""
        return [frame for frame in self.frames if frame.direction == "-->"]


@dataclass
class GoldenStep:
    """One ``=== label`` block: the calls made and what the client call produced."""

    label: str
    calls: list[GoldenCall] = field(default_factory=list)
    outcome: str | None = None  # "returned" or "raised"
    value: str = ""
    #: Frames of a stream opened by an earlier step (no ``--> /method`` line in this one).
    frames: list[GoldenFrame] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # anything else (tables, notes)


_CALL = re.compile(r"^--> (/\S+)  \((.+)\)$")
_FRAME = re.compile(r"^(-->|<--) (?:(?:client|server) frame \d+ )?(.+)$")


def parse_transcript(path: Path) -> list[GoldenStep]:
    """Read a transcript written by ``wire_harness.Transcript`` into its steps."""
    steps: list[GoldenStep] = []
    frame: GoldenFrame | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith("=== "):
            steps.append(GoldenStep(line[4:]))
            frame = None
            continue
        if not steps:
            continue
        step = steps[-1]
        if match := _CALL.match(line):
            step.calls.append(GoldenCall(match[1], match[2]))
            frame = None
        elif line.startswith("    metadata "):
            key, _, value = line[len("    metadata ") :].partition(": ")
            step.calls[-1].metadata.append((key, ast.literal_eval(value)))
        elif line.startswith("    metadata:"):
            pass  # no x-gestalt-* headers
        elif line.startswith("    | ") and frame is not None:
            frame.lines.append(line[len("    | ") :])
        elif line.startswith("== returned: "):
            step.outcome, step.value = "returned", line[len("== returned: ") :]
        elif line.startswith("== raised: "):
            step.outcome, step.value = "raised", line[len("== raised: ") :]
        elif match := _FRAME.match(line):
            frame = GoldenFrame(match[1], match[2])
            (step.calls[-1].frames if step.calls else step.frames).append(frame)
        else:
            step.lines.append(line)
    return steps


def stable_repr(value: object) -> str:
    """``repr`` with sorted dict keys, as the transcripts print returned values."""
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return "{" + ", ".join(f"{k!r}: {stable_repr(v)}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(stable_repr(v) for v in value) + "]"
    return repr(value)
