"""Fixtures for the authoring-layer tests: the shared golden examples and how to replay them."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from google.protobuf import json_format

from gestalt import Plugin
from gestalt._runtime.wire import execute_params, request_from_pb
from gestalt.gen.v1 import plugin_pb2
from tests.conftest import DATA

EXAMPLES = DATA / "provider"

LoadExample = Callable[..., ModuleType]


@pytest.fixture
def examples() -> Path:
    """The golden examples folder (tests/data/provider)."""
    return EXAMPLES


@pytest.fixture
def golden(examples: Path) -> Callable[[str], Any]:
    """Read a golden JSON file relative to the examples folder."""

    def read(relative: str) -> Any:
        return json.loads((examples / relative).read_text(encoding="utf-8"))

    return read


@pytest.fixture
def load_example(examples: Path) -> Iterator[LoadExample]:
    """Import an example provider module by path, under its own module name.

    ``edit`` may rewrite the source first (used to drop handlers we reject on purpose). Modules
    are removed from ``sys.modules`` again after the test.
    """
    loaded: list[str] = []

    def load(relative: str, name: str, edit: Callable[[str], str] | None = None) -> ModuleType:
        path = examples / relative
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loaded.append(name)
        source = path.read_text(encoding="utf-8")
        if edit is not None:
            source = edit(source)
        exec(compile(source, str(path), "exec"), module.__dict__)
        return module

    yield load
    for name in loaded:
        sys.modules.pop(name, None)


def drop_unannotated(source: str) -> str:
    """Remove ex3's two unannotated handlers, which we reject at import time (quirk 10)."""
    edited, count = re.subn(r"@plugin\.operation\ndef unannotated.*?\n\n\n", "", source, flags=re.S)
    assert count == 2
    return edited


@pytest.fixture
def types_plugin(load_example: LoadExample) -> Plugin:
    """The ex3_types plugin, loaded without its unannotated handlers."""
    plugin: Plugin = load_example(
        "ex3_types/types_plugin.py", "types_plugin", drop_unannotated
    ).plugin
    return plugin


def execute_entry(plugin: Plugin, entry: dict[str, Any]) -> tuple[int, Any]:
    """Replay a golden ``Execute`` entry through ``Plugin.execute``: (status, parsed body)."""
    message = json_format.ParseDict(entry["request"], plugin_pb2.ExecuteRequest())
    result = plugin.execute(message.operation, execute_params(message), request_from_pb(message))
    return result.status, json.loads(result.body)


@pytest.fixture
def run_entry() -> Callable[[Plugin, dict[str, Any]], tuple[int, Any]]:
    """``execute_entry`` as a fixture, so test modules need not import this conftest."""
    return execute_entry
