"""Turn host parameters into typed handler inputs, and read annotations for the catalog.

The host sends parameters as a protobuf ``Struct``: POST bodies keep JSON types, but every
number arrives as a float; GET query strings arrive as strings. Decoders are compiled from the
annotations once, at registration, so an unsupported annotation fails at import time and calls
pay no reflection cost. A rejected value raises ``DecodeError`` with a field path such as
``inner.x`` or ``tags[2]`` and a short problem (never Python exception text, quirk 9).

Accepted values per annotation (quirks 1, 2, 4 and 8 of the contract):

* ``str``: strings only (the reference ``str()``-ed anything, giving ``"7.0"``);
* ``int``: integers, integral floats (``2.0`` -> 2) and integer strings; ``2.5`` is refused;
* ``float``: numbers and numeric strings, finite only; ``bool``: booleans and the strings
  ``true``/``false``/``1``/``0`` in any case;
* ``bytes``: base64 strings (standard or URL-safe alphabet); ``Decimal``: numbers or strings;
  ``UUID``: strings; ``datetime`` / ``date`` / ``time``: ISO 8601 strings; ``timedelta``: ISO
  8601 durations (``PT1H30M``, ``-P2DT0.5S``; no years or months) or a number of seconds
  (numeric strings too); ``pathlib`` paths: non-empty strings;
* ``Enum`` and ``Literal``: one of the declared values (numeric strings match numbers);
* ``list``/``Sequence``, ``set``/``frozenset``, ``tuple`` (fixed or ``...``): JSON arrays;
  ``dict``/``Mapping``: JSON objects, keys decoded too;
* ``X | Y``: the member matching the value's JSON kind is tried first, then the others in
  order; ``null`` only where the annotation includes ``None`` (or is ``Any``);
* ``Model`` / dataclass: an object; unknown keys are ignored, a missing field takes its default,
  is ``None`` when the catalog calls it optional, and is an error otherwise;
* ``Any`` / ``object``: the value unchanged. ``Annotated`` and ``NewType`` are unwrapped.

Any other annotation is rejected at registration with ``TypeError``.

``catalog_schema`` tells the catalog how each annotation travels: its JSON ``type`` and, where
they apply, a ``format`` (``date-time``, ``uuid``, ``byte`` ...) and the ``enum`` values.
"""

from __future__ import annotations

import base64
import binascii
import collections.abc as cabc
import dataclasses
import datetime as dt
import enum
import math
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from gestalt._authoring.encode import EncodeError, LocatedError, convert_items, to_jsonable
from gestalt._authoring.model import REQUIRED_KEY, is_dataclass_type, model_fields

Decoder = Callable[[Any], Any]
NoneType = type(None)

if TYPE_CHECKING:
    import decimal
    import pathlib
    import uuid


class DecodeError(LocatedError, ValueError):
    """A parameter value does not fit its annotation; ``str()`` gives ``path: problem``."""

    def __str__(self) -> str:
        where = ""
        for segment in self.path:
            where += segment if segment.startswith("[") or not where else "." + segment
        return f"{where}: {self.problem}" if where else self.problem


# --- annotation helpers shared with the catalog -------------------------------------------


def unwrap(tp: Any) -> Any:
    """Strip ``Annotated[...]`` and ``NewType`` layers from an annotation."""
    while True:
        if typing.get_origin(tp) is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif hasattr(tp, "__supertype__"):
            tp = tp.__supertype__
        else:
            return tp


