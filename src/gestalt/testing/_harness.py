"""Start a provider for a test, call it, and reach the host services it uses.

Two modes behind one API:

* ``"subprocess"``: the provider runs in its own process, launched exactly as the Gestalt
  host launches it (``python -m gestalt._runtime``, reduced environment, unix socket,
  handshake, SIGTERM to stop). This is what production looks like.
* ``"inprocess"``: the provider's module is imported into the test process and served on an
  event loop of its own in a background thread, still over real gRPC on a unix socket. A test
  starts in milliseconds and a debugger breakpoint in a handler stops the test there.

Either way the embedded Cache, IndexedDB and S3 services run for the provider (unless
``services=False``), and while the harness runs ``GESTALT_CACHE_SOCKET``,
``GESTALT_INDEXEDDB_SOCKET`` and ``GESTALT_S3_SOCKET`` point at them in the test process too,
so ``gestalt.Cache()``, ``gestalt.IndexedDB()`` and ``gestalt.S3()`` in test code read and seed
the same state the provider sees.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from gestalt._launch import LaunchError, ProviderProcess, handshake
from gestalt._providers import ProviderKind

Mode = Literal["subprocess", "inprocess"]


@dataclasses.dataclass(frozen=True, slots=True)
class InvokeResult:
    """What an operation answered: HTTP-style ``status`` and the parsed JSON ``body``."""

    status: int
    body: Any
    raw_body: str

    @property
    def ok(self) -> bool:
        """True for a status below 400."""
        return self.status < 400


class ProviderHarness:
    """A provider started for a test; see :func:`start_provider`.

    ``channel`` is a ``grpc.Channel`` to the provider (use it with any generated client from
    ``gestalt.gen.v1``); :meth:`invoke` and :meth:`ainvoke` call integration operations.
    """

    def __init__(
        self,
        root: Path,
        target: str,
        kind: ProviderKind,
        *,
        mode: Mode,
        services: bool,
        name: str,
        config: Mapping[str, Any] | None,
        env: Mapping[str, str] | None,
        data_dir: Path | None,
    ) -> None:
        if mode not in ("subprocess", "inprocess"):
            raise ValueError(f"mode must be 'subprocess' or 'inprocess', not {mode!r}")
        self.root = root
        self.target = target
        self.kind = kind
        self.mode: Mode = mode
        self.services: Any = None
        self.metadata: Any = None
        self.channel: Any = None
        self._process: ProviderProcess | None = None
        self._thread: _InProcessServer | None = None
        self._saved_env: dict[str, str | None] = {}
        try:
            service_env = self._start_services(data_dir) if services else {}
            provider_env = {**service_env, **dict(env or {})}
            if mode == "subprocess":
                self._process = ProviderProcess(root, target, kind, env=provider_env)
                self._process.wait_ready()
                self.channel = self._process.channel
            else:
                self._export_env(provider_env)
                self._thread = _InProcessServer(root, target, kind)
                self.channel = self._thread.connect()
            self.metadata = self._handshake(name, config)
        except BaseException:
            self.stop()
            raise

    def _start_services(self, data_dir: Path | None) -> dict[str, str]:
        from gestalt.local import LocalServices

        self.services = LocalServices(data_dir)
        env: dict[str, str] = self.services.start()
        self._export_env(env)
        return env

    def _export_env(self, env: Mapping[str, str]) -> None:
        for key, value in env.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _handshake(self, name: str, config: Mapping[str, Any] | None) -> Any:
        from gestalt.gen.support import RPCError

        try:
            return handshake(self.channel, self.kind, name, config)
        except RPCError as exc:
            output = self.output()
            raise LaunchError(
                f"the provider failed the start-up handshake ({exc})"
                + (f"; its output ends with:\n{output[-2000:]}" if output else "")
            ) from None

    # -- calling ------------------------------------------------------------------------

    def invoke(
        self,
        operation: str,
        params: Mapping[str, Any] | None = None,
        *,
        token: str = "",
        context: Mapping[str, Any] | None = None,
        timeout: float = 30,
    ) -> InvokeResult:
        """Execute ``operation`` with ``params`` (a JSON-like mapping).

        ``context`` is an ``ExecuteRequest.context`` as a dict in protobuf JSON form, e.g.
        ``{"subject": {"id": "user:1"}, "access": {"role": "admin"}}``.
        """
        from gestalt.gen.v1 import plugin_clients

        client = plugin_clients.IntegrationProviderClient(self.channel)
        result = client.execute(
            _execute_request(operation, params, token, context), timeout=timeout
        )
        return _result(result)

    async def ainvoke(
        self,
        operation: str,
        params: Mapping[str, Any] | None = None,
        *,
        token: str = "",
        context: Mapping[str, Any] | None = None,
        timeout: float = 30,
    ) -> InvokeResult:
        """Async twin of :meth:`invoke`, over a ``grpc.aio`` channel of the running loop."""
        import grpc.aio

        from gestalt.gen.v1 import plugin_clients

        async with grpc.aio.insecure_channel(f"unix:{self.socket}") as channel:
            client = plugin_clients.AsyncIntegrationProviderClient(channel)
            request = _execute_request(operation, params, token, context)
            return _result(await client.execute(request, timeout=timeout))

    def catalog(self) -> dict[str, Any]:
        """The static catalog the host would read, as a dict (integration plugins)."""
        import yaml

        from gestalt._project import export_catalog

        text = export_catalog(self.root, self.target)
        data: dict[str, Any] = yaml.safe_load(text)
        return data

    @property
    def socket(self) -> str:
        """Path of the provider's unix socket."""
        if self._process is not None:
            return str(self._process.socket)
        assert self._thread is not None
        return str(self._thread.socket)

    def output(self) -> str:
        """What a subprocess provider printed so far (in-process output goes to the test)."""
        return self._process.output_text() if self._process is not None else ""

    # -- lifecycle ----------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the provider (SIGTERM or the in-process stop), the services, restore the env."""
        if self._process is not None:
            self._process.cleanup()
            self._process = None
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.services is not None:
            self.services.stop()
            self.services = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def __enter__(self) -> ProviderHarness:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _InProcessServer:
    """The provider's module imported here and served by the runtime's own server class."""

    def __init__(self, root: Path, target: str, kind: ProviderKind) -> None:
        from gestalt._runtime import LaunchSpec, RunningServer, resolve

        self.root = root.resolve()
        # A fresh import each time: module state from an earlier harness must not leak in.
        forget_modules(self.root)
        self.dir = Path(tempfile.mkdtemp(prefix="gstp-"))
        self.socket = self.dir / "plugin.sock"
        provider = resolve(LaunchSpec(target, kind, self.root))
        self.server = RunningServer(provider, kind, str(self.socket))

    def connect(self) -> Any:
        import grpc

        channel = grpc.insecure_channel(f"unix:{self.socket}")
        grpc.channel_ready_future(channel).result(timeout=10)
        return channel

    def stop(self) -> None:
        self.server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        forget_modules(self.root)


