"""IndexedDB values on the wire: records, keys, key ranges, schemas and request messages.

Shared by the sync (:mod:`.indexeddb`) and asyncio (:mod:`.indexeddb_aio`)
clients. Everything here is pure: it checks arguments and builds or reads pb2 messages, so a
bad argument fails with :class:`TypeError` or :class:`ValueError` before any call is made.

A record is a ``dict`` with ``str`` keys; each value becomes one ``TypedValue``, tried in this
order: ``None`` (null), ``bool``, ``int`` (int64), ``float``, ``str``, bytes-like
(``bytes``, ``bytearray``, ``memoryview``), ``datetime`` (naive taken as UTC), anything else
as JSON (``google.protobuf.Value``: dicts with ``str`` keys, lists, tuples, ``str``, numbers,
booleans, None). Reading back gives ``str``, ``int``, ``float``, ``bool``, ``bytes``, aware UTC
``datetime`` and, for JSON, dicts and lists whose numbers are all floats.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

import grpc
from google.protobuf import struct_pb2
from google.rpc import status_pb2

from gestalt._clients.checks import check_str
from gestalt._clients.errors import (
    INDEXEDDB_ERRORS,
    AlreadyExistsError,
    HostServiceError,
    NotFoundError,
    TransactionError,
)
from gestalt.gen import support
from gestalt.gen.v1 import datastore_pb2 as pb

if TYPE_CHECKING:
    from gestalt._clients.indexeddb_types import KeyRange

__all__ = [
    "CURSOR_NEXT",
    "CURSOR_NEXT_UNIQUE",
    "CURSOR_PREV",
    "CURSOR_PREV_UNIQUE",
    "check_direction",
    "check_id",
    "check_name",
    "check_stores",
    "cursor_open",
    "decode_key",
    "decode_record",
    "decode_records",
    "decode_value",
    "durability_hint_value",
    "encode_key",
    "encode_record",
    "encode_value",
    "in_band_error",
    "index_request",
    "mode_value",
    "protocol_error",
    "range_request",
    "record_request",
    "schema_request",
]

#: Cursor directions (equal to the proto enum ``CursorDirection``).
CURSOR_NEXT: Final = 0
CURSOR_NEXT_UNIQUE: Final = 1
CURSOR_PREV: Final = 2
CURSOR_PREV_UNIQUE: Final = 3

_DIRECTIONS = {
    CURSOR_NEXT: "CURSOR_NEXT",
    CURSOR_NEXT_UNIQUE: "CURSOR_NEXT_UNIQUE",
    CURSOR_PREV: "CURSOR_PREV",
    CURSOR_PREV_UNIQUE: "CURSOR_PREV_UNIQUE",
}

# Integers a JSON number (an IEEE double) holds exactly.
_MAX_EXACT_JSON_INT = 2**53


# -- argument checks -------------------------------------------------------------------------


def _type_name(value: object) -> str:
    return type(value).__name__


def check_name(value: object, what: str) -> str:
    """A non-empty ``str`` name (store or index); ``what`` names it in errors."""
    value = check_str(value, what)
    if not value:
        raise ValueError(f"{what} must not be empty")
    return value


def check_id(value: object) -> str:
    """A primary key argument: a ``str`` (the record's ``"id"``)."""
    return check_str(value, "a primary key (id)")


def check_stores(stores: object) -> list[str]:
    """The object stores of a transaction: a non-empty collection of names, order kept."""
    if isinstance(stores, str | bytes | bytearray):
        raise TypeError(
            f"stores must be a list of store names, not a single {_type_name(stores)}; "
            "wrap one name in a list"
        )
    if not isinstance(stores, Iterable):
        raise TypeError(f"stores must be a list of store names, not {_type_name(stores)}")
    names = [check_name(store, "store name") for store in stores]
    if not names:
        raise ValueError("a transaction needs at least one object store")
    return names


def check_direction(direction: object) -> int:
    """A cursor direction: one of the four ``CURSOR_*`` constants."""
    if isinstance(direction, bool) or not isinstance(direction, int):
        raise TypeError(f"direction must be a CURSOR_* constant, not {_type_name(direction)}")
    if direction not in _DIRECTIONS:
        raise ValueError(
            f"unknown cursor direction {direction!r}; use CURSOR_NEXT, CURSOR_NEXT_UNIQUE, "
            "CURSOR_PREV or CURSOR_PREV_UNIQUE"
        )
    return int(direction)


def _normalise(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"transaction {what} must be a str, not {_type_name(value)}")
    return value.replace("-", "").replace("_", "").lower()


_MODES = {"readonly": pb.TRANSACTION_READONLY, "readwrite": pb.TRANSACTION_READWRITE}
_HINTS = {
    "default": pb.TRANSACTION_DURABILITY_DEFAULT,
    "strict": pb.TRANSACTION_DURABILITY_STRICT,
    "relaxed": pb.TRANSACTION_DURABILITY_RELAXED,
}


def mode_value(mode: object) -> pb.TransactionMode.ValueType:
    """``"readonly"`` / ``"readwrite"`` (any case, ``-`` and ``_`` ignored) as the proto enum."""
    value = _MODES.get(_normalise(mode, "mode"))
    if value is None:
        raise ValueError(f"unsupported transaction mode: {mode!r}")
    return value


def durability_hint_value(hint: object) -> pb.TransactionDurabilityHint.ValueType:
    """``"default"`` / ``"strict"`` / ``"relaxed"`` (normalised like modes) as the proto enum."""
    value = _HINTS.get(_normalise(hint, "durability hint"))
    if value is None:
        raise ValueError(f"unsupported transaction durability hint: {hint!r}")
    return value


# -- encoding --------------------------------------------------------------------------------

_NULL = struct_pb2.NULL_VALUE


def _set_json(target: struct_pb2.Value, value: Any) -> None:
    """Fill a ``google.protobuf.Value`` from a JSON-like Python value."""
    if value is None:
        target.null_value = _NULL
    elif isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        if -_MAX_EXACT_JSON_INT <= value <= _MAX_EXACT_JSON_INT:
            target.number_value = value
        else:
            raise ValueError(
                f"the int {value} inside a JSON value would lose precision as a double; "
                "store it as a top-level field or as a str"
            )
    elif isinstance(value, float):
        target.number_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, Mapping):
        struct = target.struct_value
        struct.SetInParent()  # an empty dict stays a struct
        fields = struct.fields
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be str, not {_type_name(key)}")
            _set_json(fields[key], item)
    elif isinstance(value, list | tuple):
        items = target.list_value
        items.SetInParent()
        values = items.values
        for item in value:
            _set_json(values.add(), item)
    else:
        raise TypeError(f"unsupported JSON value type: {type(value)!r}")


