"""What start-up leaves unloaded, on purpose (issue 11's import, cold start and RSS rows).

Each module named here costs import time and memory that a provider pays before its first
call, and none of them is needed by then: the dataclasses a client is handed but never needs
itself (``KeyRange``, ``CacheEntry``), the ``Request`` family (built per call), the provider
base classes and the other kinds' servicers and messages when a plugin is served, the dev
host's call reporter outside ``gestalt dev``, the telemetry package when no ``OTEL_*``
variable asks for tracing, the clients' half of the generated run-time support, and the hook
machinery, session-catalog conversion and manifest reading of a plugin that has no hooks,
and protobuf's pure-Python message implementation, which upb never uses. Each is still there
once asked for.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import pytest

import gestalt
from gestalt._runtime import devcalls, process
from gestalt._tracing import tracing_wanted

IMPORT_LINE = """
import gestalt
from gestalt import Cache, S3, IndexedDB, Plugin
"""

#: What protobuf's pure-Python message module imports, and nothing else under upb (the
#: module itself is in ``sys.modules`` from ``import gestalt`` on, unexecuted).
PURE_PYTHON_PROTOBUF = ["google.protobuf.internal.containers", "google.protobuf.text_format"]

#: Loaded by none of ``Cache``, ``S3``, ``IndexedDB`` and ``Plugin``.
NOT_ON_THE_IMPORT_LINE = [
    "gestalt._authoring.hooks",
    "gestalt._authoring.kinds",
    "gestalt._authoring.manifest",
    "gestalt._authoring.providers",
    "gestalt._authoring.request",
    "gestalt._authoring.session_catalog",
    "gestalt._clients.cache_types",
    "gestalt._clients.indexeddb_aio",
    "gestalt._clients.indexeddb_types",
    "gestalt._clients.s3_types",
    "gestalt._runtime",
    "gestalt.gen.serving",
    "gestalt.telemetry",
    *PURE_PYTHON_PROTOBUF,
]

#: A plugin of one operation and no hooks, with what the probes below need.
A_PLUGIN = """
import os, signal, sys, threading, time
from gestalt import Plugin
from gestalt._authoring.kinds import ProviderKind
from gestalt._runtime import process

plugin = Plugin("probe")

@plugin.operation
def ping() -> str:
    return "pong"
"""

SERVE_A_PLUGIN = (
    A_PLUGIN
    + """
server = process.RunningServer(plugin, ProviderKind.INTEGRATION, sys.argv[1])
server.stop()
"""
)

#: What serving an integration plugin without hooks does not load (outside ``gestalt dev``,
#: no ``OTEL_*`` variable set).
NOT_LOADED_TO_SERVE_A_PLUGIN = [
    "gestalt._authoring.hooks",
    "gestalt._authoring.manifest",
    "gestalt._authoring.providers",
    "gestalt._authoring.session_catalog",
    "gestalt._runtime.devcalls",
    "gestalt._runtime.lifecycle",
    "gestalt.gen.support",
    "gestalt.gen.v1.cache_pb2",
    "gestalt.gen.v1.runtime_pb2",
    "gestalt.gen.v1.secrets_pb2",
    "gestalt.telemetry",
    "google.protobuf.wrappers_pb2",
    *PURE_PYTHON_PROTOBUF,
]

#: ``serve()`` as the runtime calls it, until a SIGTERM the probe sends itself once it serves;
#: meanwhile it notes the threads running.
SERVE_UNTIL_SIGTERM = (
    A_PLUGIN
    + """
threads = []

def stop_soon():  # once serving, with serve()'s SIGTERM handler in place
    socket = os.environ[process.SOCKET_ENV]
    while not os.path.exists(socket) or signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        time.sleep(0.01)
    threads.extend(t.name for t in threading.enumerate())
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=stop_soon, name="probe-stopper", daemon=True).start()
process.serve(plugin, ProviderKind.INTEGRATION)
print(",".join(sorted(threads)))
"""
)


#: Appended to each probe: which of the modules listed in its last argument are loaded.
REPORT = """
import json, sys
print(json.dumps(sorted(m for m in json.loads(sys.argv[-1]) if m in sys.modules)))
"""


def run_python(code: str, *args: str, env: dict[str, str] | None = None) -> str:
    """What ``code`` prints in a fresh interpreter given ``args`` (and ``env``, if any)."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def loaded(code: str, *args: str, env: dict[str, str] | None = None) -> list[str]:
    """The modules among the last argument's list that ``code`` left in ``sys.modules``."""
    found: list[str] = json.loads(run_python(code + REPORT, *args, env=env))
    return found


def test_the_import_line_leaves_the_unneeded_modules_unloaded() -> None:
    modules = NOT_ON_THE_IMPORT_LINE
    assert loaded(IMPORT_LINE, json.dumps(modules)) == []


def test_gen_support_still_offers_the_serving_names_without_loading_them() -> None:
    assert loaded("import gestalt.gen.support", json.dumps(["gestalt.gen.serving"])) == []
    from gestalt.gen import serving, support

    for name in ("MethodSpec", "Result", "background_loop", "register"):
        assert getattr(support, name) is getattr(serving, name)
        assert name in support.__all__ and name in dir(support)
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        support.missing  # noqa: B018


