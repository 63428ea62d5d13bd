"""IndexedDB keys as bytes whose plain byte order is the host's key order; datastore errors.

SQLite compares BLOBs with ``memcmp``, so storing every key in this encoding lets ordinary
B-tree indexes answer range queries, cursors and sorting exactly as the host orders keys.

Order between kinds (as the contract's host emulator ``wire_harness.py`` ranks them): null <
numbers < strings < booleans < bytes < timestamps < JSON values < arrays. Within a kind: ints
and floats compare by numeric value (``1`` equals ``1.0``; NaN sorts after +inf), strings and
bytes by their bytes (for strings that is code-point order), booleans false before true,
timestamps by time, JSON values by their deterministic protobuf serialisation (stable but
otherwise arbitrary), arrays element by element with a shorter prefix first.

Every component encoding is self-delimiting, so a compound key is the concatenation of its
components and compares like a tuple: a key is greater than each of its proper prefixes.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Sequence

import grpc

from gestalt.gen.v1 import datastore_pb2

__all__ = [
    "NULL_KEY",
    "DatastoreError",
    "already_exists",
    "check_record",
    "decode_primary",
    "encode_key_values",
    "encode_primary",
    "encode_value",
    "index_key",
    "invalid",
    "not_found",
    "prefix_upper_bound",
    "quoted",
    "record_id",
]

_ARRAY_END = b"\x00"
_NULL = 0x10
_NUMBER = 0x20
_STRING = 0x30
_BOOL = 0x40
_BYTES = 0x50
_TIME = 0x60
_JSON = 0x70
_ARRAY = 0x80

# Terminator of a variable-length payload. A NUL inside the payload is written as 00 FF, so
# the terminator (00 01) sorts below any continuation and a shorter payload sorts first.
_TERMINATOR = b"\x00\x01"
_ESCAPED_NUL = b"\x00\xff"

# Valid range of google.protobuf.Timestamp: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799
_SIGN_BIT = 1 << 63
_MASK64 = (1 << 64) - 1

NULL_KEY = bytes([_NULL])
"""The encoding of a null (or missing) key component."""


class DatastoreError(Exception):
    """A datastore failure with the gRPC status the host reports for it."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def quoted(name: str) -> str:
    """``name`` in double quotes (JSON style), for the details of error messages."""
    return json.dumps(name, ensure_ascii=False)


def not_found(what: str = "") -> DatastoreError:
    """The host's error for a missing record, index match, index or store.

    The message starts with the host's ``datastore: not found``; ``what`` (in our words)
    follows it after ``": "`` to say which store, key or index was missing.
    """
    message = f"datastore: not found: {what}" if what else "datastore: not found"
    return DatastoreError(grpc.StatusCode.NOT_FOUND, message)


def already_exists() -> DatastoreError:
    """The host's error for a taken primary key or unique index key."""
    return DatastoreError(grpc.StatusCode.ALREADY_EXISTS, "datastore: already exists")


def invalid(message: str) -> DatastoreError:
    """An INVALID_ARGUMENT error with ``message``."""
    return DatastoreError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _escaped(payload: bytes) -> bytes:
    return payload.replace(b"\x00", _ESCAPED_NUL) + _TERMINATOR


def _sortable_double(value: float) -> bytes:
    if math.isnan(value):
        value = math.nan  # one canonical NaN, above +inf
    elif value == 0.0:
        value = 0.0  # -0.0 and 0.0 are the same key
    bits = int.from_bytes(struct.pack(">d", value), "big")
    bits = (~bits & _MASK64) if bits & _SIGN_BIT else bits | _SIGN_BIT
    return bits.to_bytes(8, "big")


def _number(value: float, exact: int | None) -> bytes:
    # The double nearest the value orders numbers of different magnitude; an int that
    # double cannot hold exactly adds its (small, signed) distance from it, so ints and
    # floats compare by exact numeric value and equal numbers get equal bytes.
    delta = 0 if exact is None else exact - int(value)
    return bytes([_NUMBER]) + _sortable_double(value) + (delta + 0x8000).to_bytes(2, "big")


