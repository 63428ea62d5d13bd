"""A plugin runtime provider using the log host client, the log handler and telemetry.

``mypy --strict`` must accept it: sync and ``async def`` overrides, the
``Starter`` mixin, both log host clients and the telemetry helpers.
"""

from __future__ import annotations

import logging

from gestalt import (
    AsyncRuntimeLogHost,
    PluginRuntimeProvider,
    RuntimeLogHandler,
    RuntimeLogHost,
    Starter,
    telemetry,
)
from gestalt.gen.v1.pluginruntime_mirrors import (
    HostedPlugin,
    PluginRuntimeLogEntry,
    PluginRuntimeLogStream,
    PluginRuntimeSession,
    PluginRuntimeSupport,
    StartHostedPluginRequest,
    StartPluginRuntimeSessionRequest,
)


class Sandboxes(PluginRuntimeProvider, Starter):
    """Sessions in a dict."""

    def __init__(self) -> None:
        self.sessions: dict[str, PluginRuntimeSession] = {}
        self.logs = AsyncRuntimeLogHost(timeout=5)

    def start(self) -> None:
        logging.getLogger("sandboxes").info("started")

    def get_support(self) -> PluginRuntimeSupport:
        return PluginRuntimeSupport(can_host_plugins=True)

    async def start_session(
        self, request: StartPluginRuntimeSessionRequest
    ) -> PluginRuntimeSession:
        session = PluginRuntimeSession(id=str(len(self.sessions) + 1), state="ready")
        self.sessions[session.id] = session
        entry = PluginRuntimeLogEntry(stream=PluginRuntimeLogStream.RUNTIME, message="created")
        last: int = await self.logs.append_logs(session.id, [entry, "and ready"])
        session.metadata["log_seq"] = str(last)
        return session

    def get_session(self, session_id: str) -> PluginRuntimeSession:
        return self.sessions[session_id]

    async def list_sessions(self) -> list[PluginRuntimeSession]:
        return list(self.sessions.values())

    def stop_session(self, session_id: str) -> None:
        del self.sessions[session_id]

    def start_plugin(self, request: StartHostedPluginRequest) -> HostedPlugin:
        with telemetry.tool_execution(tool_name="start_plugin") as op:
            op.set_attribute("plugin", request.plugin_name)
            return HostedPlugin(id="p1", session_id=request.session_id, dial_target="tcp://x:1")


def ship(session_id: str) -> int:
    handler = RuntimeLogHandler(session_id, batch_size=50, max_message_bytes=4096)
    logging.getLogger("x").addHandler(handler)
    handler.close()
    with RuntimeLogHost() as host:
        return host.append_logs(session_id, ["line"]) + handler.dropped


def model_call(response: dict[str, object]) -> None:
    telemetry.configure_from_environment(service_name="svc")
    with telemetry.model_operation(provider_name="openai", request_model="gpt") as op:
        telemetry.record_openai_usage(op, response)
        op.record_usage(input_tokens=1, output_tokens=2)
    with telemetry.agent_invocation(agent_name="a", session_id="s", turn_id="t", model="m"):
        pass
    telemetry.shutdown()


runtime = Sandboxes()
