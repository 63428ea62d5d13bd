"""The provider process as the host sees it: concurrency, limits, shutdown, parent death.

No timing asserts: concurrency is proven with barriers that only open when 32 calls are in
flight together, ordering with timestamps the provider itself records.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import struct_pb2

from gestalt._runtime import SERVING_GC
from gestalt.gen.v1 import plugin_clients, plugin_pb2
from tests.runtime.harness import Provider, host_env

PLUGINS = Path(__file__).parent / "plugins"


def execute(provider: Provider, operation: str, **params: Any) -> tuple[int, Any]:
    """Call Execute; return the status and the parsed JSON body."""
    request = plugin_pb2.ExecuteRequest(operation=operation)
    if params:
        struct = struct_pb2.Struct()
        struct.update(params)
        request.params.CopyFrom(struct)
    client = plugin_clients.IntegrationProviderClient(provider.channel)
    result = client.execute(request, timeout=30)
    return result.status, json.loads(result.body)


@pytest.fixture(scope="module")
def busy() -> Iterator[Provider]:
    provider = Provider(PLUGINS, "busy:plugin")
    yield provider
    assert provider.stop() == 0


@pytest.mark.parametrize("operation", ["meet", "ameet"])
def test_32_calls_in_flight(busy: Provider, operation: str) -> None:
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda _: execute(busy, operation), range(32)))
    assert results == [(200, "met")] * 32


def test_the_cycle_collector_runs_once_the_server_is_up(busy: Provider) -> None:
    # Rare collections during start-up (python -m gestalt._runtime), the serving thresholds
    # once the server is up, with what start-up made frozen out of later collections.
    status, body = execute(busy, "collector")
    assert status == 200
    assert body["enabled"] is True
    assert body["threshold"] == list(SERVING_GC)
    assert body["frozen"] > 1000
    assert body["garbage"] < 100  # start-up's garbage was collected, not frozen (about 600)


def test_a_provider_keeps_the_collector_thresholds_it_set() -> None:
    provider = Provider(PLUGINS, "busy:plugin", BUSY_GC_THRESHOLD="1234,5,6")
    try:
        status, body = execute(provider, "collector")
    finally:
        provider.stop()
    assert status == 200
    assert body["threshold"] == [1234, 5, 6]


def test_async_handlers_share_one_long_lived_loop(busy: Provider) -> None:
    loops = {execute(busy, "loop_id")[1] for _ in range(5)}
    assert len(loops) == 1


def test_params_and_results_above_4_mib(busy: Provider) -> None:
    blob = "y" * (5 * 1024 * 1024)
    assert execute(busy, "size", blob=blob) == (200, len(blob))
    status, body = execute(busy, "big")
    assert status == 200
    assert len(body) == 5 * 1024 * 1024


def test_handler_exception_is_500_with_generic_body(busy: Provider) -> None:
    assert execute(busy, "boom") == (500, {"error": "internal error"})
    deadline = time.monotonic() + 5
    while "secret-xyz" not in busy.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "must not leak: secret-xyz" in busy.stderr()
    assert "Traceback" in busy.stderr()


def test_sigterm_drains_in_flight_calls_then_closes(tmp_path: Path) -> None:
    marker = tmp_path / "closed"
    provider = Provider(PLUGINS, "busy:plugin", BUSY_CLOSE_MARKER=str(marker))
    with ThreadPoolExecutor(4) as pool:
        calls = [pool.submit(execute, provider, "nap", seconds=0.8) for _ in range(4)]
        time.sleep(0.3)  # let the calls reach their handlers
        provider.proc.send_signal(signal.SIGTERM)
        results = [call.result(timeout=15) for call in calls]
    assert provider.proc.wait(timeout=15) == 0
    assert all(status == 200 for status, _ in results)
    closed_at = float(marker.read_text())
    assert closed_at >= max(finished for _, finished in results)
    assert not os.path.exists(provider.socket)


def test_sigint_stops_cleanly() -> None:
    provider = Provider(PLUGINS, "busy:plugin")
    assert execute(provider, "nap", seconds=0)[0] == 200
    assert provider.stop(signal.SIGINT) == 0
    assert not os.path.exists(provider.socket)


def test_provider_exits_when_the_host_dies(tmp_path: Path) -> None:
    socket_path = tmp_path / "plugin.sock"
    parent = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).parent / "parent_then_die.py"),
            str(socket_path),
            str(PLUGINS),
            "busy:plugin",
        ],
        env=host_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    deadline = time.monotonic() + 30
    while not socket_path.exists():
        assert time.monotonic() < deadline, "provider never served"
        time.sleep(0.02)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 15
    while _alive(child_pid):
        assert time.monotonic() < deadline, "provider outlived its host"
        time.sleep(0.05)
    assert not socket_path.exists()


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        # Not our child (it was the killed parent's): probe it instead.
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        status = Path(f"/proc/{pid}/stat")
        return status.exists() and status.read_text().split()[2] != "Z"
    return waited == 0


SERVE_SCRIPTS = {
    "plugin": (
        "from gestalt import Plugin\n"
        "plugin = Plugin('selfserved')\n\n"
        "@plugin.operation\n"
        "def ping() -> str:\n"
        "    return 'pong'\n\n"
        "if __name__ == '__main__':\n"
        "    plugin.serve()\n"
    ),
    "secrets": (
        "from gestalt import SecretsProvider\n\n"
        "class Vault(SecretsProvider):\n"
        "    def get_secret(self, name: str) -> str:\n"
        "        return name.upper()\n\n"
        "if __name__ == '__main__':\n"
        "    Vault().serve()\n"
    ),
}


@pytest.mark.parametrize("kind", sorted(SERVE_SCRIPTS))
def test_serve_methods_run_the_runtime(tmp_path: Path, kind: str) -> None:
    from google.protobuf import empty_pb2

    from gestalt.gen.v1 import runtime_clients, secrets_clients, secrets_pb2

    script = tmp_path / "main.py"
    script.write_text(SERVE_SCRIPTS[kind], encoding="utf-8")
    socket_path = tmp_path / "p.sock"
    proc = subprocess.Popen(
        [sys.executable, str(script)], env=host_env(GESTALT_PLUGIN_SOCKET=str(socket_path))
    )
    try:
        deadline = time.monotonic() + 30
        while not socket_path.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        import grpc

        with grpc.insecure_channel(f"unix:{socket_path}") as channel:
            if kind == "plugin":
                client = plugin_clients.IntegrationProviderClient(channel)
                result = client.execute(plugin_pb2.ExecuteRequest(operation="ping"), timeout=10)
                assert (result.status, result.body) == (200, '"pong"')
            else:
                lifecycle = runtime_clients.ProviderLifecycleClient(channel)
                identity = lifecycle.get_provider_identity(empty_pb2.Empty(), timeout=10)
                assert identity.kind == 4  # PROVIDER_KIND_SECRETS
                secrets = secrets_clients.SecretsProviderClient(channel)
                request = secrets_pb2.GetSecretRequest(name="db")
                assert secrets.get_secret(request, timeout=10).value == "DB"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
