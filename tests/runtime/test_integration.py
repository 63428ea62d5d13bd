"""Integration plugins served by ``python -m gestalt._runtime``, replayed against the goldens.

Every recorded call of ``ex1_search``, ``ex2_weather`` and ``ex5_hooks_errors`` (their
``rpc_results.json``) is sent again, in order, to the example launched as the host launches
it, through the generated clients. Results must equal the reference's, except for the entries
in ``DIFFERENCES``: each is a deliberate improvement named by its quirk in contract section 10,
and the test asserts our behaviour for it. Execute bodies are compared as parsed JSON (map key
order is not part of the contract; ``3 == 3.0`` where configure now gives integers, quirk 36).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, json_format

from gestalt.gen.support import RPCError
from gestalt.gen.v1 import plugin_clients, plugin_pb2, runtime_clients
from tests.runtime.harness import EXAMPLES, Provider

SANITIZED = "hook failed; details are in the provider log"

Patch = Callable[[dict[str, Any]], dict[str, Any]]


def _ok_body(body: Any, status: int = 200) -> Patch:
    return lambda entry: {"code": "OK", "status": status, "body_json": body}


def _error(code: str, details: str) -> Patch:
    return lambda entry: {"code": code, "details": details}


def _bad_request(message: str) -> Patch:
    return _ok_body({"error": message}, 400)


def _catalog_patch(change: Callable[[dict[str, Any]], object]) -> Patch:
    def patch(entry: dict[str, Any]) -> dict[str, Any]:
        expected: dict[str, Any] = json.loads(json.dumps(_observable(entry)))
        change(expected["response"]["catalog"]["operations"][0])
        return expected

    return patch


HITS = {"query": "cats", "hits": [{"id": "cats-0", "score": 1.0}, {"id": "cats-1", "score": 0.5}]}
WEATHER = {
    "city": "Oslo",
    "days": 5,
    "configured": {"name": "weather", "units": "metric", "retries": 3},
}

#: (example, rpc label) -> what we answer instead of the reference, and why.
DIFFERENCES: dict[tuple[str, str], Patch] = {
    # quirk 1: integral JSON numbers decode into int fields.
    (
        "ex1_search",
        "Execute: int field sent as JSON number 2 (a Struct carries every number as a double)",
    ): _ok_body(HITS),
    ("ex2_weather", "Execute forecast, days sent as JSON number (as a POST body would)"): _ok_body(
        WEATHER
    ),
    # quirk 9: 400 messages name the field instead of quoting Python exception text.
    ("ex1_search", "Execute: required field missing"): _bad_request(
        "query: required value is missing"
    ),
    ("ex1_search", "Execute: params unset"): _bad_request("query: required value is missing"),
    ("ex1_search", "Execute: bool field given 'yes'"): _bad_request(
        "exact: expected a boolean, got 'yes'"
    ),
    # quirk 11: a primitive input is one named parameter, and that key is required.
    ("ex1_search", "Execute: primitive str input, one key of any name"): _bad_request(
        "name: required value is missing"
    ),
    ("ex1_search", "Execute: primitive str input, two keys"): _bad_request(
        "name: required value is missing"
    ),
    ("ex1_search", "Execute: primitive str input given a number"): _bad_request(
        "name: required value is missing"
    ),
    # quirk 12: session catalogs keep parameter defaults and normalise methods.
    ("ex2_weather", "GetSessionCatalog (hook returns a mapping)"): _catalog_patch(
        lambda op: op["parameters"][0].update({"default": "x"})
    ),
    ("ex5_hooks_errors", "GetSessionCatalog, hook mode=valid"): _catalog_patch(
        lambda op: (op.update({"method": "POST"}), op["parameters"][0].update({"default": 3.0}))
    ),
    # quirk 12: the host rejects catalogs that are not catalogs; say so at the source.
    ("ex5_hooks_errors", "GetSessionCatalog, hook mode=badtype"): _error(
        "UNKNOWN",
        "session catalog: the hook must return a gestalt.Catalog, a mapping or None, not list",
    ),
    ("ex5_hooks_errors", "GetSessionCatalog, hook mode=empty"): _error(
        "UNKNOWN", "session catalog: catalog has no operations; the host rejects an empty catalog"
    ),
    # quirk 13: exception text stays in the provider's log.
    ("ex2_weather", "ResolveHTTPSubject path=/boom"): _error(
        "UNKNOWN", f"resolve http subject: {SANITIZED}"
    ),
    ("ex5_hooks_errors", "StartProvider where the configure hook raises"): _error(
        "UNKNOWN", f"configure provider: {SANITIZED}"
    ),
    ("ex5_hooks_errors", "GetSessionCatalog, hook mode=raise"): _error(
        "UNKNOWN", f"session catalog: {SANITIZED}"
    ),
    ("ex5_hooks_errors", "PostConnect, hook mode=raise"): _error(
        "UNKNOWN", f"post connect: {SANITIZED}"
    ),
    # quirk 14: non-string metadata gets a message that says what is wrong.
    ("ex5_hooks_errors", "PostConnect, hook mode=nonstr"): _error(
        "UNKNOWN", "post connect: metadata keys and values must be strings; 'count' has a int value"
    ),
}

#: Exception texts the examples raise; they must reach stderr, never the host.
LEAKS = {
    "ex2_weather": ["bad things"],
    "ex5_hooks_errors": ["bad config", "catalog backend down", "post connect failed"],
}

EXAMPLE_TARGETS = {
    "ex1_search": (EXAMPLES / "ex1_search", "search_plugin:plugin"),
    "ex2_weather": (EXAMPLES / "ex2_weather" / "weather", "provider"),
    "ex5_hooks_errors": (EXAMPLES / "ex5_hooks_errors", "hooks_plugin:plugin"),
}

REQUEST_TYPES: dict[str, tuple[str, type[Any]]] = {
    "GetMetadata": ("get_metadata", empty_pb2.Empty),
    "StartProvider": ("start_provider", plugin_pb2.StartProviderRequest),
    "Execute": ("execute", plugin_pb2.ExecuteRequest),
    "GetSessionCatalog": ("get_session_catalog", plugin_pb2.GetSessionCatalogRequest),
    "PostConnect": ("post_connect", plugin_pb2.PostConnectRequest),
    "ResolveHTTPSubject": ("resolve_http_subject", plugin_pb2.ResolveHTTPSubjectRequest),
}


def _observable(entry: dict[str, Any]) -> dict[str, Any]:
    """What a recorded entry says came back, in a comparable form."""
    if entry["code"] != "OK":
        return {"code": entry["code"], "details": entry["details"]}
    if "body_json" in entry:
        return {
            "code": "OK",
            "status": entry["response"]["status"],
            "body_json": entry["body_json"],
        }
    return {"code": "OK", "response": entry["response"]}


def _replay(provider: Provider, entry: dict[str, Any]) -> dict[str, Any]:
    label: str = entry["rpc"]
    if "hook mode=" in label:
        # The recording switched ex5's hooks with an unrecorded set_mode call first.
        mode = label.rsplit("=", 1)[1]
        params = json_format.ParseDict({"mode": mode}, plugin_pb2.ExecuteRequest().params)
        plugin_clients.IntegrationProviderClient(provider.channel).execute(
            plugin_pb2.ExecuteRequest(operation="set_mode", params=params), timeout=15
        )
    if label.startswith("ProviderLifecycle."):
        client: Any = runtime_clients.ProviderLifecycleClient(provider.channel)
        method, request = client.get_provider_identity, empty_pb2.Empty()
    else:
        name = label.split(":")[0].split(" ")[0].split(",")[0]
        attr, request_type = REQUEST_TYPES[name]
        method = getattr(plugin_clients.IntegrationProviderClient(provider.channel), attr)
        request = json_format.ParseDict(entry["request"], request_type())
    try:
        response = method(request, timeout=15)
    except RPCError as exc:
        return {"code": exc.code.name, "details": exc.message}
    data = json_format.MessageToDict(response, preserving_proto_field_name=True)
    if isinstance(response, plugin_pb2.OperationResult):
        return {"code": "OK", "status": response.status, "body_json": json.loads(response.body)}
    return {"code": "OK", "response": data}


def _entries(example: str) -> list[dict[str, Any]]:
    data = json.loads((EXAMPLES / example / "rpc_results.json").read_text())
    return [entry for entry in data if "rpc" in entry]


@pytest.fixture(scope="module", params=sorted(EXAMPLE_TARGETS))
def replayed(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[Any], str]]:
    example = request.param
    root, target = EXAMPLE_TARGETS[example]
    provider = Provider(root, target)
    results = []
    try:
        for entry in _entries(example):
            expected = _observable(entry)
            patch = DIFFERENCES.get((example, entry["rpc"]))
            if patch is not None:
                expected = patch(entry)
            results.append((entry["rpc"], expected, _replay(provider, entry)))
    finally:
        exit_code = provider.stop()
    assert exit_code == 0
    yield example, results, provider.stderr()


def test_every_recorded_call_matches(replayed: tuple[str, list[Any], str]) -> None:
    example, results, _ = replayed
    mismatches = [
        f"{label}:\n  expected {expected}\n  got      {got}"
        for label, expected, got in results
        if expected != got
    ]
    assert not mismatches, f"{example}:\n" + "\n".join(mismatches)


def test_differences_are_all_exercised(replayed: tuple[str, list[Any], str]) -> None:
    example, results, _ = replayed
    labels = {label for label, _, _ in results}
    ours = {label for ex, label in DIFFERENCES if ex == example}
    assert ours <= labels


def test_exception_text_goes_to_stderr_only(replayed: tuple[str, list[Any], str]) -> None:
    example, results, stderr = replayed
    for text in LEAKS.get(example, []):
        assert text in stderr
        assert all(text not in json.dumps(got) for _, _, got in results)


def test_lifecycle_is_not_served_for_plugins() -> None:
    root, target = EXAMPLE_TARGETS["ex1_search"]
    with Provider(root, target) as provider:
        client = runtime_clients.ProviderLifecycleClient(provider.channel)
        with pytest.raises(RPCError) as info:
            client.get_provider_identity(empty_pb2.Empty())
    assert info.value.code == grpc.StatusCode.UNIMPLEMENTED