def union_members(tp: Any) -> tuple[Any, ...] | None:
    """Return the members of a ``Union`` / ``X | Y`` annotation, or ``None`` for other types."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return None


def accepts_none(tp: Any) -> bool:
    """Report whether the annotation is ``None`` or a union that includes ``None``."""
    tp = unwrap(tp)
    members = union_members(tp)
    if members is None:
        return tp is None or tp is NoneType
    return any(unwrap(m) is NoneType for m in members)


def without_none(tp: Any) -> Any:
    """Reduce ``X | None`` (exactly one other member) to ``X``; leave other annotations alone."""
    tp = unwrap(tp)
    members = union_members(tp)
    if members is not None:
        others = [m for m in members if unwrap(m) is not NoneType]
        if len(others) == 1 and len(others) < len(members):
            return unwrap(others[0])
    return tp


_JSON_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_STRING_FORMATS: dict[Any, str | None] = {
    dt.datetime: "date-time",
    dt.date: "date",
    dt.time: "time",
    dt.timedelta: "duration",
    bytes: "byte",  # UUID and Decimal join when their modules are imported (_late_types)
}
_PATHS: set[type[Any]] = set()  # pathlib's classes, once it is imported (_late_types)


def catalog_schema(tp: Any) -> dict[str, Any]:
    """Describe how values of an annotation travel: ``{"type": ..., "format"?, "enum"?}``.

    ``type`` is the JSON type the host sends and receives (``string``, ``integer``, ``number``,
    ``boolean``, ``array`` or ``object``). Dates, times, durations, UUIDs, decimals and bytes are
    strings with a ``format``; paths are strings; an ``Enum`` or ``Literal`` lists its values
    in ``enum`` with their common JSON type. Unions of several types stay ``object``.
    """
    tp = without_none(tp)
    if _LATE:
        _late_types()
    if _hashable(tp):
        if tp in _JSON_TYPES:
            return {"type": _JSON_TYPES[tp]}
        if tp in _STRING_FORMATS:
            return {"type": "string", "format": _STRING_FORMATS[tp]}
        if tp in _PATHS:
            return {"type": "string"}
    origin = typing.get_origin(tp) or tp
    if origin is typing.Literal:
        return _choices_schema([v for v in typing.get_args(tp) if v is not None])
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _choices_schema([member.value for member in tp])
    if origin in _SEQUENCES or origin is tuple:
        return {"type": "array"}
    return {"type": "object"}


def _choices_schema(values: list[Any]) -> dict[str, Any]:
    """The schema of a fixed set of values: their common JSON type and the values themselves."""
    try:
        listed = [to_jsonable(value) for value in values]
    except EncodeError:
        return {"type": "object"}
    kinds = {_json_kind(value) for value in listed}
    if kinds == {"integer", "number"}:
        kinds = {"number"}
    if len(kinds) != 1 or None in kinds:
        return {"type": "object"}
    return {"type": kinds.pop(), "enum": listed}


def _json_kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def field_required(f: dataclasses.Field[Any], tp: Any) -> bool:
    """Whether the catalog marks a dataclass field required (``field(required=...)`` wins)."""
    override = f.metadata.get(REQUIRED_KEY)
    if override is not None:
        return bool(override)
    has_default = (
        f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    )
    return not has_default and not accepts_none(tp)


# --- value descriptions for error messages ------------------------------------------------


def describe(value: Any) -> str:
    """Describe a received value briefly, without echoing long strings."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _fail(expected: str, value: Any) -> DecodeError:
    return DecodeError(f"expected {expected}, got {describe(value)}")


# --- scalar decoders -----------------------------------------------------------------------


def _identity(value: Any) -> Any:
    return value


def _decode_none(value: Any) -> None:
    if value is not None:
        raise _fail("null", value)


def _decode_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _fail("a string", value)


def _decode_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise _fail("an integer", value)


def _decode_float(value: Any) -> float:
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise _fail("a finite number", value)
    return number


_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


def _decode_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _fail("a boolean", value)


def _decode_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        text = value.strip().replace("-", "+").replace("_", "/")
        try:
            return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            pass
    raise _fail("a base64 string", value)


def _decode_decimal(value: Any) -> decimal.Decimal:
    import decimal

    if isinstance(value, str | int | float) and not isinstance(value, bool):
        try:
            number = decimal.Decimal(str(value).strip())
        except decimal.InvalidOperation:
            number = None
        if number is not None and number.is_finite():
            return number
    raise _fail("a decimal number", value)


def _decode_uuid(value: Any) -> uuid.UUID:
    import uuid

    if isinstance(value, str):
        try:
            return uuid.UUID(value.strip())
        except ValueError:
            pass
    raise _fail("a UUID string", value)


