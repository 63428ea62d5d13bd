"""Encode handler results (and catalog defaults) as JSON.

Output is compact (no spaces), ASCII-only (``\\uXXXX`` escapes) and keeps key order. Values are
converted as follows:

* ``None``, ``bool``, ``int``, ``str`` as themselves; ``float`` as a number, but NaN and
  infinities are refused (the reference emitted invalid JSON tokens, quirk 6);
* ``Enum`` members (plain, ``str`` or ``int`` based) as their ``value``, converted recursively;
* ``Model`` / dataclass instances as objects of all their fields in declaration order;
* mappings as objects; keys must be strings, numbers, ``None``/``bool`` (``"null"``,
  ``"true"``, ...), enums or one of the string-like types below;
* ``list`` and ``tuple`` as arrays; ``set`` / ``frozenset`` as arrays, sorted when the items
  are comparable so the output is stable;
* ``bytes`` / ``bytearray`` / ``memoryview`` as standard base64 strings;
* ``datetime`` as ISO 8601 (UTC written with ``Z``), ``date`` and ``time`` as ISO 8601;
  ``timedelta`` as an ISO 8601 duration in days, hours, minutes and seconds (``P1DT2H0.5S``,
  ``-PT30M``, ``PT0S``);
* ``Decimal`` as its exact decimal string, ``UUID`` and ``pathlib`` paths as strings.

Anything else raises ``EncodeError`` naming where in the value it sits; the caller turns that into
a logged 500 (quirk 6: the reference gave an unexplained 500 for all of the types above).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Self


class LocatedError(Exception):
    """A ``problem`` found in one part of a value, ``path`` the keys and ``[index]``es to it.

    Encoding and parameter decoding raise it where they fail and relocate it with
    ``within`` as it travels out of nested values; each subclass writes the path its way.
    """

    def __init__(self, problem: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = path

    def within(self, segment: str) -> Self:
        """Return the same error located one level deeper, under ``segment``."""
        return type(self)(self.problem, (segment, *self.path))


class EncodeError(LocatedError, TypeError):
    """A value (or part of one) has no JSON representation."""

    def __str__(self) -> str:
        where = "".join(s if s.startswith("[") else "." + s for s in self.path)
        return f"${where}: {self.problem}"


def dumps(value: Any) -> str:
    """Encode ``value`` as compact, ASCII-only JSON text.

    The common case (plain JSON data, with models, enums, dates ... inside) is written by the
    C encoder in one pass, converting only what it cannot write itself (:func:`_shallow`); a
    value it refuses (NaN, a key such as a ``datetime``) is converted whole by
    :func:`to_jsonable` instead, which writes those keys and locates any real problem.
    """
    try:
        return "".join(_FAST_CHUNKS(value, 0))
    except (TypeError, ValueError):
        return _PLAIN.encode(to_jsonable(value))


def _shallow(value: Any) -> Any:
    """What the C encoder writes in place of a value it does not know, one level deep."""
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return dict(value.items())
    return to_jsonable(value)


def _one_pass() -> Callable[[Any, int], Iterable[str]]:
    """The chunks of ``JSONEncoder(..., default=_shallow).encode``, its C encoder built once.

    ``encode`` builds a new C encoder (and a dict to detect cycles) on every call, about as long
    as encoding a small result takes. This one keeps a single encoder without that check: a
    value that contains itself ends in ``RecursionError`` here, as it already did in
    :func:`to_jsonable`. Without the C module, or if its constructor changed, ``encode`` does it.
    """
    make: Any = getattr(json.encoder, "c_make_encoder", None)
    try:
        # markers, default, string encoder, indent, separators, sort_keys, skipkeys, allow_nan
        chunks: Callable[[Any, int], Iterable[str]] = make(
            None,
            _shallow,
            json.encoder.encode_basestring_ascii,
            None,
            ":",
            ",",
            False,
            False,
            False,
        )
    except TypeError:  # no C module (make is None), or another constructor
        plain = json.JSONEncoder(
            ensure_ascii=True, separators=(",", ":"), allow_nan=False, default=_shallow
        ).encode
        return lambda value, _indent: (plain(value),)
    return chunks


_PLAIN = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False)
_FAST_CHUNKS = _one_pass()


def to_jsonable(value: Any) -> Any:
    """Convert ``value`` into plain JSON data (dict, list, str, int, float, bool, None)."""
    if value is None or type(value) in (str, bool, int):
        return value
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EncodeError(f"{value!r} has no JSON representation")
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):  # bool and int subclasses such as IntFlag members
        return value if isinstance(value, bool) else int(value)
    if isinstance(value, Mapping):
        return _mapping(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _mapping({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, list | tuple):
        return convert_items(to_jsonable, value)
    if isinstance(value, set | frozenset):
        try:
            ordered = sorted(value)
        except TypeError:
            ordered = list(value)
        return convert_items(to_jsonable, ordered)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    return _string_like(value)


def _string_like(value: Any) -> str:
    if isinstance(value, dt.datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return iso_duration(value)
    # Decimal, UUID and path values exist only once their modules are imported (the SDK does
    # not import them: together they cost milliseconds at start-up).
    decimal = sys.modules.get("decimal")
    if decimal is not None and isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise EncodeError(f"Decimal {value} has no JSON representation")
        return str(value)
    uuid, pathlib = sys.modules.get("uuid"), sys.modules.get("pathlib")
    if (uuid is not None and isinstance(value, uuid.UUID)) or (
        pathlib is not None and isinstance(value, pathlib.PurePath)
    ):
        return str(value)
    raise EncodeError(f"values of type {type(value).__qualname__} cannot be encoded as JSON")


def iso_duration(delta: dt.timedelta) -> str:
    """Write ``delta`` as an ISO 8601 duration: ``P<d>DT<h>H<m>M<s>S``, zero parts left out."""
    micros = abs(delta) // dt.timedelta(microseconds=1)
    days, micros = divmod(micros, 86_400_000_000)
    hours, micros = divmod(micros, 3_600_000_000)
    minutes, micros = divmod(micros, 60_000_000)
    seconds, micros = divmod(micros, 1_000_000)
    clock = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M")) if n)
    if seconds or micros or not (days or clock):
        clock += f"{seconds}.{micros:06d}".rstrip("0").rstrip(".") + "S"
    sign = "-" if delta < dt.timedelta(0) else ""
    return f"{sign}P{f'{days}D' if days else ''}{'T' + clock if clock else ''}"


def convert_items(convert: Callable[[Any], Any], values: Iterable[Any]) -> list[Any]:
    """``convert`` each of ``values``; a ``LocatedError`` is relocated under its ``[index]``."""
    out = []
    for index, item in enumerate(values):
        try:
            out.append(convert(item))
        except LocatedError as exc:
            raise exc.within(f"[{index}]") from None
    return out


def _mapping(values: Mapping[Any, Any]) -> dict[str, Any]:
    out = {}
    for key, item in values.items():
        name = _key(key)
        try:
            out[name] = to_jsonable(item)
        except EncodeError as exc:
            raise exc.within(name) from None
    return out


def _key(key: Any) -> str:
    if isinstance(key, enum.Enum):
        key = key.value
    if isinstance(key, str):
        return str.__str__(key)
    if key is None or isinstance(key, bool | int | float):
        if isinstance(key, float) and not math.isfinite(key):
            raise EncodeError(f"mapping key {key!r} has no JSON representation")
        return json.dumps(key)
    try:
        return _string_like(key)
    except EncodeError:
        raise EncodeError(
            f"mapping keys of type {type(key).__qualname__} cannot be encoded as JSON"
        ) from None
