"""``gestalt.telemetry`` without OpenTelemetry: every helper is a cheap no-op.

A fresh interpreter makes ``import opentelemetry`` fail (``sys.modules["opentelemetry"] =
None``), as a base install without the ``otel`` extra would, with ``OTEL_*`` set all the same;
it then uses every helper, serves a provider with the runtime's server and calls a host service,
and checks that no OpenTelemetry module was loaded. With OpenTelemetry installed but neither
imported by the program nor asked for by an ``OTEL_*`` variable, the same serving and calling
import none of it either.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.conftest import REPO

#: Serves the traced plugin with the runtime's server and calls it; it writes to the cache.
SERVE_AND_CALL = textwrap.dedent(
    """
    import os, tempfile

    def serve_and_call():
        import grpc
        from google.protobuf import struct_pb2
        from gestalt import Cache
        from gestalt._authoring.providers import ProviderKind
        from gestalt._runtime.process import RunningServer
        from gestalt.gen.v1 import plugin_clients, plugin_pb2
        from gestalt.local.cache import serve_cache
        from tests.telemetry.traced_plugin import plugin

        out = {}
        directory = tempfile.mkdtemp(prefix="gst-")
        cache = serve_cache(os.path.join(directory, "cache.sock"))
        os.environ["GESTALT_CACHE_SOCKET"] = cache.target
        server = RunningServer(plugin, ProviderKind.INTEGRATION, os.path.join(directory, "p.sock"))
        params = struct_pb2.Struct()
        params.update({"key": "k"})
        with grpc.insecure_channel(f"unix:{server.socket_path}") as channel:
            result = plugin_clients.IntegrationProviderClient(channel).execute(
                plugin_pb2.ExecuteRequest(operation="remember", params=params), timeout=10
            )
        out["status"] = result.status
        with Cache() as client:
            out["stored"] = client.get("k").decode()
        server.stop()
        cache.stop()
        return out
    """
)

UNUSED = SERVE_AND_CALL + textwrap.dedent(
    """
    import json, sys
    out = serve_and_call()
    out["loaded"] = sorted(
        name for name, module in sys.modules.items()
        if module is not None and name.startswith("opentelemetry")
    )
    print(json.dumps(out))
    """
)


_WITHOUT_OTEL = textwrap.dedent(
    """
    import json, os, sys, time
    sys.modules["opentelemetry"] = None  # what a base install without the extra looks like
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"
    os.environ["OTEL_TRACES_EXPORTER"] = "otlp"

    from gestalt import telemetry

    out = {"available": telemetry.available()}
    telemetry.configure_from_environment(service_name="x")
    with telemetry.model_operation(
        provider_name="openai", request_model="m", request_options={"temperature": 1}
    ) as op:
        telemetry.record_openai_usage(op, {"usage": {"prompt_tokens": 1}})
        telemetry.record_anthropic_usage(op, {"usage": {"input_tokens": 1}})
        op.set_attribute("k", "v")
        op.record_usage(input_tokens=1, output_tokens=2)
        op.set_response_metadata({"id": "r"}, finish_reasons=["stop"])
        op.mark_error("e", "d")
    try:
        with telemetry.agent_invocation(agent_name="a", session_id="s", turn_id="t", model="m"):
            with telemetry.tool_execution(tool_name="t"):
                raise KeyError("goes on")
    except KeyError:
        out["raised"] = True
    started = time.perf_counter()
    for _ in range(10_000):
        with telemetry.tool_execution(tool_name="t", tool_call_id="c"):
            pass
    out["per_op_us"] = (time.perf_counter() - started) / 10_000 * 1e6
    out["interceptors"] = [
        len(telemetry.client_interceptors(aio=False)),
        len(telemetry.client_interceptors(aio=True)),
        len(telemetry.server_interceptors()),
    ]

    out.update(serve_and_call())
    telemetry.shutdown()
    out["loaded"] = sorted(
        name for name, module in sys.modules.items()
        if module is not None and name.startswith("opentelemetry")
    )
    print(json.dumps(out))
    """
)

WITHOUT_OTEL = SERVE_AND_CALL + _WITHOUT_OTEL


def run(code: str, env: dict[str, str] | None = None) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter at the repository root; its last line is JSON."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    loaded: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_every_helper_is_a_no_op_without_opentelemetry() -> None:
    out = run(WITHOUT_OTEL)
    assert out["available"] is False
    assert out["raised"] is True  # exceptions go through the no-op operations
    assert out["interceptors"] == [0, 0, 0]
    assert out["status"] == 200 and out["stored"] == "v"
    assert out["loaded"] == []
    per_op = out["per_op_us"]
    assert isinstance(per_op, float) and per_op < 50, per_op  # cheap: a few microseconds


def test_opentelemetry_installed_but_unused_is_never_imported() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = run(UNUSED, env)
    assert out == {"status": 200, "stored": "v", "loaded": []}


def test_configuring_and_shutting_down_unasked_does_not_import_opentelemetry() -> None:
    # What ``python -m gestalt._runtime`` does around serving, with no OTEL_* variable set.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = run(
        "import json, sys\n"
        "from gestalt import telemetry\n"
        "telemetry.configure_from_environment(service_name='p')\n"
        "telemetry.shutdown()\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
        "print(json.dumps({'loaded': loaded}))\n",
        env,
    )
    assert out == {"loaded": []}


def test_importing_gestalt_does_not_import_opentelemetry() -> None:
    out = run(
        "import json, sys\n"
        "import gestalt\n"
        "from gestalt import telemetry\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
        "print(json.dumps({'loaded': loaded}))\n"
    )
    assert out == {"loaded": []}


def test_published_names_and_values() -> None:
    from gestalt import telemetry

    assert (
        telemetry.GENAI_OPERATION_CHAT,
        telemetry.GENAI_OPERATION_EXECUTE_TOOL,
        telemetry.GENAI_OPERATION_INVOKE_AGENT,
        telemetry.GENAI_PROVIDER_NAME,
        telemetry.GENAI_TOOL_TYPE_DATASTORE,
        telemetry.GENAI_TOOL_TYPE_EXTENSION,
    ) == ("chat", "execute_tool", "invoke_agent", "gestalt", "datastore", "extension")
    assert sorted(telemetry.__all__) == sorted(
        [name for name in dir(telemetry) if name.startswith("GENAI_")]
        + [
            "Operation",
            "agent_invocation",
            "configure_from_environment",
            "model_operation",
            "record_anthropic_usage",
            "record_openai_usage",
            "shutdown",
            "tool_execution",
        ]
    )


def test_an_incomplete_or_wrong_setup_turns_telemetry_off_with_a_warning() -> None:
    code = textwrap.dedent(
        """
        import io, json, logging, os, sys
        if sys.argv[1] == "no-sdk":
            sys.modules["opentelemetry.sdk"] = None  # the API installed without the SDK
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"
        os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] = sys.argv[2]
        stream = io.StringIO()
        logging.basicConfig(stream=stream, level=logging.WARNING, format="%(message)s")
        from gestalt import telemetry
        telemetry.configure_from_environment()
        with telemetry.tool_execution(tool_name="t"):
            pass
        telemetry.shutdown()
        print(json.dumps({"log": stream.getvalue().strip()}))
        """
    )
    for mode, protocol, expected in [
        ("no-sdk", "grpc", "telemetry is off: opentelemetry.sdk"),
        ("sdk", "carrier-pigeon", "telemetry is off: unsupported OTLP protocol 'carrier-pigeon'"),
    ]:
        result = subprocess.run(
            [sys.executable, "-c", code, mode, protocol],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        log = json.loads(result.stdout.strip().splitlines()[-1])["log"]
        assert log.startswith(expected), log
