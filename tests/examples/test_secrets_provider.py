"""The secrets provider example: secrets from a JSON file named in the config."""

from __future__ import annotations

import json
import os
from pathlib import Path

import grpc
import pytest

from gestalt._runtime.launch import LaunchError
from gestalt.gen.support import RPCError
from gestalt.gen.v1 import runtime_pb2, secrets_clients, secrets_pb2
from gestalt.testing import ProviderHarness
from tests.examples.conftest import StartExample


def get(harness: ProviderHarness, name: str) -> str:
    """``GetSecret`` through the generated client."""
    client = secrets_clients.SecretsProviderClient(harness.channel)
    return client.get_secret(secrets_pb2.GetSecretRequest(name=name), timeout=10).value


def write_secrets(path: Path, secrets: object) -> None:
    """Write the file and move its modification time on, as a later edit would."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(json.dumps(secrets), encoding="utf-8")
    os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def test_reads_the_configured_file_and_follows_edits(
    start_example: StartExample, tmp_path: Path
) -> None:
    path = tmp_path / "vault.json"
    write_secrets(path, {"db": "s3cret", "empty": ""})
    harness = start_example("secrets_provider", config={"path": str(path)})
    assert isinstance(harness.metadata, runtime_pb2.ProviderIdentity)
    assert harness.metadata.kind == runtime_pb2.PROVIDER_KIND_SECRETS
    assert get(harness, "db") == "s3cret"
    assert get(harness, "empty") == ""
    write_secrets(path, {"db": "rotated"})
    assert get(harness, "db") == "rotated"
    with pytest.raises(RPCError) as missing:
        get(harness, "empty")
    assert missing.value.code is grpc.StatusCode.NOT_FOUND
    assert missing.value.message == "secret 'empty' not found"


def test_default_file_beside_the_module(start_example: StartExample) -> None:
    harness = start_example("secrets_provider")
    assert get(harness, "api-key") == "demo-api-key-123"
    with pytest.raises(RPCError) as missing:
        get(harness, "nope")
    assert missing.value.code is grpc.StatusCode.NOT_FOUND


def test_file_broken_after_start_fails_calls(start_example: StartExample, tmp_path: Path) -> None:
    path = tmp_path / "vault.json"
    write_secrets(path, {"db": "x"})
    harness = start_example("secrets_provider", config={"path": str(path)})
    write_secrets(path, ["not", "an", "object"])
    with pytest.raises(RPCError) as failed:
        get(harness, "db")
    assert failed.value.code is grpc.StatusCode.UNKNOWN
    assert failed.value.message == "get secret: failed; details are in the provider log"


@pytest.mark.parametrize(
    "content",
    ["{not json", '["a list"]', '{"n": 1}', None],
    ids=["invalid-json", "not-an-object", "non-string-value", "missing-file"],
)
def test_unusable_file_fails_the_start(
    start_example: StartExample, tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "vault.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(LaunchError, match="configure provider: failed"):
        start_example("secrets_provider", config={"path": str(path)})
