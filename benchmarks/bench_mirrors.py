"""Cost of the dataclass mirrors next to ``json_format`` and pb2 serialisation.

Run with ``python benchmarks/bench_mirrors.py`` (or ``make bench``). For a few
representative messages it times, per message:

* ``mirror.to_pb()`` and ``Mirror.from_pb(pb)``, the mirror round trip;
* ``json_format.MessageToDict(pb)`` and ``json_format.ParseDict(d, Msg())``, protobuf's own
  conversion between a message and plain Python values, the reference;
* ``pb.SerializeToString()`` and ``Msg.FromString(data)``, the wire round trip, for scale;

and prints the round trips' ratios. Timings are best-of-N ``timeit`` runs; nothing here
asserts on time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from google.protobuf import json_format
from google.protobuf.message import Message

from gestalt.gen.v1 import (
    agent_mirrors,
    agent_pb2,
    cache_mirrors,
    cache_pb2,
    datastore_mirrors,
    datastore_pb2,
    plugin_mirrors,
    plugin_pb2,
)


class Mirror(Protocol):
    """What every generated mirror has."""

    def to_pb(self) -> Any: ...


@dataclass(frozen=True)
class Case:
    """One message to measure: a mirror instance and its class's ``from_pb``."""

    name: str
    mirror: Mirror
    from_pb: Callable[[Any], Any]
    pb2: type[Message]


# -- the messages -------------------------------------------------------------------------------

NOW = dt.datetime(2025, 3, 14, 15, 9, 26, 535897, tzinfo=dt.UTC)


def small() -> Case:
    """A cache write: two scalars and a Duration."""
    mirror = cache_mirrors.CacheSetRequest(
        key="session:7f3a9c2e",
        value=b"x" * 64,
        ttl=dt.timedelta(minutes=5),
    )
    return Case(
        "cache.CacheSetRequest",
        mirror,
        cache_mirrors.CacheSetRequest.from_pb,
        cache_pb2.CacheSetRequest,
    )


def medium() -> Case:
    """A plugin call: Struct params, a string map and a nested request context."""
    mirror = plugin_mirrors.ExecuteRequest(
        operation="issues.create",
        params={
            "repo": "acme/widgets",
            "title": "Crash when saving",
            "body": "Steps to reproduce: open, edit, save.",
            "labels": ["bug", "p1"],
            "assignee": {"login": "octo", "id": 42.0},
            "draft": False,
            "milestone": 3.0,
        },
        token="tok_9f8e7d6c5b4a",
        connection_params={"base_url": "https://api.example.com", "org": "acme"},
        invocation_id="inv-0001",
        context=plugin_mirrors.RequestContext(
            subject=plugin_mirrors.SubjectContext(
                id="user:123", kind="user", display_name="Ada", auth_source="oidc"
            ),
            credential=plugin_mirrors.CredentialContext(
                mode="user", subject_id="user:123", connection="github", instance="default"
            ),
            access=plugin_mirrors.AccessContext(policy="default", role="editor"),
            workflow={"runId": "run-77", "step": "create"},
        ),
        invocation_token="itok_1234",
        idempotency_key="idem-5678",
    )
    return Case(
        "plugin.ExecuteRequest",
        mirror,
        plugin_mirrors.ExecuteRequest.from_pb,
        plugin_pb2.ExecuteRequest,
    )


def large_record() -> Case:
    """A datastore record with 20 typed fields of every kind."""
    tv = datastore_mirrors.TypedValue
    fields: dict[str, datastore_mirrors.TypedValue] = {
        "id": tv(string_value="rec-000123"),
        "name": tv(string_value="Widget, large"),
        "sku": tv(string_value="WGT-L-0042"),
        "description": tv(string_value="A large widget for heavy-duty use."),
        "category": tv(string_value="hardware"),
        "quantity": tv(int_value=1200),
        "reorder_level": tv(int_value=150),
        "version": tv(int_value=7),
        "owner_id": tv(int_value=90_210),
        "price": tv(float_value=19.99),
        "weight_kg": tv(float_value=2.35),
        "rating": tv(float_value=4.6),
        "active": tv(bool_value=True),
        "discontinued": tv(bool_value=False),
        "created_at": tv(time_value=NOW - dt.timedelta(days=400)),
        "updated_at": tv(time_value=NOW),
        "thumbnail": tv(bytes_value=b"\x89PNG" + b"\x00" * 60),
        "attributes": tv(json_value={"color": "blue", "sizes": ["L", "XL"], "stock": 3.0}),
        "tags": tv(json_value=["sale", "new"]),
        "deleted_at": tv(null_value=0),
    }
    mirror = datastore_mirrors.Record(fields=fields)
    return Case(
        "datastore.Record (20 fields)",
        mirror,
        datastore_mirrors.Record.from_pb,
        datastore_pb2.Record,
    )


