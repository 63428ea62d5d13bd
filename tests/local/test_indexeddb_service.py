"""The embedded IndexedDB service over real gRPC on unix sockets, driven by the generated client.

The first tests replay the golden transcript ``tests/data/clients/indexeddb_wire.txt``
frame by frame (requests the reference client sent, statuses and results the host gives);
the rest cover key order, ranges, indexes, cursor directions, transaction isolation,
persistence, concurrency, abandoned streams and records above 4 MiB.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import math
import queue
import socket as sock
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Generic, TypeVar

import grpc
import grpc.aio
import pytest
from google.protobuf import struct_pb2, timestamp_pb2

from gestalt.gen.support import ResponseStream, RPCError
from gestalt.gen.v1 import datastore_pb2 as pb
from gestalt.gen.v1.datastore_clients import AsyncIndexedDBClient, IndexedDBClient
from gestalt.gen.v1.datastore_servicers import IndexedDBHandler
from gestalt.local.indexeddb import IndexedDBServer, IndexedDBService, serve_indexeddb

T = 10.0  # deadline of every call: a failure must never look like a hang
Req = TypeVar("Req")
Resp = TypeVar("Resp")
_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]
_NO_RANGE = object()


# -- value helpers ---------------------------------------------------------------------------


def _json(value: object) -> struct_pb2.Value:
    result = struct_pb2.Value()
    if value is None:
        result.null_value = struct_pb2.NULL_VALUE
    elif isinstance(value, bool):
        result.bool_value = value
    elif isinstance(value, int | float):
        result.number_value = value
    elif isinstance(value, str):
        result.string_value = value
    elif isinstance(value, dict):
        result.struct_value.SetInParent()
        for key, item in value.items():
            result.struct_value.fields[key].CopyFrom(_json(item))
    elif isinstance(value, list | tuple):
        result.list_value.SetInParent()
        for item in value:
            result.list_value.values.add().CopyFrom(_json(item))
    else:
        raise TypeError(type(value))
    return result


def tv(value: object) -> pb.TypedValue:
    """A Python value as the contract (section 3.2) encodes it."""
    if value is None:
        return pb.TypedValue(null_value=struct_pb2.NULL_VALUE)
    if isinstance(value, bool):
        return pb.TypedValue(bool_value=value)
    if isinstance(value, int):
        return pb.TypedValue(int_value=value)
    if isinstance(value, float):
        return pb.TypedValue(float_value=value)
    if isinstance(value, str):
        return pb.TypedValue(string_value=value)
    if isinstance(value, bytes):
        return pb.TypedValue(bytes_value=value)
    if isinstance(value, dt.datetime):
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(value if value.tzinfo else value.replace(tzinfo=dt.UTC))
        return pb.TypedValue(time_value=stamp)
    return pb.TypedValue(json_value=_json(value))


def rec(**fields: object) -> pb.Record:
    """A record with the given fields."""
    record = pb.Record()
    for name, value in fields.items():
        record.fields[name].CopyFrom(tv(value))
    return record


def ids(records: Sequence[pb.Record]) -> list[str]:
    """The ids of records, in order."""
    return [r.fields["id"].string_value for r in records]


def key_range(
    lower: object = _NO_RANGE,
    upper: object = _NO_RANGE,
    lower_open: bool = False,
    upper_open: bool = False,
) -> pb.KeyRange:
    """A KeyRange; bounds left out are unset."""
    result = pb.KeyRange(lower_open=lower_open, upper_open=upper_open)
    if lower is not _NO_RANGE:
        result.lower.CopyFrom(tv(lower))
    if upper is not _NO_RANGE:
        result.upper.CopyFrom(tv(upper))
    return result


def scalar_key(*values: object) -> list[pb.KeyValue]:
    """Key values for continue_to_key, one scalar per component."""
    return [pb.KeyValue(scalar=tv(v)) for v in values]


def entry_key(entry: pb.CursorEntry) -> list[object]:
    """The components of a cursor entry's key as Python values."""
    out: list[object] = []
    for component in entry.key:
        kind = component.scalar.WhichOneof("kind")
        out.append(None if kind in (None, "null_value") else getattr(component.scalar, kind))
    return out


def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def expect_error(code: grpc.StatusCode, message: str | None, fn: Callable[[], object]) -> None:
    """``fn()`` fails with the given status code (and exact message when given)."""
    with pytest.raises(RPCError) as info:
        fn()
    assert info.value.code == code, info.value
    if message is not None:
        assert info.value.message == message


class Duplex(Generic[Req, Resp]):
    """A bidi call driven one frame at a time, the way the ergonomic clients drive it."""

    def __init__(self, opener: Callable[[Iterator[Req]], ResponseStream[Resp]]) -> None:
        self._queue: queue.Queue[Req | None] = queue.Queue()
        self.stream = opener(self._frames())

    def _frames(self) -> Iterator[Req]:
        while True:
            frame = self._queue.get()
            if frame is None:
                return
            yield frame

    def send(self, frame: Req) -> None:
        """Send one frame."""
        self._queue.put(frame)

    def recv(self) -> Resp:
        """Read one frame (raises RPCError on a status, StopIteration at an OK end)."""
        return next(self.stream)

    def ask(self, frame: Req) -> Resp:
        """Send one frame and read the answer."""
        self.send(frame)
        return self.recv()

    def half_close(self) -> None:
        """Tell the server no more frames follow."""
        self._queue.put(None)

    def ends_ok(self) -> None:
        """Half-close and check the server ends the stream with OK and no further frame."""
        self.half_close()
        with pytest.raises(StopIteration):
            self.recv()

    def cancel(self) -> None:
        """Cancel the call and let the request thread finish."""
        self.stream.cancel()
        self._queue.put(None)


CursorCall = Duplex[pb.CursorClientMessage, pb.CursorResponse]
TxCall = Duplex[pb.TransactionClientMessage, pb.TransactionServerMessage]


def cursor(client: IndexedDBClient, **open_fields: object) -> CursorCall:
    """Open a cursor and check the open acknowledgement (``done: false``)."""
    call: CursorCall = Duplex(lambda frames: client.open_cursor(frames, timeout=T))
    ack = call.ask(pb.CursorClientMessage(open=pb.OpenCursorRequest(**open_fields)))  # type: ignore[arg-type]
    assert ack.WhichOneof("result") == "done"
    assert ack.done is False
    return call


def command(call: CursorCall, **fields: object) -> pb.CursorResponse:
    """Send one cursor command and read its answer."""
    return call.ask(pb.CursorClientMessage(command=pb.CursorCommand(**fields)))  # type: ignore[arg-type]


def close_cursor(call: CursorCall) -> None:
    """Send close, half-close and check the OK end."""
    call.send(pb.CursorClientMessage(command=pb.CursorCommand(close=True)))
    call.ends_ok()


def walk(client: IndexedDBClient, **open_fields: object) -> list[str]:
    """Primary keys a cursor visits with ``next`` until done."""
    call = cursor(client, **open_fields)
    seen: list[str] = []
    while True:
        answer = command(call, next=True)
        if answer.WhichOneof("result") == "done":
            assert answer.done is True
            break
        seen.append(answer.entry.primary_key)
    close_cursor(call)
    return seen


def begin(
    client: IndexedDBClient,
    stores: Sequence[str],
    mode: int = pb.TRANSACTION_READONLY,
    durability: int = pb.TRANSACTION_DURABILITY_DEFAULT,
) -> TxCall:
    """Open a transaction and check the begin acknowledgement."""
    call: TxCall = Duplex(lambda frames: client.transaction(frames, timeout=T))
    first = call.ask(
        pb.TransactionClientMessage(
            begin=pb.BeginTransactionRequest(
                stores=list(stores),
                mode=mode,  # type: ignore[arg-type]
                durability_hint=durability,  # type: ignore[arg-type]
            )
        )
    )
    assert first.WhichOneof("msg") == "begin"
    return call


def operate(call: TxCall, request_id: int, **op: object) -> pb.TransactionOperationResponse:
    """Run one transaction operation and check the echoed request id."""
    answer = call.ask(
        pb.TransactionClientMessage(
            operation=pb.TransactionOperation(request_id=request_id, **op)  # type: ignore[arg-type]
        )
    )
    assert answer.WhichOneof("msg") == "operation"
    assert answer.operation.request_id == request_id
    return answer.operation


