"""The provider process: ``python -m gestalt._runtime ROOT TARGET [RUNTIME_KIND]``.

This is how the Gestalt host launches a Python provider (contract section 1). The runtime
imports ``TARGET`` (``module`` or ``module:attribute``) from ``ROOT``, resolves the provider for
the kind, and serves it over gRPC on ``GESTALT_PLUGIN_SOCKET`` until SIGTERM or SIGINT, or until
the host process named by ``GESTALT_PLUGIN_PARENT_PID`` is gone. With
``GESTALT_PLUGIN_WRITE_CATALOG`` set it writes an integration plugin's static catalog instead.

Serving model: one ``grpc.Server`` whose pool (``gestalt._runtime.pool``) runs plain handlers
directly on 4 threads, growing to ``GESTALT_MAX_WORKERS`` (default 32; the reference had 4,
quirk 23) while handlers block, and one long-lived event loop on which every ``async def``
handler runs (never a loop per call). Messages up to 64 MiB are accepted both ways (quirk 24).
On SIGTERM the server stops accepting calls, in-flight calls get the host's 2 s grace, then the
provider's ``close()`` (or a plugin's ``on_close`` hooks) runs once and the process exits 0
(quirk 22). The parent is polled every 0.5 s (quirk 21). Only under ``gestalt dev``, whose dev
host asks for it with an environment variable, is every call also reported to it
(``gestalt._runtime.devcalls``).

Beyond the reference: ``indexeddb`` is a supported kind (quirk 16); with only ``ROOT`` the
target and kind come from ``[tool.gestalt]`` in ``ROOT/pyproject.toml``; a stale unix socket is
removed only when it is a socket, anything else at the path is an error (quirk 29), and so are
a socket path too long for the platform (107 bytes on Linux) or in a missing directory; a bundled
``plugin_name`` is slugged (quirk 17). Configuration errors print one ``gestalt runtime:``
line on stderr and exit 1; an exception raised while importing the provider's own module
prints its traceback, since that is the author's code, except a syntax error, reported as the
one line ``gestalt runtime: FILE:LINE:COLUMN: SyntaxError: MESSAGE`` (the traceback would only
show the import machinery).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import logging
import os
import select
import signal
import socket
import stat
import sys
import traceback
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gestalt._authoring.catalog import slug
from gestalt._authoring.kinds import ProviderKind
from gestalt._authoring.plugin import WRITE_CATALOG_ENV, Plugin
from gestalt._runtime import collect_for_serving
from gestalt._runtime.pool import ElasticPool
from gestalt._tracing import tracing_wanted

if TYPE_CHECKING:  # paths are handled with os.path: pathlib costs milliseconds to import
    from pathlib import Path

USAGE = "usage: python -m gestalt._runtime ROOT MODULE[:ATTRIBUTE] [RUNTIME_KIND]"
SOCKET_ENV = "GESTALT_PLUGIN_SOCKET"
PARENT_PID_ENV = "GESTALT_PLUGIN_PARENT_PID"
WORKERS_ENV = "GESTALT_MAX_WORKERS"
#: ``gestalt._runtime.devcalls.EVENTS_FD_ENV``, named here so that serving need not import it.
DEV_EVENTS_ENV = "GESTALT_DEV_EVENTS_FD"
BUNDLED_CONFIG = "gestalt-runtime.json"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
SHUTDOWN_GRACE_SECONDS = 2.0
PARENT_POLL_SECONDS = 0.5
DEFAULT_WORKERS = 32
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"

logger = logging.getLogger("gestalt.runtime")


class RuntimeConfigError(Exception):
    """The launch cannot work as configured; the message says what to fix."""


class LaunchSpec:
    """What to serve: the target text, its kind, and where to import it from.

    A plain slotted class: a ``NamedTuple`` would cost about half a millisecond of start-up.
    """

    __slots__ = ("kind", "plugin_name", "root", "target")

    def __init__(
        self,
        target: str,
        kind: ProviderKind,
        root: str | os.PathLike[str] | None,
        plugin_name: str = "",
    ) -> None:
        self.target = target
        self.kind = kind
        self.root = root
        self.plugin_name = plugin_name


# -- arguments and configuration ----------------------------------------------------------


def bundle_root() -> str:
    """Where a bundled ``gestalt-runtime.json`` lives: the frozen bundle or the package dir."""
    frozen = getattr(sys, "_MEIPASS", None)
    return str(frozen) if frozen else os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def parse_args(argv: list[str]) -> LaunchSpec | None:
    """The launch spec for ``argv``, or None when only the usage line applies."""
    if len(argv) == 0:
        config = os.path.join(bundle_root(), BUNDLED_CONFIG)
        return _bundled(config) if os.path.isfile(config) else None
    if len(argv) == 1:
        pyproject = os.path.join(argv[0], "pyproject.toml")
        if not os.path.isfile(pyproject):
            return None
        from pathlib import Path

        return spec_from_pyproject(Path(argv[0]))
    if len(argv) in (2, 3):
        kind = ProviderKind.parse(argv[2] if len(argv) == 3 else None)
        return LaunchSpec(argv[1].strip(), kind, os.path.realpath(argv[0]))
    return None


def _bundled(path: str) -> LaunchSpec:
    import json  # only single-file builds read this file

    try:
        with open(path, encoding="utf-8") as config:
            data = json.loads(config.read())
    except (OSError, ValueError) as exc:
        raise RuntimeConfigError(
            f"{path}: cannot read the bundled runtime config ({exc})"
        ) from None
    if not isinstance(data, dict):
        raise RuntimeConfigError(f"{path}: expected a JSON object")
    target = data.get("target")
    if not isinstance(target, str) or not target.strip():
        raise RuntimeConfigError(f"{path} is missing target")
    name = data.get("plugin_name")
    kind = data.get("runtime_kind")
    return LaunchSpec(
        target.strip(),
        ProviderKind.parse(kind if isinstance(kind, str) else None),
        None,
        slug(name) if isinstance(name, str) and name.strip() else "",
    )


def spec_from_pyproject(root: Path) -> LaunchSpec:
    """Target and kind from ``[tool.gestalt]`` in ``ROOT/pyproject.toml``.

    The optional ``name`` key is the plugin name a release build embeds (slugged).
    """
    import tomllib  # only a launch with ROOT alone reads it

    path = root.resolve() / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RuntimeConfigError(f"{path}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise RuntimeConfigError(f"{path}: invalid TOML: {exc}") from None
    tool = data.get("tool")
    table = tool.get("gestalt") if isinstance(tool, dict) else None
    if not isinstance(table, dict):
        raise RuntimeConfigError(f"{path}: no [tool.gestalt] table")
    name = table.get("name", "")
    if not isinstance(name, str):
        raise RuntimeConfigError(f"{path}: tool.gestalt.name must be a string")
    for key, value in table.items():
        kind = ProviderKind.INTEGRATION if key == "provider" else None
        if kind is None:
            try:
                kind = ProviderKind.parse(key)
            except ValueError:
                continue
        if not isinstance(value, str) or not value.strip():
            raise RuntimeConfigError(f"{path}: tool.gestalt.{key} must be a non-empty string")
        try:
            split_target(value.strip())
        except RuntimeConfigError as exc:
            raise RuntimeConfigError(f"{path}: tool.gestalt.{key}: {exc}") from None
        plugin_name = slug(name) if name.strip() else ""
        return LaunchSpec(value.strip(), kind, root.resolve(), plugin_name)
    raise RuntimeConfigError(
        f"{path}: [tool.gestalt] has no provider key "
        f"(expected 'provider' or one of {', '.join(k.value for k in ProviderKind)})"
    )


def split_target(target: str) -> tuple[str, str | None]:
    """``"pkg.mod:attr"`` -> ``("pkg.mod", "attr")``, validating both parts."""
    module, sep, attr = target.partition(":")
    if not module or not all(part.isidentifier() for part in module.split(".")):
        raise RuntimeConfigError(
            f"target {target!r}: the module must be dot-separated Python identifiers"
        )
    if sep and not attr.isidentifier():
        raise RuntimeConfigError(f"target {target!r}: after ':' there must be a Python identifier")
    return module, (attr if sep else None)


# -- target resolution --------------------------------------------------------------------


class ProviderImportError(Exception):
    """Importing the provider's module raised; the traceback is the author's to read."""


def import_module(name: str, root: str | os.PathLike[str] | None) -> types.ModuleType:
    """Import the provider module with ``root`` first on ``sys.path``."""
    if root is not None and os.fspath(root) not in sys.path:
        sys.path.insert(0, os.fspath(root))
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            where = f" under {root}" if root is not None else ""
            raise RuntimeConfigError(f"cannot import module {name!r}{where}") from None
        raise ProviderImportError(name) from exc
    except Exception as exc:
        raise ProviderImportError(name) from exc


def resolve(spec: LaunchSpec) -> Any:
    """Import the target and return the object to serve for ``spec.kind``."""
    module_name, attr = split_target(spec.target)
    module = import_module(module_name, spec.root)
    if attr is not None:
        if not hasattr(module, attr):
            raise RuntimeConfigError(f"{spec.target} did not resolve: no attribute {attr!r}")
        obj = getattr(module, attr)
    elif spec.kind is ProviderKind.INTEGRATION:
        from gestalt._authoring.implicit import plugin_for_namespace

        obj = plugin_for_namespace(vars(module))
    else:
        candidates = (spec.kind.value, "provider", "plugin")
        obj = next((getattr(module, n) for n in candidates if getattr(module, n, None)), None)
        if obj is None:
            raise RuntimeConfigError(
                f"{spec.target} did not resolve: the module has none of the attributes "
                + ", ".join(repr(n) for n in candidates)
            )
    if isinstance(obj, Plugin):
        if spec.kind is not ProviderKind.INTEGRATION:
            # The reference served it as an integration anyway; the host, expecting a
            # ProviderLifecycle of this kind, would then fail with a vaguer error.
            raise RuntimeConfigError(
                f"{spec.target} is a gestalt.Plugin (an integration provider) but the runtime "
                f"kind is {spec.kind.value!r}"
            )
        if spec.plugin_name:
            obj.name = spec.plugin_name
        return obj
    # Not a plugin: only now the other kinds' base classes (a plugin never needs them).
    from gestalt._authoring.providers import KIND_BASES, PluginProviderAdapter

    if isinstance(obj, PluginProviderAdapter):
        return obj
    if isinstance(obj, type):
        raise RuntimeConfigError(
            f"{spec.target} is a class; expose an instance of it (e.g. provider = {obj.__name__}())"
        )
    base = KIND_BASES.get(spec.kind)
    if spec.kind is ProviderKind.RUNTIME:
        from gestalt._authoring.plugin_runtime import PluginRuntimeProvider

        base = PluginRuntimeProvider
    if base is not None and not isinstance(obj, base):
        raise RuntimeConfigError(
            f"{spec.target} is a {type(obj).__name__}, not a gestalt.{base.__name__}; "
            "subclass it or wrap the object in gestalt.PluginProviderAdapter"
        )
    if spec.kind is ProviderKind.INTEGRATION:
        raise RuntimeConfigError(
            f"{spec.target} is a {type(obj).__name__}; integration targets must be a "
            "gestalt.Plugin or a gestalt.PluginProviderAdapter"
        )
    if spec.kind is ProviderKind.TELEMETRY:
        raise RuntimeConfigError("telemetry providers cannot be served by the Python runtime")
    return obj


# -- serving ------------------------------------------------------------------------------


def listen_address(raw: str | None) -> tuple[str, str | None]:
    """The gRPC address for ``GESTALT_PLUGIN_SOCKET`` and the unix socket path, if any."""
    value = (raw or "").strip()
    if not value:
        raise RuntimeConfigError(f"{SOCKET_ENV} is required")
    if "://" not in value:
        return f"unix:{value}", value
    scheme, _, rest = value.partition("://")
    if scheme == "unix":
        if not rest:
            raise RuntimeConfigError(f"provider unix target {value!r} is missing a socket path")
        return f"unix:{rest}", rest
    if scheme == "tcp":
        if not rest:
            raise RuntimeConfigError(f"provider tcp target {value!r} is missing host:port")
        return rest, None
    raise RuntimeConfigError(f"unsupported provider socket target scheme {scheme!r}")


def check_socket_path(path: str) -> None:
    """Refuse a socket path the kernel cannot bind: too long, or in a missing directory."""
    from gestalt._runtime.socket_path import check_socket_directory, check_socket_path_length

    try:
        check_socket_path_length(path)
        check_socket_directory(path)
    except (ValueError, OSError) as exc:
        raise RuntimeConfigError(str(exc)) from None


def clear_stale_socket(path: str) -> None:
    """Remove a leftover socket at ``path``; refuse to touch anything else (quirk 29)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise RuntimeConfigError(f"{path} exists and is not a socket; refusing to replace it")
    os.unlink(path)


