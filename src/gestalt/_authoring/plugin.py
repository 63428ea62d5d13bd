"""``Plugin``: the operation registry, its hooks, and the entry points the runtime calls.

The gRPC runtime (``gestalt._runtime.process``) only translates messages; every decision lives here:

* ``execute`` / ``execute_async`` decode parameters, call the handler and map the outcome to an
  ``OperationResult`` (contract 3.4). Nothing raises: an unknown operation is a 404, a bad
  parameter a 400 naming the field, ``Error(status, message)`` its status, and any other failure
  (handler exception, unencodable result, status outside 100-599 - quirk 7) a 500 with a
  generic body while the details go to ``logging.getLogger(__name__)``.
* Hook entry points (``configure_provider``, ``catalog_for_request``, ``post_connect_metadata``,
  ``resolve_http_subject`` and their ``*_async`` twins) raise ``HookError`` when a hook fails;
  its text is safe to send to the host. Session catalogs are converted and validated (quirk 12,
  ``session_catalog.py``), post-connect metadata must be ``dict[str, str]`` (quirk 14). The
  hook machinery (``hooks.py``) is imported only once the plugin has a hook.
* Async handlers: ``execute_async`` awaits them on the caller's loop and runs synchronous
  handlers with ``asyncio.to_thread`` (the loop's default executor sets the concurrency);
  ``execute`` runs sync handlers inline and async ones on one shared loop (``aio.py``),
  never a fresh loop per call (quirk 23).

Module functions named ``configure``, ``session_catalog``, ``post_connect`` and
``resolve_http_subject`` are picked up as hooks whenever the plugin knows its module, which is
always: ``Plugin(...)`` records the module that created it (quirk 28: the reference found them
only for some target forms). The last three must be defined in that module, not imported.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
import marshal
import os
import sys
from collections.abc import Callable, Mapping
from typing import (
    TYPE_CHECKING,
    Any,
    Protocol,
    TypeVar,
    overload,
    runtime_checkable,
)

from gestalt._authoring.aio import run_sync
from gestalt._authoring.callers import caller_module
from gestalt._authoring.catalog import CatalogError, slug, write_yaml
from gestalt._authoring.decode import DecodeError
from gestalt._authoring.encode import dumps
from gestalt._authoring.operation import DEFAULT_OPERATION_METHOD, Operation, build_operation
from gestalt._authoring.response import Error, HookError, Response
from gestalt._authoring.serving import serve

if TYPE_CHECKING:
    from pathlib import Path

    from gestalt._authoring.hook_inputs import ConnectedToken, HTTPSubjectRequest
    from gestalt._authoring.hooks import Hook
    from gestalt._authoring.request import Request, Subject
    from gestalt.gen.v1.plugin_pb2 import Catalog, OperationResult

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

WRITE_CATALOG_ENV = "GESTALT_PLUGIN_WRITE_CATALOG"

#: The module function discovered as each kind of hook.
_HOOK_FUNCTIONS = {
    "configure": "configure",
    "session_catalog": "session_catalog",
    "post_connect": "post_connect",
    "http_subject": "resolve_http_subject",
}

_UNKNOWN_OPERATION = '{"error":"unknown operation"}'
_INTERNAL_ERROR = '{"error":"internal error"}'


class _Reply:
    """An outcome decided before or after the handler: an HTTP status and a JSON body."""

    __slots__ = ("body", "status")

    def __init__(self, status: int, body: str) -> None:
        self.status = status
        self.body = body

    def message(self) -> OperationResult:
        result: OperationResult = _operation_result()(status=self.status, body=self.body)
        return result


class _Call:
    """A handler ready to call: the operation and its decoded arguments."""

    __slots__ = ("args", "operation")

    def __init__(self, operation: Operation, args: tuple[Any, ...]) -> None:
        self.operation = operation
        self.args = args


_result_type: Any = None


def _operation_result() -> Any:
    """The ``OperationResult`` message class, imported on first use (it loads the pb2 code)."""
    global _result_type
    if _result_type is None:
        from gestalt.gen.v1.plugin_pb2 import OperationResult

        _result_type = OperationResult
    return _result_type


#: Results of these exact types are never awaitable; anything else is checked.
_PLAIN_RESULTS = frozenset({dict, list, str, int, float, bool, type(None), tuple})


def _awaitable(value: Any) -> bool:
    return type(value) not in _PLAIN_RESULTS and inspect.isawaitable(value)


class Plugin:
    """An integration plugin: a named registry of operations and optional hooks.

    ::

        plugin = Plugin("search")

        @plugin.operation(title="Search")
        def search(params: SearchInput) -> SearchOutput: ...

    ``name`` is slugged (``"My Plugin!"`` -> ``My-Plugin``), also when reassigned later.
    ``module_name`` is the module whose ``configure``, ``session_catalog``, ``post_connect`` and
    ``resolve_http_subject`` functions become hooks; it defaults to the module creating the
    plugin.
    """

    def __init__(self, name: str, *, module_name: str | None = None) -> None:
        self._name = slug(name)
        self._module_name = module_name if module_name is not None else caller_module()
        self._namespace: dict[str, Any] | None = None
        self._operations: dict[str, Operation] = {}
        self._hooks: dict[str, Hook] = {}
        self._discovered: dict[str, Hook] = {}
        self._close_hooks: list[Callable[[], Any]] = []
        # The static catalog as marshal bytes, with the (name, operation count) it was built
        # for: operations are only ever added and the name only reassigned, so a changed key
        # is exactly a changed catalog.
        self._catalog: tuple[tuple[str, int], bytes] | None = None

    def __repr__(self) -> str:
        return f"Plugin({self._name!r}, operations={list(self._operations)!r})"

    @property
    def name(self) -> str:
        """The plugin's name as written to the catalog; assignments are slugged."""
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = slug(value)

    @classmethod
    def from_manifest(cls, path: str | Path, *, base_dir: Path | None = None) -> Plugin:
        """Create a plugin named after a provider manifest.

        The name is the last ``/`` segment of the manifest's ``source`` without its
        ``@version``, else its ``displayName`` (or ``display_name``), else the manifest's
        directory name, slugged. ``path`` may be the manifest file or its directory; relative
        paths are resolved against ``base_dir`` or the working directory.
        """
        from gestalt._authoring.manifest import name_from_manifest

        return cls(name_from_manifest(path, base_dir))

    # --- registration ----------------------------------------------------------------------

    @overload
    def operation(
        self,
        func: F,
        /,
        *,
        id: str | None = None,
        method: str = DEFAULT_OPERATION_METHOD,
        title: str = "",
        description: str = "",
        allowed_roles: list[str] | None = None,
        tags: list[str] | None = None,
        read_only: bool = False,
        visible: bool | None = None,
    ) -> F: ...

    @overload
    def operation(
        self,
        func: None = None,
        /,
        *,
        id: str | None = None,
        method: str = DEFAULT_OPERATION_METHOD,
        title: str = "",
        description: str = "",
        allowed_roles: list[str] | None = None,
        tags: list[str] | None = None,
        read_only: bool = False,
        visible: bool | None = None,
    ) -> Callable[[F], F]: ...

    def operation(
        self,
        func: F | None = None,
        /,
        *,
        id: str | None = None,
        method: str = DEFAULT_OPERATION_METHOD,
        title: str = "",
        description: str = "",
        allowed_roles: list[str] | None = None,
        tags: list[str] | None = None,
        read_only: bool = False,
        visible: bool | None = None,
    ) -> F | Callable[[F], F]:
        """Register an operation handler; use bare (``@plugin.operation``) or with options.

        ``id`` defaults to the function name and must match the host's id syntax; ``method``
        is upper-cased; ``title`` and ``description`` are trimmed; ``allowed_roles`` are
        trimmed and de-duplicated. Invalid registrations raise ``ValueError`` / ``TypeError``
        at import time.

        The module-level ``@operation`` registers on the calling module's implicit plugin: the
        module's ``plugin`` attribute when it is a ``Plugin``, otherwise one created and stored
        there, named from a ``manifest.yaml`` beside the module or else after its directory.
        """

        plugin = self._registry()

        def register(handler: F) -> F:
            op = build_operation(
                handler,
                id=id,
                method=method,
                title=title,
                description=description,
                allowed_roles=allowed_roles,
                tags=tags,
                read_only=read_only,
                visible=visible,
            )
            if op.id in plugin._operations:
                raise ValueError(f"duplicate operation id {op.id!r} in plugin {plugin._name!r}")
            plugin._operations[op.id] = op
            return handler

        return register if func is None else register(func)

    def _registry(self) -> Plugin:
        """The plugin ``operation`` registers on: this one (the module-level form differs)."""
        return self

    def configure(self, func: F) -> F:
        """Register the hook called with ``(name, config)`` when the host starts the provider."""
        return self._register_hook("configure", func)

    def session_catalog(self, func: F) -> F:
        """Register a hook returning a per-request catalog; it may take the ``Request``."""
        return self._register_hook("session_catalog", func)

    def post_connect(self, func: F) -> F:
        """Register a hook returning extra metadata to store after a connection is made."""
        return self._register_hook("post_connect", func)

    def http_subject(self, func: F) -> F:
        """Register a hook mapping a hosted HTTP request to a ``Subject`` (or rejecting it)."""
        return self._register_hook("http_subject", func)

    def on_close(self, func: F) -> F:
        """Register a no-argument function the runtime calls once at shutdown.

        It runs after in-flight calls have drained (or the 2 s grace has passed); async
        functions are awaited. Use it to close clients and pools the plugin opened.
        """
        if not callable(func):
            raise TypeError(f"close hook {func!r} must be callable")
        self._close_hooks.append(func)
        return func

    def run_close_hooks(self) -> None:
        """Call the ``on_close`` hooks in registration order, logging (not raising) failures."""
        for func in self._close_hooks:
            try:
                value = func()
                if inspect.isawaitable(value):
                    run_sync(value)
            except Exception:
                logger.exception("close hook %r of plugin %r failed", func, self._name)

    def _attach_module(self, namespace: dict[str, Any]) -> None:
        """Remember the namespace of the module whose functions may become hooks."""
        if self._namespace is None:
            self._namespace = namespace

    def _register_hook(self, kind: str, func: F) -> F:
        from gestalt._authoring.hooks import check_hook

        if kind in self._hooks:
            raise ValueError(f"plugin {self._name!r} already has a {kind} hook")
        self._hooks[kind] = check_hook(kind, func)
        return func

    # --- capabilities ----------------------------------------------------------------------

    def supports_session_catalog(self) -> bool:
        """Report whether a session-catalog hook is registered or discovered."""
        return self._hook("session_catalog") is not None

    def supports_post_connect(self) -> bool:
        """Report whether a post-connect hook is registered or discovered."""
        return self._hook("post_connect") is not None

    def supports_http_subject(self) -> bool:
        """Report whether an HTTP-subject hook is registered or discovered."""
        return self._hook("http_subject") is not None

    def _hook(self, kind: str) -> Hook | None:
        explicit = self._hooks.get(kind)
        if explicit is not None:
            return explicit
        namespace = self._module_namespace()
        if namespace is None:
            return None
        func = namespace.get(_HOOK_FUNCTIONS[kind])
        if not callable(func) or isinstance(func, type):
            return None
        if kind != "configure" and getattr(func, "__module__", None) != namespace.get("__name__"):
            return None
        cached = self._discovered.get(kind)
        if cached is None or cached.func is not func:
            from gestalt._authoring.hooks import check_hook

            cached = self._discovered[kind] = check_hook(kind, func)
        return cached

    def _module_namespace(self) -> dict[str, Any] | None:
        if self._namespace is not None:
            return self._namespace
        module = sys.modules.get(self._module_name) if self._module_name else None
        return vars(module) if module is not None else None

    # --- catalog ---------------------------------------------------------------------------

    def catalog_dict(self) -> dict[str, Any]:
        """Return the static catalog as plain data (a fresh copy on every call).

        The catalog is built once and kept serialised; later calls only unpack a new copy,
        until an operation is registered or the plugin renamed.
        """
        key = (self._name, len(self._operations))
        if self._catalog is None or self._catalog[0] != key:
            catalog = {
                "name": self._name,
                "operations": [op.catalog_entry() for op in self._operations.values()],
            }
            try:
                self._catalog = (key, marshal.dumps(catalog))
            except ValueError:  # a value marshal cannot write (to_jsonable makes none)
                fresh: dict[str, Any] = copy.deepcopy(catalog)
                return fresh
        unpacked: dict[str, Any] = marshal.loads(self._catalog[1])
        return unpacked

    def write_catalog(self, path: str | Path) -> None:
        """Write the static catalog as YAML to ``path``, creating parent directories.

        Raises ``ValueError`` when no operation is registered: the host rejects such a
        catalog.
        """
        if not self._operations:
            raise ValueError(
                f"plugin {self._name!r} has no operations; the host rejects a catalog without "
                "operations (register one with @operation)"
            )
        write_yaml(self.catalog_dict(), path)

    # --- execution -------------------------------------------------------------------------

    def execute(
        self, operation: str, params: Mapping[str, Any] | None, request: Request
    ) -> OperationResult:
        """Run ``operation`` with ``params`` and map the outcome to an ``OperationResult``.

        Never raises for handler problems (see the module docstring). Async handlers run on
        the SDK's shared event loop; prefer ``execute_async`` when you own a loop.
        """
        return self._execute(operation, params, lambda: request)

    def _execute(
        self, operation: str, params: Mapping[str, Any] | None, request: Callable[[], Request]
    ) -> OperationResult:
        """``execute``, calling ``request`` for the ``Request`` only if the handler takes one
        (the runtime's entry point: it passes a function that builds it from the message)."""
        step = self._start(operation, params, request)
        if isinstance(step, _Reply):
            return step.message()
        try:
            value = step.operation.handler(*step.args)
            if _awaitable(value):
                value = run_sync(value)
        except Exception as exc:
            return _failure(step.operation, exc).message()
        return _success(step.operation, value).message()

    async def execute_async(
        self, operation: str, params: Mapping[str, Any] | None, request: Request
    ) -> OperationResult:
        """Like ``execute``, awaiting async handlers on the running loop.

        Synchronous handlers run in the loop's default executor (``asyncio.to_thread``).
        """
        step = self._start(operation, params, lambda: request)
        if isinstance(step, _Reply):
            return step.message()
        op = step.operation
        try:
            if op.is_async:
                value = await op.handler(*step.args)
            else:
                value = await asyncio.to_thread(op.handler, *step.args)
            if _awaitable(value):
                value = await value
        except Exception as exc:
            return _failure(op, exc).message()
        return _success(op, value).message()

    def _start(
        self, operation: str, params: Mapping[str, Any] | None, request: Callable[[], Request]
    ) -> _Call | _Reply:
        op = self._operations.get(operation)
        if op is None:
            return _Reply(404, _UNKNOWN_OPERATION)
        try:
            return _Call(op, op.arguments(params or {}, request))
        except DecodeError as exc:
            return _Reply(400, dumps({"error": str(exc)}))
        except Exception as exc:  # e.g. Error raised by a model's __post_init__
            return _failure(op, exc)

    # --- hooks -----------------------------------------------------------------------------

    def configure_provider(self, name: str, config: dict[str, Any]) -> None:
        """Call the configure hook, if any, with the host's provider name and config."""
        hook = self._hook("configure")
        if hook is not None:
            hook.call((name, dict(config)))

    async def configure_provider_async(self, name: str, config: dict[str, Any]) -> None:
        """Async twin of ``configure_provider``."""
        hook = self._hook("configure")
        if hook is not None:
            await hook.acall((name, dict(config)))

    def catalog_for_request(self, request: Request) -> Catalog | None:
        """Return the validated per-request catalog, or ``None`` without a hook or result."""
        hook = self._hook("session_catalog")
        if hook is None:
            return None
        return self._session_catalog(hook.call((request,)))

    async def catalog_for_request_async(self, request: Request) -> Catalog | None:
        """Async twin of ``catalog_for_request``."""
        hook = self._hook("session_catalog")
        if hook is None:
            return None
        return self._session_catalog(await hook.acall((request,)))

    def post_connect_metadata(self, token: ConnectedToken) -> dict[str, str] | None:
        """Return the metadata the post-connect hook wants stored, or ``None``."""
        hook = self._hook("post_connect")
        if hook is None:
            return None
        metadata: dict[str, str] | None = hook.call((token,))
        return metadata

    async def post_connect_metadata_async(self, token: ConnectedToken) -> dict[str, str] | None:
        """Async twin of ``post_connect_metadata``."""
        hook = self._hook("post_connect")
        if hook is None:
            return None
        metadata: dict[str, str] | None = await hook.acall((token,))
        return metadata

    def resolve_http_subject(self, request: HTTPSubjectRequest, context: Request) -> Subject | None:
        """Return the subject for a hosted HTTP request, or ``None`` for "no opinion".

        A hook rejecting the request raises ``HTTPSubjectResolutionError``, which propagates.
        """
        hook = self._hook("http_subject")
        if hook is None:
            return None
        subject: Subject | None = hook.call((request, context))
        return subject

    async def resolve_http_subject_async(
        self, request: HTTPSubjectRequest, context: Request
    ) -> Subject | None:
        """Async twin of ``resolve_http_subject``."""
        hook = self._hook("http_subject")
        if hook is None:
            return None
        subject: Subject | None = await hook.acall((request, context))
        return subject

    def _session_catalog(self, value: Any) -> Catalog | None:
        from gestalt._authoring.session_catalog import session_catalog_message

        try:
            return session_catalog_message(value, default_name=self._name)
        except CatalogError as exc:
            logger.error("session catalog hook of plugin %r returned %s", self._name, exc)
            raise HookError("session catalog", str(exc)) from None

    # --- serving ---------------------------------------------------------------------------

    def serve(self) -> None:
        """Serve this plugin over gRPC until the host stops it.

        When ``GESTALT_PLUGIN_WRITE_CATALOG`` names a file, write the catalog there and return
        instead, exactly as the runtime does when the host launches the provider.
        """
        target = os.environ.get(WRITE_CATALOG_ENV, "").strip()
        if target:
            self.write_catalog(target)
            return
        from gestalt._authoring.kinds import ProviderKind  # the runtime loads it anyway

        serve(self, ProviderKind.INTEGRATION)


