"""AuthorizationClient, Authorization() and AsyncAuthorizationClient through real sockets.

The host is played by the embedded :mod:`gestalt.local.authorization` store (seeded from
Python as a test would), or, for a misbehaving provider, by a servicer defined here.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from gestalt import (
    AsyncAuthorizationClient,
    Authorization,
    AuthorizationClient,
    HostServiceError,
    Request,
)
from gestalt._clients.transport import AUTHORIZATION
from gestalt.gen.v1 import authorization_mirrors as mirrors
from gestalt.gen.v1 import authorization_pb2 as pb
from gestalt.gen.v1.authorization_servicers import add_authorization_provider_to_server
from gestalt.local._serving import LocalServer, parse_address, serve
from gestalt.local.authorization import AuthorizationService, serve_authorization
from tests.clients.conftest import EnvBinder, RecordingInterceptor

RELAY = "authz-relay"


@pytest.fixture(autouse=True)
def close_shared_client() -> Iterator[None]:
    """Close the shared client a test built (its server is gone after the test)."""
    yield
    from gestalt._clients import authorization

    if authorization._shared is not None:
        authorization._shared.close()


@pytest.fixture
def store(
    socket_path: Callable[[str], Path], recorder: RecordingInterceptor, bind_env: EnvBinder
) -> Iterator[AuthorizationService]:
    """A seeded store served with a relay token and bound in the environment."""
    with serve_authorization(
        socket_path("authz"), relay_token=RELAY, interceptors=[recorder]
    ) as server:
        bind_env(AUTHORIZATION, server.target, token=RELAY)
        service = server.service
        service.write("user:ada", "viewer", "doc:1")
        service.write("user:ada", "owner", "doc:2")
        service.write("user:bob", "viewer", "doc:2")
        yield service


def test_check_and_check_many(store: AuthorizationService, recorder: RecordingInterceptor) -> None:
    with AuthorizationClient() as client:
        assert client.check("user:ada", "viewer", "doc:1")
        assert not client.check("user:ada", "viewer", "doc:2")
        assert client.check(mirrors.Subject(type="user", id="bob"), "viewer", "doc:2")
        assert client.check_many(
            [
                ("user:ada", "viewer", "doc:1"),
                ("user:bob", "viewer", "doc:1"),
                ("user:ada", pb.Action(name="owner"), pb.Resource(type="doc", id="2")),
            ]
        ) == [True, False, True]
    calls = recorder.take()
    assert [c.method.rsplit("/", 1)[1] for c in calls] == [
        "Evaluate",
        "Evaluate",
        "Evaluate",
        "EvaluateMany",
    ]
    assert all(c.metadata == [("x-gestalt-host-service-relay-token", RELAY)] for c in calls)
    first = calls[0].requests[0]
    assert isinstance(first, pb.AccessEvaluationRequest)
    assert (first.subject.type, first.subject.id, first.action.name) == ("user", "ada", "viewer")


def test_a_model_maps_actions_to_relations(store: AuthorizationService) -> None:
    model = mirrors.AuthorizationModel(
        version=1,
        resource_types=[
            mirrors.AuthorizationModelResourceType(
                name="doc",
                actions=[
                    mirrors.AuthorizationModelAction(name="read", relations=["viewer", "owner"])
                ],
            )
        ],
    )
    model_id = store.set_model(model)
    with AuthorizationClient() as client:
        assert client.check("user:ada", "read", "doc:2")
        assert not client.check("user:eve", "read", "doc:2")
        assert client.get_metadata().active_model_id == model_id
        assert sorted(a.name for a in client.iter_actions("user:ada", "doc:2")) == ["owner", "read"]


def test_iterators_walk_every_page(
    store: AuthorizationService, recorder: RecordingInterceptor
) -> None:
    for n in range(3, 8):
        store.write("user:ada", "viewer", f"doc:{n}")
    recorder.clear()
    with AuthorizationClient() as client:
        found = list(client.iter_resources("user:ada", "viewer", "doc", page_size=2))
        assert [r.id for r in found] == ["1", "3", "4", "5", "6", "7"]
        assert all(isinstance(r, mirrors.Resource) for r in found)
        pages = recorder.take()
        assert len(pages) == 3
        sent = [p.requests[0] for p in pages]
        assert all(isinstance(r, pb.ResourceSearchRequest) for r in sent)
        assert [getattr(r, "page_token", None) for r in sent] == ["", "offset-2", "offset-4"]
        subjects = list(client.iter_subjects("doc:2", "viewer", "user", page_size=1))
        assert [s.id for s in subjects] == ["bob"]
        everything = list(client.iter_relationships(page_size=3))
        assert len(everything) == 8
        of_ada = client.iter_relationships(subject="user:ada", relation="owner")
        assert [(r.relation, r.resource.id if r.resource else "") for r in of_ada] == [
            ("owner", "2")
        ]


def test_write_relationships(store: AuthorizationService) -> None:
    with AuthorizationClient() as client:
        client.write_relationships(
            [
                ("user:eve", "viewer", "doc:9"),
                mirrors.Relationship(
                    subject=mirrors.Subject(type="user", id="eve"),
                    relation="owner",
                    resource=mirrors.Resource(type="doc", id="9"),
                    properties={"since": "2026"},
                ),
            ],
            deletes=[("user:bob", "viewer", "doc:2")],
        )
        assert client.check("user:eve", "owner", "doc:9")
        assert not client.check("user:bob", "viewer", "doc:2")
        # The raw request form passes through.
        client.write_relationships(
            pb.WriteRelationshipsRequest(
                deletes=[
                    pb.RelationshipKey(
                        subject=pb.Subject(type="user", id="eve"),
                        relation="viewer",
                        resource=pb.Resource(type="doc", id="9"),
                    )
                ]
            )
        )
        assert not client.check("user:eve", "viewer", "doc:9")
        with pytest.raises(HostServiceError) as raised:
            client.write_relationships(pb.WriteRelationshipsRequest(writes=[pb.Relationship()]))
        assert raised.value.code is grpc.StatusCode.INVALID_ARGUMENT
    owner = [r for r in store.relationships() if r.relation == "owner" and r.subject]
    assert any(r.properties == {"since": "2026"} for r in owner)


def question(subject: str, action: str, resource: str) -> dict[str, object]:
    """An access question in protobuf JSON form, as the reference's callers wrote it."""
    (s_type, s_id), (r_type, r_id) = subject.split(":"), resource.split(":")
    return {
        "subject": {"type": s_type, "id": s_id},
        "action": {"name": action},
        "resource": {"type": r_type, "id": r_id},
    }