def commit(call: TxCall) -> pb.TransactionCommitResponse:
    """Commit, check the OK end of the stream, return the commit frame."""
    answer = call.ask(pb.TransactionClientMessage(commit=pb.TransactionCommitRequest()))
    assert answer.WhichOneof("msg") == "commit"
    call.ends_ok()
    return answer.commit


def abort(call: TxCall) -> pb.TransactionAbortResponse:
    """Abort, check the OK end of the stream, return the abort frame."""
    answer = call.ask(pb.TransactionClientMessage(abort=pb.TransactionAbortRequest()))
    assert answer.WhichOneof("msg") == "abort"
    call.ends_ok()
    return answer.abort


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def idb_server(tmp_path: Path) -> Iterator[IndexedDBServer]:
    """An in-memory IndexedDB service on a unix socket, stopped after the test."""
    running = serve_indexeddb(tmp_path / "idb.sock")
    yield running
    running.stop(grace=0)


@pytest.fixture
def idb_channel(idb_server: IndexedDBServer) -> Iterator[grpc.Channel]:
    """A channel to :func:`idb_server` with the SDK's 64 MiB message limits."""
    channel = grpc.insecure_channel(idb_server.target, options=_OPTIONS)
    yield channel
    channel.close()


@pytest.fixture
def idb(idb_channel: grpc.Channel) -> IndexedDBClient:
    """The generated sync client on :func:`idb_channel`."""
    return IndexedDBClient(idb_channel)


def _users_schema() -> pb.ObjectStoreSchema:
    return pb.ObjectStoreSchema(
        indexes=[
            pb.IndexSchema(name="by_status", key_path=["status"]),
            pb.IndexSchema(name="by_email", key_path=["email"], unique=True),
            pb.IndexSchema(name="by_team_rank", key_path=["team", "rank"]),
        ]
    )


def _user(rid: str, status: str, email: str, team: str, rank: int) -> pb.Record:
    return rec(id=rid, status=status, email=email, team=team, rank=rank)


def _golden_setup(idb: IndexedDBClient) -> None:
    """The stores and users the transcript creates first."""
    idb.create_object_store(
        pb.CreateObjectStoreRequest(name="plain", schema=pb.ObjectStoreSchema()), timeout=T
    )
    idb.create_object_store(
        pb.CreateObjectStoreRequest(name="users", schema=_users_schema()), timeout=T
    )
    idb.add(
        pb.RecordRequest(store="users", record=_user("a", "active", "a@x", "red", 2)), timeout=T
    )
    idb.add(
        pb.RecordRequest(store="users", record=_user("b", "active", "b@x", "red", 1)), timeout=T
    )
    idb.put(
        pb.RecordRequest(store="users", record=_user("c", "inactive", "c@x", "blue", 1)), timeout=T
    )


def _typed_record() -> pb.Record:
    return rec(
        id="t1",
        none=None,
        flag=True,
        count=42,
        big=-(2**63),
        ratio=0.5,
        whole_float=3.0,
        name="Zoë",
        blob=b"\x00\xff",
        ba=b"ab",
        naive_time=dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
        aware_time=dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        nested={"n": 1, "f": 1.5, "list": [1, "x", None, False], "tuple": [1, 2]},
        items=[1, 2],
        pair=["a", 1],
    )


# -- golden transcript -----------------------------------------------------------------------


def test_golden_records_ranges_and_errors(idb: IndexedDBClient) -> None:
    _golden_setup(idb)
    users = pb.RecordRequest(store="users", record=rec(id="a"))
    expect_error(
        grpc.StatusCode.ALREADY_EXISTS,
        "datastore: already exists",
        lambda: idb.add(users, timeout=T),
    )

    typed = _typed_record()
    idb.put(pb.RecordRequest(store="plain", record=typed), timeout=T)
    got = idb.get(pb.ObjectStoreRequest(store="plain", id="t1"), timeout=T).record
    assert got == typed  # every TypedValue kind round-trips unchanged
    assert got.fields["aware_time"].time_value.seconds == 1704157445
    assert got.fields["naive_time"].time_value.nanos == 123456000
    assert idb.get_key(pb.ObjectStoreRequest(store="plain", id="t1"), timeout=T).key == "t1"
    expect_error(
        grpc.StatusCode.NOT_FOUND,
        'datastore: not found: no record with id "nope" in object store "plain"',
        lambda: idb.get(pb.ObjectStoreRequest(store="plain", id="nope"), timeout=T),
    )
    expect_error(
        grpc.StatusCode.NOT_FOUND,
        'datastore: not found: no record with id "nope" in object store "plain"',
        lambda: idb.get_key(pb.ObjectStoreRequest(store="plain", id="nope"), timeout=T),
    )
    idb.delete(pb.ObjectStoreRequest(store="plain", id="nope"), timeout=T)  # not an error

    everything = idb.get_all(pb.ObjectStoreRangeRequest(store="users"), timeout=T)
    assert ids(everything.records) == ["a", "b", "c"]
    assert everything.records[0] == _user("a", "active", "a@x", "red", 2)
    some = idb.get_all_keys(
        pb.ObjectStoreRangeRequest(store="users", range=key_range("a", "c", upper_open=True)),
        timeout=T,
    )
    assert list(some.keys) == ["a", "b"]
    count = idb.count(pb.ObjectStoreRangeRequest(store="users", range=key_range("b")), timeout=T)
    assert count.count == 2
    empty_range = pb.ObjectStoreRangeRequest(store="users", range=pb.KeyRange())
    assert idb.count(empty_range, timeout=T).count == 3
    expect_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        "key range is required for DeleteRange",
        lambda: idb.delete_range(pb.ObjectStoreRangeRequest(store="users"), timeout=T),
    )
    deleted = idb.delete_range(
        pb.ObjectStoreRangeRequest(store="plain", range=key_range("t")), timeout=T
    )
    assert deleted.deleted == 1
    idb.delete_object_store(pb.DeleteObjectStoreRequest(name="plain"), timeout=T)
    assert idb.count(pb.ObjectStoreRangeRequest(store="plain"), timeout=T).count == 0


def test_golden_index_queries(idb: IndexedDBClient) -> None:
    _golden_setup(idb)

    def query(index: str, *values: object, rng: pb.KeyRange | None = None) -> pb.IndexQueryRequest:
        request = pb.IndexQueryRequest(store="users", index=index, values=[tv(v) for v in values])
        if rng is not None:
            request.range.CopyFrom(rng)
        return request

    assert ids([idb.index_get(query("by_status", "active"), timeout=T).record]) == ["a"]
    assert idb.index_get_key(query("by_status", "active"), timeout=T).key == "a"
    assert ids(idb.index_get_all(query("by_status", "active"), timeout=T).records) == ["a", "b"]
    assert list(idb.index_get_all_keys(query("by_status"), timeout=T).keys) == ["a", "b", "c"]
    counted = idb.index_count(query("by_status", "active", rng=key_range("a")), timeout=T)
    assert counted.count == 2
    compound = idb.index_get_all(query("by_team_rank", "red", 1), timeout=T)
    assert ids(compound.records) == ["b"]
    expect_error(
        grpc.StatusCode.NOT_FOUND,
        'datastore: not found: no record of object store "users" matches index "by_status"',
        lambda: idb.index_get(query("by_status", "gone"), timeout=T),
    )
    clash = pb.RecordRequest(store="users", record=rec(id="d", email="a@x"))
    expect_error(
        grpc.StatusCode.ALREADY_EXISTS,
        "datastore: already exists",
        lambda: idb.add(clash, timeout=T),
    )
    assert idb.count(pb.ObjectStoreRangeRequest(store="users"), timeout=T).count == 3
    assert idb.index_delete(query("by_status", "inactive"), timeout=T).deleted == 1
    assert list(idb.get_all_keys(pb.ObjectStoreRangeRequest(store="users"), timeout=T).keys) == [
        "a",
        "b",
    ]


