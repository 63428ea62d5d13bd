"""Catalog output: the static ``catalog.yaml`` and the checks every catalog passes.

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

Methods must be one of ``HTTP_METHODS``, the verbs the host routes to operations; registration,
session catalogs (``session_catalog.py``) and ``gestalt check`` all use this one list. The
plugin's name, the catalog's ``name``, follows :func:`slug`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from gestalt._authoring.encode import EncodeError, to_jsonable

_SEGMENT = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?$")

#: The HTTP methods an operation may declare.
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class CatalogError(ValueError):
    """A catalog (or part of one) would be rejected by the host."""


def slug(name: str) -> str:
    """Return ``name`` reduced to the characters a plugin name may contain.

    Trim, replace each run of characters outside ``[A-Za-z0-9._-]`` by ``-``, strip ``-`` at
    both ends, fall back to ``plugin`` (``"  My Plugin!  "`` -> ``My-Plugin``).
    """
    return _UNSAFE.sub("-", name.strip()).strip("-") or "plugin"


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
