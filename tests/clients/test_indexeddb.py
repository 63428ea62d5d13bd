"""IndexedDB and AsyncIndexedDB against the embedded IndexedDB service over real unix sockets.

Covers the golden wire transcript (frames recorded server side), record encoding, every
method of the client, stores, indexes, cursors and transactions (sync and async), the error
mapping for each status the contract lists (a scripted host produces the ones the embedded
service never sends), argument checks made before any call, timeouts, records above 4 MiB,
hosts that die mid-stream, and abandoned streams (threads and host-side stream counters).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import gc
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import text_format, timestamp_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2

from gestalt._clients.errors import (
    AlreadyExistsError,
    HostServiceConfigError,
    HostServiceError,
    HostServiceTimeoutError,
    NotFoundError,
    TransactionError,
)
from gestalt._clients.indexeddb import (
    Cursor,
    Index,
    IndexedDB,
    ObjectStore,
    Transaction,
    TransactionIndex,
    TransactionObjectStore,
    indexeddb_socket_env,
)
from gestalt._clients.indexeddb_aio import AsyncCursor, AsyncIndexedDB, AsyncTransaction
from gestalt._clients.indexeddb_codec import (
    CURSOR_NEXT,
    CURSOR_NEXT_UNIQUE,
    CURSOR_PREV,
    CURSOR_PREV_UNIQUE,
)
from gestalt._clients.indexeddb_types import IndexSchema, KeyRange, ObjectStoreSchema
from gestalt._clients.transport import INDEXEDDB
from gestalt.gen.v1 import datastore_pb2 as pb
from gestalt.gen.v1.datastore_clients import AsyncIndexedDBClient, IndexedDBClient
from gestalt.gen.v1.datastore_servicers import add_indexed_db_to_server
from gestalt.local.indexeddb import IndexedDBService
from tests.clients.conftest import (
    EnvBinder,
    RecordedCall,
    RecordingInterceptor,
    parse_transcript,
    stable_repr,
    wait_for_thread_count,
)

MiB = 1024 * 1024
T = 10.0  # a safety deadline for calls that must not hang if something is wrong
_OPTIONS = [
    ("grpc.max_send_message_length", 64 * MiB),
    ("grpc.max_receive_message_length", 64 * MiB),
]


# -- servers --------------------------------------------------------------------------------


@dataclass
class Host:
    """A running IndexedDB host on a unix socket (embedded service or a scripted one)."""

    target: str
    service: Any
    server: grpc.Server


@contextmanager
def serve(path: Path, service: Any, recorder: RecordingInterceptor | None = None) -> Iterator[Host]:
    """Serve ``service`` (any object with IndexedDB methods) on ``path``, recorded if asked."""
    pool = concurrent.futures.ThreadPoolExecutor(32)
    server = grpc.server(pool, interceptors=[recorder] if recorder else [], options=_OPTIONS)
    add_indexed_db_to_server(service, server)
    assert server.add_insecure_port(f"unix:{path}") != 0
    server.start()
    try:
        yield Host(f"unix:{path}", service, server)
    finally:
        server.stop(0).wait()
        if isinstance(service, IndexedDBService):
            service.close()
        pool.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def host(
    socket_path: Callable[[str], Path], recorder: RecordingInterceptor, bind_env: EnvBinder
) -> Iterator[Host]:
    """The embedded service, recorded by ``recorder`` and bound as the default IndexedDB."""
    with serve(socket_path("idb"), IndexedDBService(), recorder) as running:
        bind_env(INDEXEDDB, running.target)
        yield running


@pytest.fixture
def db(host: Host) -> Iterator[IndexedDB]:
    """A client of :func:`host` (closed after the test)."""
    with IndexedDB(timeout=T) as client:
        yield client


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it holds (or ``timeout``); returns its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def streams_closed(host: Host) -> bool:
    """Whether the embedded service serves no cursor or transaction stream any more."""
    service: IndexedDBService = host.service
    return service.open_cursors == 0 and service.open_transactions == 0


USERS = ObjectStoreSchema(
    indexes=[
        IndexSchema(name="by_status", key_path=["status"]),
        IndexSchema(name="by_email", key_path=["email"], unique=True),
        IndexSchema(name="by_team_rank", key_path=["team", "rank"]),
    ]
)
ROWS = [
    {"id": "a", "status": "active", "email": "a@x", "team": "red", "rank": 2},
    {"id": "b", "status": "active", "email": "b@x", "team": "red", "rank": 1},
    {"id": "c", "status": "inactive", "email": "c@x", "team": "blue", "rank": 1},
]


def fill_users(client: IndexedDB) -> ObjectStore:
    """Create the ``users`` store of the transcript with its three rows."""
    client.create_object_store("users", USERS)
    users = client.object_store("users")
    for row in ROWS:
        users.put(row)
    return users


# -- the golden transcript ------------------------------------------------------------------


def _stable(value: object) -> str:
    """``stable_repr`` that also looks inside tuples, as the transcript's recorder does."""
    if isinstance(value, tuple):
        inner = ", ".join(_stable(item) for item in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return stable_repr(value)


def _public_name(error: BaseException) -> str:
    """The name of the first public class of ``error`` (private subclasses stand for it)."""
    return next(cls.__name__ for cls in type(error).__mro__ if not cls.__name__.startswith("_"))


def _outcome(call: Callable[[], Any]) -> tuple[str, str]:
    try:
        value = call()
    except Exception as exc:
        return "raised", f"{_public_name(exc)}: {exc}"
    if isinstance(value, Cursor):
        return "returned", "<Cursor object>"
    return "returned", _stable(value)


def _golden_outcome(kind: str, value: str) -> tuple[str, str]:
    if kind == "raised":  # compare the class name, not the module it lives in
        qualified, _, message = value.partition(": ")
        return kind, f"{qualified.rsplit('.', 1)[-1]}: {message}"
    if value.startswith("<gestalt._indexeddb.Cursor object"):  # the reference's module
        return kind, "<Cursor object>"
    return kind, value


def _replay(db: IndexedDB) -> list[tuple[str, tuple[str, str] | None]]:
    """The calls of drive_indexeddb.py in order: (label, outcome or None for a heading)."""
    out: list[tuple[str, tuple[str, str] | None]] = []

    def run(label: str, call: Callable[[], Any]) -> None:
        out.append((label, _outcome(call)))

    def step(label: str) -> None:
        out.append((label, None))

    step(
        "discovery: IndexedDB() reads GESTALT_INDEXEDDB_SOCKET and GESTALT_INDEXEDDB_SOCKET_TOKEN "
        "(token value '  tok-idb  ' is stripped before use)"
    )
    run(
        'create_object_store("plain")  (schema=None still sends an empty schema)',
        lambda: db.create_object_store("plain"),
    )
    run(
        'create_object_store("users", ObjectStoreSchema(indexes=[...3 indexes...]))',
        lambda: db.create_object_store("users", USERS),
    )
    users = db.object_store("users")
    for verb, row in zip(("add", "add", "put"), ROWS, strict=True):
        label = (
            f'users.{verb}({{"id": "{row["id"]}", "status": "{row["status"]}", '
            f'"email": "{row["email"]}", "team": "{row["team"]}", "rank": {row["rank"]}}})'
        )
        run(label, lambda verb=verb, row=row: getattr(users, verb)(row))  # type: ignore[misc]
    run('users.add({"id": "a"})  (duplicate primary key)', lambda: users.add({"id": "a"}))
    typed = {
        "id": "t1",
        "none": None,
        "flag": True,
        "count": 42,
        "big": -(2**63),
        "ratio": 0.5,
        "whole_float": 3.0,
        "name": "Zoë",
        "blob": b"\x00\xff",
        "ba": bytearray(b"ab"),
        "naive_time": dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
        "aware_time": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "nested": {"n": 1, "f": 1.5, "list": [1, "x", None, False], "tuple": (1, 2)},
        "items": [1, 2],
        "pair": ("a", 1),
    }
    plain = db.object_store("plain")
    run(f"plain.put({typed!r})", lambda: plain.put(typed))
    run(
        'plain.get("t1")  (note: nested ints come back as floats, times as aware UTC)',
        lambda: plain.get("t1"),
    )
    run(
        'plain.put({"id": "bad", "when": date(2024, 1, 1)})  (unsupported type)',
        lambda: plain.put({"id": "bad", "when": dt.date(2024, 1, 1)}),
    )
    run(
        'plain.put({"id": "huge", "n": 2**63})  (int64 overflow)',
        lambda: plain.put({"id": "huge", "n": 2**63}),
    )
    run('plain.get_key("t1")', lambda: plain.get_key("t1"))
    run('plain.get("nope")', lambda: plain.get("nope"))
    run('plain.delete("nope")  (host: no error)', lambda: plain.delete("nope"))
    run("users.get_all()", users.get_all)
    run(
        'users.get_all_keys(KeyRange(lower="a", upper="c", upper_open=True))',
        lambda: users.get_all_keys(KeyRange(lower="a", upper="c", upper_open=True)),
    )
    run('users.count(KeyRange(lower="b"))', lambda: users.count(KeyRange(lower="b")))
    run(
        "users.count(KeyRange())  (empty range message is still sent)",
        lambda: users.count(KeyRange()),
    )
    run(
        "users.delete_range(None)  (host INVALID_ARGUMENT -> client TransactionError)",
        lambda: users.delete_range(None),  # type: ignore[arg-type]
    )
    run(
        'plain.delete_range(KeyRange(lower="t", lower_open=False))',
        lambda: plain.delete_range(KeyRange(lower="t", lower_open=False)),
    )
    idx = users.index("by_status")
    run('users.index("by_status").get("active")', lambda: idx.get("active"))
    run('users.index("by_status").get_key("active")', lambda: idx.get_key("active"))
    run('users.index("by_status").get_all("active")', lambda: idx.get_all("active"))
    run('users.index("by_status").get_all_keys()  (no values)', idx.get_all_keys)
    run(
        'users.index("by_status").count("active", key_range=KeyRange(lower="a"))',
        lambda: idx.count("active", key_range=KeyRange(lower="a")),
    )
    run(
        'users.index("by_team_rank").get_all("red", 1)  (compound values)',
        lambda: users.index("by_team_rank").get_all("red", 1),
    )
    run('users.index("by_status").get("gone")', lambda: idx.get("gone"))
    run(
        'users.add({"id": "d", "email": "a@x"})  (unique index conflict)',
        lambda: users.add({"id": "d", "email": "a@x"}),
    )

    holder: dict[str, Cursor] = {}
    run(
        "store cursor: open_cursor(); iterate with continue_()",
        lambda: holder.setdefault("c", users.open_cursor()),
    )
    cur = holder["c"]
    run("cursor.key / primary_key before first continue_()", lambda: (cur.key, cur.primary_key))
    run("cursor.value before first continue_()", lambda: cur.value)
    run("cursor.continue_()", cur.continue_)
    run("(key, primary_key, value)", lambda: (cur.key, cur.primary_key, cur.value))
    a9 = {"id": "a", "status": "active", "email": "a@x", "team": "red", "rank": 9}
    run(
        'cursor.update({"id": "a", "status": "active", "email": "a@x", "team": "red", "rank": 9})',
        lambda: cur.update(a9),
    )
    run("cursor.value after update", lambda: cur.value)
    run('cursor.continue_to_key("c")', lambda: cur.continue_to_key("c"))
    run("cursor.delete()", cur.delete)
    run("(key, primary_key) after delete (not cleared)", lambda: (cur.key, cur.primary_key))
    run("cursor.continue_()  (past the end)", cur.continue_)
    run("cursor.continue_() again (no frame sent)", cur.continue_)
    run("cursor.delete() when exhausted", cur.delete)
    run("cursor.close()", cur.close)
    run(
        'users.put({"id": "c", ...})  (restore the row the cursor deleted)',
        lambda: users.put(ROWS[2]),
    )

    step("store cursor: advance(1) from the unpositioned start")
    cur = users.open_cursor(direction=CURSOR_NEXT)
    run("cursor.advance(1)", lambda: cur.advance(1))
    run("primary_key", lambda: cur.primary_key)
    run("cursor.advance(0)  (host INVALID_ARGUMENT; not mapped by Cursor)", lambda: cur.advance(0))
    run("cursor.continue_() after stream error", cur.continue_)
    run("cursor.close()", cur.close)

    step(
        'key cursor in reverse: open_key_cursor(KeyRange(upper="c", upper_open=True), CURSOR_PREV)'
    )
    with users.open_key_cursor(KeyRange(upper="c", upper_open=True), CURSOR_PREV) as kc:
        run("continue_()", kc.continue_)
        run("(key, primary_key)", lambda: (kc.key, kc.primary_key))
        run("value on key cursor", lambda: kc.value)
    run("(key, primary_key) after with-block close", lambda: (kc.key, kc.primary_key))

    step(
        'index cursor: users.index("by_team_rank").open_cursor("red", direction=CURSOR_NEXT_UNIQUE)'
    )
    with users.index("by_team_rank").open_cursor("red", direction=CURSOR_NEXT_UNIQUE) as ic:
        run("continue_()", ic.continue_)
        run("(key, primary_key)  (index keys are always lists)", lambda: (ic.key, ic.primary_key))
        run(
            'continue_to_key(["red", 5])  (list -> one KeyValue per component)',
            lambda: ic.continue_to_key(["red", 5]),
        )
        run("(key, primary_key)", lambda: (ic.key, ic.primary_key))

    step('index key cursor with scalar seek: users.index("by_status").open_key_cursor()')
    with users.index("by_status").open_key_cursor() as ik:
        run(
            'continue_to_key("inactive")  (scalar -> a single KeyValue)',
            lambda: ik.continue_to_key("inactive"),
        )
        run("(key, primary_key)", lambda: (ik.key, ik.primary_key))

    def seek_on_store() -> tuple[bool, None]:
        c = users.open_cursor()
        found = c.continue_to_key(["x", 1])
        c.close()
        return found, None

    run(
        'store cursor continue_to_key(["x", 1]) on a store cursor (list -> KeyValue.array)',
        seek_on_store,
    )

    step(
        'transaction(["users", "plain"], "read-write", durability_hint="strict") '
        "as a context manager"
    )
    with db.transaction(["users", "plain"], "read-write", durability_hint="strict") as tx:
        txu = tx.object_store("users")
        run(
            'tx users.put({"id": "e", "status": "active", "email": "e@x"})',
            lambda: txu.put({"id": "e", "status": "active", "email": "e@x"}),
        )
        run('tx users.get("e")', lambda: txu.get("e"))
        run('tx users.get_key("e")', lambda: txu.get_key("e"))
        run("tx users.count()", txu.count)
        run(
            'tx users.get_all_keys(KeyRange(lower="b"))',
            lambda: txu.get_all_keys(KeyRange(lower="b")),
        )
        run(
            'tx users.index("by_status").count("active")',
            lambda: txu.index("by_status").count("active"),
        )
        run(
            'tx users.index("by_status").get_all_keys("inactive")',
            lambda: txu.index("by_status").get_all_keys("inactive"),
        )
        run('tx plain.delete("t1")', lambda: tx.object_store("plain").delete("t1"))
        step("leaving the with-block normally -> commit()")

    step('explicit transaction(["users"]) (default readonly) then abort()')
    tx = db.transaction(["users"])
    run("tx users.get_all()", lambda: tx.object_store("users").get_all())
    run("tx.abort()", tx.abort)
    run("tx.abort() again (no-op)", tx.abort)
    run("tx.commit() after abort", tx.commit)

    step("readonly transaction rejects a write")
    ro = db.transaction(["users"], "readonly")
    run('tx users.put({"id": "z"})', lambda: ro.object_store("users").put({"id": "z"}))
    run('tx users.get("a") after failure', lambda: ro.object_store("users").get("a"))

    step("operation error inside a with-block: duplicate add")

    def dup() -> None:
        with db.transaction(["users"], "readwrite") as t:
            t.object_store("users").add({"id": "a"})

    run('with transaction(["users"], "readwrite"): add({"id": "a"})', dup)
    step("caught NotFoundError inside a with-block, block then exits normally")

    def swallowed() -> None:
        with db.transaction(["users"], "readwrite") as t, suppress(NotFoundError):
            t.object_store("users").get("nope")

    run("with ...: try get('nope') except NotFoundError: pass", swallowed)
    run(
        'transaction([], "readwrite")  (empty scope)',
        lambda: db.transaction([], "readwrite"),
    )
    run(
        'transaction(["users"], "write")  (bad mode, client-side)',
        lambda: db.transaction(["users"], "write"),
    )
    run(
        'transaction(["users"], durability_hint="fast")  (bad hint, client-side)',
        lambda: db.transaction(["users"], durability_hint="fast"),
    )
    run('delete_object_store("plain")', lambda: db.delete_object_store("plain"))
    return out


# Deliberate differences from the reference, by label: the outcome we give instead.
_DIFFERENT_OUTCOMES: dict[str, tuple[str, str]] = {
    # Q16: refused before any call instead of the host's INVALID_ARGUMENT.
    "users.delete_range(None)  (host INVALID_ARGUMENT -> client TransactionError)": (
        "raised",
        "TypeError: key_range is required: pass a KeyRange (clear() deletes every record)",
    ),
    # Q6: cursor state errors say what is wrong.
    "cursor.value before first continue_()": (
        "raised",
        "ValueError: cannot read a value: the cursor is not on an entry yet (call continue_())",
    ),
    # The reference's NotFoundError (a private subclass that is also a ValueError) with a
    # message naming the action.
    "cursor.delete() when exhausted": (
        "raised",
        "NotFoundError: cannot delete: the cursor is exhausted",
    ),
    # Q16: refused locally, so the stream survives and the next move works.
    "cursor.advance(0)  (host INVALID_ARGUMENT; not mapped by Cursor)": (
        "raised",
        "ValueError: advance count must be a positive int32, got 0",
    ),
    "cursor.continue_() after stream error": ("returned", "True"),
    # Q7: a finished transaction names the failure that ended it.
    'tx users.get("a") after failure': (
        "raised",
        "TransactionError: transaction is already finished: it failed with "
        "'datastore: transaction is readonly'",
    ),
    "with ...: try get('nope') except NotFoundError: pass": (
        "raised",
        "TransactionError: transaction is already finished: it failed with 'datastore: not found'",
    ),
    # Q16: an empty scope is refused before any call.
    'transaction([], "readwrite")  (empty scope)': (
        "raised",
        "ValueError: a transaction needs at least one object store",
    ),
}


NEXT = pb.CursorClientMessage(command=pb.CursorCommand(next=True))
CLOSE = pb.CursorClientMessage(command=pb.CursorCommand(close=True))


def _frame_lines(message: Message) -> list[str]:
    text = text_format.MessageToString(message, as_utf8=True)
    return text.rstrip("\n").split("\n") if text.strip() else ["<empty message>"]


@dataclass
class _Call:
    method: str
    metadata: list[tuple[str, str]]
    frames: list[list[str]]


def _golden_calls(steps: list[Any]) -> list[_Call]:
    """Every RPC of the transcript with all the frames the client sent on it."""
    calls: list[_Call] = []
    last_stream: _Call | None = None
    for step in steps:
        for golden in step.calls:
            call = _Call(golden.method, golden.metadata, [f.lines for f in golden.sent()])
            calls.append(call)
            if golden.kind != "unary":
                last_stream = call
        for frame in step.frames:
            if frame.direction == "-->":
                assert last_stream is not None
                last_stream.frames.append(frame.lines)
    return calls


def _recorded_calls(calls: list[RecordedCall]) -> list[_Call]:
    return [
        _Call(call.method, call.metadata, [_frame_lines(r) for r in call.requests])
        for call in calls
    ]


def test_golden_indexeddb_wire(
    test_data: Path, host: Host, recorder: RecordingInterceptor, bind_env: EnvBinder
) -> None:
    steps = parse_transcript(test_data / "clients/indexeddb_wire.txt")
    bind_env(INDEXEDDB, host.target, token="  tok-idb  ")
    with IndexedDB(timeout=T) as client:
        ours = _replay(client)
        assert wait_for(lambda: streams_closed(host))

    # Outcomes, step by step.
    assert [label for label, _ in ours] == [step.label for step in steps]
    for (label, outcome), step in zip(ours, steps, strict=True):
        if step.outcome is None:
            assert outcome is None, label
            continue
        expected = _DIFFERENT_OUTCOMES.get(label, _golden_outcome(step.outcome, step.value))
        if outcome is not None:  # the embedded service says what was not found
            outcome = (outcome[0], re.sub(r"(datastore: not found): [^']*", r"\1", outcome[1]))
        assert outcome == expected, label

    # Frames, call by call: what the reference sent, minus the calls we refuse locally.
    refused = [  # delete_range(None) and the empty transaction scope
        ("/gestalt.provider.v1.IndexedDB/DeleteRange", [['store: "users"']]),
        (
            "/gestalt.provider.v1.IndexedDB/Transaction",
            [["begin {", "  mode: TRANSACTION_READWRITE", "}"]],
        ),
    ]
    expected_calls = [
        call for call in _golden_calls(steps) if (call.method, call.frames) not in refused
    ]
    # The advance(0) cursor: no advance 0 frame; the stream lives on, so next and close follow.
    advance_call = next(c for c in expected_calls if ["command {", "  advance: 0", "}"] in c.frames)
    advance_call.frames.remove(["command {", "  advance: 0", "}"])
    advance_call.frames += [_frame_lines(NEXT), _frame_lines(CLOSE)]
    # The transcript has no close frame for the last cursor although the driver called
    # close() on it (the first cursor's close() did send one); ours sends it every time.
    last_cursor = [c for c in expected_calls if c.method.endswith("/OpenCursor")][-1]
    last_cursor.frames.append(_frame_lines(CLOSE))
    actual_calls = _recorded_calls(recorder.calls)
    assert [c.method for c in actual_calls] == [c.method for c in expected_calls]
    token = [("x-gestalt-host-service-relay-token", "tok-idb")]
    for actual, want in zip(actual_calls, expected_calls, strict=True):
        assert actual.metadata == want.metadata == token
        assert actual.frames == want.frames, actual.method


# -- records --------------------------------------------------------------------------------


def test_record_values_round_trip(db: IndexedDB) -> None:
    store = db.object_store("values")
    when = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
    record: dict[str, Any] = {
        "id": "r1",
        "none": None,
        "t": True,
        "f": False,
        "zero": 0,
        "min": -(2**63),
        "max": 2**63 - 1,
        "float": 2.0,
        "text": "héllo",
        "empty": "",
        "bytes": b"\x00\x01",
        "ba": bytearray(b"xy"),
        "mv": memoryview(b"abcd")[1:3],
        "naive": dt.datetime(2024, 5, 6, 7, 8, 9, 123456),
        "aware": when.astimezone(dt.timezone(dt.timedelta(hours=-5))),
        "dict": {"a": {"b": [1, 2.5, None, True, "s"]}, "": 0},
        "empty_dict": {},
        "list": [],
        "tuple": ("x", 2**53),
    }
    store.put(record)
    assert store.get("r1") == {
        "id": "r1",
        "none": None,
        "t": True,
        "f": False,
        "zero": 0,
        "min": -(2**63),
        "max": 2**63 - 1,
        "float": 2.0,
        "text": "héllo",
        "empty": "",
        "bytes": b"\x00\x01",
        "ba": b"xy",
        "mv": b"bc",
        "naive": when,
        "aware": when,
        "dict": {"a": {"b": [1.0, 2.5, None, True, "s"]}, "": 0.0},
        "empty_dict": {},
        "list": [],
        "tuple": ["x", float(2**53)],
    }
    got = store.get("r1")
    assert type(got["zero"]) is int and type(got["float"]) is float
    assert got["aware"].tzinfo is dt.UTC


def test_subclasses_encode_as_their_base_types(db: IndexedDB) -> None:
    import enum

    class Color(enum.IntEnum):
        RED = 3

    class Name(str):
        pass

    store = db.object_store("sub")
    store.put({"id": Name("k"), "color": Color.RED, "name": Name("n"), "flag": True})
    assert store.get("k") == {"id": "k", "color": 3, "name": "n", "flag": True}
    assert type(store.get("k")["color"]) is int


def test_timestamps_truncate_to_microseconds(db: IndexedDB, host: Host) -> None:
    # Q9: nanos=999_999_999 stays in its second (the reference rounded into the next one).
    with grpc.insecure_channel(host.target) as channel:
        raw = IndexedDBClient(channel)
        record = pb.Record()
        record.fields["id"].string_value = "t"
        record.fields["at"].time_value.CopyFrom(
            timestamp_pb2.Timestamp(seconds=1_700_000_000, nanos=999_999_999)
        )
        record.fields["before"].time_value.CopyFrom(timestamp_pb2.Timestamp(seconds=-1, nanos=1))
        raw.put(pb.RecordRequest(store="ts", record=record), timeout=T)
    got = db.object_store("ts").get("t")
    assert got["at"] == dt.datetime(2023, 11, 14, 22, 13, 20, 999999, tzinfo=dt.UTC)
    assert got["before"] == dt.datetime(1969, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


def test_large_records_above_4_mib(db: IndexedDB) -> None:
    big = bytes(range(256)) * (5 * MiB // 256)
    store = db.object_store("big")
    store.put({"id": "one", "data": big})
    store.put({"id": "two", "data": big, "text": "x" * MiB})
    assert store.get("one")["data"] == big
    everything = store.get_all()  # about 11 MiB in one response
    assert [row["id"] for row in everything] == ["one", "two"]
    assert everything[1]["data"] == big and everything[1]["text"] == "x" * MiB
    with store.open_cursor() as cursor:
        assert cursor.continue_() and cursor.value["data"] == big
        cursor.update({"id": "one", "data": big[::-1]})
        assert cursor.value["data"] == big[::-1]
    with db.transaction(["big"], "readwrite") as tx:
        tx.object_store("big").put({"id": "three", "data": big})
        assert tx.object_store("big").get("three")["data"] == big
    assert store.count() == 3


# -- argument checks ------------------------------------------------------------------------


class Weird:
    """A type no encoding accepts."""


# Loosely typed views of the API, so the table can pass what the annotations forbid.
AnyKeyRange: Any = KeyRange
AnyIndexSchema: Any = IndexSchema
AnySchema: Any = ObjectStoreSchema
AnyCursor: Any = Cursor
AnyStore: Any = ObjectStore
AnyTxStore: Any = TransactionObjectStore

_BAD_CALLS: list[tuple[str, Callable[[Any], object], type[Exception], str]] = [
    ("int id", lambda d: d.object_store("s").get(1), TypeError, "primary key"),
    ("bytes id", lambda d: d.object_store("s").delete(b"k"), TypeError, "not bytes"),
    ("None id", lambda d: d.object_store("s").get_key(None), TypeError, "NoneType"),
    ("non-dict record", lambda d: d.object_store("s").put([("id", "x")]), TypeError, "dict"),
    ("no id", lambda d: d.object_store("s").put({"name": "x"}), ValueError, '"id"'),
    ("int id field", lambda d: d.object_store("s").add({"id": 3}), TypeError, '"id"'),
    ("int key", lambda d: d.object_store("s").put({"id": "x", 1: 2}), TypeError, "keys"),
    (
        "date",
        lambda d: d.object_store("s").put({"id": "x", "d": dt.date(2024, 1, 1)}),
        TypeError,
        "unsupported JSON",
    ),
    (
        "set",
        lambda d: d.object_store("s").put({"id": "x", "s": {1}}),
        TypeError,
        "unsupported JSON",
    ),
    ("object", lambda d: d.object_store("s").put({"id": "x", "w": Weird()}), TypeError, "Weird"),
    (
        "nested bytes",
        lambda d: d.object_store("s").put({"id": "x", "l": [b"x"]}),
        TypeError,
        "bytes",
    ),
    (
        "nested key",
        lambda d: d.object_store("s").put({"id": "x", "m": {1: "a"}}),
        TypeError,
        "keys must be str",
    ),
    (
        "int64",
        lambda d: d.object_store("s").put({"id": "x", "n": -(2**63) - 1}),
        ValueError,
        "out of range",
    ),
    (
        "lossy nested",
        lambda d: d.object_store("s").put({"id": "x", "l": [2**53 + 1]}),
        ValueError,
        "precision",
    ),
    ("empty store", lambda d: d.object_store(""), ValueError, "store name"),
    ("int store", lambda d: d.object_store(3), TypeError, "store name"),
    ("empty index", lambda d: d.object_store("s").index(""), ValueError, "index name"),
    ("bad range", lambda d: d.object_store("s").get_all((1, 2)), TypeError, "KeyRange"),
    (
        "range flag",
        lambda d: d.object_store("s").count(AnyKeyRange(lower_open=1)),
        TypeError,
        "lower_open",
    ),
    (
        "range bound",
        lambda d: d.object_store("s").count(AnyKeyRange(lower={1})),
        TypeError,
        "unsupported",
    ),
    (
        "delete_range None",
        lambda d: d.object_store("s").delete_range(None),
        TypeError,
        "key_range is required",
    ),
    ("index value", lambda d: d.object_store("s").index("i").get(Weird()), TypeError, "Weird"),
    (
        "schema type",
        lambda d: d.create_object_store("s", [AnyIndexSchema("i", ["a"])]),
        TypeError,
        "ObjectStoreSchema",
    ),
    (
        "schema str path",
        lambda d: d.create_object_store("s", AnySchema([AnyIndexSchema("i", "email")])),
        TypeError,
        "key_path",
    ),
    (
        "schema empty path",
        lambda d: d.create_object_store("s", AnySchema([AnyIndexSchema("i")])),
        ValueError,
        "key_path",
    ),
    (
        "schema unique",
        lambda d: d.create_object_store("s", AnySchema([AnyIndexSchema("i", ["a"], unique=1)])),
        TypeError,
        "unique",
    ),
    (
        "schema entry",
        lambda d: d.create_object_store("s", AnySchema(["i"])),
        TypeError,
        "IndexSchema",
    ),
    ("str stores", lambda d: d.transaction("users"), TypeError, "not a single str"),
    ("no stores", lambda d: d.transaction([]), ValueError, "at least one"),
    ("int in stores", lambda d: d.transaction(["a", 1]), TypeError, "store name"),
    (
        "bad mode",
        lambda d: d.transaction(["a"], "write"),
        ValueError,
        "unsupported transaction mode: 'write'",
    ),
    ("int mode", lambda d: d.transaction(["a"], 1), TypeError, "mode"),
    (
        "bad hint",
        lambda d: d.transaction(["a"], durability_hint="fast"),
        ValueError,
        "durability hint: 'fast'",
    ),
    ("direction", lambda d: d.object_store("s").open_cursor(direction=7), ValueError, "direction"),
    (
        "bool direction",
        lambda d: d.object_store("s").open_cursor(direction=True),
        TypeError,
        "direction",
    ),
    (
        "cursor values without index",
        lambda d: AnyCursor(d, "s", values=("a",)),
        ValueError,
        "need an index",
    ),
    ("cursor keys_only", lambda d: AnyCursor(d, "s", keys_only="yes"), TypeError, "keys_only"),
    ("cursor index type", lambda d: AnyCursor(d, "s", index=1), TypeError, "index"),
    ("zero timeout", lambda d: d.object_store("s").get("k", timeout=0), ValueError, "timeout"),
    ("str timeout", lambda d: d.object_store("s").count(timeout="1"), TypeError, "timeout"),
    ("stub type", lambda d: AnyStore(object(), "s"), TypeError, "stub must be"),
    ("tx type", lambda d: AnyTxStore(d, "s"), TypeError, "Transaction"),
]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [pytest.param(call, error, match, id=name) for name, call, error, match in _BAD_CALLS],
)
def test_bad_arguments_fail_before_any_call(
    db: IndexedDB,
    recorder: RecordingInterceptor,
    call: Callable[[Any], object],
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        call(db)
    assert recorder.calls == []


def test_cursor_and_transaction_arguments_fail_before_any_frame(
    db: IndexedDB, host: Host, recorder: RecordingInterceptor
) -> None:
    fill_users(db)
    recorder.clear()
    with db.object_store("users").open_cursor() as cursor:
        with pytest.raises(ValueError, match="positive"):
            cursor.advance(0)
        with pytest.raises(TypeError, match="int"):
            cursor.advance(1.5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="unsupported JSON"):
            cursor.continue_to_key(Weird())
        assert cursor.continue_()
        with pytest.raises(TypeError, match="dict"):
            cursor.update("x")  # type: ignore[arg-type]
        assert cursor.primary_key == "a"  # the stream is unharmed
    with db.transaction(["users"], "readwrite") as tx:
        with pytest.raises(TypeError, match="primary key"):
            tx.object_store("users").get(1)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="reason"):
            tx.abort(3)  # type: ignore[arg-type]
        assert tx.object_store("users").count() == 3  # still usable: nothing was sent
    assert wait_for(lambda: streams_closed(host))
    (cursor_call, tx_call) = recorder.calls
    assert [r.WhichOneof("msg") for r in cursor_call.requests] == ["open", "command", "command"]
    assert [r.WhichOneof("msg") for r in tx_call.requests] == ["begin", "operation", "commit"]


# -- object stores and indexes (sync) -------------------------------------------------------


def test_store_methods(db: IndexedDB) -> None:
    db.create_object_store("items")
    items = db.object_store("items")
    assert items.name == "items" and repr(items) == "ObjectStore('items')"
    assert items.get_all() == [] and items.count() == 0
    for i in range(6):
        items.add({"id": f"k{i}", "n": i})
    with pytest.raises(AlreadyExistsError) as raised:
        items.add({"id": "k0"})
    assert raised.value.code is grpc.StatusCode.ALREADY_EXISTS
    items.put({"id": "k0", "n": 100})
    assert items.get("k0") == {"id": "k0", "n": 100}
    assert items.get_key("k3") == "k3"
    with pytest.raises(NotFoundError):
        items.get_key("zz")
    assert items.get_all_keys() == [f"k{i}" for i in range(6)]
    assert items.get_all_keys(KeyRange(lower="k1", upper="k3")) == ["k1", "k2", "k3"]
    assert items.get_all_keys(KeyRange("k1", "k3", lower_open=True, upper_open=True)) == ["k2"]
    assert [r["n"] for r in items.get_all(KeyRange(upper="k1"))] == [100, 1]
    assert items.count(KeyRange(lower="k4")) == 2
    assert items.count(KeyRange()) == 6
    assert items.delete_range(KeyRange("k1", "k2")) == 2
    assert items.delete_range(KeyRange("x")) == 0
    items.delete("k3")
    items.delete("k3")  # missing: not an error
    assert items.get_all_keys() == ["k0", "k4", "k5"]
    items.clear()
    assert items.count() == 0
    db.delete_object_store("items")


def test_index_methods(db: IndexedDB) -> None:
    users = fill_users(db)
    users.put({"id": "d", "status": "active", "email": "d@x", "team": "blue", "rank": 3})
    status = users.index("by_status")
    assert status.name == "by_status" and status.store_name == "users"
    assert repr(status) == "Index('users', 'by_status')"
    assert status.get("active")["id"] == "a"
    assert status.get_key("inactive") == "c"
    assert [r["id"] for r in status.get_all("active")] == ["a", "b", "d"]
    assert status.get_all_keys() == ["a", "b", "d", "c"]  # index order: key, then id
    assert status.count("active") == 3 and status.count() == 4
    assert status.get_all_keys(key_range=KeyRange(lower="b")) == ["c"]
    team = users.index("by_team_rank")
    assert team.get_all_keys("red") == ["b", "a"]  # prefix match, ordered by rank
    assert team.get_all_keys("red", 2) == ["a"]
    # A scalar bound compares as a one-element key, which sorts before its extensions.
    assert team.get_all_keys(key_range=KeyRange(lower="red")) == ["b", "a"]
    assert team.count(key_range=KeyRange(upper="blue")) == 0
    assert team.count(key_range=KeyRange(upper="c")) == 2
    with pytest.raises(NotFoundError):
        status.get("gone")
    with pytest.raises(AlreadyExistsError):
        users.put({"id": "e", "email": "a@x"})  # unique index
    with pytest.raises(TransactionError) as raised:  # more values than key-path fields
        status.get_all("a", "b")
    assert raised.value.code is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(NotFoundError):
        users.index("no_such_index").get_all()
    assert status.delete("active") == 3
    assert users.get_all_keys() == ["c"]


def test_create_object_store_updates_indexes(db: IndexedDB) -> None:
    db.create_object_store("s", ObjectStoreSchema([IndexSchema("by_a", ["a"])]))
    store = db.object_store("s")
    store.put({"id": "1", "a": 1, "b": 2})
    db.create_object_store("s", ObjectStoreSchema([IndexSchema("by_b", ["b"], unique=True)]))
    assert store.index("by_b").get_key(2) == "1"
    with pytest.raises(NotFoundError):
        store.index("by_a").get(1)


def test_handles_accept_the_client_or_a_generated_stub(db: IndexedDB, host: Host) -> None:
    fill_users(db)
    assert ObjectStore(db, "users").count() == 3
    assert Index(db, "users", "by_status").count("active") == 2
    with Cursor(db, "users", direction=CURSOR_PREV) as cursor:
        assert cursor.continue_() and cursor.primary_key == "c"
    with Transaction(db, ["users"]) as tx:
        assert TransactionObjectStore(tx, "users").count() == 3
        assert TransactionIndex(tx, "users", "by_status").count("inactive") == 1
    with grpc.insecure_channel(host.target) as channel:
        raw = IndexedDBClient(channel)
        assert ObjectStore(raw, "users").get_key("a") == "a"
        with Cursor(raw, "users", index="by_status", values=("inactive",)) as cursor:
            assert list(c.primary_key for c in cursor) == ["c"]
        with Transaction(raw, ["users"], "readwrite") as tx:
            tx.object_store("users").delete("a")
    assert db.object_store("users").get_all_keys() == ["b", "c"]


def test_client_lifecycle(host: Host, bind_env: EnvBinder) -> None:
    client = IndexedDB()
    with client as entered:
        assert entered is client
        client.create_object_store("s")
        store = client.object_store("s")
        store.put({"id": "x"})
        cursor = store.open_cursor()
        tx = client.transaction(["s"], "readwrite")
    # close() cancelled both streams; the host released them.
    assert wait_for(lambda: streams_closed(host))
    with pytest.raises(ValueError, match="IndexedDB client is closed"):
        store.get("x")
    with pytest.raises(ValueError, match="IndexedDB client is closed"):
        client.create_object_store("t")
    with pytest.raises(HostServiceError) as raised:
        cursor.continue_()
    assert raised.value.code is grpc.StatusCode.CANCELLED
    with pytest.raises(HostServiceError, match="cancelled"):
        tx.object_store("s").get("x")
    client.close()  # idempotent

    with pytest.raises(KeyError), IndexedDB() as other:  # exceptions are never suppressed
        raise KeyError("boom")
    with pytest.raises(ValueError, match="closed"):
        other.object_store("s").count()


def test_discovery_uses_the_host_rule(
    host: Host, bind_env: EnvBinder, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert indexeddb_socket_env("café") == "GESTALT_INDEXEDDB_SOCKET_CAF_"  # Q1
    bind_env(INDEXEDDB, host.target, name="café")
    with IndexedDB("café", timeout=T) as client:
        client.object_store("s").put({"id": "k"})
    monkeypatch.delenv(INDEXEDDB.socket_env())
    with pytest.raises(HostServiceConfigError, match="GESTALT_INDEXEDDB_SOCKET is not set"):
        IndexedDB()
    with pytest.raises(RuntimeError, match="GESTALT_INDEXEDDB_SOCKET_OTHER is not set"):
        AsyncIndexedDB("other")


# -- cursors (sync) -------------------------------------------------------------------------


def _keys(cursor: Cursor) -> list[Any]:
    return [(entry.key, entry.primary_key) for entry in cursor]


def test_cursor_directions_and_ranges(db: IndexedDB) -> None:
    users = fill_users(db)
    users.put({"id": "d", "status": "active", "email": "d@x", "team": "blue", "rank": 1})
    with users.open_key_cursor() as c:
        assert _keys(c) == [("a", "a"), ("b", "b"), ("c", "c"), ("d", "d")]
    with users.open_cursor(KeyRange("b", "d", upper_open=True), CURSOR_PREV) as c:
        assert [entry.value["email"] for entry in c] == ["c@x", "b@x"]
    status = users.index("by_status")
    with status.open_key_cursor(direction=CURSOR_NEXT_UNIQUE) as c:
        assert _keys(c) == [(["active"], "a"), (["inactive"], "c")]
    with status.open_key_cursor(direction=CURSOR_PREV_UNIQUE) as c:
        assert [k for k, _ in _keys(c)] == [["inactive"], ["active"]]
    with users.index("by_team_rank").open_cursor("blue") as c:
        assert _keys(c) == [(["blue", 1], "c"), (["blue", 1], "d")]
    with status.open_cursor(key_range=KeyRange(lower="b")) as c:
        assert [e.value["id"] for e in c] == ["c"]


def test_cursor_moves(db: IndexedDB) -> None:
    store = db.object_store("n")
    for i in range(10):
        store.put({"id": f"k{i}", "i": i})
    with store.open_cursor() as c:
        assert c.advance(1) and c.primary_key == "k1"  # skips one, lands on the next
        assert c.advance(2) and c.primary_key == "k4"
        assert c.continue_to_key("k7") and c.key == "k7"
        assert c.continue_to_key("k7") and c.key == "k8"  # at least one step
        assert c.continue_() and c.value == {"id": "k9", "i": 9}
        assert not c.advance(1)
        assert not c.continue_() and not c.continue_to_key("a")
        assert c.key is None and c.primary_key is None
    with store.open_key_cursor(direction=CURSOR_PREV) as c:
        assert c.continue_to_key("k5") and c.primary_key == "k5"
        assert c.continue_to_key("k2") and c.primary_key == "k2"
    with store.open_cursor() as c:
        assert not c.continue_to_key("zz")


def test_cursor_update_and_delete(db: IndexedDB) -> None:
    store = db.object_store("m")
    for i in range(5):
        store.put({"id": f"k{i}", "i": i})
    with store.open_cursor() as cursor:
        for entry in cursor:
            if entry.value["i"] % 2:
                entry.delete()
                assert entry.primary_key is not None  # the position stays readable
            else:
                entry.update({"i": entry.value["i"] * 10})  # the primary key is kept
                assert entry.value == {"i": entry.value["i"], "id": entry.primary_key}
    assert store.get_all() == [
        {"id": "k0", "i": 0},
        {"id": "k2", "i": 20},
        {"id": "k4", "i": 40},
    ]


def test_cursor_states(db: IndexedDB) -> None:
    store = db.object_store("st")
    store.put({"id": "only"})
    cursor = store.open_cursor()
    assert (cursor.key, cursor.primary_key) == (None, None)
    with pytest.raises(ValueError, match="not on an entry yet"):
        _ = cursor.value
    with pytest.raises(ValueError, match="cannot update: the cursor is not on an entry"):
        cursor.update({"id": "only"})
    with pytest.raises(ValueError, match="cannot delete"):
        cursor.delete()
    assert cursor.continue_()
    assert not cursor.continue_()
    with pytest.raises(ValueError, match="cursor is exhausted"):
        _ = cursor.value
    with pytest.raises(ValueError, match="cannot update: the cursor is exhausted"):
        cursor.update({"id": "only"})
    cursor.close()
    cursor.close()
    for move in (cursor.continue_, lambda: cursor.advance(1), lambda: cursor.continue_to_key("a")):
        with pytest.raises(ValueError, match="cursor is closed"):
            move()
    with pytest.raises(ValueError, match="cursor is closed"):
        _ = cursor.value
    with pytest.raises(ValueError, match="cursor is closed"):
        cursor.delete()
    with store.open_key_cursor() as keys:
        assert keys.continue_()
        with pytest.raises(TypeError, match="keys_only=True has no value"):
            _ = keys.value


def test_cursor_failures_are_never_taken_for_the_end(db: IndexedDB, host: Host) -> None:
    store = db.object_store("f")
    store.put({"id": "a"})
    store.put({"id": "b"})
    with pytest.raises(NotFoundError):  # the open is refused: no such index
        store.index("missing").open_cursor()
    cursor = store.open_cursor()
    assert cursor.continue_()
    with pytest.raises(TransactionError) as raised:  # the host refuses to change the id
        cursor.update({"id": "other"})
    assert raised.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert isinstance(raised.value.__cause__, grpc.RpcError)
    for _ in range(2):
        with pytest.raises(TransactionError, match="cursor failed earlier") as again:
            cursor.continue_()
        assert again.value.__cause__ is raised.value
    with pytest.raises(TransactionError, match="failed earlier"):
        _ = cursor.value
    cursor.close()
    with pytest.raises(ValueError, match="closed"):
        cursor.continue_()
    assert wait_for(lambda: streams_closed(host))


# -- transactions (sync) --------------------------------------------------------------------


def test_transaction_commit_and_abort(db: IndexedDB, recorder: RecordingInterceptor) -> None:
    users = fill_users(db)
    with db.transaction(["users"], "readwrite", durability_hint="relaxed") as tx:
        assert tx.stores == ("users",) and tx.mode == "readwrite" and not tx.finished
        store = tx.object_store("users")
        assert repr(store) == "TransactionObjectStore('users')"
        store.add({"id": "x", "status": "new"})
        store.put({"id": "b", "status": "gone"})
        assert store.get("x") == {"id": "x", "status": "new"}  # reads its own writes
        assert store.get_all_keys() == ["a", "b", "c", "x"]
        assert [r["id"] for r in store.get_all(KeyRange(lower="c"))] == ["c", "x"]
        index = store.index("by_status")
        assert repr(index) == "TransactionIndex('users', 'by_status')"
        assert index.get("new")["id"] == "x"
        assert index.get_key("gone") == "b"
        assert [r["id"] for r in index.get_all("active")] == ["a"]
        assert index.count() == 4
        assert index.delete("gone") == 1
        assert store.delete_range(KeyRange("c", "c")) == 1
        store.delete("a")
        assert store.count() == 1
    assert tx.finished
    assert users.get_all_keys() == ["x"]

    tx = db.transaction(["users"], "read_write")
    tx.object_store("users").clear()
    assert tx.object_store("users").count() == 0
    tx.abort("changed my mind")
    tx.abort()  # no-op
    with pytest.raises(TransactionError, match=r"^transaction is already finished$"):
        tx.commit()
    assert users.get_all_keys() == ["x"]
    frames = [
        r for call in recorder.calls if call.method.endswith("/Transaction") for r in call.requests
    ]
    assert frames[-1].abort.reason == "changed my mind"
    ids = [r.operation.request_id for r in frames if r.WhichOneof("msg") == "operation"]
    assert ids == [*range(1, 14), 1, 2]


def test_transaction_rules(db: IndexedDB, host: Host) -> None:
    users = fill_users(db)
    ro = db.transaction(["users"])
    with pytest.raises(TransactionError) as raised:
        ro.object_store("users").put({"id": "z"})
    assert raised.value.code is grpc.StatusCode.FAILED_PRECONDITION
    assert raised.value.message == "datastore: transaction is readonly"
    with pytest.raises(TransactionError, match="already finished: it failed with") as later:
        ro.object_store("users").count()
    assert later.value.__cause__ is raised.value
    ro.abort()  # no-op once finished

    tx = db.transaction(["users"], "readwrite")
    with pytest.raises(ValueError, match="not in the transaction's scope \\(users\\)"):
        tx.object_store("other")  # refused locally: the transaction lives on
    tx.object_store("users").put({"id": "kept?"})
    with pytest.raises(NotFoundError):  # any failed operation ends the transaction
        tx.object_store("users").get("missing")
    with pytest.raises(TransactionError, match="'datastore: not found: "):
        tx.commit()

    def failing_block() -> None:
        with db.transaction(["users"], "readwrite") as t:
            t.object_store("users").put({"id": "new"})
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        failing_block()
    assert users.get_all_keys() == ["a", "b", "c"]  # rolled back

    with pytest.raises(AlreadyExistsError), db.transaction(["users"], "readwrite") as t:
        t.object_store("users").put({"id": "n1"})
        t.object_store("users").add({"id": "a"})
    assert users.get_all_keys() == ["a", "b", "c"]
    assert wait_for(lambda: streams_closed(host))


# -- conditions the seed names, caught before any call ---------------------------------------


def _assert_local_not_found(raised: pytest.ExceptionInfo[BaseException], match: str) -> None:
    """A ``NotFoundError`` made by the client: also a ``ValueError``, with no host status."""
    error = raised.value
    assert isinstance(error, NotFoundError) and isinstance(error, ValueError), type(error)
    assert error.code is grpc.StatusCode.NOT_FOUND
    assert re.search(match, str(error)), str(error)
    assert error.__cause__ is None


def _cursor_frames(call: RecordedCall) -> list[str]:
    """``open`` or the command each frame the client sent on a cursor stream carried."""
    frames = []
    for frame in call.requests:
        assert isinstance(frame, pb.CursorClientMessage)
        frames.append(
            str(frame.command.WhichOneof("command")) if frame.HasField("command") else "open"
        )
    return frames


def test_mutating_an_exhausted_cursor_is_not_found_without_a_frame(
    db: IndexedDB, host: Host, recorder: RecordingInterceptor
) -> None:
    store = fill_users(db)
    recorder.clear()
    cursor = store.open_cursor()
    with pytest.raises(ValueError) as unpositioned:  # not positioned yet: a plain ValueError
        cursor.delete()
    assert not isinstance(unpositioned.value, NotFoundError)
    while cursor.continue_():
        pass
    for mutate, action in ((cursor.delete, "delete"), (lambda: cursor.update(ROWS[0]), "update")):
        with pytest.raises(NotFoundError) as raised:
            mutate()
        _assert_local_not_found(raised, f"cannot {action}: the cursor is exhausted")
    with pytest.raises(TypeError):  # a wrong type stays a TypeError
        cursor.update("not a record")  # type: ignore[arg-type]
    with pytest.raises(ValueError) as reading:  # reading is no mutation: a plain ValueError
        _ = cursor.value
    assert not isinstance(reading.value, NotFoundError)
    cursor.close()
    with pytest.raises(ValueError) as closed:
        cursor.delete()
    assert not isinstance(closed.value, NotFoundError)
    assert wait_for(lambda: streams_closed(host))
    # One cursor stream; it carried the open, four moves and the close, and nothing else.
    assert [c.method.rsplit("/", 1)[-1] for c in recorder.calls] == ["OpenCursor"]
    assert _cursor_frames(recorder.calls[0]) == ["open", "next", "next", "next", "next", "close"]
    assert store.get_all_keys() == ["a", "b", "c"]


def test_a_store_outside_the_scope_is_not_found_and_the_transaction_commits(
    db: IndexedDB, host: Host, recorder: RecordingInterceptor
) -> None:
    users = fill_users(db)
    db.create_object_store("other")
    recorder.clear()
    tx = db.transaction(["users"], "readwrite")
    tx.object_store("users").put({"id": "before"})
    for refuse in (
        lambda: tx.object_store("other"),
        lambda: TransactionObjectStore(tx, "other"),
        lambda: TransactionIndex(tx, "other", "by_status"),
    ):
        with pytest.raises(NotFoundError) as raised:
            refuse()
        _assert_local_not_found(
            raised, r"store 'other' is not in the transaction's scope \(users\)"
        )
    with pytest.raises(TypeError):  # a wrong type stays a TypeError
        tx.object_store(5)  # type: ignore[arg-type]
    assert not tx.finished
    tx.object_store("users").put({"id": "after"})
    tx.commit()
    assert users.get_all_keys() == ["a", "after", "b", "before", "c"]
    assert db.object_store("other").count() == 0
    assert wait_for(lambda: streams_closed(host))
    calls = [c.method.rsplit("/", 1)[-1] for c in recorder.calls]
    assert calls == ["Transaction", "GetAllKeys", "Count"]
    sent = [r for r in recorder.calls[0].requests if isinstance(r, pb.TransactionClientMessage)]
    assert [r.WhichOneof("msg") for r in sent] == ["begin", "operation", "operation", "commit"]
    assert [r.operation.put.store for r in sent[1:3]] == ["users", "users"]


def test_transactions_isolate_and_do_not_leave_locks(db: IndexedDB, host: Host) -> None:
    users = fill_users(db)
    tx = db.transaction(["users"], "readwrite")
    tx.object_store("users").put({"id": "w"})
    # The host's lock makes other calls wait; a short timeout shows it, then commit frees it.
    with pytest.raises(HostServiceTimeoutError):
        users.count(timeout=0.2)
    tx.commit()
    assert users.count() == 4
    abandoned = db.transaction(["users"], "readwrite")
    abandoned.object_store("users").put({"id": "lost"})
    del abandoned
    gc.collect()
    assert users.count(timeout=5) == 4  # the dropped transaction was rolled back
    assert wait_for(lambda: streams_closed(host))


# -- a scripted host: statuses, protocol breaks and silence ---------------------------------

_UNARY = [
    "create_object_store",
    "delete_object_store",
    "get",
    "get_key",
    "add",
    "put",
    "delete",
    "clear",
    "get_all",
    "get_all_keys",
    "count",
    "delete_range",
    "index_get",
    "index_get_key",
    "index_get_all",
    "index_get_all_keys",
    "index_count",
    "index_delete",
]


class ScriptedHost:
    """A fake IndexedDB host whose answers the test picks.

    Unary calls fail with ``status`` (or hang until released when ``hang`` is set). Streams
    acknowledge the opening frame, then take one action per client frame from ``script``:
    a message to send, ``("abort", code, message)``, ``"hang"`` or ``"end"``.
    """

    def __init__(self) -> None:
        self.status = (grpc.StatusCode.INTERNAL, "backend exploded")
        self.hang = False
        self.release = threading.Event()
        self.script: list[Any] = []
        self.first: Any = None  # the answer to the opening frame (None: the usual one)

    def _unary(self, request: Message, context: grpc.ServicerContext) -> Message:
        if self.hang:
            self.release.wait(T)
        context.abort(*self.status)
        raise AssertionError("unreachable")

    def _stream(
        self, requests: Iterator[Message], context: grpc.ServicerContext, ack: Message
    ) -> Iterator[Message]:
        first = next(requests, None)
        if first is None:
            return
        if self.first == "end":
            return
        yield self.first if self.first is not None else ack
        for _ in requests:
            action: Any = self.script.pop(0) if self.script else "end"
            if action == "end":
                return
            if action == "hang":
                self.release.wait(T)
                return
            if isinstance(action, tuple):
                context.abort(action[1], action[2])
            yield action

    def open_cursor(
        self, requests: Iterator[Message], context: grpc.ServicerContext
    ) -> Iterator[Message]:
        return self._stream(requests, context, pb.CursorResponse(done=False))

    def transaction(
        self, requests: Iterator[Message], context: grpc.ServicerContext
    ) -> Iterator[Message]:
        return self._stream(
            requests, context, pb.TransactionServerMessage(begin=pb.TransactionBeginResponse())
        )


for _name in _UNARY:
    setattr(ScriptedHost, _name, ScriptedHost._unary)


@pytest.fixture
def scripted(socket_path: Callable[[str], Path], bind_env: EnvBinder) -> Iterator[ScriptedHost]:
    """A :class:`ScriptedHost` bound as the default IndexedDB."""
    fake = ScriptedHost()
    with serve(socket_path("fake"), fake) as running:
        bind_env(INDEXEDDB, running.target)
        try:
            yield fake
        finally:
            fake.release.set()


_STATUS_TYPES = [
    (grpc.StatusCode.NOT_FOUND, NotFoundError),
    (grpc.StatusCode.ALREADY_EXISTS, AlreadyExistsError),
    (grpc.StatusCode.INVALID_ARGUMENT, TransactionError),
    (grpc.StatusCode.FAILED_PRECONDITION, TransactionError),
    (grpc.StatusCode.INTERNAL, HostServiceError),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, HostServiceError),
    (grpc.StatusCode.UNAUTHENTICATED, HostServiceError),
    (grpc.StatusCode.PERMISSION_DENIED, HostServiceError),
    (grpc.StatusCode.UNAVAILABLE, HostServiceError),
]


def _check(error: BaseException, kind: type[HostServiceError], code: grpc.StatusCode) -> None:
    assert type(error) is kind
    assert isinstance(error, HostServiceError)
    assert error.code is code and error.message == "scripted failure"
    assert isinstance(error.__cause__, grpc.RpcError)


@pytest.mark.parametrize(("code", "kind"), _STATUS_TYPES, ids=lambda v: getattr(v, "name", ""))
def test_status_mapping_everywhere(
    scripted: ScriptedHost, code: grpc.StatusCode, kind: type[HostServiceError]
) -> None:
    scripted.status = (code, "scripted failure")
    with IndexedDB(timeout=T) as client:
        store = client.object_store("s")
        calls: list[Callable[[], object]] = [
            lambda: client.create_object_store("s"),
            lambda: store.get("a"),
            lambda: store.put({"id": "a"}),
            lambda: store.get_all(),
            lambda: store.index("i").count(1),
        ]
        for call in calls:
            with pytest.raises(HostServiceError) as raised:
                call()
            _check(raised.value, kind, code)
        scripted.first = pb.CursorResponse(done=False)
        scripted.script = [("abort", code, "scripted failure")]
        cursor = store.open_cursor()
        with pytest.raises(HostServiceError) as raised:
            cursor.continue_()
        _check(raised.value, kind, code)
        scripted.first = None
        scripted.script = [("abort", code, "scripted failure")]
        tx = client.transaction(["s"], "readwrite")
        with pytest.raises(HostServiceError) as raised:
            tx.object_store("s").put({"id": "a"})
        _check(raised.value, kind, code)


def _op_error(request_id: int, code: int, message: str) -> pb.TransactionServerMessage:
    response = pb.TransactionOperationResponse(
        request_id=request_id, error=status_pb2.Status(code=code, message=message)
    )
    return pb.TransactionServerMessage(operation=response)


@pytest.mark.parametrize(
    ("code", "kind", "status"),
    [
        (5, NotFoundError, grpc.StatusCode.NOT_FOUND),
        (6, AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
        (9, TransactionError, grpc.StatusCode.FAILED_PRECONDITION),
        (3, TransactionError, grpc.StatusCode.INVALID_ARGUMENT),
        (13, TransactionError, grpc.StatusCode.INTERNAL),
        (99, TransactionError, grpc.StatusCode.UNKNOWN),
    ],
)
def test_in_band_statuses(
    scripted: ScriptedHost,
    code: int,
    kind: type[HostServiceError],
    status: grpc.StatusCode,
) -> None:
    with IndexedDB(timeout=T) as client:
        scripted.script = [_op_error(1, code, "in band")]
        tx = client.transaction(["s"], "readwrite")
        with pytest.raises(HostServiceError) as raised:
            tx.object_store("s").get("a")
        assert type(raised.value) is kind and raised.value.code is status
        assert raised.value.message == "in band" and tx.finished
        commit = pb.TransactionCommitResponse(error=status_pb2.Status(code=code, message="late"))
        scripted.script = [pb.TransactionServerMessage(commit=commit)]
        tx = client.transaction(["s"], "readwrite")
        with pytest.raises(HostServiceError, match="late") as raised:
            tx.commit()
        assert type(raised.value) is kind
        abort = pb.TransactionAbortResponse(error=status_pb2.Status(code=code, message="nope"))
        scripted.script = [pb.TransactionServerMessage(abort=abort)]
        tx = client.transaction(["s"], "readwrite")
        with pytest.raises(HostServiceError, match="nope"):
            tx.abort()


@pytest.mark.parametrize("timeout", [T, None], ids=["timeout", "no-timeout"])
def test_protocol_breaks_are_errors(scripted: ScriptedHost, timeout: float | None) -> None:
    begin = pb.TransactionServerMessage(begin=pb.TransactionBeginResponse())
    ok = pb.TransactionOperationResponse(request_id=1, count=pb.CountResponse(count=1))
    with IndexedDB(timeout=timeout) as client:
        store = client.object_store("s")
        scripted.script = [pb.CursorResponse(done=False)]  # a move answered with an ack
        with store.open_cursor() as cursor, pytest.raises(HostServiceError) as raised:
            cursor.continue_()
        assert raised.value.code is grpc.StatusCode.INTERNAL
        scripted.script = ["end"]  # the host ends the stream instead of answering
        with store.open_cursor() as cursor, pytest.raises(HostServiceError, match="early"):
            cursor.continue_()
        scripted.script = [pb.CursorResponse(done=True)]  # a delete not acknowledged
        cursor = store.open_cursor()
        scripted.script = [pb.CursorResponse(entry=pb.CursorEntry(primary_key="a")), begin]
        assert cursor.continue_()
        with pytest.raises(HostServiceError, match="acknowledge"):
            cursor.delete()
        scripted.first = "end"
        with pytest.raises(HostServiceError, match="at open"):
            store.open_cursor()
        with pytest.raises(TransactionError, match="ended during begin"):
            client.transaction(["s"])
        scripted.first = pb.TransactionServerMessage(commit=pb.TransactionCommitResponse())
        with pytest.raises(TransactionError, match="expected transaction begin response"):
            client.transaction(["s"])
        scripted.first = None
        for answer, message in [
            (pb.TransactionServerMessage(operation=ok), None),
            (begin, "expected transaction operation response"),
            (_op_error(7, 0, ""), "request_id mismatch"),
            ("end", "ended during operation"),
        ]:
            scripted.script = [answer]
            tx = client.transaction(["s"])
            if message is None:
                assert tx.object_store("s").count() == 1
                continue
            with pytest.raises(TransactionError, match=message) as raised:
                tx.object_store("s").count()
            assert raised.value.code is grpc.StatusCode.INTERNAL
        scripted.script = [begin]
        with pytest.raises(TransactionError, match="expected transaction commit response"):
            client.transaction(["s"]).commit()


def test_timeouts(scripted: ScriptedHost) -> None:
    with IndexedDB(timeout=T) as client:
        store = client.object_store("s")
        scripted.hang = True
        start = time.monotonic()
        with pytest.raises(HostServiceTimeoutError) as raised:
            store.get("a", timeout=0.2)
        assert isinstance(raised.value, TimeoutError)
        assert raised.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
        scripted.script = ["hang"]
        cursor = store.open_cursor(timeout=0.2)
        with pytest.raises(HostServiceTimeoutError, match=r"did not answer the cursor in 0\.2 s"):
            cursor.continue_()
        with pytest.raises(HostServiceTimeoutError, match="failed earlier"):
            cursor.continue_()
        cursor.close()
        scripted.script = ["hang"]
        tx = client.transaction(["s"], timeout=0.2)
        with pytest.raises(HostServiceTimeoutError, match="transaction"):
            tx.object_store("s").count()
        with pytest.raises(TransactionError, match="already finished"):
            tx.commit()
        scripted.script = ["hang"]
        tx = client.transaction(["s"])
        with pytest.raises(HostServiceTimeoutError):
            tx.commit(timeout=0.2)
        assert time.monotonic() - start < 4
    with IndexedDB(timeout=0.2) as client:  # the client's default applies to every step
        scripted.script = ["hang"]
        with (
            client.object_store("s").open_cursor() as cursor,
            pytest.raises(HostServiceTimeoutError),
        ):
            cursor.continue_()


def test_unreachable_host(socket_path: Callable[[str], Path], bind_env: EnvBinder) -> None:
    bind_env(INDEXEDDB, str(socket_path("nobody")))
    with IndexedDB(timeout=T) as client:
        for call in (
            lambda: client.object_store("s").get("a"),
            lambda: client.object_store("s").open_cursor(),
            lambda: client.transaction(["s"]),
        ):
            with pytest.raises(HostServiceError) as raised:
                call()
            assert raised.value.code is grpc.StatusCode.UNAVAILABLE


# -- streams that are abandoned, and hosts that go away -------------------------------------

_CHILD = """
import sys
from gestalt.local.indexeddb import serve_indexeddb
server = serve_indexeddb(sys.argv[1])
print(server.target, flush=True)
sys.stdin.read()
"""


@contextmanager
def child_host(path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The embedded service in a child process (so its threads are not counted here)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "the child host did not start"
        yield proc.stdout.readline().strip(), proc
    finally:
        proc.kill()
        proc.wait(T)


def test_abandoned_streams_release_threads_and_host_streams(
    socket_path: Callable[[str], Path], bind_env: EnvBinder
) -> None:
    with child_host(socket_path("leak")) as (target, _):
        bind_env(INDEXEDDB, target)
        with IndexedDB(timeout=T) as warm:  # grpc and the watchdog start their threads once
            warm.object_store("s").put({"id": "a"})
            warm.object_store("s").put({"id": "b"})
            with warm.object_store("s").open_cursor() as cursor:
                cursor.continue_()
        baseline = threading.active_count()

        client = IndexedDB(timeout=T)
        store = client.object_store("s")
        for _ in range(20):
            cursor = store.open_cursor()
            assert cursor.continue_()
            tx = client.transaction(["s"], "readwrite")  # holds the host's write lock
            tx.object_store("s").put({"id": "c"})
            del cursor, tx  # never closed, committed or aborted
            gc.collect()
        assert store.count(timeout=5) == 2  # every dropped transaction was rolled back
        assert wait_for_thread_count(baseline) <= baseline

        kept = [store.open_cursor() for _ in range(5)]
        kept_tx = client.transaction(["s"])
        assert threading.active_count() > baseline
        client.close()  # cancels what is still open
        assert wait_for_thread_count(baseline) <= baseline
        with pytest.raises(HostServiceError):
            kept[0].continue_()
        with pytest.raises(HostServiceError):
            kept_tx.commit()


def test_cursor_steps_without_a_timeout(
    socket_path: Callable[[str], Path], bind_env: EnvBinder
) -> None:
    # With no timeout a step reads the stream directly (no watchdog): the same ends,
    # failures and cancellation as with one, and grpc's request thread is always released.
    with child_host(socket_path("nt")) as (target, _):
        bind_env(INDEXEDDB, target)
        with IndexedDB() as warm:  # grpc and the watchdog start their threads once
            for id in ("a", "b"):
                warm.object_store("nt").put({"id": id, "n": 1})
            with warm.object_store("nt").open_cursor() as cursor:
                cursor.continue_()
        baseline = threading.active_count()
        with IndexedDB() as client:
            store = client.object_store("nt")
            assert [(c.primary_key, c.value) for c in store.open_cursor()] == [
                ("a", {"id": "a", "n": 1}),
                ("b", {"id": "b", "n": 1}),
            ]
            assert wait_for_thread_count(baseline) <= baseline  # ended at the end, not closed
            cursor = store.open_cursor()
            assert cursor.continue_()
            with pytest.raises(TransactionError) as raised:  # the stream fails with a status
                cursor.update({"id": "other"})
            assert raised.value.code is grpc.StatusCode.INVALID_ARGUMENT
            assert wait_for_thread_count(baseline) <= baseline  # the failure ended it
            with pytest.raises(TransactionError, match="cursor failed earlier"):
                cursor.continue_()
            cursor.close()
            kept = store.open_cursor()
            assert kept.continue_()
        with pytest.raises(HostServiceError) as cancelled:  # closing the client cancelled it
            kept.continue_()
        assert cancelled.value.code is grpc.StatusCode.CANCELLED
        assert wait_for_thread_count(baseline) <= baseline


def test_abandoned_streams_end_on_the_host(db: IndexedDB, host: Host) -> None:
    users = fill_users(db)
    cursors = [users.open_cursor() for _ in range(5)]
    transactions = [db.transaction(["users"]) for _ in range(3)]
    assert host.service.open_cursors == 5 and host.service.open_transactions == 3
    del cursors, transactions
    gc.collect()
    assert wait_for(lambda: streams_closed(host))
    for _ in users.open_cursor():  # iterated to the end but never closed
        pass
    gc.collect()
    assert wait_for(lambda: streams_closed(host))


def test_host_that_dies_mid_stream(socket_path: Callable[[str], Path], bind_env: EnvBinder) -> None:
    with child_host(socket_path("dies")) as (target, proc):
        bind_env(INDEXEDDB, target)
        with IndexedDB(timeout=T) as client:
            store = client.object_store("s")
            store.put({"id": "a"})
            store.put({"id": "b"})
            cursor = store.open_cursor()
            assert cursor.continue_()
            tx = client.transaction(["s"], "readwrite")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(T)
            start = time.monotonic()
            with pytest.raises(HostServiceError) as raised:
                cursor.continue_()
            assert raised.value.code is grpc.StatusCode.UNAVAILABLE
            with pytest.raises(HostServiceError) as raised:
                tx.object_store("s").put({"id": "c"})
            assert raised.value.code is grpc.StatusCode.UNAVAILABLE
            with pytest.raises(HostServiceError) as raised:
                store.count()
            assert raised.value.code is grpc.StatusCode.UNAVAILABLE
            assert time.monotonic() - start < 5


# -- async ----------------------------------------------------------------------------------


async def test_async_store_and_index_methods(host: Host) -> None:
    async with AsyncIndexedDB(timeout=T) as client:
        await client.create_object_store("users", USERS)
        users = client.object_store("users")
        assert users.name == "users" and repr(users) == "AsyncObjectStore('users')"
        for row in ROWS:
            await users.add(row)
        with pytest.raises(AlreadyExistsError):
            await users.add(ROWS[0])
        await users.put({**ROWS[0], "rank": 5})
        assert (await users.get("a"))["rank"] == 5
        assert await users.get_key("b") == "b"
        with pytest.raises(NotFoundError):
            await users.get("zz")
        assert [r["id"] for r in await users.get_all()] == ["a", "b", "c"]
        assert await users.get_all_keys(KeyRange(lower="b")) == ["b", "c"]
        assert await users.count(KeyRange(upper="a")) == 1
        status = users.index("by_status")
        assert status.name == "by_status" and status.store_name == "users"
        assert repr(status) == "AsyncIndex('users', 'by_status')"
        assert (await status.get("inactive"))["id"] == "c"
        assert await status.get_key("active") == "a"
        assert [r["id"] for r in await status.get_all("active")] == ["a", "b"]
        assert await status.get_all_keys(key_range=KeyRange(upper="active")) == ["a", "b"]
        assert await status.count() == 3
        assert await users.index("by_team_rank").get_all_keys("red") == ["b", "a"]
        assert await status.delete("inactive") == 1
        assert await users.delete_range(KeyRange("a", "a")) == 1
        await users.delete("b")
        await users.put({"id": "big", "data": b"\x01" * (5 * MiB)})
        assert (await users.get("big"))["data"] == b"\x01" * (5 * MiB)
        await users.clear()
        assert await users.count() == 0
        with pytest.raises(TypeError, match="key_range is required"):
            await users.delete_range(None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match='"id"'):
            await users.put({})
        await client.delete_object_store("users")
    with pytest.raises(ValueError, match="IndexedDB client is closed"):
        await users.count()


async def test_async_cursors(host: Host) -> None:
    async with AsyncIndexedDB(timeout=T) as client:
        await client.create_object_store("users", USERS)
        users = client.object_store("users")
        for row in ROWS:
            await users.put(row)
        seen = [(c.key, c.value["email"]) async for c in users.open_cursor()]
        assert seen == [("a", "a@x"), ("b", "b@x"), ("c", "c@x")]
        async with users.open_key_cursor(direction=CURSOR_PREV) as keys:
            assert isinstance(keys, AsyncCursor)
            assert await keys.continue_() and keys.primary_key == "c"
            with pytest.raises(TypeError, match="keys_only"):
                _ = keys.value
        cursor = await users.index("by_team_rank").open_cursor("red")
        assert (cursor.key, cursor.primary_key) == (None, None)
        with pytest.raises(ValueError, match="not on an entry yet"):
            await cursor.delete()
        assert await cursor.continue_() and cursor.key == ["red", 1]
        assert await cursor.continue_to_key(["red", 2]) and cursor.primary_key == "a"
        await cursor.update({**ROWS[0], "status": "away"})
        assert cursor.value["status"] == "away"
        assert not await cursor.continue_()
        with pytest.raises(ValueError, match="exhausted"):
            _ = cursor.value
        await cursor.close()
        await cursor.close()
        with pytest.raises(ValueError, match="cursor is closed"):
            await cursor.continue_()
        lazy = users.open_cursor(KeyRange(lower="b"))  # opened by the first move
        assert await lazy.advance(1) and lazy.primary_key == "c"
        await lazy.delete()
        await lazy.close()
        assert await users.get_all_keys() == ["a", "b"]
        with pytest.raises(NotFoundError):
            await users.index("missing").open_cursor()
        never = users.open_cursor()
        await never.close()  # never opened: nothing to send
        with pytest.raises(ValueError, match="closed"):
            await never.continue_()
    assert wait_for(lambda: streams_closed(host))


async def test_async_transactions(host: Host) -> None:
    async with AsyncIndexedDB(timeout=T) as client:
        await client.create_object_store("users", USERS)
        users = client.object_store("users")
        async with client.transaction(["users"], "readwrite") as tx:
            assert isinstance(tx, AsyncTransaction) and tx.mode == "readwrite"
            store = tx.object_store("users")
            assert repr(store) == "AsyncTransactionObjectStore('users')"
            for row in ROWS:
                await store.add(row)
            assert await store.get_key("a") == "a"
            assert (await store.get("b"))["email"] == "b@x"
            assert len(await store.get_all()) == 3
            assert await store.get_all_keys(KeyRange(lower="b")) == ["b", "c"]
            index = store.index("by_status")
            assert repr(index) == "AsyncTransactionIndex('users', 'by_status')"
            assert (await index.get("inactive"))["id"] == "c"
            assert await index.get_key("active") == "a"
            assert len(await index.get_all("active")) == 2
            assert await index.get_all_keys("active") == ["a", "b"]
            assert await index.count() == 3
            assert await index.delete("inactive") == 1
            assert await store.delete_range(KeyRange("b", "b")) == 1
            await store.put({"id": "d"})
            await store.delete("d")
            assert await store.count() == 1
        assert tx.finished and await users.get_all_keys() == ["a"]

        tx = await client.transaction(["users"], "readwrite")  # awaiting begins it
        await tx.object_store("users").clear()
        await tx.abort("no")
        await tx.abort()
        with pytest.raises(TransactionError, match="already finished"):
            await tx.commit()
        assert await users.count() == 1

        with pytest.raises(RuntimeError, match="boom"):
            async with client.transaction(["users"], "readwrite") as tx:
                await tx.object_store("users").put({"id": "x"})
                raise RuntimeError("boom")
        assert await users.get_all_keys() == ["a"]

        tx = client.transaction(["users"])
        with pytest.raises(TransactionError, match="readonly"):
            await tx.object_store("users").put({"id": "x"})  # begins, then fails
        with pytest.raises(TransactionError, match="it failed with 'datastore: transaction"):
            await tx.object_store("users").count()

        with pytest.raises(NotFoundError):
            async with client.transaction(["users"], "readwrite") as tx:
                await tx.object_store("users").get("missing")
        untouched = client.transaction(["users"])
        await untouched.abort()  # never begun: no call at all
        with pytest.raises(ValueError, match="at least one"):
            client.transaction([])
        with pytest.raises(TypeError, match="AsyncTransaction"):
            from gestalt._clients.indexeddb_aio import AsyncTransactionObjectStore

            AsyncTransactionObjectStore(object(), "s")  # type: ignore[arg-type]
    assert wait_for(lambda: streams_closed(host))


async def test_async_client_side_not_found(host: Host, recorder: RecordingInterceptor) -> None:
    async with AsyncIndexedDB(timeout=T) as client:
        await client.create_object_store("users", USERS)
        users = client.object_store("users")
        for row in ROWS:
            await users.put(row)
        recorder.clear()
        cursor = users.open_cursor()
        with pytest.raises(ValueError) as unpositioned:  # never opened: a plain ValueError
            await cursor.update(ROWS[0])
        assert not isinstance(unpositioned.value, NotFoundError)
        while await cursor.continue_():
            pass
        with pytest.raises(NotFoundError) as raised:
            await cursor.delete()
        _assert_local_not_found(raised, "cannot delete: the cursor is exhausted")
        with pytest.raises(NotFoundError) as raised:
            await cursor.update(ROWS[0])
        _assert_local_not_found(raised, "cannot update: the cursor is exhausted")
        await cursor.close()
        with pytest.raises(ValueError) as closed:
            await cursor.update(ROWS[0])
        assert not isinstance(closed.value, NotFoundError)

        tx = await client.transaction(["users"], "readwrite")
        with pytest.raises(NotFoundError) as raised:
            tx.object_store("missing")
        _assert_local_not_found(raised, r"store 'missing' is not in the transaction's scope")
        from gestalt._clients.indexeddb_aio import AsyncTransactionIndex

        with pytest.raises(NotFoundError):
            AsyncTransactionIndex(tx, "missing", "by_status")
        with pytest.raises(TypeError):
            tx.object_store(None)  # type: ignore[arg-type]
        await tx.object_store("users").delete("a")
        await tx.commit()
        assert await users.get_all_keys() == ["b", "c"]
    assert wait_for(lambda: streams_closed(host))
    methods = [c.method.rsplit("/", 1)[-1] for c in recorder.calls]
    assert methods == ["OpenCursor", "Transaction", "GetAllKeys"]
    assert _cursor_frames(recorder.calls[0]) == ["open", "next", "next", "next", "next", "close"]
    tx_frames = [r.WhichOneof("msg") for r in recorder.calls[1].requests]
    assert tx_frames == ["begin", "operation", "commit"]


async def test_async_cancellation_and_abandonment(host: Host) -> None:
    async with AsyncIndexedDB(timeout=T) as client:
        await client.create_object_store("s")
        store = client.object_store("s")
        await store.put({"id": "a"})
        cursor = await store.open_cursor()
        tx = await client.transaction(["s"], "readwrite")
        assert host.service.open_cursors == 1 and host.service.open_transactions == 1
        del cursor, tx
        gc.collect()
        assert wait_for(lambda: streams_closed(host))
        assert await store.count(timeout=5) == 1  # the dropped transaction freed the lock

        async def hold() -> None:
            async with client.transaction(["s"], "readwrite") as t:
                await t.object_store("s").put({"id": "b"})
                await asyncio.sleep(30)

        task = asyncio.create_task(hold())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await store.get_all_keys(timeout=5) == ["a"]  # cancelled, rolled back

        open_cursor = await store.open_cursor()
        open_tx = await client.transaction(["s"])
    assert wait_for(lambda: streams_closed(host))  # close() cancelled them
    with pytest.raises(HostServiceError, match="cancelled"):
        await open_cursor.continue_()
    with pytest.raises(HostServiceError, match="cancelled"):
        await open_tx.commit()


async def test_async_errors_and_timeouts(scripted: ScriptedHost) -> None:
    async with AsyncIndexedDB(timeout=T) as client:
        store = client.object_store("s")
        for code, kind in _STATUS_TYPES:
            scripted.status = (code, "scripted failure")
            with pytest.raises(HostServiceError) as raised:
                await store.get("a")
            _check(raised.value, kind, code)
            scripted.script = [("abort", code, "scripted failure")]
            with pytest.raises(HostServiceError) as raised:
                await store.open_cursor().continue_()
            _check(raised.value, kind, code)
        scripted.script = [_op_error(1, 6, "dup")]
        with pytest.raises(AlreadyExistsError, match="dup"):
            await client.transaction(["s"], "readwrite").object_store("s").add({"id": "a"})
        scripted.script = [pb.CursorResponse(done=False)]
        with pytest.raises(HostServiceError, match="no entry") as raised:
            await store.open_cursor().continue_()
        assert raised.value.code is grpc.StatusCode.INTERNAL
        scripted.script = ["end"]
        with pytest.raises(HostServiceError, match="early"):
            await store.open_cursor().continue_()
        scripted.script = ["end"]
        with pytest.raises(TransactionError, match="ended during operation"):
            await client.transaction(["s"]).object_store("s").count()

        scripted.hang = True
        with pytest.raises(HostServiceTimeoutError):
            await store.count(timeout=0.2)
        scripted.script = ["hang"]
        cursor = store.open_cursor(timeout=0.2)
        with pytest.raises(HostServiceTimeoutError, match="cursor"):
            await cursor.continue_()
        with pytest.raises(HostServiceTimeoutError, match="failed earlier"):
            await cursor.continue_()
        scripted.script = ["hang"]
        tx = client.transaction(["s"], timeout=0.2)
        with pytest.raises(HostServiceTimeoutError, match="transaction"):
            await tx.object_store("s").count()
        scripted.first = "end"
        with pytest.raises(TransactionError, match="ended during begin"):
            await client.transaction(["s"])


async def test_async_and_sync_send_the_same_frames(
    host: Host, recorder: RecordingInterceptor
) -> None:
    async def run_async() -> None:
        async with AsyncIndexedDB(timeout=T) as client:
            await client.create_object_store("users", USERS)
            users = client.object_store("users")
            for row in ROWS:
                await users.put(row)
            async with users.index("by_team_rank").open_cursor(
                "red", key_range=KeyRange(lower="a"), direction=CURSOR_PREV
            ) as cursor:
                await cursor.continue_to_key(["red", 1])
                await cursor.advance(1)
            async with client.transaction(["users"], "readwrite", durability_hint="strict") as tx:
                await tx.object_store("users").index("by_status").count("active")
                await tx.object_store("users").delete("c")
            await client.delete_object_store("users")

    def run_sync() -> None:
        with IndexedDB(timeout=T) as client:
            client.create_object_store("users", USERS)
            users = client.object_store("users")
            for row in ROWS:
                users.put(row)
            with users.index("by_team_rank").open_cursor(
                "red", key_range=KeyRange(lower="a"), direction=CURSOR_PREV
            ) as cursor:
                cursor.continue_to_key(["red", 1])
                cursor.advance(1)
            with client.transaction(["users"], "readwrite", durability_hint="strict") as tx:
                tx.object_store("users").index("by_status").count("active")
                tx.object_store("users").delete("c")
            client.delete_object_store("users")

    await run_async()
    assert wait_for(lambda: streams_closed(host))
    from_async = _recorded_calls(recorder.take())
    await asyncio.to_thread(run_sync)
    assert wait_for(lambda: streams_closed(host))
    from_sync = _recorded_calls(recorder.take())
    assert from_async == from_sync
    assert len(from_sync) == 7 and len(from_sync[4].frames) == 4


async def test_async_client_builds_outside_a_loop(host: Host) -> None:
    client = await asyncio.to_thread(AsyncIndexedDB)
    await client.object_store("s").put({"id": "a"})
    with grpc.insecure_channel(host.target) as channel:
        assert ObjectStore(IndexedDBClient(channel), "s").get_all_keys() == ["a"]
    async with grpc.aio.insecure_channel(host.target) as channel:
        from gestalt._clients.indexeddb_aio import AsyncObjectStore

        raw = AsyncObjectStore(AsyncIndexedDBClient(channel), "s")
        assert await raw.count() == 1
        with pytest.raises(TypeError, match="stub must be"):
            AsyncObjectStore(IndexedDBClient(channel), "s")  # type: ignore[arg-type]
    await client.close()
