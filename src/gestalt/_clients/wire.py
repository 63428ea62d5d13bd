"""Protobuf wire-format pieces written by hand where building a message would cost a copy."""

from __future__ import annotations

__all__ = ["varint"]


def varint(value: int) -> bytes:
    """``value`` (not negative) as a protobuf base-128 varint."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