def test_golden_cursor_sequences(idb: IndexedDBClient) -> None:
    _golden_setup(idb)

    # store cursor: next, update, continue_to_key, delete, past the end
    call = cursor(idb, store="users")
    first = command(call, next=True)
    assert first.entry.primary_key == "a"
    assert entry_key(first.entry) == ["a"]
    assert first.entry.record == _user("a", "active", "a@x", "red", 2)
    updated = command(call, update=_user("a", "active", "a@x", "red", 9))
    assert updated.entry.record.fields["rank"].int_value == 9
    assert entry_key(updated.entry) == ["a"]
    assert (
        command(call, continue_to_key=pb.CursorKeyTarget(key=scalar_key("c"))).entry.primary_key
        == "c"
    )
    deleted = command(call, delete=True)
    assert deleted.WhichOneof("result") == "done"
    assert deleted.done is False
    assert command(call, next=True).done is True
    assert command(call, next=True).done is True
    call.send(pb.CursorClientMessage(command=pb.CursorCommand(delete=True)))
    expect_error(
        grpc.StatusCode.NOT_FOUND, "datastore: not found: the cursor is past its end", call.recv
    )
    idb.put(
        pb.RecordRequest(store="users", record=_user("c", "inactive", "c@x", "blue", 1)), timeout=T
    )
    assert (
        idb.get(pb.ObjectStoreRequest(store="users", id="a"), timeout=T)
        .record.fields["rank"]
        .int_value
        == 9
    )

    # advance(1) from the unpositioned start lands on the second entry; advance(0) fails
    call = cursor(idb, store="users")
    assert command(call, advance=1).entry.primary_key == "b"
    call.send(pb.CursorClientMessage(command=pb.CursorCommand(advance=0)))
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, "advance count must be positive", call.recv)

    # key cursor in reverse below "c"
    call = cursor(
        idb,
        store="users",
        range=key_range(upper="c", upper_open=True),
        direction=pb.CURSOR_PREV,
        keys_only=True,
    )
    entry = command(call, next=True).entry
    assert (entry_key(entry), entry.primary_key, entry.HasField("record")) == (["b"], "b", False)
    close_cursor(call)

    # index cursor, next-unique, compound seek
    call = cursor(
        idb,
        store="users",
        index="by_team_rank",
        values=[tv("red")],
        direction=pb.CURSOR_NEXT_UNIQUE,
    )
    entry = command(call, next=True).entry
    assert (entry_key(entry), entry.primary_key) == (["red", 1], "b")
    assert entry.record.fields["email"].string_value == "b@x"
    entry = command(call, continue_to_key=pb.CursorKeyTarget(key=scalar_key("red", 5))).entry
    assert (entry_key(entry), entry.primary_key) == (["red", 9], "a")
    close_cursor(call)

    # index key cursor with a scalar seek
    call = cursor(idb, store="users", index="by_status", keys_only=True)
    entry = command(call, continue_to_key=pb.CursorKeyTarget(key=scalar_key("inactive"))).entry
    assert (entry_key(entry), entry.primary_key, entry.HasField("record")) == (
        ["inactive"],
        "c",
        False,
    )
    close_cursor(call)

    # an array key sorts after every string: a store cursor seeking it is done
    call = cursor(idb, store="users")
    array = pb.KeyValue(array=pb.KeyValueArray(elements=scalar_key("x", 1)))
    assert command(call, continue_to_key=pb.CursorKeyTarget(key=[array])).done is True
    close_cursor(call)


def test_golden_transactions(idb: IndexedDBClient) -> None:
    _golden_setup(idb)
    idb.put(pb.RecordRequest(store="plain", record=rec(id="t1")), timeout=T)

    tx = begin(idb, ["users", "plain"], pb.TRANSACTION_READWRITE, pb.TRANSACTION_DURABILITY_STRICT)
    e = rec(id="e", status="active", email="e@x")
    assert operate(tx, 1, put=pb.RecordRequest(store="users", record=e)).HasField("empty")
    assert operate(tx, 2, get=pb.ObjectStoreRequest(store="users", id="e")).record.record == e
    assert operate(tx, 3, get_key=pb.ObjectStoreRequest(store="users", id="e")).key.key == "e"
    assert operate(tx, 4, count=pb.ObjectStoreRangeRequest(store="users")).count.count == 4
    keys = operate(
        tx, 5, get_all_keys=pb.ObjectStoreRangeRequest(store="users", range=key_range("b"))
    )
    assert list(keys.keys.keys) == ["b", "c", "e"]
    active = pb.IndexQueryRequest(store="users", index="by_status", values=[tv("active")])
    assert operate(tx, 6, index_count=active).count.count == 3
    inactive = pb.IndexQueryRequest(store="users", index="by_status", values=[tv("inactive")])
    assert list(operate(tx, 7, index_get_all_keys=inactive).keys.keys) == ["c"]
    assert operate(tx, 8, delete=pb.ObjectStoreRequest(store="plain", id="t1")).HasField("empty")
    assert not commit(tx).HasField("error")
    assert idb.count(pb.ObjectStoreRangeRequest(store="users"), timeout=T).count == 4
    assert idb.count(pb.ObjectStoreRangeRequest(store="plain"), timeout=T).count == 0

    # readonly, then abort
    tx = begin(idb, ["users"])
    records = operate(tx, 1, get_all=pb.ObjectStoreRangeRequest(store="users")).records.records
    assert ids(records) == ["a", "b", "c", "e"]
    assert not abort(tx).HasField("error")

    # a write in a readonly transaction: in-band error, abort frame with the error, drain
    tx = begin(idb, ["users"])
    failed = operate(tx, 1, put=pb.RecordRequest(store="users", record=rec(id="z")))
    assert (failed.error.code, failed.error.message) == (9, "datastore: transaction is readonly")
    trailer = tx.recv()
    assert trailer.WhichOneof("msg") == "abort"
    assert (trailer.abort.error.code, trailer.abort.error.message) == (
        9,
        "datastore: transaction is readonly",
    )
    tx.send(pb.TransactionClientMessage(commit=pb.TransactionCommitRequest()))  # ignored
    tx.ends_ok()

    # duplicate add: error 6, then abort without error; nothing written
    tx = begin(idb, ["users"], pb.TRANSACTION_READWRITE)
    failed = operate(tx, 1, add=pb.RecordRequest(store="users", record=rec(id="a")))
    assert (failed.error.code, failed.error.message) == (6, "datastore: already exists")
    trailer = tx.recv()
    assert trailer.WhichOneof("msg") == "abort"
    assert not trailer.abort.HasField("error")
    tx.ends_ok()

    # a get of a missing id also ends the transaction
    tx = begin(idb, ["users"], pb.TRANSACTION_READWRITE)
    failed = operate(tx, 1, get=pb.ObjectStoreRequest(store="users", id="nope"))
    assert (failed.error.code, failed.error.message) == (
        5,
        'datastore: not found: no record with id "nope" in object store "users"',
    )
    assert tx.recv().WhichOneof("msg") == "abort"
    tx.ends_ok()

    # empty scope
    empty: TxCall = Duplex(lambda frames: idb.transaction(frames, timeout=T))
    empty.send(
        pb.TransactionClientMessage(begin=pb.BeginTransactionRequest(mode=pb.TRANSACTION_READWRITE))
    )
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, "datastore: invalid transaction", empty.recv)
    empty.cancel()


# -- keys, ranges and indexes ----------------------------------------------------------------

_ORDERED_VALUES: list[object] = [
    None,
    "<missing>",
    -math.inf,
    -(2**63),
    -5,
    -1.5,
    0,
    -0.0,
    0.0,
    1,
    float(2**53),
    2**53 + 1,
    1e300,
    math.inf,
    math.nan,
    "",
    "a",
    "a\x00",
    "ab",
    "b",
    "é",
    "\U0001f600",
    False,
    True,
    b"",
    b"\x00",
    b"\x00\x01",
    b"\xff",
    dt.datetime(1969, 12, 31, 23, 59, 59),
    dt.datetime(1970, 1, 1),
    dt.datetime(2024, 1, 1, 0, 0, 0, 1),
    dt.datetime(2024, 1, 1, 0, 0, 0, 2),
    {"json": True},
]


