"""Start-up laziness: models become dataclasses on first use, the catalog is built once.

A ``Model`` subclass lists its fields when it is defined, but its dataclass methods are only
generated when the class is first used as a dataclass; whatever triggers that, the class then
behaves exactly as ``dataclasses.dataclass`` makes it.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import subprocess
import sys
import threading
from typing import Any, ClassVar

import pytest

from gestalt import Model, Plugin, Request, field
from gestalt._authoring.model import model_fields


def deferred(cls: type) -> bool:
    """Whether ``cls`` still waits for its dataclass methods (looked up without completing it)."""
    return "__init__" not in vars(cls) and type(vars(cls).get("__dataclass_fields__")) is not dict


def shape(fields: Any) -> list[tuple[Any, ...]]:
    """What matters of a field list: name, annotation, default, factory, metadata."""
    return [(f.name, f.type, f.default, f.default_factory, dict(f.metadata)) for f in fields]


def test_definition_defers_and_first_instance_completes() -> None:
    class Item(Model):
        name: str = field(description="The name")
        count: int = 1

    assert deferred(Item)
    listed = shape(model_fields(Item))
    item = Item(name="a")
    assert not deferred(Item)
    assert (item.name, item.count) == ("a", 1)
    assert item == Item("a", 1) and item != Item("a", 2)
    assert repr(item).endswith("Item(name='a', count=1)")
    assert shape(dataclasses.fields(Item)) == listed
    assert Item.count == 1  # class attributes hold the defaults, as dataclasses leaves them


@pytest.mark.parametrize(
    "use",
    [
        dataclasses.fields,
        dataclasses.is_dataclass,
        inspect.signature,
        lambda cls: cls.__dataclass_fields__,
    ],
)
def test_reading_the_class_as_a_dataclass_completes_it(use: Any) -> None:
    class Point(Model):
        x: int
        y: int = 0

    assert deferred(Point)
    assert use(Point)
    assert not deferred(Point)
    assert str(inspect.signature(Point)) == "(x: 'int', y: 'int' = 0) -> None"
    assert [f.name for f in dataclasses.fields(Point)] == ["x", "y"]


def test_inherited_fields_match_dataclasses() -> None:
    class Base(Model):
        a: int
        b: str = "b"

    class Child(Base):
        b: str = field(default="child", description="Overridden")
        c: list[int] = field(default_factory=list)

    class Grandchild(Child):
        d: float = 1.5

    listed = shape(model_fields(Grandchild))
    assert [name for name, *_ in listed] == ["a", "b", "c", "d"]
    assert deferred(Base) and deferred(Child) and deferred(Grandchild)
    assert Grandchild(1).c == []  # completes the bases first
    assert shape(dataclasses.fields(Grandchild)) == listed
    assert shape(dataclasses.fields(Child)) == listed[:3]

    class Late(Grandchild):  # a subclass of completed models is deferred too
        e: bool = False

    assert deferred(Late)
    assert shape(model_fields(Late)) == [*listed, ("e", "bool", False, dataclasses.MISSING, {})]
    assert Late(2, e=True).e is True


def test_classes_dataclasses_rejects_fail_where_they_are_defined() -> None:
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):

        class Order(Model):
            a: int = 1
            b: int  # type: ignore[misc]

    with pytest.raises(ValueError, match="mutable default"):

        class Mutable(Model):
            items: list[int] = []  # noqa: RUF012

    with pytest.raises(TypeError, match="'x' is a field but has no type annotation"):

        class Unannotated(Model):
            x = field(default=1)


def test_special_annotations_are_completed_at_once() -> None:
    class Counted(Model):
        total: ClassVar[int] = 0
        name: str = ""

    class KeywordOnly(Model):
        a: int
        _: dataclasses.KW_ONLY
        b: int = 2

    class Hidden(Model):
        a: int
        b: int = field(default=0)
        c: int = dataclasses.field(default=3, init=False)

    for cls in (Counted, KeywordOnly, Hidden):
        assert not deferred(cls)
    assert [f.name for f in dataclasses.fields(Counted)] == ["name"]
    assert KeywordOnly(1, b=3).b == 3
    assert [f.name for f in model_fields(Hidden)] == ["a", "b"]


def test_an_explicit_dataclass_decorator_still_applies() -> None:
    @dataclasses.dataclass(frozen=True)
    class Frozen(Model):
        a: int = 1

    item = Frozen()
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.a = 2  # type: ignore[misc]
    assert hash(item) == hash(Frozen())


def test_registration_leaves_models_deferred_until_a_call() -> None:
    class In(Model):
        query: str = field(description="Search term")
        limit: int = 10

    class Out(Model):
        items: list[str]

    plugin = Plugin("lazy")

    @plugin.operation
    def search(params: In) -> Out:
        return Out(items=[params.query] * params.limit)

    assert deferred(In) and deferred(Out)
    parameters = plugin.catalog_dict()["operations"][0]["parameters"]
    assert parameters == [
        {"name": "query", "type": "string", "description": "Search term", "required": True},
        {"name": "limit", "type": "integer", "default": 10},
    ]
    assert deferred(In) and deferred(Out)
    result = plugin.execute("search", {"query": "q", "limit": 2}, Request())
    assert (result.status, result.body) == (200, '{"items":["q","q"]}')
    assert not deferred(In) and not deferred(Out)


def test_threads_completing_one_class_all_see_a_dataclass() -> None:
    class Shared(Model):
        a: int
        b: str = "x"

    start = threading.Barrier(8)
    made: list[Any] = []

    def make() -> None:
        start.wait()
        made.append(Shared(1))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made == [Shared(1, "x")] * 8


def test_catalog_is_rebuilt_after_registration_or_rename() -> None:
    plugin = Plugin("cached")

    @plugin.operation
    def first() -> None:
        return None

    before = plugin.catalog_dict()
    before["operations"].clear()
    assert [op["id"] for op in plugin.catalog_dict()["operations"]] == ["first"]

    @plugin.operation
    def second() -> None:
        return None

    assert [op["id"] for op in plugin.catalog_dict()["operations"]] == ["first", "second"]
    plugin.name = "renamed now"
    assert plugin.catalog_dict()["name"] == "renamed-now"
    assert plugin.catalog_dict() is not plugin.catalog_dict()


PROBE = """
import json, sys
import gestalt._runtime.process
from gestalt import Model, Plugin, field
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in json.loads(sys.argv[1]))))
"""


def test_start_up_leaves_rarely_needed_modules_unimported() -> None:
    # Each costs a millisecond or more to import; only some providers need one.
    rare = ["uuid", "decimal", "platform", "http", "tomllib", "pathlib", "ipaddress"]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(rare)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(done.stdout) == []


def test_uuid_decimal_and_paths_work_once_their_modules_are_imported() -> None:
    import decimal
    import pathlib
    import uuid

    class Ids(Model):
        key: uuid.UUID
        amount: decimal.Decimal = decimal.Decimal("1.5")
        where: pathlib.PurePosixPath = pathlib.PurePosixPath("/a")

    plugin = Plugin("late")

    @plugin.operation
    def echo(params: Ids) -> Ids:
        return params

    parameters = plugin.catalog_dict()["operations"][0]["parameters"]
    assert [p.get("format") for p in parameters] == ["uuid", "decimal", None]
    assert parameters[2] == {"name": "where", "type": "string", "default": "/a"}
    key = "00000000-0000-0000-0000-000000000001"
    result = plugin.execute("echo", {"key": key, "amount": "2.25", "where": "/b"}, Request())
    body = f'{{"key":"{key}","amount":"2.25","where":"/b"}}'
    assert (result.status, result.body) == (200, body)


#: Registered at module level, where the decorator passes no local namespace: the one case in
#: which registration keeps a model's resolved field hints for the decoder to take.
SHARED_MODEL = """
from gestalt import Model, Plugin
from gestalt._authoring import decode
class Shared(Model):
    text: str = ""
plugin = Plugin("shared")
@plugin.operation
def first(params: Shared) -> str:
    return params.text
@plugin.operation
def second(params: Shared) -> str:
    return params.text
print(Shared in decode._FIELD_HINTS)
"""


def test_field_hints_are_not_kept_once_every_operation_is_registered() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SHARED_MODEL], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_plain_functions_read_like_inspect_signature() -> None:
    from gestalt._authoring.operation import is_async_callable, positional_parameters

    def both(a: int, /, b: str = "x") -> None:
        return None

    async def one(values: list[int] = [1]) -> None:  # noqa: B006 - only read
        return None

    def none() -> None:
        return None

    for func in (both, one, none):
        expected = [
            (p.name, p.kind, p.default) for p in inspect.signature(func).parameters.values()
        ]
        got = [(p.name, p.kind, p.default) for p in positional_parameters(func, "op")]
        assert got == expected
        assert is_async_callable(func) is inspect.iscoroutinefunction(func)

    def star(*args: int) -> None:
        return None

    with pytest.raises(TypeError, match="parameter 'args' must be a plain positional one"):
        positional_parameters(star, "op")
