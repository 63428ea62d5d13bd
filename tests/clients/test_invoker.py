"""PluginInvoker and AsyncPluginInvoker through real sockets.

The host is played by the embedded :mod:`gestalt.local.invoker` service, routing to a small
integration provider served here over gRPC (it echoes what its ``Execute`` received), or, for
GraphQL replies the local service does not produce, by a servicer answering canned results.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

import gestalt
from gestalt import (
    AsyncPluginInvoker,
    GraphQLResponseError,
    HostServiceError,
    InvocationError,
    InvokeResponse,
    Model,
    PluginInvoker,
    Request,
)
from gestalt._clients.transport import PLUGIN_INVOKER
from gestalt.gen.v1 import plugin_pb2
from gestalt.gen.v1.plugin_mirrors import PluginInvocationGrant
from gestalt.gen.v1.plugin_servicers import (
    add_integration_provider_to_server,
    add_plugin_invoker_to_server,
)
from gestalt.local._serving import LocalServer, parse_address, serve
from gestalt.local.invoker import PluginInvokerService, serve_plugin_invoker
from tests.clients.conftest import EnvBinder, RecordingInterceptor

RELAY = "relay-secret"


class EchoPlugin:
    """An integration provider whose every operation answers what its Execute received."""

    def execute(
        self, request: plugin_pb2.ExecuteRequest, context: grpc.ServicerContext
    ) -> plugin_pb2.OperationResult:
        if request.operation == "missing":
            return plugin_pb2.OperationResult(status=404, body='{"error":"no such thing"}')
        body = {
            "operation": request.operation,
            "params": json_format.MessageToDict(request.params),
            "token": request.invocation_token,
            "connection": request.context.credential.connection,
            "instance": request.context.credential.instance,
            "subject": request.context.subject.id,
            "idempotency_key": request.idempotency_key,
        }
        return plugin_pb2.OperationResult(status=200, body=json.dumps(body))


@pytest.fixture
def plugin_socket(socket_path: Callable[[str], Path]) -> Iterator[Path]:
    """An :class:`EchoPlugin` listening on a unix socket."""
    path = socket_path("echo")
    server = grpc.server(futures.ThreadPoolExecutor(4))
    add_integration_provider_to_server(EchoPlugin(), server)
    server.add_insecure_port(f"unix:{path}")
    server.start()
    yield path
    server.stop(None)


@pytest.fixture
def host(
    socket_path: Callable[[str], Path], plugin_socket: Path, recorder: RecordingInterceptor
) -> Iterator[LocalServer[PluginInvokerService]]:
    """The embedded invoker (relay token required, recorded) routing ``echo`` to the plugin."""
    with serve_plugin_invoker(
        socket_path("invoker"), relay_token=RELAY, interceptors=[recorder]
    ) as server:
        server.service.route("echo", plugin_socket)
        yield server


@pytest.fixture
def bound(host: LocalServer[PluginInvokerService], bind_env: EnvBinder) -> PluginInvokerService:
    """The invoker's variables set; its service returned (to mint tokens)."""
    bind_env(PLUGIN_INVOKER, host.target, token=RELAY)
    return host.service


class Echo(Model):
    """The part of the echo a test decodes."""

    operation: str
    params: dict[str, Any]


def test_invoke_sends_the_token_and_options_and_reads_the_result(
    bound: PluginInvokerService, recorder: RecordingInterceptor
) -> None:
    token = bound.mint(
        context=plugin_pb2.RequestContext(subject=plugin_pb2.SubjectContext(id="user:7"))
    )
    with PluginInvoker(token) as invoker:
        result = invoker.invoke(
            "echo",
            "list",
            {"limit": 3},
            connection="work",
            instance="eu",
            idempotency_key="k1",
        )
    assert isinstance(result, gestalt.Response) and isinstance(result, InvokeResponse)
    assert result.status == 200 and result.ok
    body = result.json()
    assert body["params"] == {"limit": 3}
    assert (body["connection"], body["instance"], body["idempotency_key"]) == ("work", "eu", "k1")
    assert body["subject"] == "user:7"  # the minting call's context travels on
    assert body["token"].startswith("local-invocation-") and body["token"] != token
    assert result.decode(Echo) == Echo(operation="list", params={"limit": 3})
    (call,) = recorder.take()
    assert call.method == "/gestalt.provider.v1.PluginInvoker/Invoke"
    assert call.metadata == [("x-gestalt-host-service-relay-token", RELAY)]
    sent = call.requests[0]
    assert isinstance(sent, plugin_pb2.PluginInvokeRequest)
    assert (sent.plugin, sent.operation, sent.invocation_token) == ("echo", "list", token)