def _set_typed_slow(target: pb.TypedValue, value: Any) -> None:
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = int(value)
    elif isinstance(value, float):
        target.float_value = float(value)
    elif isinstance(value, str):
        target.string_value = str(value)
    elif isinstance(value, bytes | bytearray):
        target.bytes_value = bytes(value)
    elif isinstance(value, memoryview):
        target.bytes_value = value.tobytes()
    elif isinstance(value, dt.datetime):
        target.time_value.CopyFrom(support.timestamp_to_pb(value))
    else:
        _set_json(target.json_value, value)


def encode_value(target: pb.TypedValue, value: Any) -> None:
    """Fill ``target`` with a record value, key component or bound (see the module doc)."""
    cls = type(value)
    if cls is str:
        target.string_value = value
    elif cls is int:
        target.int_value = value  # protobuf refuses values outside int64 (ValueError)
    elif value is None:
        target.null_value = _NULL
    elif cls is bool:
        target.bool_value = value
    elif cls is float:
        target.float_value = value
    elif cls is bytes:
        target.bytes_value = value
    else:
        _set_typed_slow(target, value)


def _fill_record(target: pb.Record, record: object) -> None:
    if not isinstance(record, Mapping):
        raise TypeError(f"a record must be a dict, not {_type_name(record)}")
    fields = target.fields
    for key, value in record.items():
        if type(key) is not str and not isinstance(key, str):
            raise TypeError(f"record keys must be str, not {_type_name(key)} ({key!r})")
        encode_value(fields[key], value)


