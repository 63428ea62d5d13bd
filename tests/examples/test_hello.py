"""The hello integration example, started by the testing harness in both modes.

Operations go through ``harness.invoke``/``ainvoke``; the hooks (session catalog, post
connect) through the generated ``IntegrationProviderClient`` on the harness's channel, as
the host calls them. ``examples/run_hello.py`` runs as a user would run it.
"""

from __future__ import annotations

import subprocess
import sys

from gestalt.gen.v1 import plugin_clients, plugin_pb2
from tests.examples.conftest import EXAMPLES, StartExample

ADMIN = {"subject": {"id": "user:root", "displayName": "Root"}, "access": {"role": "admin"}}


def test_greet_counts_and_reports_the_caller(start_example: StartExample) -> None:
    hello = start_example("hello")
    first = hello.invoke("greet", {"name": "Ann"})
    assert (first.status, first.body) == (
        200,
        {"message": "Hello Ann. (asked by someone)", "times": 1},
    )
    second = hello.invoke("greet", {"name": "Ann", "excited": True}, context=ADMIN)
    assert second.ok
    assert second.body == {"message": "Hello Ann! (asked by Root)", "times": 2}


def test_bad_input_and_unknown_operations_are_client_errors(start_example: StartExample) -> None:
    hello = start_example("hello")
    empty = hello.invoke("greet", {"name": "  "})
    assert (empty.status, empty.body) == (400, {"error": "name must not be empty"})
    assert not empty.ok
    wrong_type = hello.invoke("greet", {"name": 7})
    assert wrong_type.status == 400
    assert "name" in wrong_type.error
    assert hello.invoke("greet", {}).status == 400
    unknown = hello.invoke("gret", {"name": "Ann"})
    # The host's body, and the explanation for the test's author.
    assert (unknown.status, unknown.body) == (404, {"error": "unknown operation"})
    assert unknown.error == (
        "unknown operation 'gret' (did you mean 'greet'?); the operations are: greet, stats, reset"
    )
    assert "the operations are: greet, stats, reset" in repr(unknown)


def test_stats_and_admin_reset(start_example: StartExample) -> None:
    hello = start_example("hello")
    hello.invoke("greet", {"name": "Bo"})
    hello.invoke("greet", {"name": "Bo"})
    hello.invoke("greet", {"name": "Cy"})
    assert hello.invoke("stats").body == {"Bo": 2, "Cy": 1}
    reset = hello.invoke("reset", context=ADMIN)
    assert (reset.status, reset.body) == (200, {"forgotten": 2})
    assert hello.invoke("stats").body == {}


async def test_ainvoke(start_example: StartExample) -> None:
    hello = start_example("hello")
    result = await hello.ainvoke("greet", {"name": "Async"})
    assert result.body == {"message": "Hello Async. (asked by someone)", "times": 1}
    unknown = await hello.ainvoke("nope")
    assert (unknown.status, unknown.body) == (404, {"error": "unknown operation"})
    assert unknown.error == "unknown operation 'nope'; the operations are: greet, stats, reset"


def test_catalog_marks_read_only_and_role_restricted_operations(
    start_example: StartExample,
) -> None:
    catalog = start_example("hello").catalog()
    assert catalog["name"] == "hello"
    ops = {op["id"]: op for op in catalog["operations"]}
    assert list(ops) == ["greet", "stats", "reset"]
    assert ops["stats"]["method"] == "GET"
    assert ops["stats"]["readOnly"] is True
    assert ops["reset"]["allowedRoles"] == ["admin"]
    assert "readOnly" not in ops["reset"]
    assert "allowedRoles" not in ops["greet"]
    assert ops["greet"]["parameters"] == [
        {"name": "name", "type": "string", "description": "the name to greet", "required": True},
        {
            "name": "excited",
            "type": "boolean",
            "description": "end with an exclamation mark",
            "default": False,
        },
    ]


def test_metadata_announces_both_hooks(start_example: StartExample) -> None:
    metadata = start_example("hello").metadata
    assert isinstance(metadata, plugin_pb2.ProviderMetadata)
    assert metadata.supports_session_catalog
    assert metadata.supports_post_connect


def test_session_catalog_adds_audit_for_admins_only(start_example: StartExample) -> None:
    client = plugin_clients.IntegrationProviderClient(start_example("hello").channel)
    admin = plugin_pb2.GetSessionCatalogRequest(
        context=plugin_pb2.RequestContext(access=plugin_pb2.AccessContext(role="admin"))
    )
    catalog = client.get_session_catalog(admin, timeout=10).catalog
    assert catalog.name == "hello"
    assert [(op.id, op.method, op.title) for op in catalog.operations] == [
        ("audit", "GET", "Audit greetings")
    ]
    viewer = plugin_pb2.GetSessionCatalogRequest(
        context=plugin_pb2.RequestContext(access=plugin_pb2.AccessContext(role="viewer"))
    )
    assert not client.get_session_catalog(viewer, timeout=10).HasField("catalog")


def test_post_connect_keeps_the_region(start_example: StartExample) -> None:
    client = plugin_clients.IntegrationProviderClient(start_example("hello").channel)
    token = plugin_pb2.PostConnectCredential(
        subject_id="user:1", integration="hello", metadata_json='{"region": "eu-west-1"}'
    )
    response = client.post_connect(plugin_pb2.PostConnectRequest(token=token), timeout=10)
    assert dict(response.metadata) == {"region": "eu-west-1"}
    bare = client.post_connect(plugin_pb2.PostConnectRequest(), timeout=10)
    assert dict(bare.metadata) == {"region": "unknown"}


def test_run_hello_script() -> None:
    """``python examples/run_hello.py``: dev host, one invoke, Ctrl-C; exit status 0."""
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / "run_hello.py")],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "gestalt dev: hello:plugin (integration)" in run.stdout
    assert '"status": 200' in run.stdout
    assert "Hello World. (asked by someone)  (first answer " in run.stdout
    assert run.stdout.rstrip().endswith("stopped")
    assert not (EXAMPLES / "hello" / ".gestalt" / "dev.json").exists()
