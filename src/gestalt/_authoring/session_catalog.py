"""Per-request (session) catalogs: what a session-catalog hook returns, checked for the host.

Session catalogs returned as mappings are converted fully (parameter defaults kept, methods
upper-cased) and validated like a static catalog before they reach the host (quirk 12). A
parameter's ``format`` and ``enum`` (as ``catalog_dict()`` writes them) are accepted and checked,
but the protocol's ``CatalogParameter`` has no field for them, so only its ``type`` travels.
Imported only when a session-catalog hook has answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gestalt._authoring.catalog import (
    CatalogError,
    catalog_value,
    check_method,
    check_operation_id,
    clean_roles,
)

if TYPE_CHECKING:
    from gestalt.gen.v1.plugin_pb2 import Catalog

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
