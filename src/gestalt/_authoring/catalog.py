"""Catalog output: the static ``catalog.yaml`` and per-request (session) catalogs.

The static catalog follows the reference layout (``name``, then operations in registration
order with keys ``id, method, title, description, readOnly, parameters, allowedRoles, tags,
visible``, optional ones omitted when empty) and PyYAML's block style, so it stays
byte-compatible with the golden files except where the contract asks for better:

* operation keys are the host's camelCase ``readOnly`` / ``allowedRoles``; the reference wrote
  ``read_only`` / ``allowed_roles``, which the host silently drops (quirk 3);
* defaults are plain JSON values (an enum default is written as its value, a date as ISO
  text) instead of Python-specific YAML tags (quirk 5);
* writing a catalog without operations fails instead of producing one the host rejects
  (quirk 30); operation ids are checked against the host's syntax at registration (quirk 31).

Session catalogs returned as mappings are converted fully (parameter defaults kept, methods
upper-cased) and validated like a static catalog before they reach the host (quirk 12). A
parameter's ``format`` and ``enum`` (as ``catalog_dict()`` writes them) are accepted and checked,
but the protocol's ``CatalogParameter`` has no field for them, so only its ``type`` travels.

Methods must be one of ``HTTP_METHODS``, the verbs the host routes to operations; registration,
session catalogs and ``gestalt check`` all use this one list.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from gestalt._authoring.encode import EncodeError, to_jsonable

if TYPE_CHECKING:
    from gestalt.gen.v1.plugin_pb2 import Catalog

_SEGMENT = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?$")

#: The HTTP methods an operation may declare.
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class CatalogError(ValueError):
    """A catalog (or part of one) would be rejected by the host."""


def check_operation_id(op_id: str) -> str:
    """Return ``op_id`` if the host accepts it, else raise ``CatalogError`` explaining why.

    Each ``.``-separated segment must be letters, digits and ``_``, with ``-`` allowed inside.
    """
    if not op_id:
        raise CatalogError("operation id is required")
    if not all(_SEGMENT.match(segment) for segment in op_id.split(".")):
        raise CatalogError(
            f"invalid operation id {op_id!r}: each '.'-separated segment must use letters, "
            "digits and '_', with '-' allowed only inside a segment"
        )
    return op_id


def check_method(method: str) -> str:
    """Return ``method`` upper-cased, or raise ``CatalogError`` unless it is in ``HTTP_METHODS``."""
    normalized = method.strip().upper()
    if normalized not in HTTP_METHODS:
        raise CatalogError(
            f"invalid HTTP method {method!r}: the host accepts {', '.join(HTTP_METHODS)}"
        )
    return normalized


def clean_roles(roles: Iterable[str]) -> list[str]:
    """Trim roles, drop blanks and repeats (first occurrence wins)."""
    seen: dict[str, None] = {}
    for role in roles:
        if not isinstance(role, str):
            raise CatalogError(f"roles must be strings, got {type(role).__name__}")
        if role.strip():
            seen.setdefault(role.strip(), None)
    return list(seen)


def catalog_value(value: Any) -> Any:
    """Convert a default value to plain JSON data for the catalog, or raise ``CatalogError``."""
    try:
        return to_jsonable(value)
    except EncodeError as exc:
        raise CatalogError(f"default {value!r} cannot be written to the catalog: {exc}") from None


def write_yaml(data: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``data`` as block-style YAML, creating parent directories, replacing atomically."""
    from pathlib import Path

    import yaml  # deferred: only catalog export needs PyYAML

    text = yaml.safe_dump(dict(data), sort_keys=False, default_flow_style=False)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(target.name + ".tmp")
    scratch.write_text(text, encoding="utf-8")
    os.replace(scratch, target)


# --- session catalogs ----------------------------------------------------------------------

_TOP_KEYS = {
    "name": "name",
    "display_name": "display_name",
    "displayName": "display_name",
    "description": "description",
    "icon_svg": "icon_svg",
    "iconSvg": "icon_svg",
    "operations": "operations",
}
_OPERATION_KEYS = {
    "id": "id",
    "method": "method",
    "title": "title",
    "description": "description",
    "input_schema": "input_schema",
    "inputSchema": "input_schema",
    "output_schema": "output_schema",
    "outputSchema": "output_schema",
    "read_only": "read_only",
    "readOnly": "read_only",
    "transport": "transport",
    "visible": "visible",
    "allowed_roles": "allowed_roles",
    "allowedRoles": "allowed_roles",
    "tags": "tags",
    "required_scopes": "required_scopes",
    "requiredScopes": "required_scopes",
    "annotations": "annotations",
    "parameters": "parameters",
}
_ANNOTATION_KEYS = {
    "read_only_hint": "read_only_hint",
    "readOnlyHint": "read_only_hint",
    "idempotent_hint": "idempotent_hint",
    "idempotentHint": "idempotent_hint",
    "destructive_hint": "destructive_hint",
    "destructiveHint": "destructive_hint",
    "open_world_hint": "open_world_hint",
    "openWorldHint": "open_world_hint",
}
_PARAMETER_KEYS = {k: k for k in ("name", "type", "description", "required", "default")}
_STRINGS = {"name", "display_name", "description", "icon_svg", "id", "method", "title", "type"}
_STRINGS |= {"input_schema", "output_schema", "transport"}
_BOOLS = {"read_only", "visible", "required", *_ANNOTATION_KEYS.values()}
_STRING_LISTS = {"tags", "required_scopes", "allowed_roles"}


