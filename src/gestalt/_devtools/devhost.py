"""``gestalt dev`` and ``gestalt invoke``: a local stand-in for the Gestalt host.

The dev host starts the embedded Cache, IndexedDB and S3 services (``gestalt.local``), then the
provider exactly as the host launches it (``gestalt._runtime.launch``) with the services' sockets in
``GESTALT_CACHE_SOCKET``, ``GESTALT_INDEXEDDB_SOCKET`` and ``GESTALT_S3_SOCKET``, performs the
start-up handshake, and prints where everything listens and which operations exist. Then the
provider's output (stdout, stderr, its log records and their tracebacks) streams into the
terminal, each line prefixed with ``[NAME]``, and every call adds one line: operation, status,
duration (reported by the runtime, see ``gestalt._runtime.devcalls``).

While it runs, a state file ``ROOT/.gestalt/dev.json`` tells ``gestalt invoke`` where the
provider is, or that it is (re)starting, or why it failed to start. Sources and configuration
under ROOT (``pyproject.toml`` included, so a new ``[tool.gestalt]`` target is picked up) are
polled twice a second and a change restarts the provider (the services, and their data under
``ROOT/.gestalt/data``, stay up).

The local plugin invoker and authorization store run as well; the invoker routes the provider's
configured name to it (the dev host runs one provider, so a plugin can call only itself), and
``gestalt invoke`` sends the dev host's invocation token, kept in ``dev.json``, with each call.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import tomllib
import uuid
from pathlib import Path
from typing import Any

from gestalt._authoring.providers import ProviderKind
from gestalt._devtools.output import CommandError, Output, json_object
from gestalt._runtime.launch import START_TIMEOUT, LaunchError, ProviderProcess
from gestalt._runtime.project import ProjectError, explain_unknown_operation, load_spec

STATE_DIR = ".gestalt"
STATE_FILE = "dev.json"
POLL_SECONDS = 0.5


def source_stamp(root: Path) -> tuple[tuple[str, int], ...]:
    """Modification times of the project's Python sources and config, to detect edits."""
    stamps = []
    for path in sorted(root.rglob("*")):
        if STATE_DIR in path.parts or "__pycache__" in path.parts or ".venv" in path.parts:
            continue
        if path.suffix in {".py", ".toml", ".yaml", ".yml", ".json"} and path.is_file():
            stamps.append((str(path), path.stat().st_mtime_ns))
    return tuple(stamps)