def _iso(kind: type[Any], label: str) -> Decoder:
    parse = kind.fromisoformat

    def decode(value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parse(value.strip())
            except ValueError:
                pass
        raise _fail(f"an ISO 8601 {label}", value)

    return decode


# Compiled (and then cached by ``re``) on the first duration decoded: ~0.6 ms at import otherwise.
_DURATION = (
    r"(?i)([-+])?P(?!$)(?:(\d+(?:[.,]\d+)?)W)?(?:(\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?=\d)(?:(\d+(?:[.,]\d+)?)H)?(?:(\d+(?:[.,]\d+)?)M)?(?:(\d+(?:[.,]\d+)?)S)?)?"
)
_DURATION_UNITS = ("weeks", "days", "hours", "minutes", "seconds")


def _decode_timedelta(value: Any) -> dt.timedelta:
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        match = re.fullmatch(_DURATION, text)
        if match is not None:
            sign, *amounts = match.groups()
            try:
                delta = dt.timedelta(
                    **{
                        unit: float(amount.replace(",", "."))
                        for unit, amount in zip(_DURATION_UNITS, amounts, strict=True)
                        if amount is not None
                    }
                )
            except OverflowError:
                raise _fail("a duration within ±999999999 days", value) from None
            return -delta if sign == "-" else delta
        try:
            seconds = float(text)
        except ValueError:
            seconds = None
    if seconds is not None and math.isfinite(seconds):
        try:
            return dt.timedelta(seconds=seconds)
        except OverflowError:
            raise _fail("a duration within ±999999999 days", value) from None
    raise _fail("an ISO 8601 duration (such as PT1H30M) or a number of seconds", value)


def _path(kind: type[pathlib.PurePath]) -> Decoder:
    def decode(value: Any) -> Any:
        if isinstance(value, str) and value:
            return kind(value)
        raise _fail("a non-empty path string", value)

    return decode


_SCALARS: dict[Any, Decoder] = {
    str: _decode_str,
    int: _decode_int,
    float: _decode_float,
    bool: _decode_bool,
    bytes: _decode_bytes,
    dt.datetime: _iso(dt.datetime, "date-time"),
    dt.date: _iso(dt.date, "date"),
    dt.time: _iso(dt.time, "time"),
    dt.timedelta: _decode_timedelta,
    typing.Any: _identity,
    object: _identity,
    None: _decode_none,
    NoneType: _decode_none,
}

# Types of modules the SDK does not import itself (together ``uuid``, ``decimal`` and ``pathlib``
# cost several milliseconds at start-up): while a module is not imported no annotation can name
# its classes, so they join ``_SCALARS``, ``_STRING_FORMATS`` and ``_PATHS`` the first time an
# annotation is looked at after their module was imported.


def _late_uuid(module: Any) -> None:
    _SCALARS[module.UUID] = _decode_uuid
    _STRING_FORMATS[module.UUID] = "uuid"


def _late_decimal(module: Any) -> None:
    _SCALARS[module.Decimal] = _decode_decimal
    _STRING_FORMATS[module.Decimal] = "decimal"


def _late_pathlib(module: Any) -> None:
    kinds = (module.PurePath, module.PurePosixPath, module.PureWindowsPath, module.Path)
    for kind in kinds:
        _SCALARS[kind] = _path(kind)
    _PATHS.update(kinds)


_LATE: dict[str, Callable[[Any], None]] = {
    "uuid": _late_uuid,
    "decimal": _late_decimal,
    "pathlib": _late_pathlib,
}


def _late_types() -> None:
    for name in [name for name in _LATE if name in sys.modules]:
        try:
            _LATE[name](sys.modules[name])
        except AttributeError:  # the module is still being imported
            continue
        _LATE.pop(name, None)


# --- choices: Enum and Literal -------------------------------------------------------------


def _same(declared: Any, value: Any) -> bool:
    if isinstance(declared, bool) or isinstance(value, bool):
        return type(declared) is type(value) and declared == value
    if isinstance(declared, int | float) and isinstance(value, str):
        try:
            return float(value.strip()) == declared
        except ValueError:
            return False
    return bool(declared == value)


def _choices(options: list[tuple[Any, Any]]) -> Decoder:
    """Decode to the result paired with the first declared value equal to the input."""
    listed = ", ".join(describe(declared) for declared, _ in options)

    def decode(value: Any) -> Any:
        for declared, result in options:
            if _same(declared, value):
                return result
        raise DecodeError(f"expected one of {listed}, got {describe(value)}")

    return decode


def _enum(cls: type[enum.Enum]) -> Decoder:
    choose = _choices([(member.value, member) for member in cls])

    def decode(value: Any) -> Any:
        return value if isinstance(value, cls) else choose(value)

    return decode


# --- containers ----------------------------------------------------------------------------


def _sequence(item: Decoder, build: Callable[[list[Any]], Any]) -> Decoder:
    def decode(value: Any) -> Any:
        if not isinstance(value, list):
            raise _fail("an array", value)
        out = convert_items(item, value)
        try:
            return build(out)
        except TypeError:
            raise DecodeError("array items cannot be collected into a set") from None

    return decode


def _fixed_tuple(items: list[Decoder]) -> Decoder:
    def decode(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list) or len(value) != len(items):
            raise _fail(f"an array of {len(items)} items", value)
        out = []
        for index, (item, element) in enumerate(zip(items, value, strict=True)):
            try:
                out.append(item(element))
            except DecodeError as exc:
                raise exc.within(f"[{index}]") from None
        return tuple(out)

    return decode


def _mapping(key: Decoder, item: Decoder) -> Decoder:
    def decode(value: Any) -> dict[Any, Any]:
        if not isinstance(value, dict):
            raise _fail("an object", value)
        out = {}
        for name, element in value.items():
            try:
                out[key(name)] = item(element)
            except DecodeError as exc:
                raise exc.within(str(name)) from None
        return out

    return decode


_JSON_KINDS: dict[Any, type[Any] | tuple[type[Any], ...]] = {
    str: str,
    int: (int, float),
    float: (int, float),
    bool: bool,
    list: list,
    tuple: list,
    set: list,
    frozenset: list,
    dict: dict,
}


def _union(members: tuple[Any, ...], localns: Mapping[str, Any] | None) -> Decoder:
    nullable = any(unwrap(m) is NoneType for m in members)
    choices = [
        (unwrap(m), compile_decoder(m, localns)) for m in members if unwrap(m) is not NoneType
    ]
    names = " or ".join(getattr(tp, "__name__", None) or repr(tp) for tp, _ in choices)

    def preference(value: Any) -> list[Decoder]:
        first: list[Decoder] = []
        rest: list[Decoder] = []
        for tp, decoder in choices:
            kind = _JSON_KINDS.get(typing.get_origin(tp) or tp)
            matches = kind is not None and isinstance(value, kind)
            if matches and isinstance(value, bool) != (tp is bool):
                matches = False
            (first if matches else rest).append(decoder)
        return first + rest

    def decode(value: Any) -> Any:
        if value is None and nullable:
            return None
        for decoder in preference(value):
            try:
                return decoder(value)
            except DecodeError:
                continue
        raise _fail(names + (" or null" if nullable else ""), value)

    return decode


# --- dataclasses ---------------------------------------------------------------------------

_DATACLASS_DECODERS: dict[type[Any], Decoder] = {}


def _dataclass(cls: type[Any], localns: Mapping[str, Any] | None) -> Decoder:
    cached = _DATACLASS_DECODERS.get(cls)
    if cached is not None:
        return cached
    # Per field: (name, decoder, has a default, None when missing). ``steps`` is what
    # ``decode`` walks, filled in from ``plans`` below (after registration, for recursive models).
    plans: list[tuple[str, Decoder, bool, bool]] = []
    steps: list[tuple[str, Decoder, bool, bool]] = []

    def decode(value: Any) -> Any:
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise _fail("an object", value)
        kwargs: dict[str, Any] = {}
        for name, decode_field, has_default, none_when_missing in steps:
            if name in value:
                try:
                    kwargs[name] = decode_field(value[name])
                except DecodeError as exc:
                    raise exc.within(name) from None
            elif none_when_missing:
                kwargs[name] = None
            elif not has_default:
                raise DecodeError("required value is missing", (name,))
        return cls(**kwargs)

    # Registered before the fields are compiled so self-referencing models terminate.
    _DATACLASS_DECODERS[cls] = decode
    try:
        for f, tp in dataclass_fields(cls, localns, last=True):
            has_default = (
                f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            )
            try:
                field_decoder = compile_decoder(tp, localns)
            except TypeError as exc:
                raise TypeError(f"{cls.__qualname__}.{f.name}: {exc}") from None
            missing_is_none = not has_default and not field_required(f, tp)
            plans.append((f.name, field_decoder, has_default, missing_is_none))
    except BaseException:
        del _DATACLASS_DECODERS[cls]
        raise
    steps.extend(plans)
    return decode


_FIELD_HINTS: dict[type[Any], list[tuple[dataclasses.Field[Any], Any]]] = {}


def dataclass_fields(
    cls: type[Any], localns: Mapping[str, Any] | None = None, *, last: bool = False
) -> list[tuple[dataclasses.Field[Any], Any]]:
    """Return the ``__init__`` fields of a dataclass with their resolved annotations.

    ``localns`` helps resolve string annotations naming classes local to a function. Without
    it (classes defined at module level) the answer is kept until a caller says it asks for the
    ``last`` time: registration asks twice per model, and the decoder, compiled once, last.
    """
    if not localns and cls in _FIELD_HINTS:
        return _FIELD_HINTS.pop(cls) if last else _FIELD_HINTS[cls]
    try:
        hints = typing.get_type_hints(cls, localns=dict(localns or {}), include_extras=True)
    except Exception as exc:
        raise TypeError(f"cannot resolve the annotations of {cls.__qualname__}: {exc}") from None
    fields = [(f, hints.get(f.name, Any)) for f in model_fields(cls)]
    if not localns and not last and cls not in _DATACLASS_DECODERS:  # else none will ask last
        _FIELD_HINTS[cls] = fields
    return fields


# --- entry point ---------------------------------------------------------------------------

_SEQUENCES: dict[Any, Callable[[list[Any]], Any]] = {
    list: list,
    cabc.Sequence: list,
    cabc.MutableSequence: list,
    cabc.Iterable: list,
    cabc.Collection: list,
    set: set,
    cabc.Set: set,
    cabc.MutableSet: set,
    frozenset: frozenset,
}
_MAPPINGS = (dict, cabc.Mapping, cabc.MutableMapping)


def compile_decoder(tp: Any, localns: Mapping[str, Any] | None = None) -> Decoder:
    """Build the decoder for an annotation; raise ``TypeError`` when it is not supported.

    ``localns`` is used to resolve string annotations inside dataclasses (local classes).
    """
    tp = unwrap(tp)
    if _LATE:
        _late_types()
    scalar = _SCALARS.get(tp) if _hashable(tp) else None
    if scalar is not None:
        return scalar
    members = union_members(tp)
    if members is not None:
        return _union(members, localns)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return _choices([(value, value) for value in args])
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum(tp)
    if is_dataclass_type(tp):
        return _dataclass(tp, localns)
    container = origin or tp
    if container in _SEQUENCES:
        item = compile_decoder(args[0], localns) if args else _identity
        return _sequence(item, _SEQUENCES[container])
    if container is tuple:
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            return _sequence(compile_decoder(args[0], localns) if args else _identity, tuple)
        return _fixed_tuple([compile_decoder(a, localns) for a in args])
    if container in _MAPPINGS:
        key, item = (
            (compile_decoder(args[0], localns), compile_decoder(args[1], localns))
            if args
            else (_identity,) * 2
        )
        return _mapping(key, item)
    raise TypeError(
        f"unsupported annotation {_name(tp)} (see gestalt._authoring.decode for what decodes)"
    )


def _hashable(tp: Any) -> bool:
    try:
        hash(tp)
    except TypeError:
        return False
    return True


def _name(tp: Any) -> str:
    return tp.__qualname__ if isinstance(tp, type) else repr(tp)
