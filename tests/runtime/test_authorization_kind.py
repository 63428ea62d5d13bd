"""An authorization provider on the typed base class, launched as the host launches a provider
(``python -m gestalt._runtime ROOT TARGET authorization``) and called through a real socket:
by the generated client and by the SDK's own ``AuthorizationClient``. Typed methods get and give
mirrors, ``async def`` works, RPCs taking ``Empty`` reach methods without argument, what the
subclass leaves out is ``UNIMPLEMENTED``, ``KeyError`` is ``NOT_FOUND``, a failure's text stays
in the provider log and a raw ``(request, context)`` method is served as such.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import empty_pb2

from gestalt import AsyncAuthorizationClient, AuthorizationClient, HostServiceError
from gestalt.gen.support import RPCError
from gestalt.gen.v1 import authorization_clients, authorization_pb2, runtime_clients
from gestalt.gen.v1.authorization_mirrors import Subject
from tests.runtime.harness import PROVIDERS, TIMEOUT, Provider


@pytest.fixture(scope="module")
def authz() -> Iterator[Provider]:
    with Provider(PROVIDERS, "authz:provider", "authorization") as provider:
        yield provider


def _client(provider: Provider) -> AuthorizationClient:
    return AuthorizationClient(f"unix://{provider.socket}", timeout=TIMEOUT)


def test_identity_and_typed_calls_through_the_sdk_client(authz: Provider) -> None:
    identity = runtime_clients.ProviderLifecycleClient(authz.channel).get_provider_identity(
        empty_pb2.Empty(), timeout=TIMEOUT
    )
    assert identity.kind == 9  # PROVIDER_KIND_AUTHORIZATION
    with _client(authz) as client:
        client.write_relationships([("user:ada", "read", "doc:1"), ("user:ada", "read", "doc:2")])
        assert client.check("user:ada", "read", "doc:1")
        assert not client.check("user:bob", "read", "doc:1")
        assert client.check_many(
            [("user:ada", "read", "doc:2"), ("user:ada", "edit", "doc:2")]
        ) == [
            True,
            False,
        ]
        assert [r.id for r in client.iter_resources("user:ada", "read", "doc")] == ["1", "2"]
        client.write_relationships(deletes=[("user:ada", "read", "doc:2")])
        assert [
            (rel.subject.id if rel.subject else "", rel.resource.id if rel.resource else "")
            for rel in client.iter_relationships(subject=Subject(type="user"))
        ] == [("ada", "1")]
        metadata = client.get_metadata()
    assert list(metadata.capabilities) == ["relationships"]
    generated = authorization_clients.AuthorizationProviderClient(authz.channel)
    assert not generated.get_active_model(empty_pb2.Empty(), timeout=TIMEOUT).HasField("model")


def test_eight_threads(authz: Provider) -> None:
    with _client(authz) as client:
        client.write_relationships([(f"user:u{i}", "read", f"doc:{i}") for i in range(8)])
        results: list[bool] = [False] * 8

        def check(index: int) -> None:
            mine = client.check(f"user:u{index}", "read", f"doc:{index}")
            other = client.check(f"user:u{index}", "read", f"doc:{(index + 1) % 8}")
            results[index] = mine and not other

        threads = [threading.Thread(target=check, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
    assert results == [True] * 8


async def test_async_client(authz: Provider) -> None:
    async with AsyncAuthorizationClient(f"unix://{authz.socket}", timeout=TIMEOUT) as client:
        await client.write_relationships([("user:cy", "read", "doc:9")])
        assert await client.check_many([("user:cy", "read", "doc:9")]) == [True]


def test_errors(authz: Provider) -> None:
    generated = authorization_clients.AuthorizationProviderClient(authz.channel)
    with pytest.raises(RPCError) as left_out:
        generated.search_subjects(authorization_pb2.SubjectSearchRequest(), timeout=TIMEOUT)
    assert left_out.value.code is grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(RPCError) as missing:
        generated.read_relationships(
            authorization_pb2.ReadRelationshipsRequest(
                subject=authorization_pb2.Subject(type="robot")
            ),
            timeout=TIMEOUT,
        )
    assert missing.value.code is grpc.StatusCode.NOT_FOUND
    assert missing.value.message == "authorization read_relationships: not found"
    with _client(authz) as client, pytest.raises(HostServiceError) as failed:
        client.check("user:ada", "explode", "doc:1")
    assert failed.value.code is grpc.StatusCode.UNKNOWN
    assert "secret-authz-key-42" not in str(failed.value)
    assert "secret-authz-key-42" in authz.stderr()


def test_raw_style_method(authz: Provider) -> None:
    generated = authorization_clients.AuthorizationProviderClient(authz.channel)
    assert generated.list_models(authorization_pb2.ListModelsRequest(), timeout=TIMEOUT) == (
        authorization_pb2.ListModelsResponse()
    )
    with pytest.raises(RPCError) as refused:
        generated.list_models(authorization_pb2.ListModelsRequest(page_token="x"))
    assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.message == "raw: no pages"