def test_raw_forms_return_the_messages(store: AuthorizationService) -> None:
    client = Authorization()
    decision = client.evaluate(question("user:ada", "viewer", "doc:1"))
    assert isinstance(decision, pb.AccessDecision) and decision.allowed
    as_message = pb.AccessEvaluationRequest(
        subject=pb.Subject(type="user", id="bob"),
        action=pb.Action(name="viewer"),
        resource=pb.Resource(type="doc", id="1"),
    )
    assert not client.evaluate(as_message).allowed
    # The raw form takes a per-call timeout too, but no other keyword beside the message.
    assert not client.evaluate(as_message, timeout=5).allowed
    with pytest.raises(TypeError, match="either"):
        client.evaluate(as_message, subject="user:ada")  # type: ignore[call-overload]
    assert client.evaluate(mirrors.AccessEvaluationRequest.from_pb(as_message)).allowed is False
    ada = pb.Subject(type="user", id="ada")
    page = client.search_resources(
        pb.ResourceSearchRequest(subject=ada, action=pb.Action(name="viewer"), resource_type="doc")
    )
    assert isinstance(page, pb.ResourceSearchResponse) and [r.id for r in page.resources] == ["1"]
    search = {
        "resource": {"type": "doc", "id": "2"},
        "action": {"name": "viewer"},
        "subjectType": "user",
    }
    assert [s.id for s in client.search_subjects(search).subjects] == ["bob"]
    doc2 = pb.Resource(type="doc", id="2")
    actions = client.search_actions(pb.ActionSearchRequest(subject=ada, resource=doc2))
    assert [a.name for a in actions.actions] == ["owner"]
    assert len(client.read_relationships(pb.ReadRelationshipsRequest()).relationships) == 3
    assert "direct-relationships" in client.get_metadata().capabilities
    with pytest.raises(HostServiceError) as raised:
        client.read_relationships({"pageToken": "bogus"})
    assert raised.value.code is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(TypeError, match="AccessEvaluationRequest"):
        client.evaluate(42)
    with pytest.raises(ValueError, match="evaluate"):
        client.evaluate({"nope": 1})


def test_authorization_is_shared_until_closed(store: AuthorizationService) -> None:
    first = Authorization()
    assert Authorization() is first and Request().authorization() is first
    first.close()
    second = Authorization()
    assert second is not first and second.check("user:ada", "viewer", "doc:1")
    second.close()


def test_authorization_follows_the_environment(
    store: AuthorizationService, socket_path: Callable[[str], Path], bind_env: EnvBinder
) -> None:
    first = Authorization()
    with serve_authorization(socket_path("other")) as other:
        bind_env(AUTHORIZATION, other.target)
        second = Authorization()
        assert second is not first and not second.check("user:ada", "viewer", "doc:1")


