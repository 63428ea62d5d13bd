"""Plugin names: slugging and ``Plugin.from_manifest`` (golden ``process/names.json``)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

from gestalt import Plugin
from gestalt._authoring.manifest import ManifestError

# Where we deliberately differ from names.json (contract 8):
NAME_BETTER = {
    # Quirk 18: real manifests spell it `displayName`; the reference only read `display_name`.
    "camel_only": "Only-Camel",
    # Quirk 18: the version suffix is not part of the name.
    "versioned.yaml": "thing",
}
# A manifest that exists but is malformed is reported instead of silently ignored.
NAME_ERRORS = {
    "list.yaml": "manifest must be a mapping at the top level, not list",
    "broken.yaml": "cannot parse manifest",
}


@pytest.fixture
def names(golden: Any) -> dict[str, Any]:
    data: dict[str, Any] = golden("process/names.json")
    return data


@pytest.fixture
def manifests(tmp_path: Path, names: dict[str, Any]) -> Path:
    base = tmp_path / "manifests"  # the golden fallback name is this folder's name
    for relative, text in names["manifest_files (relative to base_dir)"].items():
        path = base / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return base


def test_slug(names: dict[str, Any]) -> None:
    for raw, expected in names["slug"].items():
        assert Plugin(raw).name == expected, raw


def test_name_assignment_is_slugged() -> None:
    # Quirk 17: the runtime applies a bundled `plugin_name` by assignment.
    plugin = Plugin("x")
    plugin.name = "My Plugin!"
    assert plugin.name == "My-Plugin"


def test_from_manifest(names: dict[str, Any], manifests: Path) -> None:
    for argument, reference in names["from_manifest"].items():
        if argument in NAME_ERRORS:
            with pytest.raises(ManifestError) as info:
                Plugin.from_manifest(argument, base_dir=manifests)
            assert str(info.value).startswith(f"{manifests / argument}: {NAME_ERRORS[argument]}")
            continue
        expected = NAME_BETTER.get(argument, reference)
        assert Plugin.from_manifest(argument, base_dir=manifests).name == expected, argument


def test_from_manifest_relative_to_cwd(manifests: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(manifests)
    assert Plugin.from_manifest("dir_with_manifest").name == "linear"
    assert Plugin.from_manifest(manifests / "snake.yaml").name == "Snake-Display"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("source: 3\n", "key 'source' must be a string, not int"),
        ("displayName: [a]\n", "key 'displayName' must be a string, not list"),
    ],
)
def test_malformed_keys_are_reported(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "manifest.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ManifestError, match=message) as info:
        Plugin.from_manifest(path)
    assert str(path) in str(info.value)


def test_implicit_module_plugin_names(
    names: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    label = "implicit module plugin, no manifest.yaml beside module (dir 'mod_dir')"
    source = "from gestalt import operation\n\n@operation\ndef ping() -> str:\n    return 'pong'\n"
    (tmp_path / "mod_dir").mkdir()
    (tmp_path / "mod_dir" / "mod_no_manifest.py").write_text(source, encoding="utf-8")
    (tmp_path / "with_manifest").mkdir()
    (tmp_path / "with_manifest" / "mod_with_manifest.py").write_text(source, encoding="utf-8")
    (tmp_path / "with_manifest" / "manifest.yaml").write_text("displayName: Fancy Name\n")
    monkeypatch.syspath_prepend(str(tmp_path / "mod_dir"))
    monkeypatch.syspath_prepend(str(tmp_path / "with_manifest"))
    try:
        module = importlib.import_module("mod_no_manifest")
        assert module.plugin.name == names[label] == "mod_dir"
        assert importlib.import_module("mod_with_manifest").plugin.name == "Fancy-Name"
    finally:
        sys.modules.pop("mod_no_manifest", None)
        sys.modules.pop("mod_with_manifest", None)


def test_module_without_file_uses_its_last_dotted_segment() -> None:
    namespace: dict[str, Any] = {"__name__": "pkg.sub.tools"}
    exec("from gestalt import operation\n@operation\ndef ping() -> str: ...", namespace)
    assert namespace["plugin"].name == "tools"