def _ordered_store(idb: IndexedDBClient) -> list[str]:
    schema = pb.ObjectStoreSchema(indexes=[pb.IndexSchema(name="by_v", key_path=["v"])])
    idb.create_object_store(pb.CreateObjectStoreRequest(name="kinds", schema=schema), timeout=T)
    names = [f"r{i:02d}" for i in range(len(_ORDERED_VALUES))]
    # insert in reverse so that order comes from the keys, not from insertion
    for name, value in reversed(list(zip(names, _ORDERED_VALUES, strict=True))):
        record = rec(id=name) if value == "<missing>" else rec(id=name, v=value)
        idb.put(pb.RecordRequest(store="kinds", record=record), timeout=T)
    return names


def test_index_key_order_across_kinds(idb: IndexedDBClient) -> None:
    names = _ordered_store(idb)
    everything = pb.IndexQueryRequest(store="kinds", index="by_v")
    assert list(idb.index_get_all_keys(everything, timeout=T).keys) == names
    assert walk(idb, store="kinds", index="by_v") == names
    assert walk(idb, store="kinds", index="by_v", direction=pb.CURSOR_PREV) == names[::-1]

    def count(*values: object, rng: pb.KeyRange | None = None) -> int:
        request = pb.IndexQueryRequest(store="kinds", index="by_v", values=[tv(v) for v in values])
        if rng is not None:
            request.range.CopyFrom(rng)
        return idb.index_count(request, timeout=T).count

    assert count(0) == 3  # 0, -0.0 and 0.0 are one key
    assert count(0.0) == 3
    assert count(None) == 2  # an explicit null and a missing field
    assert count(float(2**53)) == 1  # 2**53 + 1 is a different key
    assert count(rng=key_range(1, float(2**53))) == 2
    assert count(rng=key_range(1, 2**53 + 1, upper_open=True)) == 2
    assert count(rng=key_range("a", "b")) == 4  # a, a\0, ab, b
    assert count(rng=key_range("a", "b", True, True)) == 2
    assert count(rng=key_range(upper=None)) == 2
    assert count(rng=key_range(lower=True)) == 1 + 4 + 4 + 1
    assert count(rng=key_range(dt.datetime(1970, 1, 1), dt.datetime(2024, 1, 1, 0, 0, 0, 1))) == 2


def test_store_ranges_and_pagination(idb: IndexedDBClient) -> None:
    for i in range(20):
        idb.put(pb.RecordRequest(store="pages", record=rec(id=f"k{i:02d}", n=i)), timeout=T)

    def keys(rng: pb.KeyRange | None) -> list[str]:
        request = pb.ObjectStoreRangeRequest(store="pages")
        if rng is not None:
            request.range.CopyFrom(rng)
        return list(idb.get_all_keys(request, timeout=T).keys)

    assert keys(None) == [f"k{i:02d}" for i in range(20)]
    assert keys(key_range("k05", "k08")) == ["k05", "k06", "k07", "k08"]
    assert keys(key_range("k05", "k08", lower_open=True)) == ["k06", "k07", "k08"]
    assert keys(key_range("k05", "k08", upper_open=True)) == ["k05", "k06", "k07"]
    assert keys(key_range("k05", "k08", True, True)) == ["k06", "k07"]
    assert keys(key_range("k08", "k05")) == []  # an inverted range is empty
    assert keys(key_range("k1")) == [f"k{i}" for i in range(10, 20)]
    assert keys(key_range(upper=5)) == []  # numbers sort before every string id
    assert keys(key_range(lower=5)) == keys(None)

    # pagination with open lower bounds, five at a time
    pages: list[list[str]] = []
    last: str | None = None
    while True:
        rng = None if last is None else key_range(last, lower_open=True)
        call = cursor(idb, store="pages", **({} if rng is None else {"range": rng}))
        page: list[str] = []
        while len(page) < 5:
            answer = command(call, next=True)
            if answer.WhichOneof("result") == "done":
                break
            page.append(answer.entry.primary_key)
        close_cursor(call)
        if not page:
            break
        pages.append(page)
        last = page[-1]
    assert len(pages) == 4
    assert [key for page in pages for key in page] == keys(None)

    request = pb.ObjectStoreRangeRequest(store="pages", range=key_range("k10", "k14"))
    assert idb.count(request, timeout=T).count == 5
    assert idb.delete_range(request, timeout=T).deleted == 5
    assert idb.count(pb.ObjectStoreRangeRequest(store="pages"), timeout=T).count == 15
    idb.clear(pb.ObjectStoreNameRequest(store="pages"), timeout=T)
    assert keys(None) == []


def test_compound_index_prefix_and_scalar_bounds(idb: IndexedDBClient) -> None:
    _golden_setup(idb)
    idb.put(
        pb.RecordRequest(store="users", record=_user("d", "active", "d@x", "red", 3)), timeout=T
    )

    def keys(*values: object, rng: pb.KeyRange | None = None) -> list[str]:
        request = pb.IndexQueryRequest(
            store="users", index="by_team_rank", values=[tv(v) for v in values]
        )
        if rng is not None:
            request.range.CopyFrom(rng)
        return list(idb.index_get_all_keys(request, timeout=T).keys)

    assert keys() == ["c", "b", "a", "d"]  # (blue,1) (red,1) (red,2) (red,3)
    assert keys("red") == ["b", "a", "d"]
    assert keys("red", 2) == ["a"]
    # a scalar bound is a one-element key: ("red",) sorts before every ("red", n)
    assert keys(rng=key_range(lower="red")) == ["b", "a", "d"]
    assert keys(rng=key_range(upper="red")) == ["c"]
    assert keys("red", rng=key_range(lower="blue", upper="zzz")) == ["b", "a", "d"]
    expect_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        None,
        lambda: keys("red", 1, "extra"),
    )


def test_unique_index_rules(idb: IndexedDBClient) -> None:
    _golden_setup(idb)

    def write(record: pb.Record) -> None:
        idb.put(pb.RecordRequest(store="users", record=record), timeout=T)

    write(_user("a", "active", "a@x", "green", 5))  # same email on its own record is fine
    expect_error(
        grpc.StatusCode.ALREADY_EXISTS,
        "datastore: already exists",
        lambda: write(_user("b", "active", "a@x", "red", 1)),
    )
    assert (
        idb.get(pb.ObjectStoreRequest(store="users", id="b"), timeout=T)
        .record.fields["email"]
        .string_value
        == "b@x"
    )
    write(rec(id="n1"))  # no email: not constrained
    write(rec(id="n2", email=None))
    email_a = pb.IndexQueryRequest(store="users", index="by_email", values=[tv("a@x")])
    assert idb.index_get_key(email_a, timeout=T).key == "a"

    # a new unique index the records violate is refused and changes nothing
    bad = _users_schema()
    bad.indexes.append(pb.IndexSchema(name="by_state", key_path=["status"], unique=True))
    expect_error(
        grpc.StatusCode.ALREADY_EXISTS,
        "datastore: already exists",
        lambda: idb.create_object_store(
            pb.CreateObjectStoreRequest(name="users", schema=bad), timeout=T
        ),
    )
    missing = pb.IndexQueryRequest(store="users", index="by_state")
    expect_error(grpc.StatusCode.NOT_FOUND, None, lambda: idb.index_count(missing, timeout=T))

    # re-creating with another schema keeps the records and builds the new index
    schema = pb.ObjectStoreSchema(indexes=[pb.IndexSchema(name="by_rank", key_path=["rank"])])
    idb.create_object_store(pb.CreateObjectStoreRequest(name="users", schema=schema), timeout=T)
    by_rank = pb.IndexQueryRequest(store="users", index="by_rank", values=[tv(1)])
    assert list(idb.index_get_all_keys(by_rank, timeout=T).keys) == ["b", "c"]
    assert idb.count(pb.ObjectStoreRangeRequest(store="users"), timeout=T).count == 5
    expect_error(grpc.StatusCode.NOT_FOUND, None, lambda: idb.index_count(email_a, timeout=T))
    write(_user("x", "active", "a@x", "red", 7))  # the unique email index is gone


