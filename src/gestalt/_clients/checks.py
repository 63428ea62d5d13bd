"""Argument checks the host-service clients share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from google.protobuf.message import Message

# protobuf's json_format and gestalt.gen.support load on first use: cache.py imports this
# module on the start-up path.
M = TypeVar("M", bound="Message")

__all__ = ["check_str", "count", "message", "required", "struct", "text"]


def check_str(value: object, what: str) -> str:
    """``value`` as a plain ``str`` (a subclass is converted); ``TypeError`` naming ``what``
    for anything else."""
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)
    raise TypeError(f"{what} must be a str, not {type(value).__name__}")


def required(name: str, value: object) -> str:
    """A non-empty id argument, stripped; TypeError or ValueError otherwise."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    value = value.strip()
    if not value:
        raise ValueError(f"{name} must not be empty")
    return value


def text(name: str, value: object) -> str:
    """An optional string argument ("" when not given)."""
    return check_str(value, name)


def struct(name: str, value: Mapping[str, Any] | None) -> Any:
    """A JSON object argument as a ``Struct`` (None stays unset)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping, not {type(value).__name__}")
    try:
        from gestalt.gen.support import struct_to_pb

        return struct_to_pb(dict(value))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must hold JSON values: {exc}") from None


def count(name: str, value: int) -> int:
    """A non-negative int argument (zero means "not given")."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


def message(value: object, cls: type[M], what: str) -> M:
    """A raw-form argument as a ``cls`` message: the message, its mirror or a JSON dict."""
    if isinstance(value, cls):
        return value
    to_pb = getattr(value, "to_pb", None)
    if callable(to_pb) and type(value).__name__ == cls.__name__:
        converted = to_pb()
        if isinstance(converted, cls):
            return converted
    if isinstance(value, Mapping):
        from google.protobuf import json_format

        try:
            return json_format.ParseDict(dict(value), cls())
        except json_format.ParseError as exc:
            raise ValueError(f"{what}: {exc}") from None
    raise TypeError(
        f"{what} must be a {cls.__name__} (pb2 message, mirror or dict), not {type(value).__name__}"
    )