def _check_time(seconds: int, nanos: int, what: str) -> None:
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS or not 0 <= nanos <= 999_999_999:
        raise invalid(f"unmarshal {what}: invalid timestamp (seconds={seconds}, nanos={nanos})")


def encode_value(value: datastore_pb2.TypedValue, what: str = "key") -> bytes:
    """Encode one typed value as a key component; ``what`` names the input in errors."""
    kind = value.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return NULL_KEY
    if kind == "int_value":
        return _number(float(value.int_value), value.int_value)
    if kind == "float_value":
        return _number(value.float_value, None)
    if kind == "string_value":
        return bytes([_STRING]) + _escaped(value.string_value.encode("utf-8"))
    if kind == "bool_value":
        return bytes([_BOOL, 1 if value.bool_value else 0])
    if kind == "bytes_value":
        return bytes([_BYTES]) + _escaped(value.bytes_value)
    if kind == "time_value":
        seconds, nanos = value.time_value.seconds, value.time_value.nanos
        _check_time(seconds, nanos, what)
        return bytes([_TIME]) + (seconds + _SIGN_BIT).to_bytes(8, "big") + nanos.to_bytes(4, "big")
    json = value.json_value.SerializeToString(deterministic=True)
    return bytes([_JSON]) + _escaped(json)


def _encode_key_value(value: datastore_pb2.KeyValue, what: str) -> bytes:
    kind = value.WhichOneof("kind")
    if kind == "scalar":
        return encode_value(value.scalar, what)
    if kind == "array":
        inner = b"".join(_encode_key_value(item, what) for item in value.array.elements)
        return bytes([_ARRAY]) + inner + _ARRAY_END
    raise invalid(f"unmarshal {what}: empty key value")


def encode_key_values(values: Iterable[datastore_pb2.KeyValue], what: str = "cursor key") -> bytes:
    """Encode a key given as key values (one per component) as a compound key."""
    return b"".join(_encode_key_value(value, what) for value in values)


def encode_primary(record_key: str) -> bytes:
    """Encode a primary key (the record's string id)."""
    return bytes([_STRING]) + _escaped(record_key.encode("utf-8"))


def decode_primary(encoded: bytes) -> str:
    """The string id of an encoded primary key (the inverse of :func:`encode_primary`)."""
    return encoded[1 : -len(_TERMINATOR)].replace(_ESCAPED_NUL, b"\x00").decode("utf-8")


def prefix_upper_bound(prefix: bytes) -> bytes:
    """Exclusive upper bound of the keys that start with the compound-key ``prefix``.

    Every byte that can follow a complete component is a kind tag or an array end, all
    below 0xFF, so appending 0xFF bounds exactly the keys extending the prefix.
    """
    return prefix + b"\xff"


def record_id(record: datastore_pb2.Record) -> str:
    """The primary key of a record: its string ``id`` field, ``""`` when missing or not a string."""
    value = record.fields.get("id")
    if value is None or value.WhichOneof("kind") != "string_value":
        return ""
    return value.string_value


def index_key(record: datastore_pb2.Record, key_path: Sequence[str]) -> tuple[bytes, bool]:
    """The index key of ``record`` for ``key_path`` and whether every component is non-null.

    A field the record lacks counts as null, so every record appears in every index of its
    store; only complete keys take part in unique constraints.
    """
    parts: list[bytes] = []
    complete = True
    for field in key_path:
        value = record.fields.get(field)
        part = NULL_KEY if value is None else encode_value(value, "record")
        complete = complete and part != NULL_KEY
        parts.append(part)
    return b"".join(parts), complete


def check_record(record: datastore_pb2.Record) -> None:
    """Reject a record the host could not decode (``INVALID_ARGUMENT unmarshal record: …``)."""
    for name, value in record.fields.items():
        if value.WhichOneof("kind") == "time_value":
            _check_time(value.time_value.seconds, value.time_value.nanos, f"record: field {name!r}")