def test_cursor_directions_advance_and_seek(idb: IndexedDBClient) -> None:
    schema = pb.ObjectStoreSchema(indexes=[pb.IndexSchema(name="by_g", key_path=["g"])])
    idb.create_object_store(pb.CreateObjectStoreRequest(name="g", schema=schema), timeout=T)
    for rid, g in [("a", 1), ("b", 2), ("c", 2), ("d", 2), ("e", 3), ("f", 4)]:
        idb.put(pb.RecordRequest(store="g", record=rec(id=rid, g=g)), timeout=T)
    on_index = {"store": "g", "index": "by_g"}
    assert walk(idb, **on_index) == ["a", "b", "c", "d", "e", "f"]
    assert walk(idb, **on_index, direction=pb.CURSOR_NEXT_UNIQUE) == ["a", "b", "e", "f"]
    assert walk(idb, **on_index, direction=pb.CURSOR_PREV) == ["f", "e", "d", "c", "b", "a"]
    assert walk(idb, **on_index, direction=pb.CURSOR_PREV_UNIQUE) == ["f", "e", "d", "a"]
    assert walk(idb, **on_index, direction=7) == ["a", "b", "c", "d", "e", "f"]
    assert walk(idb, store="g", direction=pb.CURSOR_NEXT_UNIQUE) == ["a", "b", "c", "d", "e", "f"]
    assert walk(idb, store="g", direction=pb.CURSOR_PREV_UNIQUE) == ["f", "e", "d", "c", "b", "a"]
    assert walk(idb, **on_index, values=[tv(2)], direction=pb.CURSOR_PREV) == ["d", "c", "b"]

    call = cursor(idb, **on_index)
    assert command(call, advance=1).entry.primary_key == "b"
    assert command(call, advance=2).entry.primary_key == "e"  # n + 1 steps from a position
    assert command(call, advance=5).done is True
    assert command(call, next=True).done is True  # exhausted stays exhausted
    close_cursor(call)

    call = cursor(idb, **on_index, direction=pb.CURSOR_NEXT_UNIQUE)
    assert command(call, advance=1).entry.primary_key == "b"
    assert command(call, advance=1).entry.primary_key == "f"
    close_cursor(call)

    def seek(*values: object) -> pb.CursorKeyTarget:
        return pb.CursorKeyTarget(key=scalar_key(*values))

    call = cursor(idb, **on_index)
    assert command(call, next=True).entry.primary_key == "a"
    assert command(call, continue_to_key=seek(2)).entry.primary_key == "b"
    assert command(call, continue_to_key=seek(2)).entry.primary_key == "c"  # at least one step
    assert command(call, continue_to_key=seek(3.5)).entry.primary_key == "f"
    assert command(call, continue_to_key=seek(9)).done is True
    close_cursor(call)

    call = cursor(idb, **on_index, direction=pb.CURSOR_PREV)
    assert command(call, continue_to_key=seek(2)).entry.primary_key == "d"  # at or before
    assert command(call, continue_to_key=seek(1)).entry.primary_key == "a"
    close_cursor(call)

    call = cursor(idb, **on_index, direction=pb.CURSOR_PREV_UNIQUE)
    assert command(call, continue_to_key=seek(2)).entry.primary_key == "d"
    assert command(call, next=True).entry.primary_key == "a"
    close_cursor(call)

    # cursors are live: a record written behind the position is visited
    call = cursor(idb, store="g")
    assert command(call, next=True).entry.primary_key == "a"
    idb.put(pb.RecordRequest(store="g", record=rec(id="aa", g=0)), timeout=T)
    assert command(call, next=True).entry.primary_key == "aa"
    close_cursor(call)


def test_cursor_update_delete_and_errors(idb: IndexedDBClient) -> None:
    _golden_setup(idb)

    call = cursor(idb, store="users", index="by_status", values=[tv("active")])
    first = command(call, next=True).entry
    assert (entry_key(first), first.primary_key) == (["active"], "a")
    refreshed = command(call, update=rec(status="retired", email="a@x")).entry
    assert (entry_key(refreshed), refreshed.primary_key) == (["retired"], "a")
    assert refreshed.record.fields["id"].string_value == "a"  # the cursor's id is filled in
    assert command(call, next=True).entry.primary_key == "b"
    assert command(call, delete=True).done is False
    assert command(call, next=True).done is True
    close_cursor(call)
    assert list(idb.get_all_keys(pb.ObjectStoreRangeRequest(store="users"), timeout=T).keys) == [
        "a",
        "c",
    ]

    # a missing field in an index key is a null component
    idb.put(pb.RecordRequest(store="users", record=rec(id="m", team="red")), timeout=T)
    call = cursor(idb, store="users", index="by_team_rank", keys_only=True)
    seen = [command(call, next=True).entry for _ in range(3)]
    assert [(e.primary_key, entry_key(e)) for e in seen] == [
        ("a", [None, None]),  # the update dropped team and rank
        ("c", ["blue", 1]),
        ("m", ["red", None]),
    ]
    close_cursor(call)

    def fails(
        code: grpc.StatusCode, first_frame: pb.CursorClientMessage, *more: pb.CursorClientMessage
    ) -> None:
        bad: CursorCall = Duplex(lambda frames: idb.open_cursor(frames, timeout=T))
        bad.send(first_frame)
        for frame in more:
            bad.send(frame)

        def drain() -> None:
            for _ in bad.stream:
                pass

        expect_error(code, None, drain)
        bad.cancel()

    opening = pb.CursorClientMessage(open=pb.OpenCursorRequest(store="users"))
    update = pb.CursorClientMessage(command=pb.CursorCommand(update=rec(id="a")))
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        pb.CursorClientMessage(command=pb.CursorCommand(next=True)),
    )
    fails(grpc.StatusCode.NOT_FOUND, opening, update)  # unpositioned
    fails(
        grpc.StatusCode.NOT_FOUND,
        pb.CursorClientMessage(open=pb.OpenCursorRequest(store="users", index="nope")),
    )
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        opening,
        pb.CursorClientMessage(command=pb.CursorCommand(next=True)),
        pb.CursorClientMessage(command=pb.CursorCommand(update=rec(id="zzz"))),
    )
    fails(
        grpc.StatusCode.ALREADY_EXISTS,
        opening,
        pb.CursorClientMessage(command=pb.CursorCommand(next=True)),
        pb.CursorClientMessage(command=pb.CursorCommand(update=rec(id="a", email="c@x"))),
    )
    fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        opening,
        pb.CursorClientMessage(command=pb.CursorCommand(continue_to_key=pb.CursorKeyTarget())),
    )
    fails(grpc.StatusCode.INVALID_ARGUMENT, opening, opening)

    # a cursor on a store that does not exist is simply empty; half-close ends it with OK
    call = cursor(idb, store="nothing-here")
    assert command(call, next=True).done is True
    call.ends_ok()


# -- transactions ----------------------------------------------------------------------------