def encode_record(record: object) -> pb.Record:
    """A record (a ``dict`` with ``str`` keys) as a ``Record`` message."""
    target = pb.Record()
    _fill_record(target, record)
    return target


def _check_has_id(record: object) -> None:
    if isinstance(record, Mapping):
        if "id" not in record:
            raise ValueError('a record needs an "id" field (its primary key)')
        key = record["id"]
        if not isinstance(key, str):
            raise TypeError(f'a record\'s "id" must be a str, not {_type_name(key)}')


def record_request(store: str, record: object) -> pb.RecordRequest:
    """``RecordRequest`` for add/put: the record must carry a ``str`` ``"id"``."""
    _check_has_id(record)
    request = pb.RecordRequest(store=store)
    _fill_record(request.record, record)
    return request


def _fill_key_value(target: pb.KeyValue, component: Any) -> None:
    if isinstance(component, list | tuple):
        elements = target.array
        elements.SetInParent()
        for item in component:
            _fill_key_value(elements.elements.add(), item)
    else:
        encode_value(target.scalar, component)


def encode_key(key: Any, *, index: bool) -> list[pb.KeyValue]:
    """The ``KeyValue`` list of a ``continue_to_key`` target.

    On an index cursor a list or tuple is one component per element; any other key (and
    every key on a store cursor) is a single component. Nested lists become arrays.
    """
    parts = key if index and isinstance(key, list | tuple) else (key,)
    result = []
    for part in parts:
        value = pb.KeyValue()
        _fill_key_value(value, part)
        result.append(value)
    return result


def _check_bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"KeyRange.{what} must be a bool, not {_type_name(value)}")
    return value


def _fill_range(target: pb.KeyRange, key_range: object) -> None:
    from gestalt._clients.indexeddb_types import KeyRange  # here: only ranged calls need it

    if not isinstance(key_range, KeyRange):
        raise TypeError(f"key_range must be a KeyRange or None, not {_type_name(key_range)}")
    target.SetInParent()  # KeyRange() is sent as a present, empty range
    if key_range.lower is not None:
        encode_value(target.lower, key_range.lower)
    if key_range.upper is not None:
        encode_value(target.upper, key_range.upper)
    target.lower_open = _check_bool(key_range.lower_open, "lower_open")
    target.upper_open = _check_bool(key_range.upper_open, "upper_open")


def range_request(
    store: str, key_range: KeyRange | None, *, required: bool = False
) -> pb.ObjectStoreRangeRequest:
    """``ObjectStoreRangeRequest``; ``range`` is left unset for None unless ``required``."""
    request = pb.ObjectStoreRangeRequest(store=store)
    if key_range is not None:
        _fill_range(request.range, key_range)
    elif required:
        raise TypeError("key_range is required: pass a KeyRange (clear() deletes every record)")
    return request


def index_request(
    store: str, index: str, values: tuple[Any, ...], key_range: KeyRange | None = None
) -> pb.IndexQueryRequest:
    """``IndexQueryRequest``: one ``TypedValue`` per value, ``range`` only when given."""
    request = pb.IndexQueryRequest(store=store, index=index)
    targets = request.values
    for value in values:
        encode_value(targets.add(), value)
    if key_range is not None:
        _fill_range(request.range, key_range)
    return request


def cursor_open(
    store: str,
    *,
    key_range: KeyRange | None,
    direction: int,
    keys_only: bool,
    index: str,
    values: tuple[Any, ...],
) -> pb.CursorClientMessage:
    """The first frame of a cursor stream."""
    frame = pb.CursorClientMessage()
    spec = frame.open
    spec.store = store
    if key_range is not None:
        _fill_range(spec.range, key_range)
    spec.direction = direction  # type: ignore[assignment]  # checked by check_direction
    spec.keys_only = keys_only
    if index:
        spec.index = index
        targets = spec.values
        for value in values:
            encode_value(targets.add(), value)
    return frame