def session_catalog_message(value: Any, *, default_name: str) -> Catalog | None:
    """Convert a session-catalog hook result into a validated ``Catalog`` message.

    Accepts ``None``, a ``Catalog`` message or a mapping using snake_case or camelCase keys. A
    missing name falls back to ``default_name``. Raises ``CatalogError`` with the location of
    the first problem.
    """
    from gestalt.gen.v1 import plugin_pb2

    if value is None:
        return None
    if isinstance(value, plugin_pb2.Catalog):
        catalog = plugin_pb2.Catalog()
        catalog.CopyFrom(value)
    elif isinstance(value, Mapping):
        catalog = plugin_pb2.Catalog(**_fields(value, _TOP_KEYS, "catalog"))
    else:
        raise CatalogError(
            f"the hook must return a gestalt.Catalog, a mapping or None, not {type(value).__name__}"
        )
    _validate(catalog, default_name)
    return catalog


def _fields(data: Mapping[Any, Any], known: Mapping[str, str], where: str) -> dict[str, Any]:
    from gestalt.gen.v1 import plugin_pb2

    out: dict[str, Any] = {}
    for key, raw in data.items():
        name = known.get(key) if isinstance(key, str) else None
        if name is None:
            raise CatalogError(f"{where}: unknown key {key!r}")
        place = f"{where}.{key}"
        if raw is None:
            continue
        if name in _STRINGS:
            out[name] = _typed(raw, str, place)
        elif name in _BOOLS:
            out[name] = _typed(raw, bool, place)
        elif name in _STRING_LISTS:
            out[name] = [_typed(item, str, place) for item in _typed(raw, _LIST, place)]
        elif name == "annotations":
            mapping = _typed(raw, Mapping, place)
            out[name] = plugin_pb2.OperationAnnotations(**_fields(mapping, _ANNOTATION_KEYS, place))
        elif name == "operations":
            items = _typed(raw, _LIST, place)
            out[name] = [_operation(item, f"{place}[{i}]") for i, item in enumerate(items)]
        elif name == "parameters":
            items = _typed(raw, _LIST, place)
            out[name] = [_parameter(item, f"{place}[{i}]") for i, item in enumerate(items)]
    return out


def _operation(item: Any, where: str) -> Any:
    from gestalt.gen.v1 import plugin_pb2

    return plugin_pb2.CatalogOperation(
        **_fields(_typed(item, Mapping, where), _OPERATION_KEYS, where)
    )


def _parameter(item: Any, where: str) -> Any:
    from google.protobuf import json_format

    from gestalt.gen.v1 import plugin_pb2

    data = dict(_typed(item, Mapping, where))
    default = data.pop("default", _ABSENT)
    # Checked, then dropped: CatalogParameter has no field for them (see the module docstring).
    if data.get("format") is not None:
        _typed(data["format"], str, f"{where}.format")
    if data.get("enum") is not None:
        catalog_value(_typed(data["enum"], _LIST, f"{where}.enum"))
    data.pop("format", None)
    data.pop("enum", None)
    parameter = plugin_pb2.CatalogParameter(**_fields(data, _PARAMETER_KEYS, where))
    if default is not _ABSENT:
        json_format.ParseDict(catalog_value(default), parameter.default)
    return parameter


_ABSENT = object()
_LIST = (list, tuple)


def _typed(value: Any, kind: Any, where: str) -> Any:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        expected = "list" if kind is _LIST else getattr(kind, "__name__", str(kind))
        raise CatalogError(f"{where}: expected {expected}, got {type(value).__name__}")
    return value


def _validate(catalog: Catalog, default_name: str) -> None:
    if not catalog.name.strip():
        catalog.name = default_name
    if not catalog.operations:
        raise CatalogError("catalog has no operations; the host rejects an empty catalog")
    seen: set[str] = set()
    for index, operation in enumerate(catalog.operations):
        where = f"operations[{index}]"
        try:
            check_operation_id(operation.id)
            if operation.method:
                operation.method = check_method(operation.method)
        except CatalogError as exc:
            raise CatalogError(f"{where}: {exc}") from None
        if operation.id in seen:
            raise CatalogError(f"{where}: duplicate operation id {operation.id!r}")
        seen.add(operation.id)
        for p_index, parameter in enumerate(operation.parameters):
            if not parameter.name.strip() or not parameter.type.strip():
                raise CatalogError(f"{where}.parameters[{p_index}]: name and type are required")
        roles = clean_roles(operation.allowed_roles)
        del operation.allowed_roles[:]
        operation.allowed_roles.extend(roles)