class DevHost:
    """Embedded services plus one provider process, restartable.

    With ``out``, the provider's output lines and its call reports are printed there.
    """

    def __init__(
        self,
        root: Path,
        *,
        data_dir: Path | None = None,
        name: str | None = None,
        config: dict[str, Any] | None = None,
        with_services: bool = True,
        write_state: bool = True,
        out: Output | None = None,
    ) -> None:
        self.root = root.resolve()
        self.target, self.kind = load_spec(self.root)
        self.state_dir = self.root / STATE_DIR
        self.data_dir = (data_dir or self.state_dir / "data").resolve()
        self.name = name or self.root.name
        self.config = config or {}
        self.with_services = with_services
        self.write_state = write_state
        self.out = out
        self.services: Any = None
        self.service_env: dict[str, str] = {}
        #: Minted by the local plugin invoker when the services start; ``gestalt invoke``
        #: sends it with each Execute (found in ``dev.json``), as the host sends one per call.
        self.invocation_token = ""
        self.provider: ProviderProcess | None = None
        self.metadata: Any = None

    def start(self) -> None:
        """Start the services (once) and the provider, and write the state file."""
        self._write_state("starting")
        try:
            self._start()
        except (LaunchError, ProjectError) as exc:
            self._write_state("failed", str(exc))
            raise
        self._write_state("ready")

    def _start(self) -> None:
        if self.with_services and self.services is None:
            from gestalt.local import LocalServices

            services = LocalServices(self.data_dir)
            try:
                self.service_env = services.start()
            except (RuntimeError, OSError, ValueError) as exc:
                raise ProjectError(
                    f"cannot start the embedded services on {self.data_dir}: {exc}"
                ) from None
            self.services = services
            if services.plugin_invoker is not None:
                self.invocation_token = services.plugin_invoker.mint()
        # No bytecode caches: an edit within the same second as the last one must not be
        # served from a stale .pyc after a restart. Unbuffered: prints show up at once.
        env = {**self.service_env, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
        self.provider = ProviderProcess(
            self.root,
            self.target,
            self.kind,
            env=env,
            on_line=self._print_output if self.out is not None else None,
            on_call=self._print_call,
        )
        try:
            self.provider.wait_ready()
            self.metadata = self.provider.handshake(self.name, self.config)
        except LaunchError as exc:
            self._drop_provider()  # already stopped; its output is in ``exc``
            raise self._located(exc) from None
        # The local plugin invoker sends calls for this plugin's name to it (the dev host runs
        # one provider, so a plugin can call itself; other names are NOT_FOUND).
        invoker = self.services.plugin_invoker if self.services is not None else None
        if invoker is not None and self.kind is ProviderKind.INTEGRATION:
            invoker.route(self.name, self.provider.socket)

    def _located(self, exc: LaunchError) -> LaunchError:
        """``exc``, naming the file and key of the target when the target is what is wrong."""
        message = str(exc)
        if "did not resolve" not in message and "cannot import module" not in message:
            return exc
        path = self.root / "pyproject.toml"
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))["tool"]["gestalt"]
            key = next(
                k for k, v in table.items() if isinstance(v, str) and v.strip() == self.target
            )
        except (OSError, ValueError, KeyError, TypeError, StopIteration):
            return exc
        return LaunchError(f"{path}: tool.gestalt.{key}: {message}", exc.details)

    def _print_output(self, line: str) -> None:
        if self.out is not None:
            self.out.stream(f"{self.out.style(f'[{self.name}]', '2')} {line}")

    def _print_call(self, call: dict[str, Any]) -> None:
        if self.out is None:
            return
        status = str(call.get("status", "?"))
        ok = status == "OK" or (status.isdigit() and int(status) < 400)
        shown = self.out.style(status, "32" if ok else "31")
        self.out.stream(f"call {call.get('name', '?')} -> {shown} ({call.get('ms', 0):.1f} ms)")

    def restart(self) -> None:
        """Stop the provider and start it again with the same services.

        ``[tool.gestalt]`` is read again first, so an edited target or kind takes effect.
        """
        self._write_state("starting")
        self._drop_provider()
        try:
            self.target, self.kind = load_spec(self.root)
        except ProjectError as exc:
            self._write_state("failed", str(exc))
            raise
        self.start()

    def exited(self) -> LaunchError | None:
        """Why the provider stopped by itself, if it did (it is then cleaned up)."""
        provider = self.provider
        if provider is None or provider.proc.poll() is None:
            return None
        self._drop_provider()
        # Its last line need not be the cause here: the output is in the terminal already.
        error = LaunchError(f"the provider exited with status {provider.proc.returncode}")
        self._write_state("exited", str(error))
        return error

    def stop(self) -> None:
        """Stop the provider and the services, and remove our state file."""
        if running_pid(self.root) == os.getpid():
            (self.state_dir / STATE_FILE).unlink(missing_ok=True)
        self._drop_provider()
        if self.services is not None:
            self.services.stop()
            self.services = None

    def _drop_provider(self) -> None:
        """Clean up the provider process, if there is one, and forget it."""
        if self.provider is not None:
            self.provider.cleanup()
            self.provider = None

    def _write_state(self, status: str, error: str = "") -> None:
        """Say in ``dev.json`` what ``gestalt invoke`` finds: ``starting``, ``ready``,
        ``failed`` (to start) or ``exited`` (by itself), with the one-line ``error``."""
        if not self.write_state:
            return
        state: dict[str, Any] = {
            "pid": os.getpid(),
            "status": status,
            "kind": self.kind.value,
            "services": self.service_env,
        }
        if status == "ready" and self.provider is not None:
            state["provider_pid"] = self.provider.proc.pid
            state["socket"] = str(self.provider.socket)
            state["calls_dir"] = str(self.provider.calls_dir)
            state["invocation_token"] = self.invocation_token
        if error:
            state["error"] = error
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
        tmp.replace(path)

    def describe(self) -> dict[str, Any]:
        """Where everything listens and what the provider offers."""
        assert self.provider is not None
        info: dict[str, Any] = {
            "root": str(self.root),
            "target": self.target,
            "kind": self.kind.value,
            "provider_socket": str(self.provider.socket),
            "data_dir": str(self.data_dir),
            "services": dict(self.service_env),
        }
        if self.kind is ProviderKind.INTEGRATION:
            info["operations"] = operations(self.root)
        return info