# --- result mapping ------------------------------------------------------------------------


def _checked_status(status: Any) -> int | None:
    if status is None:
        return 200
    if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
        return int(status)
    return None


def _failure(op: Operation, exc: Exception) -> _Reply:
    if isinstance(exc, Error):
        status = _checked_status(exc.status)
        if status is not None:
            return _Reply(status, dumps({"error": str(exc.message)}))
        logger.error("operation %r raised Error with invalid HTTP status %r", op.id, exc.status)
        return _Reply(500, _INTERNAL_ERROR)
    logger.error("operation %r failed", op.id, exc_info=exc)
    return _Reply(500, _INTERNAL_ERROR)


def _success(op: Operation, value: Any) -> _Reply:
    status = 200
    if isinstance(value, Response):
        checked = _checked_status(value.status)
        if checked is None:
            logger.error("operation %r returned invalid HTTP status %r", op.id, value.status)
            return _Reply(500, _INTERNAL_ERROR)
        status, value = checked, value.body
    try:
        return _Reply(status, dumps(value))
    except Exception as exc:
        logger.error("operation %r returned a result that is not JSON-encodable: %s", op.id, exc)
        return _Reply(500, _INTERNAL_ERROR)


@runtime_checkable
class SessionCatalogProvider(Protocol):
    """Anything that can produce a catalog for one request (``Plugin`` is one)."""

    def catalog_for_request(self, request: Request) -> Catalog | dict[str, Any] | None:
        """Return the catalog for ``request``, or ``None`` when there is none."""
        ...
