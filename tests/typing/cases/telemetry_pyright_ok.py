# pyright: strict
"""Telemetry helpers, the log handler and the ``Starter`` mixin under pyright strict."""

from __future__ import annotations

import logging
from typing import Any

from gestalt import RuntimeLogHandler, Starter, telemetry


class Worker(Starter):
    """Starts a background job."""

    def __init__(self) -> None:
        self.started = False

    def start(self) -> None:
        self.started = True


def ship(session_id: str) -> int:
    handler = RuntimeLogHandler(session_id, batch_size=50, max_message_bytes=4096)
    logging.getLogger("x").addHandler(handler)
    handler.close()
    return handler.dropped


def model_call(response: dict[str, Any]) -> str:
    telemetry.configure_from_environment(service_name="svc")
    with telemetry.model_operation(
        provider_name="openai", request_model="gpt", request_options={"temperature": 0.1}
    ) as op:
        telemetry.record_openai_usage(op, response)
        op.record_usage(input_tokens=1, output_tokens=2)
        op.mark_error("refused", "policy")
    agent = telemetry.agent_invocation(agent_name="a", session_id="s", turn_id="t", model="m")
    tool = telemetry.tool_execution(tool_name="t", tool_type=telemetry.GENAI_TOOL_TYPE_DATASTORE)
    with agent, tool:
        pass
    telemetry.shutdown()
    return telemetry.GENAI_OPERATION_CHAT