def test_a_failed_operation_is_a_result_until_raise_for_status(bound: PluginInvokerService) -> None:
    invoker = PluginInvoker(bound.mint())
    result = invoker.invoke("echo", "missing")
    assert result.status == 404 and not result.ok
    with pytest.raises(InvocationError) as raised:
        result.raise_for_status()
    assert (raised.value.status, raised.value.message) == (404, "no such thing")
    ok = invoker.invoke("echo", "x")
    assert ok.raise_for_status() is ok
    invoker.close()


def test_params_may_be_a_model(bound: PluginInvokerService) -> None:
    with PluginInvoker(bound.mint()) as invoker:
        sent = Echo(operation="o", params={"a": [1, "b"]})
        assert invoker.invoke("echo", "m", sent).json()["params"] == {
            "operation": "o",
            "params": {"a": [1, "b"]},
        }


@pytest.mark.parametrize("form", ["path", "unix", "tcp"])
def test_every_target_form(
    form: str,
    socket_path: Callable[[str], Path],
    plugin_socket: Path,
    bind_env: EnvBinder,
) -> None:
    address = "tcp://127.0.0.1:0" if form == "tcp" else str(socket_path("inv-" + form))
    with serve_plugin_invoker(address, relay_token=RELAY) as server:
        server.service.route("echo", plugin_socket)
        target = server.target if form != "unix" else f"unix://{server.target}"
        bind_env(PLUGIN_INVOKER, target, token=RELAY)
        with PluginInvoker(server.service.mint()) as invoker:
            assert invoker.invoke("echo", "ping").json()["operation"] == "ping"


def test_errors_map_to_host_service_errors(
    host: LocalServer[PluginInvokerService], bind_env: EnvBinder
) -> None:
    bind_env(PLUGIN_INVOKER, host.target, token=RELAY)
    with PluginInvoker("never-issued") as invoker, pytest.raises(HostServiceError) as raised:
        invoker.invoke("echo", "x")
    assert raised.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert isinstance(raised.value.__cause__, grpc.RpcError)
    with PluginInvoker(host.service.mint()) as invoker, pytest.raises(HostServiceError) as raised:
        invoker.invoke("nobody", "x")
    assert raised.value.code is grpc.StatusCode.NOT_FOUND
    assert "'nobody'" in raised.value.message and "echo" in raised.value.message
    bind_env(PLUGIN_INVOKER, host.target, token="wrong")
    with PluginInvoker(host.service.mint()) as invoker, pytest.raises(HostServiceError) as raised:
        invoker.invoke("echo", "x")
    assert raised.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert raised.value.message == "invalid-host-service-relay-token"


def test_bad_input_is_refused_before_any_call(bound: PluginInvokerService) -> None:
    with pytest.raises(RuntimeError, match="invocation token is not available"):
        PluginInvoker("")
    with PluginInvoker(bound.mint()) as invoker:
        with pytest.raises(ValueError, match="plugin must be a non-blank str"):
            invoker.invoke(" ", "x")
        with pytest.raises(TypeError, match="params must be a mapping or a Model"):
            invoker.invoke("echo", "x", [1, 2])  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="ttl_seconds"):
            invoker.exchange_invocation_token(ttl_seconds=-1)
        with pytest.raises(TypeError, match="grant"):
            invoker.exchange_invocation_token(grants=[42])


def test_a_missing_variable_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="GESTALT_PLUGIN_INVOKER_SOCKET is not set"):
        PluginInvoker("t")


def test_exchange_narrows_the_token(bound: PluginInvokerService) -> None:
    with PluginInvoker(bound.mint()) as parent:
        # The reference's forms: dicts and messages; and the mirrors.
        for grant in (
            {"plugin": "echo", "operations": ["read"]},
            plugin_pb2.PluginInvocationGrant(plugin="echo", operations=["read"]),
            PluginInvocationGrant(plugin="echo", operations=["read"]),
        ):
            child = parent.exchange_invocation_token(grants=[grant], ttl_seconds=60)
            assert child != parent.invocation_token
            with PluginInvoker(child) as narrow:
                assert narrow.invoke("echo", "read").ok
                with pytest.raises(HostServiceError) as raised:
                    narrow.invoke("echo", "write")
                assert raised.value.code is grpc.StatusCode.PERMISSION_DENIED
                with pytest.raises(HostServiceError) as raised:
                    narrow.exchange_invocation_token(
                        grants=[{"plugin": "echo", "allOperations": True}]
                    )
                assert raised.value.code is grpc.StatusCode.PERMISSION_DENIED


