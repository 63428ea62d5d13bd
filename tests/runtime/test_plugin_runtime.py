"""The plugin runtime kind: ``python -m gestalt._runtime ROOT TARGET runtime``, driven over gRPC.

The providers live in ``providers/plugin_runtime.py``; each test module fixture is one process
launched the way the host launches providers.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2

from gestalt.gen.support import RPCError
from gestalt.gen.v1 import (
    plugin_clients,
    pluginruntime_clients,
    pluginruntime_pb2,
    runtime_clients,
    runtime_pb2,
)
from gestalt.local.runtime_logs import RuntimeLogServer, serve_runtime_logs
from tests.runtime.harness import Provider, run_cli

PROVIDERS = Path(__file__).resolve().parent / "providers"
PLUGINS = Path(__file__).resolve().parent / "plugins"
EMPTY = empty_pb2.Empty()
TIMEOUT = 10.0
pb = pluginruntime_pb2


def _serve(target: str, **env: str) -> Iterator[Provider]:
    provider = Provider(PROVIDERS, target, "runtime", socket_value=None, parent_pid=None, **env)
    try:
        yield provider
    finally:
        code = provider.stop()
    assert code == 0, provider.stderr()


@pytest.fixture(scope="module")
def log_host() -> Iterator[RuntimeLogServer]:
    """The host's runtime log service, as the host binds it for a runtime provider."""
    directory = Path(tempfile.mkdtemp(prefix="gstl-"))
    server = serve_runtime_logs(directory / "logs.sock", relay_token="log-token")
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def runtime(log_host: RuntimeLogServer) -> Iterator[Provider]:
    """The subprocess-hosting runtime, with the log host bound."""
    yield from _serve(
        "plugin_runtime:runtime",
        GESTALT_RUNTIME_LOG_SOCKET=log_host.target,
        GESTALT_RUNTIME_LOG_SOCKET_TOKEN="log-token",
    )


@pytest.fixture(scope="module")
def async_runtime() -> Iterator[Provider]:
    """The runtime with two coroutine methods."""
    yield from _serve("plugin_runtime:async_runtime")


@pytest.fixture(scope="module")
def legacy_runtime() -> Iterator[Provider]:
    """The runtime written with RPC-named methods."""
    yield from _serve("plugin_runtime:legacy_runtime")


def client(provider: Provider) -> pluginruntime_clients.PluginRuntimeProviderClient:
    """The typed client for the provider's ``PluginRuntimeProvider`` service."""
    return pluginruntime_clients.PluginRuntimeProviderClient(provider.channel)


def failure(call: object, *args: object) -> tuple[grpc.StatusCode, str]:
    """The status of a call that must fail."""
    with pytest.raises(RPCError) as info:
        call(*args, timeout=TIMEOUT)  # type: ignore[operator]
    return info.value.code, info.value.message


def test_lifecycle_reports_the_runtime_kind_and_start_runs(runtime: Provider) -> None:
    life = runtime_clients.ProviderLifecycleClient(runtime.channel)
    identity = life.get_provider_identity(EMPTY, timeout=TIMEOUT)
    assert identity.kind == runtime_pb2.PROVIDER_KIND_RUNTIME
    assert (identity.min_protocol_version, identity.max_protocol_version) == (3, 3)
    configured = life.configure_provider(
        runtime_pb2.ConfigureProviderRequest(name="rt", protocol_version=3), timeout=TIMEOUT
    )
    assert configured.protocol_version == 3
    assert not client(runtime).get_support(EMPTY, timeout=TIMEOUT).can_host_plugins
    started = life.start_provider(EMPTY, timeout=TIMEOUT)  # the Starter mixin's start()
    assert started.protocol_version == 3
    support = client(runtime).get_support(EMPTY, timeout=TIMEOUT)
    assert support.can_host_plugins
    assert support.host_service_access == pb.PLUGIN_RUNTIME_HOST_SERVICE_ACCESS_DIRECT
    assert support.egress_mode == pb.PLUGIN_RUNTIME_EGRESS_MODE_NONE