def schema_request(name: str, schema: object) -> pb.CreateObjectStoreRequest:
    """``CreateObjectStoreRequest`` with the schema always present (empty for None)."""
    request = pb.CreateObjectStoreRequest(name=name)
    target = request.schema
    target.SetInParent()
    if schema is None:
        return request
    from gestalt._clients.indexeddb_types import IndexSchema, ObjectStoreSchema

    if not isinstance(schema, ObjectStoreSchema):
        raise TypeError(f"schema must be an ObjectStoreSchema or None, not {_type_name(schema)}")
    if isinstance(schema.indexes, str) or not isinstance(schema.indexes, Iterable):
        raise TypeError("ObjectStoreSchema.indexes must be a list of IndexSchema")
    for index in schema.indexes:
        if not isinstance(index, IndexSchema):
            raise TypeError(
                f"ObjectStoreSchema.indexes holds a {_type_name(index)}, not IndexSchema"
            )
        entry = target.indexes.add()
        entry.name = check_name(index.name, "index name")
        key_path = index.key_path
        if isinstance(key_path, str) or not isinstance(key_path, Iterable):
            raise TypeError(
                f"IndexSchema.key_path of {index.name!r} must be a list of field names, "
                f"not {_type_name(key_path)}"
            )
        entry.key_path.extend(check_name(part, "key_path field") for part in key_path)
        if not entry.key_path:
            raise ValueError(f"IndexSchema {index.name!r} needs at least one key_path field")
        if not isinstance(index.unique, bool):
            raise TypeError(f"IndexSchema.unique must be a bool, not {_type_name(index.unique)}")
        entry.unique = index.unique
    return request


# -- decoding --------------------------------------------------------------------------------


def _null(value: pb.TypedValue) -> None:
    return None


def _time(value: pb.TypedValue) -> dt.datetime:
    # From the integer seconds and nanos, truncated to microseconds (never rounded up).
    return support.timestamp_from_pb(value.time_value)


def _json(value: pb.TypedValue) -> Any:
    return support.value_from_pb(value.json_value)


# Kinds whose value is not the plain attribute; the others are read with getattr.
_SPECIAL: dict[str | None, Callable[[pb.TypedValue], Any]] = {
    None: _null,
    "null_value": _null,
    "time_value": _time,
    "json_value": _json,
}


def decode_value(value: pb.TypedValue) -> Any:
    """A ``TypedValue`` as a Python value."""
    kind = value.WhichOneof("kind")
    special = _SPECIAL.get(kind)
    if special is None:
        return getattr(value, kind)  # type: ignore[arg-type]
    return special(value)


def decode_record(record: pb.Record) -> dict[str, Any]:
    """A ``Record`` as a dict."""
    special = _SPECIAL.get
    result: dict[str, Any] = {}
    fields = record.fields
    for key in fields:  # indexing: the map's items() view iterates in Python, twice as slow
        value = fields[key]
        kind = value.WhichOneof("kind")
        decoder = special(kind)
        result[key] = getattr(value, kind) if decoder is None else decoder(value)  # type: ignore[arg-type]
    return result


def decode_records(records: Iterable[pb.Record]) -> list[dict[str, Any]]:
    """Records as a list of dicts."""
    return [decode_record(record) for record in records]


def _decode_key_value(value: pb.KeyValue) -> Any:
    if value.WhichOneof("kind") == "array":
        return [_decode_key_value(item) for item in value.array.elements]
    return decode_value(value.scalar)


def decode_key(components: Iterable[pb.KeyValue], *, index: bool) -> Any:
    """A cursor entry's key: a list on index cursors, the single component on store cursors."""
    parts = [_decode_key_value(component) for component in components]
    if index:
        return parts
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else parts


# -- errors ----------------------------------------------------------------------------------


def in_band_error(status: status_pb2.Status) -> HostServiceError:
    """The exception for a failure reported inside a transaction frame.

    ``NOT_FOUND`` and ``ALREADY_EXISTS`` get their named errors; every other code is a
    :class:`TransactionError` (the transaction is over), carrying the code it came with.
    """
    error = INDEXEDDB_ERRORS.for_status(status.code, status.message)
    if isinstance(error, NotFoundError | AlreadyExistsError | TransactionError):
        return error
    return TransactionError(status.message, code=error.code)


def protocol_error(message: str) -> HostServiceError:
    """The host broke the stream protocol (a frame out of place, a stream cut short)."""
    return HostServiceError(message, code=grpc.StatusCode.INTERNAL)
