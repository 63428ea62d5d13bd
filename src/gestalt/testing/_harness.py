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
the same state the provider sees. The local plugin invoker and authorization store run too
(``GESTALT_PLUGIN_INVOKER_SOCKET``, ``GESTALT_AUTHORIZATION_SOCKET``): an integration provider
is routed under its ``name``, every ``invoke`` carries a fresh invocation token, and a test
seeds relationships with ``harness.services.authorization.write(...)``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, TypeVar

from gestalt._authoring.providers import ProviderKind
from gestalt._clients.closing import Context
from gestalt._runtime.launch import LaunchError, ProviderProcess, handshake

if TYPE_CHECKING:
    import grpc

    from gestalt.gen.v1.plugin_pb2 import ExecuteRequest, OperationResult, ProviderMetadata
    from gestalt.gen.v1.runtime_pb2 import ProviderIdentity
    from gestalt.local import LocalServices

Mode = Literal["subprocess", "inprocess"]
T = TypeVar("T")

JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"
"""A parsed JSON document, as :attr:`InvokeResult.body` holds it."""

JSONInput: TypeAlias = (
    "bool | int | float | str | Sequence[JSONInput] | Mapping[str, JSONInput] | None"
)
"""Anything the harness can send as JSON: params, config and context values."""


@dataclasses.dataclass(frozen=True, slots=True)
class InvokeResult:
    """What an operation answered, as the host received it.

    ``status`` is the HTTP-style status, ``raw_body`` the body text and ``body`` that text
    parsed as JSON (the text itself if it is not JSON). ``error`` says what went wrong in words
    when ``status`` is 400 or more: the body's ``"error"`` text, or for an operation the provider
    does not have, a sentence naming it and the operations that exist (the body stays the
    contract's ``{"error":"unknown operation"}``). It is empty on success.
    """

    status: int
    body: JSONValue
    raw_body: str
    error: str = ""

    @property
    def ok(self) -> bool:
        """True for a status below 400."""
        return self.status < 400

    def decode(self, cls: type[T]) -> T:
        """The body as ``cls``: a ``Model`` or dataclass, ``dict[str, int]``, ``list[str]`` ...

        The body is decoded by the rules that apply to operation parameters, so a test gets
        typed values back; a body that does not fit raises ``ValueError`` naming the field.
        """
        from gestalt._authoring.decode import compile_decoder

        value: T = compile_decoder(cls)(self.body)
        return value


