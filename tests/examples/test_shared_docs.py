"""The shared-docs example: authorization checks, plugin-to-plugin calls and a workflow run.

The harness runs the local authorization store (seeded here through
``harness.services.authorization``) and the local plugin invoker, which routes the
provider's configured name back to the provider itself.
"""

from __future__ import annotations

import json

import pytest

from gestalt.gen.v1.workflow_mirrors import WorkflowRunStatus
from gestalt.local import AuthorizationService
from gestalt.testing import ProviderHarness
from tests.examples.conftest import StartExample

ADA = {"subject": {"id": "ada"}}
BOB = {"subject": {"id": "bob"}}


@pytest.fixture
def docs(start_example: StartExample) -> ProviderHarness:
    """The example, named ``docs``, with ada owning doc 1 and reading doc 2."""
    harness = start_example("shared_docs", name="docs")
    store = authorization(harness)
    store.write("user:ada", "owner", "doc:1")
    store.write("user:ada", "read", "doc:1")
    store.write("user:ada", "read", "doc:2")
    return harness


def authorization(harness: ProviderHarness) -> AuthorizationService:
    """The harness's local authorization store."""
    assert harness.services is not None and harness.services.authorization is not None
    return harness.services.authorization


def test_read_checks_the_store(docs: ProviderHarness) -> None:
    assert docs.invoke("read", {"doc": "1"}, context=ADA).body == {
        "id": "1",
        "text": "Quarterly plan",
    }
    refused = docs.invoke("read", {"doc": "3"}, context=ADA)
    assert (refused.status, refused.error) == (403, "you may not read document 3")
    assert docs.invoke("read", {"doc": "1"}).status == 401


def test_share_writes_a_relationship_the_next_check_sees(docs: ProviderHarness) -> None:
    assert docs.invoke("read", {"doc": "1"}, context=BOB).status == 403
    assert docs.invoke("share", {"doc": "2", "user": "bob"}, context=ADA).status == 403
    assert docs.invoke("share", {"doc": "1", "user": "bob"}, context=ADA).ok
    assert authorization(docs).check("user:bob", "read", "doc:1")
    assert docs.invoke("read", {"doc": "1"}, context=BOB).ok


def test_readable_walks_every_page(docs: ProviderHarness) -> None:
    authorization(docs).write("user:ada", "read", "doc:3")
    assert docs.invoke("readable", context=ADA).body == ["1", "2", "3"]
    assert docs.invoke("readable", context=BOB).body == []


def test_digest_calls_the_plugin_through_the_invoker(docs: ProviderHarness) -> None:
    result = docs.invoke("digest", {"docs": ["1", "3", "9"]}, context=ADA)
    assert result.body == {
        "texts": {"1": "Quarterly plan"},
        "refused": {"3": 403, "9": 404},
    }
    # The invoked calls carry the caller's context: bob gets nothing.
    bob = docs.invoke("digest", {"docs": ["1"]}, context=BOB)
    assert bob.body == {"texts": {}, "refused": {"1": 403}}


def test_digest_async_runs_the_calls_concurrently(docs: ProviderHarness) -> None:
    result = docs.invoke("digest_async", {"docs": ["1", "2"]}, context=ADA)
    assert result.body == {"1": "Quarterly plan", "2": "Team roster"}
    assert docs.invoke("digest_async", {"docs": ["1", "3"]}, context=ADA).status == 500


def test_digest_later_runs_a_workflow_acting_for_the_caller(docs: ProviderHarness) -> None:
    started = docs.invoke("digest_later", {"docs": ["1", "3"]}, context=ADA)
    assert started.ok, started.error
    assert isinstance(started.body, dict)
    assert docs.services is not None and docs.services.workflows is not None
    run = docs.services.workflows.wait_for_run(str(started.body["run"]), timeout=30)
    assert run.status is WorkflowRunStatus.SUCCEEDED, run.status_message
    assert json.loads(run.result_body) == {
        "texts": {"1": "Quarterly plan"},
        "refused": {"3": 403},
    }
    assert docs.invoke("digest_later", {"docs": ["1"]}).status == 401