def worker_count() -> int:
    """The pool's most threads, for blocked plain handlers (``GESTALT_MAX_WORKERS``, default 32)."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if not raw:
        return DEFAULT_WORKERS
    if not raw.isdigit() or int(raw) < 1:
        raise RuntimeConfigError(f"{WORKERS_ENV} must be a positive integer, not {raw!r}")
    return int(raw)


def register_services(server: Any, target: Any, kind: ProviderKind) -> Callable[[], None]:
    """Register the services for ``target`` on ``server``; return its close callback.

    An integration plugin's servicer is imported here; every other kind is registered by
    :func:`gestalt._runtime.lifecycle.register_provider`, which imports that kind's modules
    only: each kind's messages cost a millisecond or more to load.
    """
    if isinstance(target, Plugin):
        from gestalt._runtime.servicers import Integration
        from gestalt.gen.v1 import plugin_servicers

        plugin_servicers.add_integration_provider_to_server(Integration(target), server)
        return target.run_close_hooks
    from gestalt._runtime.lifecycle import register_provider

    return register_provider(server, target, kind)


class RunningServer:
    """``target`` served on ``raw_socket`` by a ``grpc.Server`` until :meth:`stop`.

    Plain handlers run in the server's :class:`ElasticPool` (4 threads, up to
    ``GESTALT_MAX_WORKERS`` while calls block), each call directly in its worker thread;
    ``async def`` handlers run on the SDK's one
    long-lived event loop (``gestalt.gen.serving.background_loop``), whose default executor
    is the same pool.
    """

    def __init__(self, target: Any, kind: ProviderKind, raw_socket: str | None) -> None:
        import grpc

        from gestalt.gen.serving import background_loop

        address, self.socket_path = listen_address(raw_socket)
        if self.socket_path is not None:
            check_socket_path(self.socket_path)
            clear_stale_socket(self.socket_path)
        self.pool = ElasticPool(worker_count())
        loop = background_loop()
        loop.call_soon_threadsafe(loop.set_default_executor, self.pool)
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        chain: list[Any] = []
        if tracing_wanted():  # otherwise the telemetry package is not even imported
            from gestalt.telemetry import server_interceptors

            chain = server_interceptors()
        if os.environ.get(DEV_EVENTS_ENV):  # only the dev host sets it: skip the module otherwise
            from gestalt._runtime.devcalls import interceptors

            chain = [*chain, *interceptors(LOG_FORMAT)]
        self.server = grpc.server(self.pool, options=options, interceptors=chain)
        self._close = register_services(self.server, target, kind)
        try:
            port = self.server.add_insecure_port(address)
        except RuntimeError as exc:
            raise RuntimeConfigError(f"failed to bind to address {address}: {exc}") from None
        if port == 0:
            raise RuntimeConfigError(f"failed to bind to address {address}")
        self.server.start()

    def stop(self) -> None:
        """Stop accepting, drain in-flight calls (2 s grace), close the provider, clean up."""
        self.server.stop(SHUTDOWN_GRACE_SECONDS).wait()
        try:
            self._close()
        except Exception:
            logger.exception("closing the provider failed")
        if self.socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.socket_path)
        # The shared loop outlives this server (in-process tests start several): give it a
        # working executor back before this one shuts down.
        from gestalt.gen.serving import background_loop

        loop = background_loop()
        loop.call_soon_threadsafe(
            loop.set_default_executor, concurrent.futures.ThreadPoolExecutor()
        )
        self.pool.shutdown(wait=False, cancel_futures=True)


def wait_for_stop() -> None:
    """Block until SIGTERM or SIGINT arrives, or the host process that launched us is gone.

    The host is the process ``GESTALT_PLUGIN_PARENT_PID`` names (quirk 21), polled every
    ``PARENT_POLL_SECONDS``; not our parent, since a single-file executable's parent is its
    bootloader. The signal handlers only record the signal: a handler runs on this thread
    between two bytecodes, perhaps while this thread holds a lock (an ``Event``'s, say), so
    it must take none. Python's wake-up descriptor ends the wait at once.
    """
    raw = os.environ.get(PARENT_PID_ENV, "").strip()
    parent = int(raw) if raw.isdigit() else None
    caught: list[int] = []
    reader, writer = socket.socketpair()  # select() takes sockets on every platform
    writer.setblocking(False)
    previous = signal.set_wakeup_fd(writer.fileno())  # a signal writes its number there
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, _frame: caught.append(signum))
        poll = None if parent is None else PARENT_POLL_SECONDS  # no host to watch: no wake-ups
        while not caught:
            if select.select([reader], [], [], poll)[0]:
                reader.recv(64)
            if parent is not None and process_gone(parent):
                logger.warning("host process %d is gone; stopping", parent)
                return
    finally:
        signal.set_wakeup_fd(previous)
        reader.close()
        writer.close()


def process_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie awaiting its parent counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as status:
            state = status.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


def serve(target: Any, kind: ProviderKind) -> None:
    """Serve ``target`` on ``GESTALT_PLUGIN_SOCKET`` until SIGTERM/SIGINT or the host exits."""
    if tracing_wanted():  # otherwise there is nothing to configure (see gestalt.telemetry)
        from gestalt import telemetry

        name = os.environ.get("GESTALT_PLUGIN_NAME", "").strip()
        telemetry.configure_from_environment(
            service_name=f"gestalt-provider-{name}" if name else "gestalt-provider"
        )
    running = RunningServer(target, kind, os.environ.get(SOCKET_ENV))
    collect_for_serving()
    wait_for_stop()  # on this thread, which has nothing else to do: no thread of its own
    running.stop()
    loaded = sys.modules.get("gestalt.telemetry")  # what it installs needs it imported
    if loaded is not None:
        loaded.shutdown()


def export_catalog(target: Any, path: str) -> None:
    """Write an integration plugin's static catalog (``GESTALT_PLUGIN_WRITE_CATALOG``)."""
    if not isinstance(target, Plugin):
        raise RuntimeConfigError("catalog export is only supported for integration plugins")
    try:
        target.write_catalog(path)
    except (ValueError, OSError) as exc:
        raise RuntimeConfigError(f"cannot write the catalog to {path}: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    """Run the runtime with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    try:
        spec = parse_args(sys.argv[1:] if argv is None else argv)
        if spec is None:
            print(USAGE, file=sys.stderr)
            return 2
        target = resolve(spec)
        catalog_path = os.environ.get(WRITE_CATALOG_ENV, "").strip()
        if catalog_path:
            export_catalog(target, catalog_path)
            return 0
        serve(target, spec.kind)
    except (RuntimeConfigError, ValueError) as exc:
        print(f"gestalt runtime: {exc}", file=sys.stderr)
        return 1
    except ProviderImportError as exc:
        cause = exc.__cause__ or exc
        if isinstance(cause, SyntaxError):
            print(f"gestalt runtime: {syntax_error_line(cause)}", file=sys.stderr)
            return 1
        traceback.print_exception(cause, file=sys.stderr)
        reason = "".join(traceback.format_exception_only(cause)).strip().splitlines()[-1]
        frames = traceback.extract_tb(cause.__traceback__)
        where = f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""
        print(
            f"gestalt runtime: importing {exc} failed{where}: {reason} (traceback above)",
            file=sys.stderr,
        )
        return 1
    return 0


def syntax_error_line(exc: SyntaxError) -> str:
    """``FILE:LINE:COLUMN: SyntaxError: MESSAGE``, the form editors and terminals link."""
    where = ":".join(
        str(part) for part in (exc.filename or "<unknown>", exc.lineno, exc.offset) if part
    )
    return f"{where}: {type(exc).__name__}: {exc.msg}"
