"""Plugin runtime providers for the runtime tests.

``runtime`` hosts plugins as local subprocesses: a session is a temporary directory, a bound
host service becomes an environment variable of the plugins started later in that session,
and ``start_plugin`` really launches the command with ``GESTALT_PLUGIN_SOCKET`` pointing into
the session directory. With ``GESTALT_RUNTIME_LOG_SOCKET`` set, what happens in a session is
logged through a ``RuntimeLogHandler`` to the host's log service.

``async_runtime`` implements two methods as coroutines and leaves the rest out.
``legacy_runtime`` is written the published SDK's way, with RPC-named methods taking the raw
request and the servicer context.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gestalt import ENV_RUNTIME_LOG_SOCKET, PluginRuntimeProvider, RuntimeLogHandler, Starter
from gestalt.gen.v1 import pluginruntime_pb2
from gestalt.gen.v1.pluginruntime_mirrors import (
    BindPluginRuntimeHostServiceRequest,
    HostedPlugin,
    PluginRuntimeEgressMode,
    PluginRuntimeHostServiceAccess,
    PluginRuntimeHostServiceBinding,
    PluginRuntimeSession,
    PluginRuntimeSessionLifecycle,
    PluginRuntimeSupport,
    StartHostedPluginRequest,
    StartPluginRuntimeSessionRequest,
)


@dataclass
class _Session:
    record: PluginRuntimeSession
    directory: Path
    env: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    log: logging.Logger | None = None


class SubprocessRuntime(PluginRuntimeProvider, Starter):
    """Sessions are directories, plugins are child processes."""

    def __init__(self) -> None:
        self.sessions: dict[str, _Session] = {}
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.started = False

    def start(self) -> None:
        self.started = True

    def get_support(self) -> PluginRuntimeSupport:
        return PluginRuntimeSupport(
            can_host_plugins=self.started,
            host_service_access=PluginRuntimeHostServiceAccess.DIRECT,
            egress_mode=PluginRuntimeEgressMode.NONE,
        )

    def start_session(self, request: StartPluginRuntimeSessionRequest) -> PluginRuntimeSession:
        if not request.plugin_name:
            raise ValueError("plugin_name is required")
        with self.lock:
            session_id = f"s{next(self.ids)}"
        record = PluginRuntimeSession(
            id=session_id,
            state="ready",
            metadata=dict(request.metadata, plugin=request.plugin_name),
            lifecycle=PluginRuntimeSessionLifecycle(
                started_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
            ),
        )
        directory = Path(tempfile.mkdtemp(prefix="gstrt-"))
        session = _Session(record, directory)
        if os.environ.get(ENV_RUNTIME_LOG_SOCKET):
            session.log = logging.getLogger(f"runtime.{session_id}")
            session.log.addHandler(RuntimeLogHandler(session_id, flush_interval=0.05))
            session.log.setLevel(logging.INFO)
            session.log.info("session for %s is ready", request.plugin_name)
        with self.lock:
            self.sessions[session_id] = session
        return record

    def get_session(self, session_id: str) -> PluginRuntimeSession:
        with self.lock:
            return self.sessions[session_id].record

    def list_sessions(self) -> list[PluginRuntimeSession]:
        with self.lock:
            return [s.record for s in self.sessions.values()]

    def stop_session(self, session_id: str) -> None:
        with self.lock:
            session = self.sessions.pop(session_id)
        for process in session.processes:
            process.terminate()
            process.wait(10)
        shutil.rmtree(session.directory, ignore_errors=True)
        if session.log is not None:
            session.log.info("session stopped")
            for handler in list(session.log.handlers):
                session.log.removeHandler(handler)
                handler.close()  # sends what is still queued

    def bind_host_service(
        self, request: BindPluginRuntimeHostServiceRequest
    ) -> PluginRuntimeHostServiceBinding:
        with self.lock:
            session = self.sessions[request.session_id]
            dial = request.relay.dial_target if request.relay else ""
            session.env[request.env_var] = dial
            binding_id = f"b{len(session.env)}"
        return PluginRuntimeHostServiceBinding(
            id=binding_id,
            session_id=request.session_id,
            env_var=request.env_var,
            relay=request.relay,
        )

    def start_plugin(self, request: StartHostedPluginRequest) -> HostedPlugin:
        with self.lock:
            session = self.sessions[request.session_id]
            index = len(session.processes) + 1
        socket = session.directory / f"plugin-{index}.sock"
        env = {"PATH": os.environ.get("PATH", ""), **session.env, **request.env}
        env["GESTALT_PLUGIN_SOCKET"] = str(socket)
        process = subprocess.Popen([request.command, *request.args], env=env)
        if session.log is not None:
            session.log.info("started %s as pid %d", request.plugin_name, process.pid)
        with self.lock:
            session.processes.append(process)
        return HostedPlugin(
            id=f"{request.session_id}-p{index}",
            session_id=request.session_id,
            plugin_name=request.plugin_name,
            dial_target=f"unix://{socket}",
        )

    def close(self) -> None:
        for session_id in list(self.sessions):
            self.stop_session(session_id)


class AsyncRuntime(PluginRuntimeProvider):
    """Two coroutine methods; everything else is left to the base class."""

    async def get_support(self) -> PluginRuntimeSupport:
        await asyncio.sleep(0)
        return PluginRuntimeSupport(can_host_plugins=False)

    async def get_session(self, session_id: str) -> PluginRuntimeSession:
        await asyncio.sleep(0)
        if session_id == "boom":
            raise RuntimeError("secret internal detail")
        if session_id == "wrong":
            return "not a session"  # type: ignore[return-value]
        raise KeyError(session_id)


class LegacyRuntime(PluginRuntimeProvider):
    """Published-SDK style: RPC-named methods with the raw request and the context."""

    def GetSupport(self, request: Any, context: Any) -> pluginruntime_pb2.PluginRuntimeSupport:
        return pluginruntime_pb2.PluginRuntimeSupport(can_host_plugins=True)

    def ListSessions(
        self, request: Any, context: Any
    ) -> pluginruntime_pb2.ListPluginRuntimeSessionsResponse:
        session = pluginruntime_pb2.PluginRuntimeSession(id="legacy", state="running")
        return pluginruntime_pb2.ListPluginRuntimeSessionsResponse(sessions=[session])


runtime = SubprocessRuntime()
async_runtime = AsyncRuntime()
legacy_runtime = LegacyRuntime()
