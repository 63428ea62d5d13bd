"""Catalog parameters list the JSON type a value travels as, with its format and enum values.

The reference listed every parameter it could not name as ``type: object``; a host (or a person
reading the catalog) then expects a JSON object where the SDK wants an ISO 8601 string, a
base64 string or one of a few values. The same schema must appear in ``catalog_dict()``, the
written ``catalog.yaml`` and (its ``type``) a session catalog built from it, and a value of that
type must decode.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import pathlib
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from google.protobuf import json_format

from gestalt import Model, Plugin, Request, field


class Color(str, enum.Enum):  # noqa: UP042 - the str-mixin spelling users write
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Plain(enum.Enum):
    A = "a"
    B = "b"


class Ratio(enum.Enum):
    HALF = 0.5
    ONE = 1


class Mixed(enum.Enum):
    ONE = 1
    TWO = "two"


class Inputs(Model):
    when: dt.datetime
    day: dt.date
    at: dt.time
    wait: dt.timedelta
    ident: uuid.UUID
    amount: decimal.Decimal
    blob: bytes
    color: Color
    level: Level
    plain: Plain
    mode: Literal["fast", "slow"]
    size: Literal[1, 2, 3]
    ratio: Ratio
    path: pathlib.Path
    maybe_day: dt.date | None = None
    fallback: Color = field(default=Color.BLUE, description="Colour when unset")
    timeout: dt.timedelta = dt.timedelta(minutes=1, seconds=30)
    names: frozenset[str] = frozenset()
    seq: Sequence[int] = ()
    mixed: Mixed = Mixed.ONE


EXPECTED: list[dict[str, Any]] = [
    {"name": "when", "type": "string", "format": "date-time", "required": True},
    {"name": "day", "type": "string", "format": "date", "required": True},
    {"name": "at", "type": "string", "format": "time", "required": True},
    {"name": "wait", "type": "string", "format": "duration", "required": True},
    {"name": "ident", "type": "string", "format": "uuid", "required": True},
    {"name": "amount", "type": "string", "format": "decimal", "required": True},
    {"name": "blob", "type": "string", "format": "byte", "required": True},
    {"name": "color", "type": "string", "enum": ["red", "blue"], "required": True},
    {"name": "level", "type": "integer", "enum": [1, 2], "required": True},
    {"name": "plain", "type": "string", "enum": ["a", "b"], "required": True},
    {"name": "mode", "type": "string", "enum": ["fast", "slow"], "required": True},
    {"name": "size", "type": "integer", "enum": [1, 2, 3], "required": True},
    {"name": "ratio", "type": "number", "enum": [0.5, 1], "required": True},
    {"name": "path", "type": "string", "required": True},
    {"name": "maybe_day", "type": "string", "format": "date", "default": None},
    {
        "name": "fallback",
        "type": "string",
        "enum": ["red", "blue"],
        "description": "Colour when unset",
        "default": "blue",
    },
    {"name": "timeout", "type": "string", "format": "duration", "default": "PT1M30S"},
    {"name": "names", "type": "array", "default": []},
    {"name": "seq", "type": "array", "default": []},
    # Values of different JSON types have no one type to name: left as the reference had it.
    {"name": "mixed", "type": "object", "default": 1},
]

# One value per field, as the host sends it in a POST body (numbers arrive as floats).
SENT: dict[str, Any] = {
    "when": "2026-01-02T03:04:05Z",
    "day": "2026-01-02",
    "at": "03:04:05",
    "wait": "PT2H",
    "ident": "00000000-0000-0000-0000-000000000007",
    "amount": "0.10",
    "blob": "aGk=",
    "color": "red",
    "level": 2.0,
    "plain": "b",
    "mode": "slow",
    "size": 3.0,
    "ratio": 1.0,
    "path": "/srv/data",
}


@pytest.fixture
def plugin() -> Plugin:
    plugin = Plugin("travel")

    @plugin.operation
    def op(params: Inputs) -> Inputs:
        return params

    @plugin.operation(method="GET")
    def after(delay: dt.timedelta) -> dt.timedelta:
        return delay

    @plugin.session_catalog
    def session(request: Request) -> dict[str, Any]:
        return plugin.catalog_dict()

    return plugin


def test_catalog_dict_lists_travel_types(plugin: Plugin) -> None:
    operations = plugin.catalog_dict()["operations"]
    assert operations[0]["parameters"] == EXPECTED
    assert operations[1]["parameters"] == [
        {"name": "delay", "type": "string", "format": "duration", "required": True}
    ]


def test_written_catalog_matches_catalog_dict(plugin: Plugin, tmp_path: Path) -> None:
    target = tmp_path / "catalog.yaml"
    plugin.write_catalog(target)
    text = target.read_text(encoding="utf-8")
    assert yaml.safe_load(text) == plugin.catalog_dict()
    assert (
        "  - name: color\n    type: string\n    enum:\n    - red\n    - blue\n    required: true\n"
    ) in text
    assert "  - name: when\n    type: string\n    format: date-time\n    required: true\n" in text


def test_session_catalog_carries_the_same_types(plugin: Plugin) -> None:
    # CatalogParameter has no format/enum fields: they are accepted and only the type travels.
    catalog = plugin.catalog_for_request(Request())
    assert catalog is not None
    session = json_format.MessageToDict(catalog, preserving_proto_field_name=True)
    static = plugin.catalog_dict()["operations"]
    for session_op, static_op in zip(session["operations"], static, strict=True):
        assert [(p["name"], p["type"]) for p in session_op["parameters"]] == [
            (p["name"], p["type"]) for p in static_op["parameters"]
        ]
    assert session["operations"][0]["parameters"][15] == {
        "name": "fallback",
        "type": "string",
        "description": "Colour when unset",
        "default": "blue",
    }


def test_values_of_the_listed_types_decode_and_come_back(plugin: Plugin) -> None:
    result = plugin.execute("op", SENT, Request())
    assert result.status == 200, result.body
    body = json.loads(result.body)
    assert {k: body[k] for k in SENT} == {
        **SENT,
        "when": "2026-01-02T03:04:05Z",
        "level": 2,
        "size": 3,
    }
    assert body["wait"] == "PT2H" and body["timeout"] == "PT1M30S" and body["mixed"] == 1


@pytest.mark.parametrize(
    ("sent", "answer"),
    [("PT1H30M", "PT1H30M"), ("90", "PT1M30S"), (0.25, "PT0.25S"), ("-P1DT1S", "-P1DT1S")],
)
def test_durations_arrive_as_iso_text_or_seconds(plugin: Plugin, sent: Any, answer: str) -> None:
    result = plugin.execute("after", {"delay": sent}, Request())
    assert (result.status, json.loads(result.body)) == (200, answer)


def test_a_bad_duration_is_a_400_naming_the_field(plugin: Plugin) -> None:
    result = plugin.execute("after", {"delay": "P1M"}, Request())
    assert (result.status, json.loads(result.body)) == (
        400,
        {
            "error": "delay: expected an ISO 8601 duration (such as PT1H30M) or a number of "
            "seconds, got 'P1M'"
        },
    )


PROVIDER = """\
from __future__ import annotations

