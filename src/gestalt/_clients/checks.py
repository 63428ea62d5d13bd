"""Argument checks the host-service clients share."""

from __future__ import annotations

__all__ = ["check_str"]


def check_str(value: object, what: str) -> str:
    """``value`` as a plain ``str`` (a subclass is converted); ``TypeError`` naming ``what``
    for anything else."""
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)
    raise TypeError(f"{what} must be a str, not {type(value).__name__}")
