"""The static catalog against the golden ``catalog.yaml`` / ``catalog_dict.json`` files.

Byte-for-byte, after a small, explicit list of edits where the contract asks us to do better
than the reference:

* quirk 3: the host reads ``readOnly`` / ``allowedRoles``; the reference wrote snake_case keys
  that the host silently drops;
* quirk 11: a primitive input (``def echo_name(name: str)``) is listed as a parameter named
  after the argument; the reference listed nothing;
* quirk 5: an enum default is written as its value, not as a Python-only YAML tag;
* quirk 10: ``ex3_types`` declares two unannotated handlers, which we reject at import time,
  so that module is loaded without them (see test_operation_registration.py);
* travel types: an enum, datetime or bytes parameter is listed with the JSON type it travels
  as (``string``), its ``format`` and its ``enum`` values, where the reference said ``object``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gestalt import Plugin

PRIMITIVE_YAML = "  parameters:\n  - name: {name}\n    type: string\n    required: true\n"


def camel_case_yaml(text: str) -> str:
    return text.replace("  read_only: true\n", "  readOnly: true\n").replace(
        "  allowed_roles:\n", "  allowedRoles:\n"
    )


def camel_case_dict(text: str) -> str:
    return text.replace('"read_only":', '"readOnly":').replace(
        '"allowed_roles":', '"allowedRoles":'
    )


def add_primitive_yaml(text: str, op_id: str, name: str) -> str:
    header = f"- id: {op_id}\n  method: POST\n"
    assert header in text
    return text.replace(header, header + PRIMITIVE_YAML.format(name=name))


def add_primitive_dict(data: dict[str, Any], op_id: str, name: str) -> None:
    for op in data["operations"]:
        if op["id"] == op_id:
            assert list(op) == ["id", "method"]
            op["parameters"] = [{"name": name, "type": "string", "required": True}]
            return
    raise AssertionError(op_id)


# ex3_types parameters whose catalog entry deliberately differs from the reference's `object`.
TRAVEL_TYPES: dict[str, dict[str, Any]] = {
    "color": {"type": "string", "enum": ["red", "blue"]},
    "when": {"type": "string", "format": "date-time"},
    "raw": {"type": "string", "format": "byte"},
    "enum_default": {"type": "string", "enum": ["red", "blue"]},
}


def travel_types_yaml(text: str) -> str:
    """Replace each ``type: object`` of ``TRAVEL_TYPES`` by the schema we write instead."""
    for name, schema in TRAVEL_TYPES.items():
        old = f"  - name: {name}\n    type: object\n"
        assert text.count(old) == 1, name
        new = f"  - name: {name}\n    type: {schema['type']}\n"
        if "format" in schema:
            new += f"    format: {schema['format']}\n"
        if "enum" in schema:
            new += "    enum:\n" + "".join(f"    - {value}\n" for value in schema["enum"])
        text = text.replace(old, new)
    return text


def travel_types_dict(data: dict[str, Any]) -> None:
    """The same edit on the parsed ``catalog_dict.json`` (keys after ``type`` keep their order)."""
    for op in data["operations"]:
        for index, param in enumerate(op.get("parameters", [])):
            schema = TRAVEL_TYPES.get(param["name"])
            if schema is not None:
                assert param["type"] == "object"
                rest = {k: v for k, v in param.items() if k not in ("name", "type")}
                op["parameters"][index] = {"name": param["name"], **schema, **rest}


def dumped(data: dict[str, Any]) -> str:
    """Format like the golden files (``json.dumps(indent=2)`` plus a newline)."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def assert_catalog(plugin: Plugin, folder: Path, yaml_text: str, dict_text: str, tmp: Path) -> None:
    target = tmp / "nested" / "catalog.yaml"
    plugin.write_catalog(target)
    assert target.read_text(encoding="utf-8") == yaml_text
    assert dumped(plugin.catalog_dict()) == dict_text


def test_ex1_search(examples: Path, load_example: Any, tmp_path: Path) -> None:
    plugin = load_example("ex1_search/search_plugin.py", "search_plugin").plugin
    folder = examples / "ex1_search"
    yaml_text = camel_case_yaml((folder / "catalog.yaml").read_text(encoding="utf-8"))
    yaml_text = add_primitive_yaml(yaml_text, "echo_name", "name")
    data = json.loads(camel_case_dict((folder / "catalog_dict.json").read_text(encoding="utf-8")))
    add_primitive_dict(data, "echo_name", "name")
    assert_catalog(plugin, folder, yaml_text, dumped(data), tmp_path)