def test_transaction_isolation_commit_and_rollback(idb: IndexedDBClient) -> None:
    _golden_setup(idb)
    pool = concurrent.futures.ThreadPoolExecutor(2)
    try:
        # a readwrite transaction sees its own writes and blocks every other call until commit
        tx = begin(idb, ["users", "plain"], pb.TRANSACTION_READWRITE)
        operate(tx, 1, put=pb.RecordRequest(store="users", record=rec(id="x", v=1)))
        operate(tx, 2, put=pb.RecordRequest(store="plain", record=rec(id="y")))
        got = operate(tx, 3, get=pb.ObjectStoreRequest(store="users", id="x"))
        assert got.record.record == rec(id="x", v=1)
        waiting = pool.submit(idb.get, pb.ObjectStoreRequest(store="users", id="x"), timeout=T)
        time.sleep(0.2)
        assert not waiting.done()
        assert not commit(tx).HasField("error")
        assert waiting.result(timeout=T).record == rec(id="x", v=1)
        assert idb.count(pb.ObjectStoreRangeRequest(store="plain"), timeout=T).count == 1

        # a call whose deadline passes while it waits gives up without harm
        tx = begin(idb, ["users"], pb.TRANSACTION_READWRITE)
        expect_error(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            None,
            lambda: idb.put(pb.RecordRequest(store="users", record=rec(id="late")), timeout=0.2),
        )
        operate(tx, 1, delete=pb.ObjectStoreRequest(store="users", id="x"))
        operate(tx, 2, clear=pb.ObjectStoreNameRequest(store="users"))
        assert operate(tx, 3, count=pb.ObjectStoreRangeRequest(store="users")).count.count == 0
        assert not abort(tx).HasField("error")  # abort rolls both back
        keys = idb.get_all_keys(pb.ObjectStoreRangeRequest(store="users"), timeout=T).keys
        assert list(keys) == ["a", "b", "c", "x"]

        # half-closing without commit or abort rolls back and ends with OK
        tx = begin(idb, ["users"], pb.TRANSACTION_READWRITE, pb.TRANSACTION_DURABILITY_RELAXED)
        operate(tx, 1, put=pb.RecordRequest(store="users", record=rec(id="gone")))
        tx.ends_ok()
        expect_error(
            grpc.StatusCode.NOT_FOUND,
            None,
            lambda: idb.get(pb.ObjectStoreRequest(store="users", id="gone"), timeout=T),
        )

        # an operation failing after writes rolls back the earlier writes too
        tx = begin(idb, ["users"], pb.TRANSACTION_READWRITE)
        operate(tx, 1, put=pb.RecordRequest(store="users", record=rec(id="early")))
        assert operate(tx, 2, get=pb.ObjectStoreRequest(store="users", id="nope")).error.code == 5
        assert tx.recv().WhichOneof("msg") == "abort"
        tx.ends_ok()
        assert idb.count(pb.ObjectStoreRangeRequest(store="users"), timeout=T).count == 4

        # a write to a store created inside a rolled-back transaction leaves no store behind
        tx = begin(idb, ["brand-new"], pb.TRANSACTION_READWRITE)
        operate(tx, 1, put=pb.RecordRequest(store="brand-new", record=rec(id="1")))
        abort(tx)
        assert idb.count(pb.ObjectStoreRangeRequest(store="brand-new"), timeout=T).count == 0

        # readonly transactions share the lock with each other and with reads, not with writes
        first = begin(idb, ["users"])
        second = begin(idb, ["users"])
        assert idb.count(pb.ObjectStoreRangeRequest(store="users"), timeout=T).count == 4
        writing = pool.submit(
            idb.put, pb.RecordRequest(store="users", record=rec(id="w")), timeout=T
        )
        time.sleep(0.2)
        assert not writing.done()
        assert operate(first, 1, count=pb.ObjectStoreRangeRequest(store="users")).count.count == 4
        assert not commit(first).HasField("error")
        assert not writing.done()
        abort(second)
        writing.result(timeout=T)
        assert idb.count(pb.ObjectStoreRangeRequest(store="users"), timeout=T).count == 5
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def test_transaction_protocol_errors(idb: IndexedDBClient) -> None:
    _golden_setup(idb)
    # a store outside the declared scope is NOT_FOUND in-band
    tx = begin(idb, ["plain"], pb.TRANSACTION_READWRITE)
    failed = operate(tx, 1, get_all=pb.ObjectStoreRangeRequest(store="users"))
    assert (failed.error.code, failed.error.message) == (
        5,
        'datastore: not found: object store "users" is outside the transaction\'s scope',
    )
    assert tx.recv().WhichOneof("msg") == "abort"
    tx.ends_ok()

    # DeleteRange without a range and bad index values are INVALID_ARGUMENT in-band
    tx = begin(idb, ["users"], pb.TRANSACTION_READWRITE)
    failed = operate(tx, 1, delete_range=pb.ObjectStoreRangeRequest(store="users"))
    assert (failed.error.code, failed.error.message) == (3, "key range is required for DeleteRange")
    assert tx.recv().WhichOneof("msg") == "abort"
    tx.ends_ok()

    # an operation frame without an operation
    tx = begin(idb, ["users"], pb.TRANSACTION_READWRITE)
    assert operate(tx, 1).error.code == 3
    assert tx.recv().WhichOneof("msg") == "abort"
    tx.ends_ok()

    # the first frame must be begin; a second begin is refused
    bad: TxCall = Duplex(lambda frames: idb.transaction(frames, timeout=T))
    bad.send(pb.TransactionClientMessage(commit=pb.TransactionCommitRequest()))
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, None, bad.recv)
    bad.cancel()
    tx = begin(idb, ["users"])
    tx.send(pb.TransactionClientMessage(begin=pb.BeginTransactionRequest(stores=["users"])))
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, None, tx.recv)
    tx.cancel()

    # a readonly commit works and writes nothing; every index operation runs in a transaction
    tx = begin(idb, ["users"], pb.TRANSACTION_READWRITE)
    query = pb.IndexQueryRequest(store="users", index="by_status", values=[tv("active")])
    assert operate(tx, 1, index_get=query).record.record.fields["id"].string_value == "a"
    assert operate(tx, 2, index_get_key=query).key.key == "a"
    assert ids(operate(tx, 3, index_get_all=query).records.records) == ["a", "b"]
    assert operate(tx, 4, index_delete=query).delete.deleted == 2
    assert operate(tx, 5, add=pb.RecordRequest(store="users", record=rec(id="n"))).HasField("empty")
    rng = pb.ObjectStoreRangeRequest(store="users", range=key_range("c"))
    assert operate(tx, 6, delete_range=rng).delete.deleted == 2
    assert operate(tx, 7, get_all=pb.ObjectStoreRangeRequest(store="users")).records == (
        pb.RecordsResponse()
    )
    assert not commit(tx).HasField("error")
    assert idb.count(pb.ObjectStoreRangeRequest(store="users"), timeout=T).count == 0


# -- persistence, concurrency, resources, size -----------------------------------------------


def test_data_survives_a_restart(tmp_path: Path) -> None:
    db_file = tmp_path / "data" / "idb.sqlite"
    socket = tmp_path / "idb.sock"
    with serve_indexeddb(socket, db_path=db_file) as running:
        assert running.service.path == db_file
        with grpc.insecure_channel(running.target) as channel:
            client = IndexedDBClient(channel)
            _golden_setup(client)
            for hint in (
                pb.TRANSACTION_DURABILITY_DEFAULT,
                pb.TRANSACTION_DURABILITY_STRICT,
                pb.TRANSACTION_DURABILITY_RELAXED,
            ):
                tx = begin(client, ["plain"], pb.TRANSACTION_READWRITE, hint)
                operate(tx, 1, put=pb.RecordRequest(store="plain", record=rec(id=f"h{hint}")))
                commit(tx)
            # left open when the server stops: must not be persisted
            tx = begin(client, ["plain"], pb.TRANSACTION_READWRITE)
            operate(tx, 1, put=pb.RecordRequest(store="plain", record=rec(id="uncommitted")))
            running.stop(grace=0)
            tx.cancel()
    assert db_file.exists()
    assert not socket.exists()

    with serve_indexeddb(socket, db_path=db_file) as running:
        assert running.service.store_names() == ["plain", "users"]
        with grpc.insecure_channel(running.target) as channel:
            client = IndexedDBClient(channel)
            assert list(
                client.get_all_keys(pb.ObjectStoreRangeRequest(store="plain"), timeout=T).keys
            ) == ["h0", "h1", "h2"]
            query = pb.IndexQueryRequest(store="users", index="by_team_rank", values=[tv("red")])
            assert list(client.index_get_all_keys(query, timeout=T).keys) == ["b", "a"]
            clash = pb.RecordRequest(store="users", record=rec(id="z", email="a@x"))
            expect_error(grpc.StatusCode.ALREADY_EXISTS, None, lambda: client.add(clash, timeout=T))


def test_concurrent_clients(idb_server: IndexedDBServer) -> None:
    schema = pb.ObjectStoreSchema(
        indexes=[pb.IndexSchema(name="by_slot", key_path=["slot"], unique=True)]
    )
    channels = [grpc.insecure_channel(idb_server.target) for _ in range(8)]
    try:
        clients = [IndexedDBClient(channel) for channel in channels]
        clients[0].create_object_store(
            pb.CreateObjectStoreRequest(name="c", schema=schema), timeout=T
        )

        def worker(n: int) -> int:
            client = clients[n]
            won = 0
            for i in range(40):
                record = rec(id=f"w{n}-{i:02d}", owner=n)
                client.put(pb.RecordRequest(store="c", record=record), timeout=T)
                got = client.get(pb.ObjectStoreRequest(store="c", id=f"w{n}-{i:02d}"), timeout=T)
                assert got.record == record
                # everyone races for the same 10 unique slots: exactly one add wins each
                slot = rec(id=f"slot{i % 10}-{n}", slot=i % 10)
                try:
                    client.add(pb.RecordRequest(store="c", record=slot), timeout=T)
                    won += 1
                except RPCError as exc:
                    assert exc.code == grpc.StatusCode.ALREADY_EXISTS
                tx = begin(client, ["c"], pb.TRANSACTION_READWRITE)
                operate(tx, 1, put=pb.RecordRequest(store="c", record=rec(id=f"t{n}-{i}")))
                commit(tx)
            return won

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            wins = list(pool.map(worker, range(8)))
        assert sum(wins) == 10
        count = clients[0].count(pb.ObjectStoreRangeRequest(store="c"), timeout=T).count
        assert count == 8 * 40 * 2 + 10
    finally:
        for channel in channels:
            channel.close()