def test_a_session_hosts_a_real_plugin_process(
    runtime: Provider, log_host: RuntimeLogServer
) -> None:
    rt = client(runtime)
    session = rt.start_session(
        pb.StartPluginRuntimeSessionRequest(plugin_name="busy", metadata={"team": "a"}),
        timeout=TIMEOUT,
    )
    assert session.id and session.state == "ready"
    assert dict(session.metadata) == {"team": "a", "plugin": "busy"}
    assert session.lifecycle.started_at.seconds == 1767323045
    assert rt.get_session(pb.GetPluginRuntimeSessionRequest(session_id=session.id)) == session
    listed = rt.list_sessions(pb.ListPluginRuntimeSessionsRequest(), timeout=TIMEOUT)
    assert session.id in [s.id for s in listed.sessions]

    binding = rt.bind_host_service(
        pb.BindPluginRuntimeHostServiceRequest(
            session_id=session.id,
            env_var="GESTALT_CACHE_SOCKET",
            relay=pb.PluginRuntimeHostServiceRelay(dial_target="unix:///tmp/host.sock"),
        ),
        timeout=TIMEOUT,
    )
    assert (binding.session_id, binding.env_var) == (session.id, "GESTALT_CACHE_SOCKET")
    assert binding.relay.dial_target == "unix:///tmp/host.sock" and binding.id

    hosted = rt.start_plugin(
        pb.StartHostedPluginRequest(
            session_id=session.id,
            plugin_name="busy",
            command=sys.executable,
            args=["-m", "gestalt._runtime", str(PLUGINS), "busy", "integration"],
        ),
        timeout=TIMEOUT,
    )
    assert hosted.session_id == session.id and hosted.dial_target.startswith("unix://")
    # The host dials the plugin where the runtime said it would be.
    address = "unix:" + hosted.dial_target.removeprefix("unix://")
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        metadata = plugin_clients.IntegrationProviderClient(channel).get_metadata(
            EMPTY, timeout=TIMEOUT
        )
    assert metadata.min_protocol_version == 3

    rt.stop_session(pb.StopPluginRuntimeSessionRequest(session_id=session.id), timeout=TIMEOUT)
    # The runtime logged the session's life to the host through a RuntimeLogHandler.
    logged = [entry.message for entry in log_host.service.entries(session.id)]
    assert logged[0] == "session for busy is ready"
    assert logged[1].startswith("started busy as pid ")
    assert logged[-1] == "session stopped"
    code, message = failure(
        rt.get_session, pb.GetPluginRuntimeSessionRequest(session_id=session.id)
    )
    assert code == grpc.StatusCode.NOT_FOUND and session.id in message


def test_unknown_sessions_are_not_found(runtime: Provider) -> None:
    rt = client(runtime)
    code, message = failure(rt.stop_session, pb.StopPluginRuntimeSessionRequest(session_id="nope"))
    assert (code, message) == (grpc.StatusCode.NOT_FOUND, "session 'nope' not found")
    # KeyError from bind_host_service is a provider failure like any other: sanitised.
    code, message = failure(
        rt.bind_host_service, pb.BindPluginRuntimeHostServiceRequest(session_id="nope")
    )
    assert (code, message) == (
        grpc.StatusCode.UNKNOWN,
        "bind host service: failed; details are in the provider log",
    )


def test_async_methods_and_methods_left_out(async_runtime: Provider) -> None:
    rt = client(async_runtime)
    assert not rt.get_support(EMPTY, timeout=TIMEOUT).can_host_plugins
    for call, request in [
        (rt.start_session, pb.StartPluginRuntimeSessionRequest(plugin_name="x")),
        (rt.list_sessions, pb.ListPluginRuntimeSessionsRequest()),
        (rt.stop_session, pb.StopPluginRuntimeSessionRequest(session_id="a")),
        (rt.bind_host_service, pb.BindPluginRuntimeHostServiceRequest()),
        (rt.start_plugin, pb.StartHostedPluginRequest()),
    ]:
        assert failure(call, request)[0] == grpc.StatusCode.UNIMPLEMENTED
    get = rt.get_session
    assert failure(get, pb.GetPluginRuntimeSessionRequest(session_id="x")) == (
        grpc.StatusCode.NOT_FOUND,
        "session 'x' not found",
    )
    for session_id in ("boom", "wrong"):
        code, message = failure(get, pb.GetPluginRuntimeSessionRequest(session_id=session_id))
        assert (code, message) == (
            grpc.StatusCode.UNKNOWN,
            "get session: failed; details are in the provider log",
        )
    log = async_runtime.stderr()
    assert "secret internal detail" in log
    assert "get session must return a PluginRuntimeSession, not str" in log


def test_rpc_named_methods_of_the_published_sdk_still_work(legacy_runtime: Provider) -> None:
    rt = client(legacy_runtime)
    assert rt.get_support(EMPTY, timeout=TIMEOUT).can_host_plugins
    listed = rt.list_sessions(pb.ListPluginRuntimeSessionsRequest(), timeout=TIMEOUT)
    assert [s.id for s in listed.sessions] == ["legacy"]
    code, _ = failure(rt.start_session, pb.StartPluginRuntimeSessionRequest())
    assert code == grpc.StatusCode.UNIMPLEMENTED


def test_a_target_of_another_kind_is_refused() -> None:
    result = run_cli([str(PROVIDERS), "async_kinds:cache", "runtime"], GESTALT_PLUGIN_SOCKET="x")
    assert result.returncode == 1
    assert "not a gestalt.PluginRuntimeProvider" in result.stderr


def test_pyproject_names_a_runtime_provider(tmp_path: Path) -> None:
    from gestalt._runtime.process import spec_from_pyproject

    (tmp_path / "pyproject.toml").write_text('[tool.gestalt]\nruntime = "sandboxes:runtime"\n')
    spec = spec_from_pyproject(tmp_path)
    assert (spec.target, spec.kind.value) == ("sandboxes:runtime", "runtime")
