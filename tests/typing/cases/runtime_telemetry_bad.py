"""Wrong uses the type checker must report (each line marked with the expected error code)."""

from __future__ import annotations

from gestalt import PluginRuntimeProvider, RuntimeLogHost, telemetry
from gestalt.gen.v1.pluginruntime_mirrors import PluginRuntimeSession, PluginRuntimeSupport


class Wrong(PluginRuntimeProvider):
    def get_support(self) -> PluginRuntimeSession:  # E: override
        return PluginRuntimeSession()

    def get_session(self, session_id: int) -> PluginRuntimeSession:  # E: override
        return PluginRuntimeSession()


def calls(host: RuntimeLogHost) -> PluginRuntimeSupport:
    host.append_logs("s", [3])  # E: list-item
    telemetry.tool_execution(name="x")  # E: call-arg
    return host.append_logs("s", [])  # E: return-value