def test_the_deferred_public_dataclasses_are_dataclasses_where_they_live() -> None:
    for name, home in [
        ("KeyRange", "gestalt._clients.indexeddb_types"),
        ("IndexSchema", "gestalt._clients.indexeddb_types"),
        ("ObjectStoreSchema", "gestalt._clients.indexeddb_types"),
        ("CacheEntry", "gestalt._clients.cache_types"),
        ("Request", "gestalt._authoring.request"),
        ("Subject", "gestalt._authoring.request"),
        ("ProviderMetadata", "gestalt._authoring.providers"),
    ]:
        cls = getattr(gestalt, name)
        assert cls.__module__ == home, name
        assert dataclasses.is_dataclass(cls), name
    assert gestalt.KeyRange(1, 2) == gestalt.KeyRange(lower=1, upper=2)
    assert repr(gestalt.CacheEntry("k", b"v")) == "CacheEntry(key='k', value=b'v')"


def plain_env(**extra: str) -> dict[str, str]:
    """This environment less the dev host's and OpenTelemetry's variables, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k != process.DEV_EVENTS_ENV and not k.startswith("OTEL_")
    }
    return {**env, **extra}


def test_serving_a_plugin_loads_only_what_plugins_need(tmp_path: Path) -> None:
    socket = str(tmp_path / "p.sock")
    modules = NOT_LOADED_TO_SERVE_A_PLUGIN
    assert loaded(SERVE_A_PLUGIN, socket, json.dumps(modules), env=plain_env()) == []


def serve_until_sigterm(tmp_path: Path, modules: list[str], **extra: str) -> list[str]:
    """Run ``serve()`` in a child until it stops itself; which of ``modules`` it had loaded."""
    env = plain_env(
        **{process.SOCKET_ENV: str(Path(tempfile.mkdtemp(dir=tmp_path)) / "p.sock")},
        **{process.PARENT_PID_ENV: str(os.getpid())},
        **extra,
    )
    printed = run_python(SERVE_UNTIL_SIGTERM + REPORT, json.dumps(modules), env=env)
    threads, found = printed.splitlines()
    assert "probe-stopper" in threads.split(",")
    assert "gestalt-parent" not in threads.split(",")  # the main thread watches the host
    names: list[str] = json.loads(found)
    return names


def test_serve_loads_telemetry_only_when_tracing_is_wanted(tmp_path: Path) -> None:
    modules = NOT_LOADED_TO_SERVE_A_PLUGIN
    assert serve_until_sigterm(tmp_path, modules) == []
    wanted = serve_until_sigterm(tmp_path, ["gestalt.telemetry"], OTEL_SDK_DISABLED="true")
    assert wanted == ["gestalt.telemetry"]


def test_tracing_is_wanted_when_an_otel_variable_is_set_or_opentelemetry_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [k for k in os.environ if k.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    monkeypatch.delitem(sys.modules, "opentelemetry", raising=False)
    assert not tracing_wanted()
    monkeypatch.setenv("OTEL_SERVICE_NAME", "probe")
    assert tracing_wanted()
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    monkeypatch.setitem(sys.modules, "opentelemetry", types.ModuleType("opentelemetry"))
    assert tracing_wanted()


def test_the_runtime_names_the_dev_hosts_variable_as_devcalls_does() -> None:
    assert process.DEV_EVENTS_ENV == devcalls.EVENTS_FD_ENV


#: Round-trips an ``ExecuteRequest`` with a ``Struct`` through bytes and JSON and prints which
#: protobuf implementation ran and whether the pure-Python message module was loaded then.
PROTOBUF_ROUND_TRIP = """
import sys
import gestalt
from gestalt.gen.v1 import plugin_pb2
from google.protobuf import json_format, struct_pb2
from google.protobuf.internal import api_implementation

params = struct_pb2.Struct()
params.update({"name": "x", "tags": ["a", 1], "nested": {"ok": True}})
request = plugin_pb2.ExecuteRequest(operation="echo", params=params)
again = plugin_pb2.ExecuteRequest.FromString(request.SerializeToString())
assert again == request and again.params["nested"]["ok"] is True, again
assert json_format.MessageToDict(again)["params"]["tags"] == ["a", 1.0]
print(api_implementation.Type(), "google.protobuf.text_format" in sys.modules)
"""


def test_messages_work_without_the_pure_python_module_under_upb() -> None:
    assert run_python(PROTOBUF_ROUND_TRIP) == "upb False"


def test_the_pure_python_implementation_loads_the_module_it_needs() -> None:
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    assert run_python(PROTOBUF_ROUND_TRIP, env=env) == "python True"


def test_the_deferred_module_runs_on_first_use() -> None:
    code = """
import sys
import gestalt.gen.v1.plugin_pb2
from google.protobuf.internal import python_message
before = "google.protobuf.text_format" in sys.modules
assert python_message.GeneratedProtocolMessageType.__name__ == "GeneratedProtocolMessageType"
print(before, "google.protobuf.text_format" in sys.modules, type(python_message).__name__)
"""
    assert run_python(code) == "False True module"


def test_protobuf_imported_before_gestalt_is_left_as_it_is() -> None:
    code = """
import sys, types
import google.protobuf.descriptor_pool
import gestalt.gen.v1.plugin_pb2
print(type(sys.modules["google.protobuf.internal.python_message"]) is types.ModuleType)
"""
    assert run_python(code) == "True"
