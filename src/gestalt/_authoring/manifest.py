"""Plugin names derived from a provider manifest (slugged by ``catalog.slug``).

Manifest name, first match wins: the last ``/`` segment of ``source`` without its ``@version``
suffix (quirk 18: the reference kept ``thing@v1.2.3`` as ``thing-v1.2.3``), then
``displayName`` or ``display_name`` (quirk 18: the reference ignored the camelCase spelling
that real manifests use), then the name of the manifest's directory. A missing or unreadable
file also yields the directory name, but a file that exists and is malformed (invalid YAML or
JSON, not a mapping, a non-string ``source`` or display name) raises ``ManifestError`` naming
the file and the key instead of silently falling back.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gestalt._authoring.catalog import slug

if TYPE_CHECKING:
    from pathlib import Path


class ManifestError(ValueError):
    """A provider manifest exists but cannot be used to derive a plugin name."""


def manifest_path(path: str | Path, base_dir: Path | None = None) -> Path:
    """Resolve ``path`` against ``base_dir`` (or the cwd); a directory means its manifest.yaml."""
    from pathlib import Path  # imported here: the runtime itself does not need pathlib

    resolved = Path(path)
    if not resolved.is_absolute():
        resolved = (base_dir if base_dir is not None else Path.cwd()) / resolved
    if resolved.is_dir():
        resolved = resolved / "manifest.yaml"
    return resolved


def name_from_manifest(path: str | Path, base_dir: Path | None = None) -> str:
    """Derive a slugged plugin name from the manifest at ``path`` (see the module docstring)."""
    manifest = manifest_path(path, base_dir)
    fallback = slug(manifest.parent.name)
    try:
        text = manifest.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return fallback
    data = _parse(manifest, text)
    source = _string_key(manifest, data, "source")
    if source:
        return slug(source.rstrip("/").rsplit("/", 1)[-1].split("@", 1)[0])
    for key in ("displayName", "display_name"):
        display = _string_key(manifest, data, key)
        if display:
            return slug(display)
    return fallback


def module_plugin_name(namespace: dict[str, Any]) -> str:
    """Name an implicit module plugin: its ``manifest.yaml``, else its directory or module name."""
    module_file = namespace.get("__file__")
    if isinstance(module_file, str) and module_file:
        from pathlib import Path

        directory = Path(module_file).resolve().parent
        if (directory / "manifest.yaml").is_file():
            return name_from_manifest(directory / "manifest.yaml")
        return slug(directory.name)
    return slug(str(namespace.get("__name__", "")).rsplit(".", 1)[-1])


def _parse(manifest: Path, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text) if manifest.suffix == ".json" else _load_yaml(text)
    except ValueError as exc:  # json.JSONDecodeError and yaml.YAMLError are ValueError here
        raise ManifestError(f"{manifest}: cannot parse manifest: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ManifestError(
            f"{manifest}: manifest must be a mapping at the top level, not {type(data).__name__}"
        )
    return data


def _string_key(manifest: Path, data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ManifestError(f"{manifest}: key {key!r} must be a string, not {type(value).__name__}")
    return value.strip()


def _load_yaml(text: str) -> Any:
    import yaml  # deferred: only manifest-derived names need PyYAML

    class _TagBlindLoader(yaml.SafeLoader):
        """Safe loader that reads any tagged node (``!env x``) as its plain value."""

    def plain(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_scalar(node)  # type: ignore[arg-type]

    _TagBlindLoader.add_constructor(None, plain)
    try:
        return yaml.load(text, Loader=_TagBlindLoader)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc).replace("\n", " ")) from None
