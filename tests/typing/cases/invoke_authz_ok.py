# pyright: strict
"""A provider author's use of the plugin invoker and the authorization client, typed forms."""

from __future__ import annotations

import asyncio

from gestalt import (
    AsyncAuthorizationClient,
    AsyncPluginInvoker,
    Authorization,
    AuthorizationProvider,
    GraphQLError,
    GraphQLResponse,
    InvokeResponse,
    Model,
    PluginInvoker,
    Request,
    Response,
)
from gestalt.gen.v1 import authorization_mirrors, authorization_pb2
from gestalt.local import AuthorizationService, LocalServices, PluginInvokerService


class Issue(Model):
    """An issue another plugin answers."""

    id: int
    title: str


def titles(request: Request) -> list[str]:
    with request.invoker() as invoker:
        result: InvokeResponse = invoker.invoke("github", "issues", {"repo": "x"}, connection="c")
        as_published: Response[str] = result
        status: int | None = as_published.status
        issues: list[Issue] = result.raise_for_status().decode(list[Issue])
        ok: bool = result.ok and status == 200
        graph: GraphQLResponse = invoker.invoke_graphql("github", "{ viewer { login } }")
        errors: list[GraphQLError] = graph.errors
        child: str = invoker.exchange_invocation_token(
            grants=[{"plugin": "github", "operations": ["issues"]}], ttl_seconds=60
        )
    del child, errors, ok
    return [issue.title for issue in issues]


def allowed(request: Request) -> bool:
    client = request.authorization()
    assert client is Authorization()
    yes: bool = client.check("user:ada", "read", "doc:1")
    many: list[bool] = client.check_many([("user:ada", "read", "doc:1")])
    docs: list[authorization_mirrors.Resource] = list(client.iter_resources("user:a", "r", "doc"))
    client.write_relationships([("user:ada", "viewer", "doc:2")], deletes=[("user:b", "v", "d:1")])
    raw: authorization_pb2.AccessDecision = client.evaluate({"subject": {"type": "user"}})
    return yes and all(many) and bool(docs) and raw.allowed


async def in_async(token: str) -> list[str]:
    async with AsyncPluginInvoker(token) as invoker, AsyncAuthorizationClient() as client:
        result: InvokeResponse = await invoker.invoke("p", "op")
        if not await client.check("user:a", "read", "doc:1"):
            return []
        subjects = [s.id async for s in client.iter_subjects("doc:1", "read", "user")]
        return [str(result.json()), *subjects]


class OwnersOnly(AuthorizationProvider):
    """An authorization provider: typed methods over mirrors, plain or async."""

    async def evaluate(
        self, request: authorization_mirrors.AccessEvaluationRequest
    ) -> authorization_mirrors.AccessDecision:
        owner = request.resource.id if request.resource else ""
        return authorization_mirrors.AccessDecision(
            allowed=request.subject is not None and request.subject.id == owner
        )

    def get_metadata(self) -> authorization_mirrors.AuthorizationMetadata:
        return authorization_mirrors.AuthorizationMetadata(capabilities=["owners"])


def seed(services: LocalServices) -> None:
    store: AuthorizationService | None = services.authorization
    invoker: PluginInvokerService | None = services.plugin_invoker
    if store is not None and invoker is not None:
        store.write("user:ada", "read", "doc:1")
        token: str = invoker.mint()
        PluginInvoker(token).close()


asyncio.run(in_async("t"))