def test_ex2_weather_implicit_plugin(examples: Path, load_example: Any, tmp_path: Path) -> None:
    module = load_example("ex2_weather/weather/provider.py", "provider")
    folder = examples / "ex2_weather"
    yaml_text = camel_case_yaml((folder / "catalog.yaml").read_text(encoding="utf-8"))
    dict_text = camel_case_dict((folder / "catalog_dict.json").read_text(encoding="utf-8"))
    assert_catalog(module.plugin, folder, yaml_text, dict_text, tmp_path)


def test_ex3_types(examples: Path, types_plugin: Plugin, tmp_path: Path) -> None:
    plugin = types_plugin
    folder = examples / "ex3_types"
    yaml_text = (folder / "catalog.yaml").read_text(encoding="utf-8")
    yaml_text = yaml_text.replace(
        "    default: !!python/object/apply:types_plugin.Color\n    - blue\n",
        "    default: blue\n",
    )
    yaml_text = yaml_text.replace(
        "- id: unannotated\n  method: POST\n- id: unannotated_with_request\n  method: POST\n", ""
    )
    yaml_text = add_primitive_yaml(yaml_text, "serialize", "kind")
    yaml_text = travel_types_yaml(yaml_text)
    data = json.loads((folder / "catalog_dict.json").read_text(encoding="utf-8"))
    data["operations"] = [op for op in data["operations"] if not op["id"].startswith("unannot")]
    add_primitive_dict(data, "serialize", "kind")
    travel_types_dict(data)
    assert_catalog(plugin, folder, yaml_text, dumped(data), tmp_path)


def test_ex5_hooks(examples: Path, load_example: Any, tmp_path: Path) -> None:
    plugin = load_example("ex5_hooks_errors/hooks_plugin.py", "hooks_plugin").plugin
    folder = examples / "ex5_hooks_errors"
    yaml_text = add_primitive_yaml(
        (folder / "catalog.yaml").read_text(encoding="utf-8"), "set_mode", "mode"
    )
    data = json.loads((folder / "catalog_dict.json").read_text(encoding="utf-8"))
    add_primitive_dict(data, "set_mode", "mode")
    assert_catalog(plugin, folder, yaml_text, dumped(data), tmp_path)


def test_catalog_dict_is_a_fresh_copy() -> None:
    plugin = Plugin("copy")

    @plugin.operation(tags=["a"], allowed_roles=["r"])
    def op(values: list[int] = [1]) -> None:  # noqa: B006 - the default is only read
        return None

    first = plugin.catalog_dict()
    first["operations"][0]["tags"].append("mutated")
    first["operations"][0]["parameters"][0]["default"].append(2)
    assert plugin.catalog_dict() == {
        "name": "copy",
        "operations": [
            {
                "id": "op",
                "method": "POST",
                "parameters": [{"name": "values", "type": "array", "default": [1]}],
                "allowedRoles": ["r"],
                "tags": ["a"],
            }
        ],
    }


def test_non_plain_defaults_are_exported_as_json() -> None:
    import datetime as dt
    import enum
    import uuid

    from gestalt import Model

    class Level(enum.IntEnum):
        LOW = 1

    class Opts(Model):
        level: Level = Level.LOW
        since: dt.date = dt.date(2026, 1, 2)
        ident: uuid.UUID = uuid.UUID(int=1)
        pair: tuple[int, int] = (1, 2)

    plugin = Plugin("defaults")

    @plugin.operation
    def op(params: Opts) -> None:
        return None

    defaults = [p["default"] for p in plugin.catalog_dict()["operations"][0]["parameters"]]
    assert defaults == [1, "2026-01-02", "00000000-0000-0000-0000-000000000001", [1, 2]]


def test_write_catalog_without_operations_fails(tmp_path: Path) -> None:
    # Quirk 30: the reference wrote `operations: []`, which the host rejects at load.
    with pytest.raises(ValueError, match="has no operations"):
        Plugin("empty").write_catalog(tmp_path / "catalog.yaml")
    assert not (tmp_path / "catalog.yaml").exists()
