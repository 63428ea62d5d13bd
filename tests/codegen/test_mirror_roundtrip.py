"""Every generated mirror round-trips: ``from_pb(to_pb(x)) == x``, also through the wire.

The property test walks every ``*_mirrors`` module of ``gestalt.gen.v1`` and of the
``fragments`` goldens, finds every mirror dataclass (nested ones included) and draws
random instances from the field types (``typing.get_type_hints``) together with the pb2
field descriptors (integer widths, float widths, wrappers, maps, oneofs). Values stay
inside what the wire can carry: integers in their proto range, float32 values for
``float`` fields, finite numbers, microsecond datetimes and timedeltas inside the
Timestamp and Duration ranges, JSON numbers as floats, at most one member per oneof.

The example tests below pin the documented behaviour: open enums, oneof checks,
keyword-named fields and the Python types of the well-known-type conversions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import pkgutil
import sys
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2, wrappers_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gestalt.gen.v1
from gestalt.gen.support import ProtoEnum
from gestalt.gen.v1 import datastore_mirrors, datastore_pb2
from tests.conftest import REPO

GOLDENS = REPO / "tests" / "goldens" / "expected"
if str(GOLDENS) not in sys.path:
    sys.path.insert(0, str(GOLDENS))

from fragments import (  # noqa: E402
    enums_mirrors,
    enums_pb2,
    keywords_mirrors,
    keywords_pb2,
    oneof_map_mirrors,
    wkt_mirrors,
    wkt_pb2,
)

Strategy = st.SearchStrategy[Any]

#: Nesting depth of mirror messages inside a drawn instance (the root is depth 0).
MAX_DEPTH = 2
#: Elements of drawn lists and maps.
MAX_ITEMS = 2

EXAMPLES = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

# -- discovery ------------------------------------------------------------------------------


def mirror_modules() -> list[types.ModuleType]:
    """Every generated v1 mirror module and every golden fragments mirror module."""
    names = [
        f"gestalt.gen.v1.{info.name}"
        for info in pkgutil.iter_modules(gestalt.gen.v1.__path__)
        if info.name.endswith("_mirrors")
    ]
    names += [f"fragments.{p.stem}" for p in (GOLDENS / "fragments").glob("*_mirrors.py")]
    return [importlib.import_module(name) for name in sorted(names)]


def _walk(owner: object, module: types.ModuleType) -> Iterator[type]:
    for value in vars(owner).values():
        if (
            isinstance(value, type)
            and value.__module__ == module.__name__
            and dataclasses.is_dataclass(value)
        ):
            yield value
            yield from _walk(value, module)


def mirror_classes() -> list[type]:
    """Every mirror dataclass, nested classes included, each once."""
    seen: dict[str, type] = {}
    for module in mirror_modules():
        for cls in _walk(module, module):
            seen.setdefault(f"{cls.__module__}.{cls.__qualname__}", cls)
    return [seen[key] for key in sorted(seen)]


CLASSES = mirror_classes()


def class_id(cls: type) -> str:
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__qualname__}"


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """One mirror field with its resolved type hint and its pb2 field descriptor."""

    name: str
    hint: Any
    fd: FieldDescriptor


@dataclasses.dataclass(frozen=True)
class MessageSpec:
    """What it takes to draw one mirror class."""

    cls: type
    pb2: type[Message]
    fields: tuple[FieldSpec, ...]
    oneofs: tuple[tuple[str, ...], ...]


_SPECS: dict[type, MessageSpec] = {}


def _pb_field(desc: Descriptor, name: str) -> FieldDescriptor:
    """The pb2 field of a mirror field; keyword clashes get a trailing underscore."""
    fd = desc.fields_by_name.get(name)
    if fd is None and name.endswith("_"):
        fd = desc.fields_by_name.get(name[:-1])
    assert fd is not None, f"{desc.full_name} has no field for mirror field {name}"
    return fd


def spec_of(cls: type) -> MessageSpec:
    """Field types and oneofs of a mirror class, learnt once."""
    if cls in _SPECS:
        return _SPECS[cls]
    module_ns = vars(sys.modules[cls.__module__])
    # Explicit namespaces: the class namespace would shadow names like ``list`` with
    # the slot descriptors of fields of that name.
    hints = typing.get_type_hints(cls, globalns=module_ns, localns={})
    to_pb: Callable[..., Any] = getattr(cls, "to_pb")  # noqa: B009
    pb2 = typing.get_type_hints(to_pb, globalns=module_ns, localns={})["return"]
    desc: Descriptor = pb2.DESCRIPTOR
    fields = tuple(
        FieldSpec(f.name, hints[f.name], _pb_field(desc, f.name)) for f in dataclasses.fields(cls)
    )
    covered = {spec.fd.name for spec in fields}
    assert covered == set(desc.fields_by_name), f"{cls.__qualname__} misses pb2 fields"
    by_pb_name = {spec.fd.name: spec.name for spec in fields}
    oneofs = tuple(
        tuple(by_pb_name[fd.name] for fd in oneof.fields)
        for oneof in desc.oneofs
        if not oneof.name.startswith("_")  # synthetic oneof of a proto3 optional field
    )
    spec = MessageSpec(cls, pb2, fields, oneofs)
    _SPECS[cls] = spec
    return spec


# -- value strategies -------------------------------------------------------------------------

_T = FieldDescriptor
INT_RANGES: dict[int, tuple[int, int]] = {
    **dict.fromkeys(
        (_T.TYPE_INT32, _T.TYPE_SINT32, _T.TYPE_SFIXED32, _T.TYPE_ENUM), (-(2**31), 2**31 - 1)
    ),
    **dict.fromkeys((_T.TYPE_UINT32, _T.TYPE_FIXED32), (0, 2**32 - 1)),
    **dict.fromkeys((_T.TYPE_INT64, _T.TYPE_SINT64, _T.TYPE_SFIXED64), (-(2**63), 2**63 - 1)),
    **dict.fromkeys((_T.TYPE_UINT64, _T.TYPE_FIXED64), (0, 2**64 - 1)),
}

TEXT = st.text(max_size=6)
UTC_DATETIMES = st.datetimes(timezones=st.just(dt.UTC))  # datetime.min..max is Timestamp's range
DURATION_LIMIT = dt.timedelta(seconds=315_576_000_000)
TIMEDELTAS = st.timedeltas(min_value=-DURATION_LIMIT, max_value=DURATION_LIMIT)

JSON_LEAVES: Strategy = (
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | TEXT
)
JSON_VALUES: Strategy = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
JSON_OBJECTS: Strategy = st.dictionaries(TEXT, JSON_VALUES, max_size=3)
JSON_ARRAYS: Strategy = st.lists(JSON_VALUES, max_size=3)


#: A ``google.protobuf.Value`` converted by ``value_to_pb`` (singular field or map value).
VALUE_FIELD_VALUES: Strategy = JSON_VALUES


def _enum_strategy(enum_cls: type[ProtoEnum]) -> Strategy:
    unknown = st.integers(-(2**31), 2**31 - 1).map(enum_cls)
    return st.one_of(st.sampled_from(list(enum_cls)), unknown)


def _scalar(fd: FieldDescriptor, hint: Any) -> Strategy:
    if isinstance(hint, type) and issubclass(hint, ProtoEnum):
        return _enum_strategy(hint)
    if fd.type in INT_RANGES:
        low, high = INT_RANGES[fd.type]
        return st.integers(low, high)
    if fd.type == _T.TYPE_DOUBLE:
        return st.floats(allow_nan=False, allow_infinity=False)
    if fd.type == _T.TYPE_FLOAT:
        return st.floats(width=32, allow_nan=False, allow_infinity=False)
    if fd.type == _T.TYPE_BOOL:
        return st.booleans()
    if fd.type == _T.TYPE_STRING:
        return TEXT
    if fd.type == _T.TYPE_BYTES:
        return st.binary(max_size=6)
    raise AssertionError(f"no strategy for {fd.full_name} (type {fd.type})")


def _plain_pb2(pb2: type[Message]) -> Strategy:
    """A pb2 message without a mirror (``google.rpc.Status``): its singular scalars."""
    desc = typing.cast(Descriptor, pb2.DESCRIPTOR)
    scalars = {
        fd.name: _scalar(fd, None)
        for fd in desc.fields
        if not fd.is_repeated and fd.type != _T.TYPE_MESSAGE
    }
    return st.fixed_dictionaries(scalars).map(lambda kwargs: pb2(**kwargs))


def _single(fd: FieldDescriptor, hint: Any, depth: int, in_map: bool) -> Strategy | None:
    """One value of a field (an element for repeated, the value for maps).

    None when nothing can be drawn at this depth (a nested mirror past MAX_DEPTH).
    """
    if fd.type != _T.TYPE_MESSAGE:
        return _scalar(fd, hint)
    message_type = fd.message_type
    assert message_type is not None
    full_name = message_type.full_name
    if full_name == "google.protobuf.Struct":
        return JSON_OBJECTS
    if full_name == "google.protobuf.ListValue":
        return JSON_ARRAYS
    if full_name == "google.protobuf.Value":
        # A singular Value mirrors JSON null as unset (None); in a map null is kept.
        values = VALUE_FIELD_VALUES
        return values if in_map else values.filter(lambda v: v is not None)
    if full_name == "google.protobuf.Timestamp":
        return UTC_DATETIMES
    if full_name == "google.protobuf.Duration":
        return TIMEDELTAS
    if full_name == "google.protobuf.Empty":
        # A plain flag is a bool; as a oneof member it is Literal[True] (None = unset).
        return st.booleans() if hint is bool else st.just(True)
    if full_name.startswith("google.protobuf.") and full_name.endswith("Value"):
        return _scalar(message_type.fields_by_name["value"], None)  # wrapper types
    if isinstance(hint, type) and issubclass(hint, Message):
        return _plain_pb2(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return message(hint, depth + 1) if depth < MAX_DEPTH else None
    raise AssertionError(f"no strategy for {fd.full_name}: {hint!r}")


def _strip_none(hint: Any) -> tuple[Any, bool]:
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        assert len(rest) == 1, hint
        return rest[0], True
    return hint, False


def _field(spec: FieldSpec, depth: int) -> tuple[Strategy, Strategy | None]:
    """(strategy of the field, strategy of a set value or None if it can't be set)."""
    hint, optional = _strip_none(spec.hint)
    fd = spec.fd
    entry = fd.message_type if fd.type == _T.TYPE_MESSAGE else None
    if fd.is_repeated and entry is not None and entry.GetOptions().map_entry:
        key_hint, value_hint = typing.get_args(hint)
        key = _scalar(entry.fields_by_name["key"], key_hint)
        value = _single(entry.fields_by_name["value"], value_hint, depth, in_map=True)
        if value is None:
            return st.just({}), None
        return st.dictionaries(key, value, max_size=MAX_ITEMS), None
    if fd.is_repeated:
        (item_hint,) = typing.get_args(hint)
        item = _single(fd, item_hint, depth, in_map=False)
        if item is None:
            return st.just([]), None
        return st.lists(item, max_size=MAX_ITEMS), None
    present = _single(fd, hint, depth, in_map=False)
    if not optional:
        assert present is not None, spec
        return present, present
    if present is None:
        return st.none(), None
    return st.none() | present, present


_MESSAGES: dict[tuple[type, int], Strategy] = {}


def message(cls: type, depth: int = 0) -> Strategy:
    """Random instances of a mirror class; nested mirrors stop at MAX_DEPTH."""
    key = (cls, depth)
    if key in _MESSAGES:
        return _MESSAGES[key]
    spec = spec_of(cls)
    fields = {f.name: _field(f, depth) for f in spec.fields}

    @st.composite
    def draw_instance(draw: st.DrawFn) -> Any:
        kwargs: dict[str, Any] = {}
        for members in spec.oneofs:
            settable = [name for name in members if fields[name][1] is not None]
            chosen = draw(st.sampled_from([None, *settable]))
            for name in members:
                if name == chosen:
                    present = fields[name][1]
                    assert present is not None
                    kwargs[name] = draw(present)
                else:
                    kwargs[name] = None
        for name, (strategy, _) in fields.items():
            if name not in kwargs:
                kwargs[name] = draw(strategy)
        return cls(**kwargs)

    _MESSAGES[key] = draw_instance()
    return _MESSAGES[key]


# -- the property -----------------------------------------------------------------------------


def test_discovery_finds_the_mirrors() -> None:
    names = {class_id(cls) for cls in CLASSES}
    assert len([n for n in names if not n.startswith("fragments.")]) >= 100
    assert {
        "datastore_mirrors.Record",
        "keywords_mirrors.Keywords",
        "plugin_mirrors.ExecuteRequest",
    } <= names


@pytest.mark.parametrize("cls", CLASSES, ids=class_id)
@EXAMPLES
@given(data=st.data())
def test_mirror_round_trip(cls: type, data: st.DataObject) -> None:
    instance = data.draw(message(cls), label=cls.__qualname__)
    from_pb: Callable[[Message], Any] = getattr(cls, "from_pb")  # noqa: B009
    pb = instance.to_pb()
    assert isinstance(pb, spec_of(cls).pb2)
    assert from_pb(pb) == instance
    wire = type(pb).FromString(pb.SerializeToString())
    assert wire == pb
    assert from_pb(wire) == instance


# -- examples ---------------------------------------------------------------------------------


def test_unknown_enum_number_survives() -> None:
    unknown = enums_mirrors.HttpMethod(99)
    assert unknown.name == "UNKNOWN_99"
    assert unknown.value == 99
    assert isinstance(unknown, enums_mirrors.HttpMethod)
    holder = enums_mirrors.Holder(method=unknown, plains=[enums_mirrors.Plain(7)], maybe=unknown)
    back = enums_mirrors.Holder.from_pb(
        enums_pb2.Holder.FromString(holder.to_pb().SerializeToString())
    )
    assert back == holder
    assert isinstance(back.method, enums_mirrors.HttpMethod)
    assert back.method.name == "UNKNOWN_99"
    assert back.plains[0].name == "UNKNOWN_7"

    # A number from a newer peer, straight from pb2.
    pb = enums_pb2.Holder(method=enums_pb2.HttpMethod.ValueType(1234))
    assert enums_mirrors.Holder.from_pb(pb).method.name == "UNKNOWN_1234"
    assert enums_mirrors.HttpMethod(1) is enums_mirrors.HttpMethod.GET


def test_oneof_with_two_members_set_is_refused() -> None:
    with pytest.raises(ValueError, match="at most one"):
        oneof_map_mirrors.Choice(text="a", number=1).to_pb()
    with pytest.raises(ValueError, match=r"TypedValue\.kind"):
        datastore_mirrors.TypedValue(string_value="x", int_value=1).to_pb()
    # Zero values count as set: presence is what matters, not truthiness.
    with pytest.raises(ValueError):
        datastore_mirrors.TypedValue(string_value="", bool_value=False).to_pb()
    assert oneof_map_mirrors.Choice(number=0).to_pb().WhichOneof("kind") == "number"


def test_keyword_named_fields_round_trip() -> None:
    mirror = keywords_mirrors.Keywords(
        class_="c",
        from_=3,
        type="t",
        id=4,
        list=["x", "y"],
        bytes=b"\x00b",
        to_pb_=True,
        def_="d",
        field="f",
    )
    pb = mirror.to_pb()
    assert getattr(pb, "class") == "c"
    assert getattr(pb, "from") == 3
    assert getattr(pb, "def") == "d"
    assert pb.to_pb is True
    assert keywords_mirrors.Keywords.from_pb(pb) == mirror
    assert (
        keywords_mirrors.Keywords.from_pb(keywords_pb2.Keywords.FromString(pb.SerializeToString()))
        == mirror
    )
    unset = keywords_mirrors.Keywords().to_pb()
    assert not unset.HasField("def")
    assert keywords_mirrors.Keywords.from_pb(unset).def_ is None


def test_nested_class_names_round_trip() -> None:
    nested_mirrors = importlib.import_module("fragments.nested_mirrors")
    outer = nested_mirrors.Outer(
        inner=nested_mirrors.Outer.Inner(
            deepest=nested_mirrors.Outer.Inner.Deepest(value="v"),
            level=nested_mirrors.Outer.Level.HIGH,
        ),
        inners=[nested_mirrors.Outer.Inner()],
    )
    back = nested_mirrors.Outer.from_pb(outer.to_pb())
    assert back == outer
    assert back.inner is not None
    assert back.inner.level is nested_mirrors.Outer.Level.HIGH


def test_wkt_conversions_give_the_documented_types() -> None:
    pb = wkt_pb2.Known(
        data=struct_pb2.Struct(fields={"n": struct_pb2.Value(number_value=1)}),
        value=struct_pb2.Value(string_value="s"),
        items=struct_pb2.ListValue(values=[struct_pb2.Value(bool_value=True)]),
        at=timestamp_pb2.Timestamp(seconds=86_400, nanos=1_500),
        ttl=duration_pb2.Duration(seconds=-2, nanos=-500_000_000),
        name=wrappers_pb2.StringValue(value=""),
        size=wrappers_pb2.Int64Value(value=2**62),
        flag=wrappers_pb2.BoolValue(value=False),
        history=[timestamp_pb2.Timestamp(seconds=0)],
    )
    pb.marker.SetInParent()
    known = wkt_mirrors.Known.from_pb(pb)
    assert known.data == {"n": 1.0}
    assert known.data is not None and type(known.data["n"]) is float
    assert known.value == "s"
    assert known.items == [True]
    assert known.at == dt.datetime(1970, 1, 2, 0, 0, 0, 1, tzinfo=dt.UTC)  # ns truncated
    assert known.at.tzinfo is not None and known.at.utcoffset() == dt.timedelta(0)
    assert known.ttl == dt.timedelta(seconds=-2.5)
    assert known.marker is True
    assert known.name == ""  # a set wrapper holding the default is not unset
    assert known.size == 2**62
    assert known.flag is False
    assert known.history == [dt.datetime(1970, 1, 1, tzinfo=dt.UTC)]

    empty = wkt_mirrors.Known.from_pb(wkt_pb2.Known())
    assert (empty.data, empty.value, empty.items, empty.at, empty.ttl) == (None,) * 5
    assert empty.marker is False
    assert (empty.name, empty.size, empty.flag) == (None,) * 3
    assert empty.history == []

    # Struct stores doubles: ints come back as floats.
    ints = wkt_mirrors.Known(data={"n": 1, "l": [2]}, value=3)
    back = wkt_mirrors.Known.from_pb(ints.to_pb())
    assert back.data == {"n": 1.0, "l": [2.0]}
    assert back.data is not None and type(back.data["n"]) is float
    assert type(back.value) is float
    # Other time zones are converted to UTC.
    local = dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    at = wkt_mirrors.Known.from_pb(wkt_mirrors.Known(at=local).to_pb()).at
    assert at == local
    assert at is not None and at.utcoffset() == dt.timedelta(0)


def test_typed_value_json_null_is_kept_apart_from_unset() -> None:
    null = datastore_mirrors.TypedValue(null_value=0)
    assert datastore_mirrors.TypedValue.from_pb(null.to_pb()) == null
    record = datastore_mirrors.Record(fields={"a": null, "b": datastore_mirrors.TypedValue()})
    back = datastore_mirrors.Record.from_pb(
        datastore_pb2.Record.FromString(record.to_pb().SerializeToString())
    )
    assert back == record


# -- edge cases found by the property test, kept as examples -------------------------------


@pytest.mark.parametrize("empty", [{}, []], ids=["dict", "list"])
def test_empty_container_in_value_survives(empty: Any) -> None:
    typed = datastore_mirrors.TypedValue(json_value=empty)
    assert datastore_mirrors.TypedValue.from_pb(typed.to_pb()) == typed


def test_empty_flag_false_means_absent() -> None:
    known = wkt_mirrors.Known(marker=False)
    assert not known.to_pb().HasField("marker")
    assert wkt_mirrors.Known.from_pb(known.to_pb()) == known
