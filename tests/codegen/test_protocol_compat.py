"""Our compiled protos match the host's descriptors (tests/data/protocol) field by field."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from codegen import protoc
from codegen.generate import find_protos
from tests.conftest import REPO

PROTO_ROOT = REPO / "proto"


def _ours() -> dict[str, dict[str, Any]]:
    protos = find_protos(PROTO_ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        fds = protoc.compile_protos(PROTO_ROOT, protos, Path(tmp))
    result = {}
    for fd in fds.file:
        if not fd.name.startswith("gestalt/"):
            continue
        d = json_format.MessageToDict(fd, preserving_proto_field_name=True)
        d.pop("source_code_info", None)
        # The host names files v1/<x>.proto; ours sit at gestalt/gen/v1/ so that protoc's
        # Python imports come out as gestalt.gen.v1. File names never reach the wire.
        d["name"] = "v1/" + Path(fd.name).name
        if "dependency" in d:
            d["dependency"] = [dep.replace("gestalt/gen/v1/", "v1/") for dep in d["dependency"]]
        result[Path(fd.name).stem] = d
    return result


OURS = _ours()


def _diff(path: str, want: Any, have: Any, out: list[str]) -> None:
    if isinstance(want, dict) and isinstance(have, dict):
        for key in sorted(set(want) | set(have)):
            _diff(f"{path}.{key}", want.get(key), have.get(key), out)
    elif isinstance(want, list) and isinstance(have, list) and len(want) == len(have):
        for i, (w, h) in enumerate(zip(want, have, strict=True)):
            label = w.get("name", i) if isinstance(w, dict) else i
            _diff(f"{path}[{label}]", w, h, out)
    elif want != have:
        out.append(f"{path}: host has {want!r}, ours has {have!r}")


def test_every_host_file_has_a_proto(test_data: Path) -> None:
    host = sorted(p.stem for p in (test_data / "protocol").glob("*.json"))
    assert host == sorted(OURS)
    assert len(host) == 11


@pytest.mark.parametrize("name", sorted(OURS))
def test_descriptor_matches_host(test_data: Path, name: str) -> None:
    want = json.loads((test_data / "protocol" / f"{name}.json").read_text())
    problems: list[str] = []
    _diff(name, want, OURS[name], problems)
    assert not problems, "\n".join(problems)


def test_comparison_catches_a_changed_field_number(test_data: Path) -> None:
    want = json.loads((test_data / "protocol" / "cache.json").read_text())
    have = json.loads(json.dumps(OURS["cache"]))
    have["message_type"][0]["field"][0]["number"] = 99
    problems: list[str] = []
    _diff("cache", want, have, problems)
    assert problems == [
        "cache.message_type[CacheSetEntry].field[key].number: host has 1, ours has 99"
    ]


def test_eighteen_services() -> None:
    assert sum(len(d.get("service", [])) for d in OURS.values()) == 18
