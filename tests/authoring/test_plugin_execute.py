"""``Plugin.execute`` / ``execute_async`` result mapping, async design and ``serve``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import types
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest

from gestalt import OK, Error, Plugin, Request, Response
from gestalt._runtime.servicers import Integration
from gestalt._runtime.wire import context_request, request_from_pb, struct_to_dict
from gestalt.gen.support import struct_from_pb
from gestalt.gen.v1 import plugin_pb2

INTERNAL = (500, {"error": "internal error"})


def outcome(result: plugin_pb2.OperationResult) -> tuple[int, Any]:
    return result.status, json.loads(result.body)


def returning(value: Any) -> Plugin:
    plugin = Plugin("ret")

    @plugin.operation
    def op() -> Any:
        return value

    return plugin


def raising(exc: Exception) -> Plugin:
    plugin = Plugin("err")

    @plugin.operation
    def op() -> None:
        raise exc

    return plugin


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Response(None, {"a": 1}), (200, {"a": 1})),
        (Response(HTTPStatus.ACCEPTED, "queued"), (202, "queued")),
        (Response(599, None), (599, None)),
        (OK([1]), (200, [1])),
        # Quirk 7: statuses the host cannot write become a logged 500.
        (Response(0, "zero"), INTERNAL),
        (Response(600, "x"), INTERNAL),
        (Response(True, "x"), INTERNAL),
        (Response("200", "x"), INTERNAL),  # type: ignore[arg-type]
    ],
)
def test_response_statuses(value: Any, expected: tuple[int, Any]) -> None:
    assert outcome(returning(value).execute("op", None, Request())) == expected


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (Error(404), (404, {"error": "Not Found"})),
        (Error(HTTPStatus.CONFLICT), (409, {"error": "Conflict"})),
        (Error(599), (599, {"error": ""})),
        (Error(400, "bad input"), (400, {"error": "bad input"})),
        (Error(0, "zero"), INTERNAL),  # quirk 7
        (Error(1000, "big"), INTERNAL),
        (RuntimeError("secret"), INTERNAL),
    ],
)
def test_error_mapping(exc: Exception, expected: tuple[int, Any]) -> None:
    assert outcome(raising(exc).execute("op", {}, Request())) == expected


def test_error_attributes() -> None:
    err = Error(404)
    assert (err.status, err.message, str(err)) == (404, "Not Found", "Not Found")
    assert isinstance(err, Exception)


def test_handler_failure_is_logged_not_returned(caplog: pytest.LogCaptureFixture) -> None:
    result = raising(RuntimeError("token=secret")).execute("op", {}, Request())
    assert "secret" not in result.body
    record = next(r for r in caplog.records if r.name == "gestalt._authoring.plugin")
    assert record.levelname == "ERROR" and record.exc_info is not None
    assert "token=secret" in caplog.text


def test_traceback_reaches_stderr_without_logging_setup(tmp_path: Path) -> None:
    script = (
        "from gestalt import Plugin, Request\n"
        "plugin = Plugin('p')\n"
        "@plugin.operation\n"
        "def boom() -> None:\n"
        "    raise RuntimeError('detail for the log')\n"
        "result = plugin.execute('boom', {}, Request())\n"
        "assert result.status == 500, result\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout == ""
    assert "Traceback" in done.stderr and "detail for the log" in done.stderr


def test_unknown_operation_and_unset_params() -> None:
    plugin = returning({"ok": True})
    assert outcome(plugin.execute("nope", None, Request())) == (404, {"error": "unknown operation"})
    assert outcome(plugin.execute("op", None, Request())) == (200, {"ok": True})


# --- async ----------------------------------------------------------------------------------


def loop_probe() -> Plugin:
    plugin = Plugin("loops")

    @plugin.operation
    async def where() -> dict[str, int]:
        await asyncio.sleep(0)
        return {"loop": id(asyncio.get_running_loop()), "thread": threading.get_ident()}

    @plugin.operation
    def sync_where() -> dict[str, int]:
        return {"thread": threading.get_ident()}

    @plugin.operation
    async def nap() -> str:
        await asyncio.sleep(0.1)
        return "rested"

    return plugin


def test_sync_execute_reuses_one_event_loop() -> None:
    # Quirk 23: the reference created a fresh event loop per call.
    plugin = loop_probe()
    first = outcome(plugin.execute("where", {}, Request()))[1]
    second = outcome(plugin.execute("where", {}, Request()))[1]
    assert first == second
    assert first["thread"] != threading.get_ident()
    sync = outcome(plugin.execute("sync_where", {}, Request()))[1]
    assert sync["thread"] == threading.get_ident()


def test_execute_async_uses_the_callers_loop() -> None:
    plugin = loop_probe()

    async def main() -> None:
        loop_id = id(asyncio.get_running_loop())
        body = outcome(await plugin.execute_async("where", {}, Request()))[1]
        assert body == {"loop": loop_id, "thread": threading.get_ident()}
        sync = outcome(await plugin.execute_async("sync_where", {}, Request()))[1]
        assert sync["thread"] != threading.get_ident()  # sync handlers leave the loop
        started = time.perf_counter()
        results = await asyncio.gather(
            *(plugin.execute_async("nap", {}, Request()) for _ in range(5))
        )
        assert time.perf_counter() - started < 0.4  # concurrent, not 5 x 0.1 s
        assert {r.body for r in results} == {'"rested"'}
        unknown = await plugin.execute_async("nope", {}, Request())
        assert unknown.status == 404

    asyncio.run(main())


def test_execute_async_maps_failures() -> None:
    plugin = Plugin("async-errors")

    @plugin.operation
    async def teapot() -> None:
        raise Error(418)

    @plugin.operation
    def crash() -> None:
        raise ValueError("x")

    async def main() -> None:
        assert outcome(await plugin.execute_async("teapot", {}, Request())) == (
            418,
            {"error": "I'm a Teapot"},
        )
        assert outcome(await plugin.execute_async("crash", {}, Request())) == INTERNAL

    asyncio.run(main())


def test_run_sync_refuses_to_block_its_own_loop() -> None:
    from gestalt._authoring.aio import run_sync

    async def inner() -> int:
        return 1

    async def outer() -> None:
        with pytest.raises(RuntimeError, match="call the \\*_async method"):
            run_sync(inner())

    assert run_sync(inner()) == 1
    run_sync(outer())


# --- request context ------------------------------------------------------------------------


def test_request_from_execute_exposes_correlation_ids() -> None:
    # Quirk 33: invocation_id was not exposed by the reference.
    message = plugin_pb2.ExecuteRequest(
        operation="op", invocation_id="inv-1", idempotency_key="  key  ", invocation_token="t"
    )
    request = request_from_pb(message)
    assert (request.invocation_id, request.idempotency_key) == ("inv-1", "key")
    assert request.invocation_token == "t"
    assert request.connection_param("missing") is None
    session = request_from_pb(plugin_pb2.GetSessionCatalogRequest(token="tok"))
    assert (session.token, session.invocation_id) == ("tok", "")


def test_execute_request_carries_the_whole_context() -> None:
    context = plugin_pb2.RequestContext(
        subject=plugin_pb2.SubjectContext(id="u1", kind="user", display_name="U", auth_source="s"),
        credential=plugin_pb2.CredentialContext(
            mode="user", subject_id="u1", connection="c", instance="i"
        ),
        access=plugin_pb2.AccessContext(policy="p", role="r"),
    )
    context.workflow.update({"runId": "r1", "step": {"n": 2.0, "tags": ["a", None, True]}})
    message = plugin_pb2.ExecuteRequest(
        operation="op",
        token="tok",
        connection_params={"region": "eu"},
        context=context,
        invocation_token="it",
        invocation_id="inv",
        idempotency_key=" k ",
    )
    expected = context_request(context)
    expected.token, expected.connection_params = "tok", {"region": "eu"}
    expected.invocation_token, expected.invocation_id, expected.idempotency_key = "it", "inv", "k"
    assert request_from_pb(message) == expected
    assert expected.workflow == {"runId": "r1", "step": {"n": 2.0, "tags": ["a", None, True]}}


def test_request_is_built_only_for_handlers_that_take_it() -> None:
    plugin = Plugin("lazy")

    @plugin.operation
    def nothing() -> str:
        return "nothing"

    @plugin.operation
    def whole(params: dict[str, Any]) -> str:
        return "whole"

    @plugin.operation
    def named(name: str) -> str:
        return name

    @plugin.operation
    def whole_and_request(params: dict[str, Any], request: Request) -> str:
        return request.token

    @plugin.operation
    def named_and_request(name: str, request: Request) -> str:
        return request.token

    @plugin.operation
    def request_only(request: Request) -> str:
        return request.token

    built: list[Request] = []

    def build() -> Request:
        built.append(Request(token=f"t{len(built)}"))
        return built[-1]

    for op in ("nothing", "whole", "named"):
        assert outcome(plugin._execute(op, {"name": op}, build)) == (200, op)
    assert built == []
    for number, op in enumerate(("whole_and_request", "named_and_request", "request_only")):
        assert outcome(plugin._execute(op, {"name": "n"}, build)) == (200, f"t{number}")
    assert len(built) == 3
    # The servicer hands over a builder of the message's Request.
    message = plugin_pb2.ExecuteRequest(operation="request_only", token="from-host")
    assert outcome(Integration(plugin).execute(message, None)) == (200, "from-host")
    assert outcome(plugin.execute("request_only", None, Request(token="given"))) == (200, "given")


def test_struct_walk_matches_the_generic_conversion() -> None:
    message = plugin_pb2.ExecuteRequest()
    message.params.update(
        {"s": "x", "n": 1.5, "b": False, "z": None, "l": [1.0, ["y", {}], {"k": []}], "o": {}}
    )
    assert struct_to_dict(message.params) == struct_from_pb(message.params)
    assert struct_to_dict(message.params)["l"] == [1.0, ["y", {}], {"k": []}]


# --- serve ----------------------------------------------------------------------------------


def test_serve_writes_catalog_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Quirk 34: the reference only honoured the variable in `python -m gestalt._runtime`.
    target = tmp_path / "out" / "catalog.yaml"
    monkeypatch.setenv("GESTALT_PLUGIN_WRITE_CATALOG", str(target))
    monkeypatch.setitem(sys.modules, "gestalt._runtime.process", None)  # importing it would fail
    returning(1).serve()
    assert (
        target.read_text(encoding="utf-8") == "name: ret\noperations:\n- id: op\n  method: POST\n"
    )


def test_serve_hands_over_to_the_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[Plugin] = []
    runtime = types.ModuleType("gestalt._runtime.process")
    runtime.serve = lambda target, kind: served.append(target)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gestalt._runtime.process", runtime)
    monkeypatch.delenv("GESTALT_PLUGIN_WRITE_CATALOG", raising=False)
    plugin = returning(1)
    plugin.serve()
    assert served == [plugin]