class ProviderHarness(Context):
    """A provider started for a test; see :func:`start_provider`.

    :attr:`channel` is a ``grpc.Channel`` to the provider (use it with any generated client
    from ``gestalt.gen.v1``); :meth:`invoke` and :meth:`ainvoke` call integration operations.
    ``services`` are the embedded host services (``None`` with ``services=False``) and
    ``metadata`` what the provider answered to the handshake: ``ProviderMetadata`` for an
    integration, the final ``ProviderIdentity`` for other kinds.
    """

    services: LocalServices | None
    metadata: ProviderMetadata | ProviderIdentity

    def __init__(
        self,
        root: Path,
        target: str,
        kind: ProviderKind,
        *,
        mode: Mode,
        services: bool,
        name: str,
        config: Mapping[str, JSONInput] | None,
        env: Mapping[str, str] | None,
        data_dir: Path | None,
    ) -> None:
        if mode not in ("subprocess", "inprocess"):
            raise ValueError(f"mode must be 'subprocess' or 'inprocess', not {mode!r}")
        self.root = root
        self.target = target
        self.kind = kind
        self.mode: Mode = mode
        self.services = None
        self._channel: grpc.Channel | None = None
        self._process: ProviderProcess | None = None
        self._thread: _InProcessServer | None = None
        self._saved_env: dict[str, str | None] = {}
        try:
            service_env = self._start_services(data_dir) if services else {}
            provider_env = {**service_env, **dict(env or {})}
            if mode == "subprocess":
                self._process = ProviderProcess(root, target, kind, env=provider_env)
                self._process.wait_ready()
                self._channel = self._process.channel
            else:
                self._export_env(provider_env)
                self._thread = _InProcessServer(root, target, kind)
                self._channel = self._thread.connect()
            self.metadata = self._handshake(name, config)
            self._route(name)
        except BaseException:
            self.stop()
            raise

    def _start_services(self, data_dir: Path | None) -> dict[str, str]:
        from gestalt.local import LocalServices

        self.services = LocalServices(data_dir)
        env = self.services.start()
        self._export_env(env)
        return env

    def _route(self, name: str) -> None:
        # The local plugin invoker sends calls for ``name`` to this provider.
        invoker = self.services.plugin_invoker if self.services is not None else None
        if invoker is not None and self.kind is ProviderKind.INTEGRATION:
            invoker.route(name, self.socket)

    def _request(
        self,
        operation: str,
        params: Mapping[str, JSONInput] | None,
        token: str,
        context: Mapping[str, JSONInput] | None,
    ) -> ExecuteRequest:
        """The ``ExecuteRequest`` of :meth:`invoke` and :meth:`ainvoke`.

        Like the host, every call carries a fresh token for the local plugin invoker.
        """
        from google.protobuf import json_format, struct_pb2

        from gestalt.gen.v1 import plugin_pb2

        request = plugin_pb2.ExecuteRequest(operation=operation, token=token)
        if params:
            struct = struct_pb2.Struct()
            struct.update(dict(params))
            request.params.CopyFrom(struct)
        if context:
            json_format.ParseDict(dict(context), request.context)
        invoker = self.services.plugin_invoker if self.services is not None else None
        if invoker is not None:
            request.invocation_token = invoker.mint(context=request.context)
        return request

    def _export_env(self, env: Mapping[str, str]) -> None:
        for key, value in env.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _handshake(
        self, name: str, config: Mapping[str, JSONInput] | None
    ) -> ProviderMetadata | ProviderIdentity:
        from gestalt.gen.support import RPCError

        try:
            metadata: ProviderMetadata | ProviderIdentity = handshake(
                self.channel, self.kind, name, config
            )
        except RPCError as exc:
            output = self.output()
            raise LaunchError(
                f"the provider failed the start-up handshake ({exc})"
                + (f"; its output ends with:\n{output[-2000:]}" if output else "")
            ) from None
        return metadata

    @property
    def channel(self) -> grpc.Channel:
        """A ``grpc.Channel`` to the provider, open until :meth:`stop`."""
        if self._channel is None:
            raise RuntimeError(f"the provider {self.target} is stopped")
        return self._channel

    # -- calling ------------------------------------------------------------------------

    def invoke(
        self,
        operation: str,
        params: Mapping[str, JSONInput] | None = None,
        *,
        token: str = "",
        context: Mapping[str, JSONInput] | None = None,
        timeout: float = 30,
    ) -> InvokeResult:
        """Execute ``operation`` with ``params`` and return what the host would receive.

        ``context`` is an ``ExecuteRequest.context`` as a dict in protobuf JSON form, e.g.
        ``{"subject": {"id": "user:1"}, "access": {"role": "admin"}}``. An operation the
        provider does not have answers status 404; :attr:`InvokeResult.error` then names it
        and lists the operations that exist.
        """
        from gestalt.gen.v1 import plugin_clients

        client = plugin_clients.IntegrationProviderClient(self.channel)
        request = self._request(operation, params, token, context)
        return self._result(operation, client.execute(request, timeout=timeout))

    async def ainvoke(
        self,
        operation: str,
        params: Mapping[str, JSONInput] | None = None,
        *,
        token: str = "",
        context: Mapping[str, JSONInput] | None = None,
        timeout: float = 30,
    ) -> InvokeResult:
        """Async twin of :meth:`invoke`, over a ``grpc.aio`` channel of the running loop."""
        import grpc.aio

        from gestalt.gen.v1 import plugin_clients

        request = self._request(operation, params, token, context)
        async with grpc.aio.insecure_channel(f"unix:{self.socket}") as channel:
            client = plugin_clients.AsyncIntegrationProviderClient(channel)
            result = await client.execute(request, timeout=timeout)
        return self._result(operation, result)

    def _result(self, operation: str, result: OperationResult) -> InvokeResult:
        from gestalt._runtime.project import explain_unknown_operation

        try:
            body: JSONValue = json.loads(result.body)
        except ValueError:
            body = result.body
        error = explain_unknown_operation(operation, result.status, result.body, self.operations)
        if error is None and result.status >= 400:
            detail = body.get("error") if isinstance(body, dict) else None
            error = detail if isinstance(detail, str) else result.body
        return InvokeResult(result.status, body, result.body, error or "")

    def operations(self) -> list[str]:
        """The ids of the provider's operations, in the order it registered them.

        In-process they come from the served plugin; a subprocess provider's come from its
        static catalog (one more short-lived process).
        """
        if self._thread is not None:
            from gestalt._authoring.plugin import Plugin

            provider = self._thread.provider
            if isinstance(provider, Plugin):
                return [op["id"] for op in provider.catalog_dict()["operations"]]
        listed = self.catalog().get("operations")
        entries = listed if isinstance(listed, list) else []
        return [str(op["id"]) for op in entries if isinstance(op, dict) and "id" in op]

    def catalog(self) -> dict[str, Any]:
        """The static catalog the host would read, as a dict (integration plugins)."""
        import yaml

        from gestalt._runtime.project import export_catalog

        text = export_catalog(self.root, self.target)
        data: dict[str, Any] = yaml.safe_load(text)
        return data

    @property
    def socket(self) -> str:
        """Path of the provider's unix socket."""
        if self._process is not None:
            return str(self._process.socket)
        if self._thread is None:
            raise RuntimeError(f"the provider {self.target} is stopped")
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
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self.services is not None:
            self.services.stop()
            self.services = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def _exit(self, exc: BaseException | None) -> None:
        self.stop()