def test_request_invoker_carries_the_calls_token(bound: PluginInvokerService) -> None:
    token = bound.mint()
    with Request(invocation_token=token).invoker() as invoker:
        assert invoker.invocation_token == token
        assert invoker.invoke("echo", "x").ok
    with pytest.raises(RuntimeError, match="invocation token"):
        Request().invoker()


def test_eight_threads_share_one_invoker(bound: PluginInvokerService) -> None:
    invoker = PluginInvoker(bound.mint())
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                assert invoker.invoke("echo", f"op{n}", {"i": i}).json()["params"] == {"i": i}
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    invoker.close()
    assert errors == []


def test_async_invoker(bound: PluginInvokerService) -> None:
    async def main() -> None:
        async with AsyncPluginInvoker(bound.mint()) as invoker:
            results = await asyncio.gather(
                *(invoker.invoke("echo", "op", {"n": n}) for n in range(8))
            )
            assert [r.json()["params"]["n"] for r in results] == list(range(8))
            child = await invoker.exchange_invocation_token(
                grants=[{"plugin": "echo", "operations": ["op"]}]
            )
            async with AsyncPluginInvoker(child) as narrow:
                assert (await narrow.invoke("echo", "op")).ok
                with pytest.raises(HostServiceError) as raised:
                    await narrow.invoke("echo", "other")
                assert raised.value.code is grpc.StatusCode.PERMISSION_DENIED
            with pytest.raises(HostServiceError) as raised:
                await invoker.invoke_graphql("echo", "{ x }")
            assert raised.value.code is grpc.StatusCode.UNIMPLEMENTED

    asyncio.run(main())


class GraphQLHost:
    """Plays the host for InvokeGraphQL with canned bodies, noting what it received."""

    def __init__(self) -> None:
        self.received: list[plugin_pb2.PluginInvokeGraphQLRequest] = []

    @staticmethod
    def body(document: str) -> dict[str, Any]:
        """A GraphQL reply: errors for a document asking for ``broken``, else data."""
        if "broken" not in document:
            return {"data": {"viewer": {"login": "ada"}}}
        first = {
            "message": "no field broken",
            "path": ["query", 0, "broken"],
            "locations": [{"line": 1, "column": 3}],
            "extensions": {"code": "BAD_FIELD"},
        }
        return {"data": None, "errors": [first, {"message": "second"}]}

    def invoke_graph_ql(
        self, request: plugin_pb2.PluginInvokeGraphQLRequest, context: grpc.ServicerContext
    ) -> plugin_pb2.OperationResult:
        self.received.append(request)
        body = self.body(request.document)
        return plugin_pb2.OperationResult(status=200, body=json.dumps(body))


def test_graphql_data_and_typed_errors(
    socket_path: Callable[[str], Path], bind_env: EnvBinder
) -> None:
    fake = GraphQLHost()
    with serve(
        LocalServer,
        parse_address(socket_path("gql")),
        lambda: fake,
        add_plugin_invoker_to_server,
        name="gql",
    ) as server:
        bind_env(PLUGIN_INVOKER, server.target)
        with PluginInvoker("tok") as invoker:
            good = invoker.invoke_graphql("gh", "{ viewer { login } }", {"first": 2})
            assert good.ok and good.errors == [] and good.data == {"viewer": {"login": "ada"}}
            assert good.raise_for_status() is good
            bad = invoker.invoke_graphql("gh", "{ broken }", connection="c", idempotency_key="i")
    assert bad.status == 200 and not bad.ok and bad.data is None
    first, second = bad.errors
    assert first.message == "no field broken" and first.path == ("query", 0, "broken")
    assert first.locations == ((1, 3),) and first.extensions == {"code": "BAD_FIELD"}
    assert second.message == "second" and second.path == ()
    with pytest.raises(GraphQLResponseError) as raised:
        bad.raise_for_status()
    assert raised.value.errors == bad.errors
    assert str(raised.value) == "200: no field broken; second"
    sent = fake.received[0]
    assert (sent.plugin, sent.invocation_token) == ("gh", "tok")
    assert json_format.MessageToDict(sent.variables) == {"first": 2}
    assert (fake.received[1].connection, fake.received[1].idempotency_key) == ("c", "i")