def test_abandoned_streams_release_resources(idb_server: IndexedDBServer) -> None:
    service = idb_server.service
    with grpc.insecure_channel(idb_server.target) as channel:
        client = IndexedDBClient(channel)
        client.put(pb.RecordRequest(store="s", record=rec(id="kept")), timeout=T)

        def cycle() -> None:
            cur = cursor(client, store="s")
            command(cur, next=True)
            tx = begin(client, ["s"], pb.TRANSACTION_READWRITE)
            operate(tx, 1, put=pb.RecordRequest(store="s", record=rec(id="lost")))
            eventually(lambda: service.open_cursors == 1 and service.open_transactions == 1)
            cur.cancel()  # abandoned mid-way: no close, no commit
            tx.cancel()
            eventually(lambda: service.open_cursors == 0 and service.open_transactions == 0)

        for _ in range(3):
            cycle()
        baseline = threading.active_count()
        for _ in range(15):
            cycle()
        assert threading.active_count() <= baseline + 1
        # the abandoned transaction rolled back and released the database lock
        client.put(pb.RecordRequest(store="s", record=rec(id="after")), timeout=T)
        keys = client.get_all_keys(pb.ObjectStoreRangeRequest(store="s"), timeout=T).keys
        assert list(keys) == ["after", "kept"]

    # a client that goes away without cancelling (its channel closes) is noticed as well
    other = grpc.insecure_channel(idb_server.target)
    client = IndexedDBClient(other)
    cur = cursor(client, store="s")
    tx = begin(client, ["s"], pb.TRANSACTION_READWRITE)
    operate(tx, 1, clear=pb.ObjectStoreNameRequest(store="s"))
    other.close()
    eventually(lambda: service.open_cursors == 0 and service.open_transactions == 0)
    cur.half_close()
    tx.half_close()
    with grpc.insecure_channel(idb_server.target) as channel:
        client = IndexedDBClient(channel)
        assert client.count(pb.ObjectStoreRangeRequest(store="s"), timeout=T).count == 2


def test_records_above_four_mib(idb: IndexedDBClient) -> None:
    blob = bytes(range(256)) * (5 * 1024 * 1024 // 256)
    big = rec(id="big", blob=blob, tag="x")
    idb.put(pb.RecordRequest(store="large", record=big), timeout=T)
    idb.put(pb.RecordRequest(store="large", record=rec(id="big2", blob=blob)), timeout=T)
    assert idb.get(pb.ObjectStoreRequest(store="large", id="big"), timeout=T).record == big
    everything = idb.get_all(pb.ObjectStoreRangeRequest(store="large"), timeout=T)
    assert [len(r.fields["blob"].bytes_value) for r in everything.records] == [len(blob)] * 2
    call = cursor(idb, store="large")
    assert command(call, next=True).entry.record == big
    close_cursor(call)
    tx = begin(idb, ["large"], pb.TRANSACTION_READWRITE)
    assert operate(tx, 1, get=pb.ObjectStoreRequest(store="large", id="big")).record.record == big
    operate(tx, 2, put=pb.RecordRequest(store="large", record=rec(id="big3", blob=blob)))
    commit(tx)
    assert idb.count(pb.ObjectStoreRangeRequest(store="large"), timeout=T).count == 3


def test_invalid_input_is_rejected(idb: IndexedDBClient) -> None:
    bad_time = pb.Record()
    bad_time.fields["id"].string_value = "t"
    bad_time.fields["when"].time_value.nanos = 2_000_000_000
    expect_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        None,
        lambda: idb.put(pb.RecordRequest(store="s", record=bad_time), timeout=T),
    )
    with pytest.raises(RPCError, match="unmarshal record"):
        idb.put(pb.RecordRequest(store="s", record=bad_time), timeout=T)
    bad_range = pb.KeyRange()
    bad_range.lower.time_value.seconds = 10**15
    with pytest.raises(RPCError, match="unmarshal key range"):
        idb.count(pb.ObjectStoreRangeRequest(store="s", range=bad_range), timeout=T)
    expect_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        None,
        lambda: idb.put(pb.RecordRequest(store="", record=rec(id="x")), timeout=T),
    )
    for schema in (
        pb.ObjectStoreSchema(indexes=[pb.IndexSchema(name="", key_path=["a"])]),
        pb.ObjectStoreSchema(indexes=[pb.IndexSchema(name="i")]),
        pb.ObjectStoreSchema(
            indexes=[
                pb.IndexSchema(name="i", key_path=["a"]),
                pb.IndexSchema(name="i", key_path=["b"]),
            ]
        ),
    ):
        request = pb.CreateObjectStoreRequest(name="s", schema=schema)
        expect_error(
            grpc.StatusCode.INVALID_ARGUMENT,
            None,
            lambda request=request: idb.create_object_store(request, timeout=T),  # type: ignore[misc]
        )
    assert idb.count(pb.ObjectStoreRangeRequest(store="s"), timeout=T).count == 0
    # a record whose id is missing or not a string is filed under ""
    idb.put(pb.RecordRequest(store="s", record=rec(n=1)), timeout=T)
    idb.put(pb.RecordRequest(store="s", record=rec(id=5, n=2)), timeout=T)
    got = idb.get(pb.ObjectStoreRequest(store="s", id=""), timeout=T).record
    assert got.fields["n"].int_value == 2
    # a missing store reads as empty; index queries on it are NOT_FOUND
    assert idb.get_all(pb.ObjectStoreRangeRequest(store="none"), timeout=T).records == []
    expect_error(
        grpc.StatusCode.NOT_FOUND,
        'datastore: not found: object store "none" has no index "i"',
        lambda: idb.index_get_all(pb.IndexQueryRequest(store="none", index="i"), timeout=T),
    )


def test_serve_handle_lifecycle(tmp_path: Path) -> None:
    socket = tmp_path / "idb.sock"
    first = serve_indexeddb(socket)
    assert first.target == f"unix:{socket}"
    first.stop()
    assert not socket.exists()
    stale = sock.socket(sock.AF_UNIX)  # what a crashed server leaves behind
    stale.bind(str(socket))
    stale.close()
    assert socket.exists()
    # the stale socket is replaced
    with serve_indexeddb(socket) as second, grpc.insecure_channel(second.target) as channel:
        IndexedDBClient(channel).put(pb.RecordRequest(store="s", record=rec(id="1")), timeout=T)
    second.stop()  # idempotent
    assert not socket.exists()
    (tmp_path / "file").write_text("not a socket")
    with pytest.raises(FileExistsError):
        serve_indexeddb(tmp_path / "file")
    with pytest.raises(ValueError):
        serve_indexeddb(socket, max_workers=0)
    with pytest.raises(ValueError, match="longer than"):
        serve_indexeddb(tmp_path / ("x" * 120))
    with pytest.raises(FileNotFoundError):
        serve_indexeddb(tmp_path / "missing" / "idb.sock")
    with IndexedDBService() as service:
        typed: IndexedDBHandler = service  # the service satisfies the generated protocol
        assert typed is service
        assert service.path is None
        assert service.open_cursors == service.open_transactions == 0