def forget_modules(root: Path) -> None:
    """Drop the modules loaded from files under ``root`` so the next import starts afresh."""
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and Path(path).resolve().is_relative_to(root):
            del sys.modules[name]


def _execute_request(
    operation: str, params: Mapping[str, Any] | None, token: str, context: Mapping[str, Any] | None
) -> Any:
    from google.protobuf import json_format, struct_pb2

    from gestalt.gen.v1 import plugin_pb2

    request = plugin_pb2.ExecuteRequest(operation=operation, token=token)
    if params:
        struct = struct_pb2.Struct()
        struct.update(dict(params))
        request.params.CopyFrom(struct)
    if context:
        json_format.ParseDict(dict(context), request.context)
    return request


def _result(result: Any) -> InvokeResult:
    try:
        body = json.loads(result.body)
    except ValueError:
        body = result.body
    return InvokeResult(status=result.status, body=body, raw_body=result.body)


def start_provider(
    root: str | os.PathLike[str],
    target: str | None = None,
    kind: ProviderKind | str | None = None,
    *,
    mode: Mode = "subprocess",
    services: bool = True,
    name: str = "test",
    config: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> ProviderHarness:
    """Start the provider under ``root`` for a test and perform the host's handshake.

    ``target`` and ``kind`` default to ``[tool.gestalt]`` in ``root/pyproject.toml``.
    ``config`` is what the host would configure; ``env`` adds provider variables;
    ``data_dir`` keeps the embedded services' data (a temporary directory otherwise).
    Stop it with :meth:`ProviderHarness.stop` or use it as a context manager.
    """
    path = Path(root)
    if target is None:
        from gestalt._project import load_spec

        target, spec_kind = load_spec(path)
        kind = spec_kind if kind is None else kind
    resolved_kind = ProviderKind.parse(kind)
    return ProviderHarness(
        path,
        target,
        resolved_kind,
        mode=mode,
        services=services,
        name=name,
        config=config,
        env=env,
        data_dir=Path(data_dir) if data_dir is not None else None,
    )