class _InProcessServer:
    """The provider's module imported here and served by the runtime's own server class."""

    def __init__(self, root: Path, target: str, kind: ProviderKind) -> None:
        from gestalt._runtime.process import LaunchSpec, RunningServer, resolve

        self.root = root.resolve()
        # A fresh import each time: module state from an earlier harness must not leak in.
        forget_modules(self.root)
        self.dir = Path(tempfile.mkdtemp(prefix="gstp-"))
        self.socket = self.dir / "plugin.sock"
        self.provider: object = resolve(LaunchSpec(target, kind, self.root))
        self.server = RunningServer(self.provider, kind, str(self.socket))

    def connect(self) -> grpc.Channel:
        import grpc

        channel = grpc.insecure_channel(f"unix:{self.socket}")
        grpc.channel_ready_future(channel).result(timeout=10)
        return channel

    def stop(self) -> None:
        self.server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        forget_modules(self.root)


def forget_modules(root: Path) -> None:
    """Drop the provider's own source modules so that the next import of it starts afresh.

    Those are the modules loaded from files under ``root``, except

    * what belongs to a Python environment, even one inside ``root`` (a ``.venv/`` next to the
      provider module is the usual layout): files under the running interpreter's prefixes or
      its site directories, under a ``site-packages`` or ``dist-packages`` folder, or in a
      folder tree with a ``pyvenv.cfg``;
    * gestalt itself, and pytest's test modules and ``conftest.py`` files.

    Forgetting grpc or protobuf would make the next start import them a second time into the
    same process, which breaks them for the rest of the test session.
    """
    root = root.resolve()
    # An environment that holds the provider folder itself says nothing about its modules.
    environments = [place for place in _environment_dirs() if not root.is_relative_to(place)]
    venv_dirs: dict[Path, bool] = {}
    folders: dict[str, Path] = {}
    for name, module in list(sys.modules.items()):
        if name == "gestalt" or name.startswith("gestalt."):
            continue
        path = _module_file(module, folders)
        if path is None or not path.is_relative_to(root) or _is_test_file(path):
            continue
        if any(path.is_relative_to(place) for place in environments):
            continue
        if _in_environment(path, root, venv_dirs):
            continue
        del sys.modules[name]


def _environment_dirs() -> list[Path]:
    import site
    import sysconfig

    places = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
    places.update(site.getsitepackages())
    places.add(site.getusersitepackages())
    places.update(sysconfig.get_paths().values())
    return [Path(place).resolve() for place in places if place]


def _module_file(module: ModuleType, folders: dict[str, Path]) -> Path | None:
    """The file a module was loaded from (the folder of a namespace package), its folder
    resolved once per call of :func:`forget_modules` (``folders``)."""
    location = getattr(module, "__file__", None)
    if not location:
        search = getattr(module, "__path__", None)
        location = next(iter(search), None) if search is not None else None
    if not isinstance(location, str):
        return None
    folder, name = os.path.split(location)
    resolved = folders.get(folder)
    if resolved is None:
        resolved = folders[folder] = Path(folder).resolve()
    return resolved / name


def _is_test_file(path: Path) -> bool:
    """pytest's default test file names, and ``conftest.py``."""
    name = path.name
    return name == "conftest.py" or (
        name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))
    )


def _in_environment(path: Path, root: Path, seen: dict[Path, bool]) -> bool:
    """Whether ``path`` lies in a virtual environment or site directory below ``root``."""
    relative = path.relative_to(root).parts
    if "site-packages" in relative or "dist-packages" in relative:
        return True
    for folder in path.parents:
        if folder == root:
            return False
        if folder not in seen:
            seen[folder] = (folder / "pyvenv.cfg").is_file()
        if seen[folder]:
            return True
    return False


class StartProvider(Protocol):
    """The type of :func:`start_provider` and of the ``gestalt_provider`` pytest fixture, which
    stops the providers it started after the test (annotate the test parameter with it)."""

    def __call__(
        self,
        root: str | os.PathLike[str],
        target: str | None = None,
        kind: ProviderKind | str | None = None,
        *,
        mode: Mode = "subprocess",
        services: bool = True,
        name: str = "test",
        config: Mapping[str, JSONInput] | None = None,
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
            from gestalt._runtime.project import load_spec

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


class _StartProvider(StartProvider):
    """The plain starter: nothing is stopped for the caller."""


# The signature and the code of ``start_provider`` are those of ``StartProvider.__call__``.
start_provider = _StartProvider().__call__