async def test_served_by_an_aio_server(tmp_path: Path) -> None:
    service = IndexedDBService()
    server = grpc.aio.server()
    service.add_to_server(server)
    target = f"unix:{tmp_path / 'aio.sock'}"
    assert server.add_insecure_port(target) != 0
    await server.start()
    try:
        async with grpc.aio.insecure_channel(target) as channel:
            client = AsyncIndexedDBClient(channel)
            await client.put(pb.RecordRequest(store="s", record=rec(id="a")), timeout=T)
            got = await client.get(pb.ObjectStoreRequest(store="s", id="a"), timeout=T)
            assert got.record == rec(id="a")
            with pytest.raises(RPCError) as info:
                await client.get(pb.ObjectStoreRequest(store="s", id="b"), timeout=T)
            assert info.value.code == grpc.StatusCode.NOT_FOUND

            stream = client.open_cursor(timeout=T)
            await stream.write(pb.CursorClientMessage(open=pb.OpenCursorRequest(store="s")))
            assert (await stream.read()) == pb.CursorResponse(done=False)
            await stream.write(pb.CursorClientMessage(command=pb.CursorCommand(next=True)))
            answer = await stream.read()
            assert answer is not None
            assert answer.entry.primary_key == "a"
            await stream.write(pb.CursorClientMessage(command=pb.CursorCommand(close=True)))
            await stream.done_writing()
            assert (await stream.read()) is None

            tx = client.transaction(timeout=T)
            await tx.write(
                pb.TransactionClientMessage(
                    begin=pb.BeginTransactionRequest(stores=["s"], mode=pb.TRANSACTION_READWRITE)
                )
            )
            assert (await tx.read()) is not None
            await tx.write(
                pb.TransactionClientMessage(
                    operation=pb.TransactionOperation(
                        request_id=1, put=pb.RecordRequest(store="s", record=rec(id="b"))
                    )
                )
            )
            assert (await tx.read()) is not None
            assert service.open_transactions == 1
            tx.cancel()  # abandoned: rolled back, lock released
            for _ in range(500):
                if service.open_transactions == 0:
                    break
                await asyncio.sleep(0.01)
            assert service.open_transactions == 0
            count = await client.count(pb.ObjectStoreRangeRequest(store="s"), timeout=T)
            assert count.count == 1
    finally:
        await server.stop(0)
        service.close()


# -- guards: one service per file, idle transactions, fair readers, our own error text -------


def test_second_service_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db" / "idb.sqlite3"
    with IndexedDBService(path) as first:
        with pytest.raises(RuntimeError, match="already used by another running service"):
            IndexedDBService(path)
        with pytest.raises(RuntimeError, match="already used"):
            serve_indexeddb(
                tmp_path / "two.sock", db_path=tmp_path / "db" / ".." / "db" / path.name
            )
        assert first.store_names() == []  # the refusal did not disturb the first service
    with IndexedDBService(path) as again:  # released by close()
        assert again.path == path


def _idle_server(tmp_path: Path, idle_timeout: float) -> IndexedDBServer:
    return serve_indexeddb(
        tmp_path / "idle.sock", db_path=tmp_path / "idle.sqlite3", idle_timeout=idle_timeout
    )


def test_idle_transaction_is_rolled_back_and_its_client_told(tmp_path: Path) -> None:
    with (
        _idle_server(tmp_path, 0.5) as server,
        grpc.insecure_channel(server.target, options=_OPTIONS) as one,
        grpc.insecure_channel(server.target, options=_OPTIONS) as two,
    ):
        holder, other = IndexedDBClient(one), IndexedDBClient(two)
        tx = begin(holder, ["s"], pb.TRANSACTION_READWRITE)
        assert not operate(tx, 1, put=pb.RecordRequest(store="s", record=rec(id="tx"))).HasField(
            "error"
        )
        started = time.monotonic()
        # Another client gets the lock once the idle transaction is rolled back.
        other.put(pb.RecordRequest(store="s", record=rec(id="other")), timeout=T)
        assert 0.4 < time.monotonic() - started < 3.0
        assert server.service.open_transactions == 1  # the stream itself lives on ...
        tx.send(
            pb.TransactionClientMessage(
                operation=pb.TransactionOperation(
                    request_id=2, get=pb.ObjectStoreRequest(store="s", id="tx")
                )
            )
        )
        expect_error(
            grpc.StatusCode.FAILED_PRECONDITION,
            "datastore: transaction is already finished: it was rolled back after 0.5 s"
            " without a request",
            tx.recv,
        )  # ... until the client hears why, on its next call
        keys = other.get_all_keys(pb.ObjectStoreRangeRequest(store="s"), timeout=T).keys
        assert list(keys) == ["other"]


def test_client_that_never_returns_has_its_transaction_call_ended(tmp_path: Path) -> None:
    with (
        _idle_server(tmp_path, 0.3) as server,
        grpc.insecure_channel(server.target, options=_OPTIONS) as channel,
    ):
        tx = begin(IndexedDBClient(channel), ["s"], pb.TRANSACTION_READONLY)
        eventually(lambda: server.service.open_transactions == 0, timeout=3)
        with pytest.raises(RPCError) as info:
            tx.recv()
        assert info.value.code == grpc.StatusCode.CANCELLED


def test_readers_pass_a_writer_stuck_behind_an_idle_reader(tmp_path: Path) -> None:
    with (
        _idle_server(tmp_path, 30) as server,
        grpc.insecure_channel(server.target, options=_OPTIONS) as channel,
    ):
        idb = IndexedDBClient(channel)
        idb.put(pb.RecordRequest(store="s", record=rec(id="a")), timeout=T)
        reader = begin(idb, ["s"])  # and then idle
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            writer = pool.submit(
                idb.put, pb.RecordRequest(store="s", record=rec(id="b")), timeout=T
            )
            time.sleep(0.5)
            assert not writer.done()  # the writer waits for the reader, as it must
            started = time.monotonic()
            got = idb.get(pb.ObjectStoreRequest(store="s", id="a"), timeout=T)
            assert got.record.fields["id"].string_value == "a"
            assert time.monotonic() - started < 1.5  # not queued behind the writer
            assert not writer.done()
            assert operate(reader, 1, count=pb.ObjectStoreRangeRequest(store="s")).count.count == 1
            commit(reader)
            reader.ends_ok()
            writer.result(timeout=T)
        assert idb.count(pb.ObjectStoreRangeRequest(store="s"), timeout=T).count == 2


def test_waiting_writer_still_holds_back_readers_behind_busy_ones(tmp_path: Path) -> None:
    with (
        _idle_server(tmp_path, 30) as server,
        grpc.insecure_channel(server.target, options=_OPTIONS) as channel,
    ):
        idb = IndexedDBClient(channel)
        lock = server.service._gate.lock
        assert lock.acquire(False, lambda: True)  # a busy reader (not idle)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            writer = pool.submit(
                idb.put, pb.RecordRequest(store="s", record=rec(id="b")), timeout=T
            )
            time.sleep(0.3)
            late_reader = pool.submit(idb.count, pb.ObjectStoreRangeRequest(store="s"), timeout=T)
            time.sleep(0.5)
            assert not writer.done() and not late_reader.done()
            lock.release(False)
            writer.result(timeout=T)
            assert late_reader.result(timeout=T).count == 1  # it ran after the writer


def test_storage_failures_do_not_leak_sqlite_text(tmp_path: Path) -> None:
    db_path = tmp_path / "broken.sqlite3"
    with (
        serve_indexeddb(tmp_path / "b.sock", db_path=db_path) as server,
        grpc.insecure_channel(server.target, options=_OPTIONS) as channel,
    ):
        idb = IndexedDBClient(channel)
        idb.put(pb.RecordRequest(store="s", record=rec(id="a")), timeout=T)
        with sqlite3.connect(db_path) as other:  # break the schema under the service
            other.execute("ALTER TABLE records RENAME TO gone")
        failure = "datastore: storage failure in the local IndexedDB service"
        expect_error(
            grpc.StatusCode.INTERNAL,
            failure,
            lambda: idb.get(pb.ObjectStoreRequest(store="s", id="a"), timeout=T),
        )
        expect_error(
            grpc.StatusCode.INTERNAL,
            failure,
            lambda: idb.put(pb.RecordRequest(store="s", record=rec(id="b")), timeout=T),
        )
        tx = begin(idb, ["s"], pb.TRANSACTION_READWRITE)
        failed = operate(tx, 1, get=pb.ObjectStoreRequest(store="s", id="a"))
        assert (failed.error.code, failed.error.message) == (13, failure)
