"""Decoding host parameters into typed inputs (contract 5.3, quirks 1, 2, 4, 8, 9, 11)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import pathlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, NewType, Optional, Union

import pytest

from gestalt import Error, Model, Plugin, Request, field
from gestalt._authoring.decode import DecodeError, compile_decoder

UserId = NewType("UserId", int)


class Color(str, enum.Enum):  # noqa: UP042 - the str-mixin spelling users write
    RED = "red"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@pytest.mark.parametrize(
    ("annotation", "value", "expected"),
    [
        (int, 2.0, 2),  # quirk 1: Struct numbers are doubles
        (int, " 42 ", 42),
        (int, 10**20 * 1.0, 10**20),
        (float, 2, 2.0),
        (float, "1.5", 1.5),
        (bool, "TRUE", True),
        (bool, " 0 ", False),
        (str, "x", "x"),
        (bytes, "aGk=", b"hi"),
        (bytes, "aGk", b"hi"),  # missing padding tolerated
        (bytes, "-_8", b"\xfb\xff"),  # URL-safe alphabet
        (decimal.Decimal, 1.5, decimal.Decimal("1.5")),
        (decimal.Decimal, "0.10", decimal.Decimal("0.10")),
        (uuid.UUID, "00000000-0000-0000-0000-000000000001", uuid.UUID(int=1)),
        (dt.datetime, "2026-01-01T00:00:00Z", dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
        (dt.date, "2026-01-02", dt.date(2026, 1, 2)),
        (dt.time, "10:30", dt.time(10, 30)),
        (dt.timedelta, "PT1H30M", dt.timedelta(hours=1, minutes=30)),
        (dt.timedelta, "-P1DT0,5S", -dt.timedelta(days=1, seconds=0.5)),
        (dt.timedelta, "p2w", dt.timedelta(weeks=2)),
        (dt.timedelta, 90.0, dt.timedelta(seconds=90)),  # a number of seconds (POST body)
        (dt.timedelta, "1.5", dt.timedelta(seconds=1.5)),  # ... or a query string
        (pathlib.Path, "/x/y", pathlib.Path("/x/y")),
        (pathlib.PurePath, "a/b", pathlib.PurePath("a/b")),
        (Color, "red", Color.RED),
        (Level, 2.0, Level.HIGH),
        (Level, "1", Level.LOW),
        (Literal["a", 3], 3.0, 3),
        (Optional[int], None, None),  # noqa: UP045 - the typing spelling is supported too
        (int | None, "7", 7),
        (Union[int, str], "7", "7"),  # noqa: UP007 - a string prefers the str member
        (int | str, 7.0, 7),  # a number prefers the int member
        (float | bool, True, True),
        (list[int], ["1", 2.0], [1, 2]),
        (Sequence[str], ["a"], ["a"]),
        (set[int], [1.0, 1], {1}),
        (frozenset[str], ["a"], frozenset({"a"})),
        (tuple[int, ...], [1.0, "2"], (1, 2)),
        (tuple[int, str], [1.0, "a"], (1, "a")),
        (tuple, [1, "a"], (1, "a")),
        (dict[str, int], {"a": "1"}, {"a": 1}),
        (dict[int, str], {"1": "a"}, {1: "a"}),
        (Mapping[str, Any], {"a": None}, {"a": None}),
        (list, [1.0], [1.0]),
        (Any, {"n": 1.0}, {"n": 1.0}),
        (Annotated[int, "meta"], 3.0, 3),
        (UserId, "5", 5),
    ],
)
def test_accepted(annotation: Any, value: Any, expected: Any) -> None:
    result = compile_decoder(annotation)(value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("annotation", "value", "message"),
    [
        (int, 2.5, "expected an integer, got 2.5"),
        (int, "1.5", "expected an integer, got '1.5'"),
        (int, True, "expected an integer, got true"),
        (int, None, "expected an integer, got null"),  # quirk 8: null only where allowed
        (float, "nan", "expected a finite number, got 'nan'"),
        (float, "abc", "expected a finite number, got 'abc'"),
        (float, False, "expected a finite number, got false"),
        (bool, "yes", "expected a boolean, got 'yes'"),
        (bool, 1.0, "expected a boolean, got 1.0"),
        (str, 7.0, "expected a string, got 7.0"),  # quirk 2: no str() of numbers
        (str, True, "expected a string, got true"),
        (int, "x" * 50, "expected an integer, got '" + "x" * 37 + "...'"),  # long input cut
        (bytes, "not base64!", "expected a base64 string, got 'not base64!'"),
        (decimal.Decimal, "1.2.3", "expected a decimal number"),
        (decimal.Decimal, "NaN", "expected a decimal number, got 'NaN'"),
        (uuid.UUID, "nope", "expected a UUID string, got 'nope'"),
        (dt.datetime, "yesterday", "expected an ISO 8601 date-time, got 'yesterday'"),
        (dt.date, 20260101, "expected an ISO 8601 date, got 20260101"),
        (dt.timedelta, "P1Y", "expected an ISO 8601 duration (such as PT1H30M) or a number"),
        (dt.timedelta, "PT", "expected an ISO 8601 duration"),
        (dt.timedelta, "inf", "expected an ISO 8601 duration"),
        (dt.timedelta, 1e20, "expected a duration within"),
        (dt.timedelta, True, "expected an ISO 8601 duration"),
        (pathlib.Path, "", "expected a non-empty path string, got ''"),
        (pathlib.Path, 1.0, "expected a non-empty path string, got 1.0"),
        (Color, "green", "expected one of 'red', got 'green'"),
        (Level, 3, "expected one of 1, 2, got 3"),
        (Literal["a", "b"], "c", "expected one of 'a', 'b', got 'c'"),
        (int | str, [1], "expected int or str, got an array"),
        (int | None, "x", "expected int or null, got 'x'"),
        (list[int], "a", "expected an array, got 'a'"),
        (list[int], [1, "x"], "[1]: expected an integer, got 'x'"),
        (tuple[int, str], [1], "expected an array of 2 items, got an array"),
        (dict[str, int], [], "expected an object, got an array"),
        (dict[str, int], {"k": "v"}, "k: expected an integer, got 'v'"),
    ],
)
def test_rejected(annotation: Any, value: Any, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        compile_decoder(annotation)(value)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    "annotation", [complex, type, Exception, list[complex], Callable[[], int], dict[str, complex]]
)
def test_unsupported_annotations(annotation: Any) -> None:
    with pytest.raises(TypeError, match="unsupported annotation"):
        compile_decoder(annotation)


# --- models -------------------------------------------------------------------------------


class Inner(Model):
    x: int


class Node(Model):
    name: str
    children: list[Node] = field(default_factory=list)


class Form(Model):
    name: str
    inner: Inner
    maybe: int | None
    forced: str = field(required=False)
    tags: list[str] = field(default_factory=list)
    limit: int = field(default=10, required=True)


@dataclasses.dataclass
class PlainInput:
    city: str = dataclasses.field(metadata={"description": "City"})


def run(plugin: Plugin, op: str, params: dict[str, Any]) -> tuple[int, Any]:
    result = plugin.execute(op, params, Request())
    return result.status, json.loads(result.body)


@pytest.fixture
def plugin() -> Plugin:
    plugin = Plugin("decode")

    @plugin.operation
    def form(params: Form) -> Form:
        return params

    @plugin.operation
    def tree(params: Node) -> Node:
        return params

    @plugin.operation
    def plain(params: PlainInput, req: Request) -> dict[str, Any]:
        return {"city": params.city, "token": req.token}

    @plugin.operation
    def raw(params: dict[str, Any]) -> dict[str, Any]:
        return params

    @plugin.operation
    def ids(ids: list[int], req: Request) -> list[int]:
        return ids

    @plugin.operation
    def greet(name: str = "world") -> str:
        return f"hello {name}"

    @plugin.operation
    def maybe(when: dt.date | None) -> Any:
        return when

    return plugin


def test_model_decoding(plugin: Plugin) -> None:
    status, body = run(plugin, "form", {"name": "n", "inner": {"x": 1.0}, "unknown": 1})
    # Quirk 4: `maybe` (X | None, no default) and `forced` (required=False, no default) may be
    # omitted and decode as None; `limit` is marked required in the catalog but keeps its
    # default when omitted.
    assert (status, body) == (
        200,
        {"name": "n", "inner": {"x": 1}, "maybe": None, "forced": None, "tags": [], "limit": 10},
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "name: required value is missing"),
        ({"name": "n"}, "inner: required value is missing"),
        ({"name": "n", "inner": {}}, "inner.x: required value is missing"),
        ({"name": "n", "inner": {"x": 1.5}}, "inner.x: expected an integer, got 1.5"),
        ({"name": None, "inner": {"x": 1}}, "name: expected a string, got null"),
        ({"name": "n", "inner": {"x": 1}, "tags": ["a", 2]}, "tags[1]: expected a string, got 2"),
    ],
)
def test_model_errors_name_the_field(plugin: Plugin, params: dict[str, Any], message: str) -> None:
    assert run(plugin, "form", params) == (400, {"error": message})


def test_recursive_model(plugin: Plugin) -> None:
    tree = {"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}]}
    expected = {
        "name": "a",
        "children": [{"name": "b", "children": [{"name": "c", "children": []}]}],
    }
    assert run(plugin, "tree", tree) == (200, expected)
    bad = {"name": "a", "children": [{"name": "b", "children": [{}]}]}
    assert run(plugin, "tree", bad) == (
        400,
        {"error": "children[0].children[0].name: required value is missing"},
    )


def test_plain_dataclass_and_request(plugin: Plugin) -> None:
    result = plugin.execute("plain", {"city": "Oslo"}, Request(token="t"))
    assert json.loads(result.body) == {"city": "Oslo", "token": "t"}
    assert plugin.catalog_dict()["operations"][2]["parameters"] == [
        {"name": "city", "type": "string", "description": "City", "required": True}
    ]


def test_raw_dict_input(plugin: Plugin) -> None:
    assert run(plugin, "raw", {"a": 1.0, "b": [None]}) == (200, {"a": 1.0, "b": [None]})
    assert "parameters" not in plugin.catalog_dict()["operations"][3]


def test_named_inputs(plugin: Plugin) -> None:
    # Quirk 11: non-model inputs are one parameter named after the argument.
    assert run(plugin, "ids", {"ids": ["1", 2.0]}) == (200, [1, 2])
    assert run(plugin, "ids", {"ids": "1"}) == (400, {"error": "ids: expected an array, got '1'"})
    assert run(plugin, "greet", {}) == (200, "hello world")
    assert run(plugin, "greet", {"name": "Ann"}) == (200, "hello Ann")
    assert run(plugin, "maybe", {}) == (200, None)
    assert run(plugin, "maybe", {"when": "2026-01-02"}) == (200, "2026-01-02")
    entries = {op["id"]: op.get("parameters") for op in plugin.catalog_dict()["operations"]}
    assert entries["ids"] == [{"name": "ids", "type": "array", "required": True}]
    assert entries["greet"] == [{"name": "name", "type": "string", "default": "world"}]
    assert entries["maybe"] == [{"name": "when", "type": "string", "format": "date"}]


def test_error_from_model_post_init_keeps_its_status() -> None:
    class Checked(Model):
        n: int

        def __post_init__(self) -> None:
            if self.n < 0:
                raise Error(422, "n must not be negative")

    plugin = Plugin("checked")

    @plugin.operation
    def op(params: Checked) -> int:
        return params.n

    assert run(plugin, "op", {"n": -1}) == (422, {"error": "n must not be negative"})
    assert run(plugin, "op", {"n": 1}) == (200, 1)


def test_catalog_types_follow_the_reference_table() -> None:
    class Types(Model):
        s: str
        i: int | None
        f: float = 1.0
        b: bool = False
        ls: tuple[int, ...] = ()
        d: dict[str, int] = field(default_factory=dict)
        c: Color = Color.RED
        u: int | str = 1

    plugin = Plugin("types")

    @plugin.operation
    def op(params: Types) -> None:
        return None

    params = plugin.catalog_dict()["operations"][0]["parameters"]
    assert [(p["name"], p["type"]) for p in params] == [
        ("s", "string"),
        ("i", "integer"),
        ("f", "number"),
        ("b", "boolean"),
        ("ls", "array"),
        ("d", "object"),
        ("c", "string"),  # the reference said `object` (see test_travel_types)
        ("u", "object"),
    ]
    assert [p.get("required", False) for p in params] == [True] + [False] * 7
    assert params[4]["default"] == [] and params[6]["default"] == "red"