def large_turn() -> Case:
    """An agent turn: nested lists of messages and parts, enums, Structs and timestamps."""
    am = agent_mirrors
    messages = []
    for i in range(4):
        messages.append(
            am.AgentMessage(
                role="assistant" if i % 2 else "user",
                text=f"message {i}: let me look that up for you.",
                parts=[
                    am.AgentMessagePart(type=am.AgentMessagePartType.TEXT, text="Looking up."),
                    am.AgentMessagePart(
                        type=am.AgentMessagePartType.TOOL_CALL,
                        tool_call=am.AgentMessagePartToolCall(
                            id=f"call-{i}",
                            tool_id="issues.search",
                            arguments={"query": "is:open label:bug", "limit": 10.0},
                        ),
                    ),
                ],
                metadata={"tokens": 120.0 + i},
            )
        )
    mirror = am.AgentTurn(
        id="turn-1",
        session_id="sess-1",
        provider_name="example",
        model="model-large",
        status=am.AgentExecutionStatus.SUCCEEDED,
        messages=messages,
        output_text="Found 3 open bugs.",
        structured_output={"count": 3.0, "ids": [1.0, 2.0, 3.0]},
        created_by=am.AgentActor(subject_id="user:123", subject_kind="user"),
        created_at=NOW - dt.timedelta(seconds=30),
        started_at=NOW - dt.timedelta(seconds=29),
        completed_at=NOW,
        execution_ref="exec-9",
    )
    return Case(
        "agent.AgentTurn (4 msgs x 2 parts)", mirror, am.AgentTurn.from_pb, agent_pb2.AgentTurn
    )


# -- timing -------------------------------------------------------------------------------------


def best_ns(fn: Callable[[], object], repeat: int, min_time: float) -> float:
    """Best per-call time in nanoseconds over ``repeat`` runs of about ``min_time`` seconds."""
    timer = timeit.Timer(fn)
    number, elapsed = timer.autorange()
    number = max(1, int(number * min_time / max(elapsed, 1e-9)))
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e9


@dataclass(frozen=True)
class Row:
    """One message's timings, in nanoseconds."""

    name: str
    size: int
    to_pb: float
    from_pb: float
    to_dict: float
    from_dict: float
    serialize: float
    parse: float

    @property
    def mirror(self) -> float:
        """The mirror round trip."""
        return self.to_pb + self.from_pb

    @property
    def json(self) -> float:
        """``json_format``'s round trip through a dict."""
        return self.to_dict + self.from_dict

    @property
    def wire(self) -> float:
        """The wire round trip through bytes."""
        return self.serialize + self.parse


def measure(case: Case, repeat: int, min_time: float) -> Row:
    """Time ``case`` after checking that both conversions round-trip it."""
    pb = case.mirror.to_pb()
    assert isinstance(pb, case.pb2)
    data = pb.SerializeToString()
    assert case.from_pb(case.pb2.FromString(data)) == case.mirror, (
        f"{case.name} does not round-trip"
    )
    as_dict = json_format.MessageToDict(pb)
    assert json_format.ParseDict(as_dict, case.pb2()) == pb, f"{case.name}: json_format differs"
    mirror, from_pb, parse, pb2 = case.mirror, case.from_pb, case.pb2.FromString, case.pb2
    return Row(
        name=case.name,
        size=len(data),
        to_pb=best_ns(mirror.to_pb, repeat, min_time),
        from_pb=best_ns(lambda: from_pb(pb), repeat, min_time),
        to_dict=best_ns(lambda: json_format.MessageToDict(pb), repeat, min_time),
        from_dict=best_ns(lambda: json_format.ParseDict(as_dict, pb2()), repeat, min_time),
        serialize=best_ns(pb.SerializeToString, repeat, min_time),
        parse=best_ns(lambda: parse(data), repeat, min_time),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timeit repeats; the best counts")
    parser.add_argument("--min-time", type=float, default=0.05, help="seconds per repeat")
    args = parser.parse_args(argv)

    from google.protobuf.internal import api_implementation

    print(
        f"Python {sys.version.split()[0]}, protobuf backend {api_implementation.Type()}, "
        f"best of {args.repeat}; times in ns per message"
    )
    cases = [small(), medium(), large_record(), large_turn()]
    rows = [measure(case, args.repeat, args.min_time) for case in cases]

    header = (
        f"{'message':<36} {'bytes':>6} {'to_pb':>7} {'from_pb':>7} {'to_dict':>7} "
        f"{'from_dict':>9} {'serialize':>9} {'parse':>7} {'mirror/json':>11} {'mirror/wire':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.name:<36} {r.size:>6} {r.to_pb:>7.0f} {r.from_pb:>7.0f} {r.to_dict:>7.0f} "
            f"{r.from_dict:>9.0f} {r.serialize:>9.0f} {r.parse:>7.0f} "
            f"{r.mirror / r.json:>10.2f}x {r.mirror / r.wire:>10.1f}x"
        )
    print(
        "\nmirror/json = (to_pb + from_pb) / (MessageToDict + ParseDict): the mirrors against"
        " protobuf's\nown conversion to plain values; mirror/wire = (to_pb + from_pb) /"
        " (SerializeToString + FromString)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
