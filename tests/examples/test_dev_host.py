"""Every example starts under the dev host (``gestalt dev``'s ``DevHost``): embedded services,
the host's launch, and its start-up handshake for the example's kind."""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
import pytest

from gestalt._authoring.providers import ProviderKind
from gestalt._devtools.devhost import DevHost, run_invoke
from gestalt.gen.v1 import plugin_pb2, runtime_pb2
from tests.conftest import REPO

EXAMPLES = sorted(p.parent.name for p in (REPO / "examples").glob("*/pyproject.toml"))
KINDS = {
    "auth_provider": runtime_pb2.PROVIDER_KIND_AUTHENTICATION,
    "cache_provider": runtime_pb2.PROVIDER_KIND_CACHE,
    "s3_provider": runtime_pb2.PROVIDER_KIND_S3,
    "secrets_provider": runtime_pb2.PROVIDER_KIND_SECRETS,
}


def test_every_example_is_listed() -> None:
    assert {"hello", "notes", "shared_docs", *KINDS} == set(EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_starts_under_the_dev_host(example: str, tmp_path: Path) -> None:
    root = tmp_path / example
    shutil.copytree(REPO / "examples" / example, root, ignore=shutil.ignore_patterns(".gestalt"))
    config = {"path": str(root / "secrets.json")} if example == "secrets_provider" else {}
    host = DevHost(root, config=config)
    try:
        host.start()
        if host.kind is ProviderKind.INTEGRATION:
            assert isinstance(host.metadata, plugin_pb2.ProviderMetadata)
            assert host.describe()["operations"]
        else:
            assert host.metadata.kind == KINDS[example]
        assert (root / ".gestalt" / "dev.json").exists()
    finally:
        host.stop()
    assert not (root / ".gestalt" / "dev.json").exists()
    assert (root / ".gestalt" / "data").is_dir()


class _Quiet:
    """An ``Output`` that records instead of printing."""

    as_json = True
    color = False

    def __init__(self) -> None:
        self.documents: list[object] = []

    def style(self, text: str, code: str) -> str:
        return text

    def line(self, text: str = "") -> None:
        return None

    def document(self, data: object) -> None:
        self.documents.append(data)


def test_notes_through_the_dev_host(tmp_path: Path) -> None:
    root = tmp_path / "notes"
    shutil.copytree(REPO / "examples" / "notes", root)
    host = DevHost(root)
    host.start()
    try:
        out = _Quiet()
        params = {"id": "n1", "author": "ann", "text": "hi"}
        assert run_invoke(root, "add_note", params, "", out) == 0  # type: ignore[arg-type]
        assert run_invoke(root, "note_count", {}, "", out) == 0  # type: ignore[arg-type]
        assert out.documents[-1] == {"status": 200, "body": {"count": 1, "cached": False}}
    finally:
        host.stop()


def test_shared_docs_calls_itself_under_the_dev_host(tmp_path: Path) -> None:
    import json

    from gestalt.gen.v1 import plugin_clients

    root = tmp_path / "shared_docs"
    shutil.copytree(REPO / "examples" / "shared_docs", root)
    host = DevHost(root, name="docs")
    host.start()
    try:
        services = host.services
        services.authorization.write("user:ada", "read", "doc:1")
        # `gestalt invoke` sends the dev host's invocation token (from dev.json): the
        # plugin's call to itself goes through, and refuses the anonymous caller.
        out = _Quiet()
        assert run_invoke(root, "digest", {"docs": ["1"]}, "", out) == 0  # type: ignore[arg-type]
        assert out.documents[-1] == {"status": 200, "body": {"texts": {}, "refused": {"1": 401}}}
        # As the host would call it for ada, with a token minted for her call.
        context = plugin_pb2.RequestContext(subject=plugin_pb2.SubjectContext(id="ada"))
        request = plugin_pb2.ExecuteRequest(
            operation="digest",
            context=context,
            invocation_token=services.plugin_invoker.mint(context=context),
        )
        request.params.update({"docs": ["1", "2"]})
        assert host.provider is not None
        with grpc.insecure_channel(f"unix:{host.provider.socket}") as channel:
            client = plugin_clients.IntegrationProviderClient(channel)
            result = client.execute(request, timeout=30)
        assert json.loads(result.body) == {
            "texts": {"1": "Quarterly plan"},
            "refused": {"2": 403},
        }
    finally:
        host.stop()
