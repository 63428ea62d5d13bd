"""Wrong uses of the invoker, the authorization client and the authorization provider base:
mypy must reject each marked line."""

from __future__ import annotations

from gestalt import Authorization, AuthorizationProvider, InvokeResponse, PluginInvoker, Request
from gestalt.gen.v1.authorization_mirrors import AccessEvaluationRequest


def wrong(request: Request) -> None:
    invoker = PluginInvoker("token")
    invoker.invoke("p", "op", connection=1)  # E: arg-type
    invoker.invoke("p", "op", "not params")  # E: arg-type
    result: InvokeResponse = invoker.invoke("p", "op")
    status: str = result.status  # E: assignment
    ok: str = result.ok  # E: assignment
    invoker.exchange_invocation_token(ttl_seconds="60")  # E: arg-type
    client = Authorization()
    allowed: str = client.check("user:a", "read", "doc:1")  # E: assignment
    client.check(1, "read", "doc:1")  # E: arg-type
    client.iter_relationships("user:a")  # E: call-arg
    for resource in client.iter_resources("user:a", "read", "doc"):
        print(resource.name)  # E: attr-defined
    request.invoker().invoke_graphql("p", 42)  # E: arg-type
    del status, ok, allowed


class WrongProvider(AuthorizationProvider):
    def evaluate(self, request: AccessEvaluationRequest) -> bool:  # E: override
        return True

    def get_metadata(self, request: object) -> None:  # E: override
        return None