import datetime as dt
import enum
import uuid

from gestalt import Model, Plugin, Request

plugin = Plugin("travel")


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Inputs(Model):
    when: dt.datetime
    wait: dt.timedelta
    ident: uuid.UUID
    color: Color = Color.BLUE


@plugin.operation
def op(params: Inputs) -> dict[str, object]:
    return {"wait": params.wait, "later": params.when + params.wait, "color": params.color}


@plugin.session_catalog
def session(request: Request) -> dict[str, object]:
    return plugin.catalog_dict()
"""

SERVED: list[dict[str, Any]] = [
    {"name": "when", "type": "string", "format": "date-time", "required": True},
    {"name": "wait", "type": "string", "format": "duration", "required": True},
    {"name": "ident", "type": "string", "format": "uuid", "required": True},
    {"name": "color", "type": "string", "enum": ["red", "blue"], "default": "blue"},
]


def test_a_served_provider_tells_the_same_types_everywhere(tmp_path: Path) -> None:
    """``gestalt catalog``, the host's catalog export and GetSessionCatalog agree; calls decode."""
    import subprocess
    import sys

    from gestalt.gen.v1 import plugin_clients, plugin_pb2
    from gestalt.testing import start_provider

    root = tmp_path / "travel"
    root.mkdir()
    (root / "pyproject.toml").write_text('[tool.gestalt]\nprovider = "travel:plugin"\n')
    (root / "travel.py").write_text(PROVIDER, encoding="utf-8")
    cli = subprocess.run(
        [sys.executable, "-m", "gestalt", "catalog", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert cli.returncode == 0, cli.stderr
    assert yaml.safe_load(cli.stdout)["operations"][0]["parameters"] == SERVED
    with start_provider(root, services=False) as provider:
        assert provider.catalog()["operations"][0]["parameters"] == SERVED
        client = plugin_clients.IntegrationProviderClient(provider.channel)
        reply = client.get_session_catalog(plugin_pb2.GetSessionCatalogRequest(), timeout=30)
        session = json_format.MessageToDict(reply.catalog, preserving_proto_field_name=True)
        assert session["operations"][0]["parameters"] == [
            {k: v for k, v in p.items() if k not in ("format", "enum")} for p in SERVED
        ]
        result = provider.invoke(
            "op",
            {"when": "2026-01-01T23:00:00Z", "wait": "PT1H30M", "ident": str(uuid.UUID(int=3))},
        )
        assert (result.status, result.body) == (
            200,
            {"wait": "PT1H30M", "later": "2026-01-02T00:30:00Z", "color": "blue"},
        )
