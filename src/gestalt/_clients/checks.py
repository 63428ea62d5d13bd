"""Argument checks the host-service clients share.

The checks of typed request arguments (``required``, ``text``, ``count``, ``struct``) live
with the generated request builders in :mod:`gestalt.gen.hostcalls`; here are the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeVar

from gestalt.gen.hostcalls import count, required, struct, text

if TYPE_CHECKING:
    from google.protobuf.message import Message

# protobuf's json_format loads on first use: cache.py imports this module on the start-up
# path.
M = TypeVar("M", bound="Message")

__all__ = ["check_str", "count", "message", "required", "struct", "text"]


def check_str(value: object, what: str) -> str:
    """``value`` as a plain ``str`` (a subclass is converted); ``TypeError`` naming ``what``
    for anything else."""
    return text(what, value)


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
