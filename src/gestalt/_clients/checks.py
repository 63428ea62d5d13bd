"""Argument checks the host-service clients share.

They live with the generated request builders, in :mod:`gestalt.gen.hostcalls`:
``required``, ``text``, ``count``, ``struct`` and ``message`` (a raw-form request given as
a pb2 message, its mirror or a protobuf-JSON dict); ``check_str`` is ``text`` with its
arguments the other way round.
"""

from __future__ import annotations

from gestalt.gen.hostcalls import coerce as message
from gestalt.gen.hostcalls import count, required, struct, text

__all__ = ["check_str", "count", "message", "required", "struct", "text"]


def check_str(value: object, what: str) -> str:
    """``value`` as a plain ``str`` (a subclass is converted); ``TypeError`` naming ``what``
    for anything else."""
    return text(what, value)