def test_typed_forms_refuse_bad_input(store: AuthorizationService) -> None:
    with AuthorizationClient() as client:
        with pytest.raises(ValueError, match="'type:id'"):
            client.check("ada", "viewer", "doc:1")
        with pytest.raises(ValueError, match="action name"):
            client.check("user:ada", " ", "doc:1")
        with pytest.raises(TypeError, match="resource must be"):
            client.check("user:ada", "viewer", 7)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="page_size"):
            list(client.iter_relationships(page_size=-1))
        with pytest.raises(TypeError, match="tuple"):
            client.check_many([("user:ada", "viewer")])  # type: ignore[list-item]


@pytest.mark.parametrize("form", ["path", "unix", "tcp"])
def test_every_target_form_and_explicit_arguments(
    form: str, socket_path: Callable[[str], Path], bind_env: EnvBinder
) -> None:
    address = "tcp://127.0.0.1:0" if form == "tcp" else str(socket_path("az-" + form))
    with serve_authorization(address, relay_token=RELAY) as server:
        server.service.write("user:a", "viewer", "doc:1")
        target = server.target if form != "unix" else f"unix://{server.target}"
        bind_env(AUTHORIZATION, target, token=RELAY)
        with AuthorizationClient() as client:
            assert client.check("user:a", "viewer", "doc:1")
        bind_env(AUTHORIZATION, "/nowhere.sock", token="wrong")
        with AuthorizationClient(target, RELAY) as client:
            assert client.check("user:a", "viewer", "doc:1")
        with AuthorizationClient(target) as client, pytest.raises(HostServiceError) as raised:
            client.check("user:a", "viewer", "doc:1")  # the token from the environment: wrong
        assert raised.value.code is grpc.StatusCode.UNAUTHENTICATED


def test_a_missing_variable_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="GESTALT_AUTHORIZATION_SOCKET is not set"):
        AuthorizationClient()


class LoopingProvider:
    """A broken provider that hands back the page token it was given, forever."""

    def read_relationships(
        self, request: pb.ReadRelationshipsRequest, context: grpc.ServicerContext
    ) -> pb.ReadRelationshipsResponse:
        return pb.ReadRelationshipsResponse(
            relationships=[pb.Relationship(relation="r")], next_page_token="same"
        )


def test_a_repeated_page_token_stops_the_iterator(
    socket_path: Callable[[str], Path], bind_env: EnvBinder
) -> None:
    with serve(
        LocalServer,
        parse_address(socket_path("loop")),
        LoopingProvider,
        add_authorization_provider_to_server,
        name="loop",
    ) as server:
        bind_env(AUTHORIZATION, server.target)
        with AuthorizationClient() as client, pytest.raises(HostServiceError, match="repeated"):
            list(client.iter_relationships())
        with AuthorizationClient() as client, pytest.raises(HostServiceError) as raised:
            client.check("user:a", "viewer", "doc:1")
        assert raised.value.code is grpc.StatusCode.UNIMPLEMENTED


def test_eight_threads(store: AuthorizationService) -> None:
    client = Authorization()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                store.write(f"user:t{n}", "viewer", f"doc:{n}-{i}")
                assert client.check(f"user:t{n}", "viewer", f"doc:{n}-{i}")
                assert not client.check(f"user:t{n}", "owner", f"doc:{n}-{i}")
            assert (
                len(list(client.iter_resources(f"user:t{n}", "viewer", "doc", page_size=3))) == 10
            )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []


def test_async_client(store: AuthorizationService) -> None:
    async def main() -> None:
        async with AsyncAuthorizationClient() as client:
            answers = await asyncio.gather(
                client.check("user:ada", "viewer", "doc:1"),
                client.check("user:bob", "viewer", "doc:1"),
                client.check_many([("user:bob", "viewer", "doc:2")]),
            )
            assert list(answers) == [True, False, [True]]
            resources = [r.id async for r in client.iter_resources("user:ada", "viewer", "doc")]
            assert resources == ["1"]
            await client.write_relationships([("user:cy", "viewer", "doc:1")])
            subjects = client.iter_subjects("doc:1", "viewer", "user", page_size=1)
            assert [s.id async for s in subjects] == ["ada", "cy"]
            relationships = [r async for r in client.iter_relationships(relation="owner")]
            assert len(relationships) == 1
            assert (await client.evaluate(question("user:cy", "viewer", "doc:1"))).allowed
            assert (await client.get_metadata()).capabilities
            with pytest.raises(HostServiceError) as raised:
                await client.read_relationships({"pageToken": "bogus"})
            assert raised.value.code is grpc.StatusCode.INVALID_ARGUMENT

    asyncio.run(main())