def operations(root: Path) -> list[dict[str, Any]]:
    """The operations of the static catalog: id, method and title."""
    import yaml

    from gestalt._runtime.project import export_catalog

    catalog = yaml.safe_load(export_catalog(root))
    return [
        {"id": op.get("id"), "method": op.get("method"), "title": op.get("title", "")}
        for op in catalog.get("operations", [])
    ]


def run_dev(args: argparse.Namespace, out: Output) -> int:
    """``gestalt dev``: run until Ctrl-C (or SIGTERM), restarting on source changes."""
    config = json_object(args.config, "--config")
    host = DevHost(args.root, data_dir=args.data, name=args.name, config=config, out=out)
    other = running_pid(host.root)
    if other is not None:
        raise CommandError(f"gestalt dev is already running for {host.root} (pid {other})")
    stop = {"now": False}

    def on_signal(signum: int, frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        stamp = source_stamp(host.root)  # before starting: edits made meanwhile count
        try:
            host.start()
        except LaunchError as exc:
            raise CommandError(str(exc), exc.details) from None
        _announce(host, out)
        while not stop["now"]:
            time.sleep(POLL_SECONDS)
            crashed = host.exited()
            if crashed is not None:
                out.line(out.style(str(crashed), "31"))
                out.line("save a change to start it again")
            if args.no_reload:
                continue
            current = source_stamp(host.root)
            if current != stamp:
                stamp = current
                _reload(host, out)
    finally:
        host.stop()
        out.line("stopped")
    return 0


def _reload(host: DevHost, out: Output) -> None:
    """Restart the provider after an edit, saying what changed or why it failed."""
    out.line(out.style("change detected: restarting the provider", "33"))
    before = (host.target, host.kind)
    try:
        host.restart()
    except (LaunchError, ProjectError) as exc:
        out.line(out.style(f"restart failed: {exc}", "31"))
        out.line("fix the error and save again")
        return
    if (host.target, host.kind) != before:
        out.line(f"  target     {host.target} ({host.kind.value})")
    out.line(out.style("provider restarted", "32"))


def _announce(host: DevHost, out: Output) -> None:
    info = host.describe()
    if out.as_json:
        out.document(info)
        return
    out.line(out.style(f"gestalt dev: {info['target']} ({info['kind']})", "1"))
    out.line(f"  provider   unix:{info['provider_socket']}")
    services = sorted(info["services"].items())
    width = max((len(var) for var, _ in services), default=0)
    for var, target in services:
        out.line(f"  {var:<{width}} {target}")
    out.line(f"  data       {info['data_dir']}")
    for op in info.get("operations", []):
        title = f"  {op['title']}" if op.get("title") else ""
        out.line(f"  operation  {op['method']:<6} {op['id']}{title}")
    out.line("ready: call operations with `gestalt invoke OPERATION key=value`; Ctrl-C stops")


def _state(root: Path) -> dict[str, Any] | None:
    path = root.resolve() / STATE_DIR / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def running_pid(root: Path) -> int | None:
    """The pid of the live ``gestalt dev`` serving ``root``, if there is one."""
    from gestalt._runtime.process import process_gone

    state = _state(root)
    try:
        pid = int(state["pid"]) if state else 0
    except (KeyError, TypeError, ValueError):
        return None
    return pid if pid > 0 and not process_gone(pid) else None


def _dev_provider(root: Path) -> tuple[str, Path, str] | None:
    """The socket, call-log directory and invocation token of the provider a live
    ``gestalt dev`` runs for ``root``; None when no ``gestalt dev`` runs there.

    Waits while it (re)starts; a provider that failed to start is a ``CommandError``
    saying why, not a reason to start another one on the same data directory.
    """
    deadline = time.monotonic() + START_TIMEOUT + 15
    while True:
        state = _state(root)
        pid = running_pid(root)
        if state is None or pid is None:
            return None
        status = state.get("status")
        reason = state.get("error") or "unknown reason"
        if status == "failed":
            raise CommandError(f"the provider under gestalt dev failed to start: {reason}")
        if status == "exited":
            raise CommandError(f"the provider under gestalt dev stopped: {reason}")
        if status == "ready":
            socket = Path(str(state.get("socket", "")))
            try:
                os.kill(int(state["provider_pid"]), 0)
            except (OSError, KeyError, TypeError, ValueError):
                pass  # it just exited: gestalt dev notices within a poll and says why
            else:
                calls_dir = str(state.get("calls_dir") or "")
                if socket.is_socket() and calls_dir:
                    return str(socket), Path(calls_dir), str(state.get("invocation_token", ""))
        if time.monotonic() > deadline:
            raise CommandError(
                f"the provider under gestalt dev (pid {pid}) is not ready; see its terminal"
            )
        time.sleep(0.05)


def run_invoke(
    root: Path,
    operation: str,
    params: dict[str, Any],
    token: str,
    out: Output,
    *,
    debug: bool = False,
) -> int:
    """``gestalt invoke``: print status and body; exit status 1 for a status >= 400.

    With ``debug``, the provider's log records for this call (a handler's traceback, say)
    are printed on stderr; they never travel in the answer itself.
    """
    import grpc
    from google.protobuf import struct_pb2

    from gestalt._runtime.devcalls import CALL_ID_KEY
    from gestalt.gen.support import RPCError
    from gestalt.gen.v1 import plugin_clients, plugin_pb2

    running = _dev_provider(root)
    host: DevHost | None = None
    call_id = uuid.uuid4().hex
    try:
        if running is None:
            host = DevHost(root, write_state=False)
            if host.kind is not ProviderKind.INTEGRATION:
                raise CommandError(
                    f"{host.target} is a {host.kind.value} provider; invoke "
                    "calls operations of integration plugins"
                )
            try:
                host.start()
            except LaunchError as exc:
                raise CommandError(str(exc), exc.details) from None
            assert host.provider is not None
            running = str(host.provider.socket), host.provider.calls_dir, host.invocation_token
        socket, calls_dir, invocation_token = running
        request = plugin_pb2.ExecuteRequest(
            operation=operation, token=token, invocation_token=invocation_token
        )
        if params:
            struct = struct_pb2.Struct()
            struct.update(params)
            request.params.CopyFrom(struct)
        with grpc.insecure_channel(f"unix:{socket}") as channel:
            client = plugin_clients.IntegrationProviderClient(channel)
            try:
                result = client.execute(request, timeout=60, metadata=((CALL_ID_KEY, call_id),))
            except RPCError as exc:
                raise CommandError(f"the provider failed the call: {exc}") from None
        call_log = _take_call_log(calls_dir, call_id)
    finally:
        if host is not None:
            host.stop()
    try:
        body: Any = json.loads(result.body)
    except ValueError:
        body = result.body
    unknown = explain_unknown_operation(
        operation, result.status, result.body, lambda: [str(op["id"]) for op in operations(root)]
    )
    if out.as_json:
        document = {"status": result.status, "body": body}
        out.document(document if unknown is None else {**document, "error": unknown})
    else:
        ok = 200 <= result.status < 400
        out.line(out.style(f"status {result.status}", "32" if ok else "31"))
        out.line(json.dumps(body, indent=2, ensure_ascii=False))
        if unknown is not None:
            print(f"gestalt: error: {unknown}", file=sys.stderr, flush=True)
    if debug and call_log:
        print(f"the provider logged during this call:\n{call_log}", end="", file=sys.stderr)
    elif call_log and result.status >= 500:
        print(
            "gestalt: the provider logged what went wrong; `gestalt --debug invoke ...` prints it",
            file=sys.stderr,
        )
    return 0 if result.status < 400 else 1


def _take_call_log(calls_dir: Path, call_id: str) -> str:
    """The log records of call ``call_id`` (written before its answer), removed once read."""
    path = calls_dir / f"{call_id}.log"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    path.unlink(missing_ok=True)
    return text
