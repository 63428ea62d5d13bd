"""How hook outcomes reach the host, through a plugin process launched as the host launches it.

An HTTP-subject hook rejects a request by raising ``HTTPSubjectResolutionError`` or the public
``gestalt.Error(status, message)``: the host gets ``reject_status`` / ``reject_message``. The
same exceptions from any other hook are failures whose text stays in the provider's log.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import struct_pb2

from gestalt.gen.support import RPCError
from gestalt.gen.v1 import plugin_clients, plugin_pb2
from tests.runtime.harness import Provider

PLUGINS = Path(__file__).parent / "plugins"
TIMEOUT = 10.0
SANITIZED = "hook failed; details are in the provider log"


@pytest.fixture(scope="module")
def subjects() -> Iterator[Provider]:
    """The ``subjects`` plugin, served for the whole module."""
    with Provider(PLUGINS, "subjects:plugin") as provider:
        yield provider
        assert provider.stop() == 0


def client(provider: Provider) -> plugin_clients.IntegrationProviderClient:
    """The integration client on the provider's channel."""
    return plugin_clients.IntegrationProviderClient(provider.channel)


def resolve(provider: Provider, path: str) -> plugin_pb2.ResolveHTTPSubjectResponse:
    """ResolveHTTPSubject for a GET of ``path``."""
    request = plugin_pb2.ResolveHTTPSubjectRequest(
        request=plugin_pb2.HTTPSubjectRequest(binding="hook", method="GET", path=path)
    )
    return client(provider).resolve_http_subject(request, timeout=TIMEOUT)


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/error", 403, "members only"),
        ("/error-default", 429, "Too Many Requests"),
        ("/rejection", 401, "who are you?"),
    ],
)
def test_http_subject_hook_rejects_with_gestalt_error(
    subjects: Provider, path: str, status: int, message: str
) -> None:
    response = resolve(subjects, path)
    assert (response.reject_status, response.reject_message) == (status, message)
    assert not response.HasField("subject")


def test_http_subject_hook_accepts(subjects: Provider) -> None:
    response = resolve(subjects, "/ok")
    assert response.reject_status == 0
    assert (response.subject.id, response.subject.kind) == ("user:1", "user")


@pytest.mark.parametrize(
    ("path", "details"),
    [
        # Status 0 would read as "not rejected" to the host: a failure, never an acceptance.
        ("/error-bad-status", "rejection status must be between 100 and 599, not 0"),
        ("/boom", SANITIZED),
    ],
)
def test_http_subject_hook_failures_stay_sanitised(
    subjects: Provider, path: str, details: str
) -> None:
    with pytest.raises(RPCError) as info:
        resolve(subjects, path)
    assert info.value.code == grpc.StatusCode.UNKNOWN
    assert info.value.message == f"resolve http subject: {details}"


@pytest.mark.parametrize("fail", ["error", "rejection"])
def test_other_hooks_raising_a_status_are_sanitised_failures(subjects: Provider, fail: str) -> None:
    config = struct_pb2.Struct()
    config.update({"fail": fail})
    request = plugin_pb2.StartProviderRequest(name="subjects", config=config, protocol_version=3)
    with pytest.raises(RPCError) as info:
        client(subjects).start_provider(request, timeout=TIMEOUT)
    assert (info.value.code, info.value.message) == (
        grpc.StatusCode.UNKNOWN,
        f"configure provider: {SANITIZED}",
    )
    assert f"TOPSECRET-configure-{fail}" in subjects.stderr()


def test_session_catalog_hook_raising_gestalt_error_is_sanitised(subjects: Provider) -> None:
    with pytest.raises(RPCError) as info:
        client(subjects).get_session_catalog(plugin_pb2.GetSessionCatalogRequest(), timeout=TIMEOUT)
    assert (info.value.code, info.value.message) == (
        grpc.StatusCode.UNKNOWN,
        f"session catalog: {SANITIZED}",
    )
    assert "TOPSECRET-catalog" in subjects.stderr()
