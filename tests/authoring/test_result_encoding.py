"""Encoding handler results as JSON (contract 3.4, quirk 6)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import math
import pathlib
import types
import uuid
from typing import Any

import pytest

from gestalt import Model, Response
from gestalt._authoring.encode import EncodeError, dumps, to_jsonable


class Plain(enum.Enum):
    A = 1
    B = "b"


class Flags(enum.IntFlag):
    X = 1


class Color(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Tag(str):
    """A str subclass that is not an enum."""


class Point(Model):
    x: int
    y: int | None = None


@dataclasses.dataclass
class Wrapper:
    point: Point
    when: dt.date


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        ({"b": 1, "a": [True, None]}, '{"b":1,"a":[true,null]}'),  # key order kept
        ("é", '"\\u00e9"'),
        (b"\x00\xff", '"AP8="'),
        (bytearray(b"hi"), '"aGk="'),
        (dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC), '"2026-01-01T12:00:00Z"'),
        (dt.datetime(2026, 1, 1, 12, 0), '"2026-01-01T12:00:00"'),
        (
            dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            '"2026-01-01T00:00:00+02:00"',
        ),
        (dt.date(2026, 1, 2), '"2026-01-02"'),
        (dt.time(1, 2, 3), '"01:02:03"'),
        (decimal.Decimal("1.10"), '"1.10"'),
        (uuid.UUID(int=255), '"00000000-0000-0000-0000-0000000000ff"'),
        (pathlib.PurePosixPath("/x/y"), '"/x/y"'),
        (Plain.A, "1"),
        (Plain.B, '"b"'),
        (Flags.X, "1"),
        ({3, 1, 2}, "[1,2,3]"),  # sorted when comparable
        (frozenset({"b", "a"}), '["a","b"]'),
        ((1, "a"), '[1,"a"]'),
        (Wrapper(Point(1), dt.date(2026, 1, 1)), '{"point":{"x":1,"y":null},"when":"2026-01-01"}'),
        ({1: "a", 2.5: "b", None: "c", False: "d"}, '{"1":"a","2.5":"b","null":"c","false":"d"}'),
        ({Plain.B: 1, dt.date(2026, 1, 1): 2}, '{"b":1,"2026-01-01":2}'),
        ({"inner": Response(201, "x")}, '{"inner":{"status":201,"body":"x"}}'),
    ],
)
def test_encoded(value: Any, text: str) -> None:
    assert dumps(value) == text


@pytest.mark.parametrize(
    "value",
    [
        {Color.RED: [Color.RED, Level.HIGH], Level.HIGH: Flags.X, "t": Tag("x")},
        types.MappingProxyType({"a": Plain.B, "b": {Plain.A: 1.5}}),
        [Wrapper(Point(1, 2), dt.date(2026, 1, 1)), {frozenset({2, 1}), 3}.pop(), None],
        {"deep": [{"x": [Point(3), (b"\x01", dt.timedelta(seconds=90))]}]},
        {dt.time(1, 2): {uuid.UUID(int=1): decimal.Decimal("2.5")}},
    ],
)
def test_one_pass_encoding_matches_full_conversion(value: Any) -> None:
    # dumps() lets the C encoder write what it knows and converts the rest on the way; the
    # result must be exactly that of converting the whole value first.
    plain = json.dumps(to_jsonable(value), separators=(",", ":"), allow_nan=False)
    assert dumps(value) == plain


def test_one_pass_encoder_without_the_c_module(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without json's C encoder (or with a constructor it does not know), the one-pass encoder
    # is JSONEncoder.encode: the same text, the same refusals.
    from gestalt._authoring import encode

    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    chunks = encode._one_pass()
    value = {"p": Point(1), "when": dt.date(2026, 1, 1), "c": [Color.RED, Level.HIGH]}
    assert "".join(chunks(value, 0)) == dumps(value)
    with pytest.raises(ValueError):
        "".join(chunks(math.nan, 0))


def test_a_value_containing_itself_is_refused() -> None:
    looped: dict[str, Any] = {}
    looped["self"] = [looped]
    with pytest.raises(RecursionError):
        dumps(looped)


@pytest.mark.parametrize(
    ("value", "where"),
    [
        (math.nan, "$: nan has no JSON representation"),
        ({"a": [1, math.inf]}, "$.a[1]: inf has no JSON representation"),
        (decimal.Decimal("NaN"), "$: Decimal NaN has no JSON representation"),
        ({"a": object()}, "$.a: values of type object cannot be encoded as JSON"),
        ({(1, 2): "x"}, "$: mapping keys of type tuple cannot be encoded as JSON"),
        ([Point(x=object())], "$[0].x: values of type object"),  # type: ignore[arg-type]
    ],
)
def test_not_encodable(value: Any, where: str) -> None:
    with pytest.raises(EncodeError) as info:
        dumps(value)
    assert str(info.value).startswith(where)


def test_unencodable_result_is_a_logged_500(caplog: pytest.LogCaptureFixture) -> None:
    from gestalt import Plugin, Request

    plugin = Plugin("enc")

    @plugin.operation
    def nan() -> float:
        return math.nan

    result = plugin.execute("nan", {}, Request())
    assert (result.status, result.body) == (500, '{"error":"internal error"}')
    assert "not JSON-encodable: $: nan has no JSON representation" in caplog.text
