"""What the author sees under ``gestalt dev``: the provider's output and one line per call in
the dev terminal, a handler's traceback there and with ``gestalt --debug invoke``, and never in
the answer the host gets."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from gestalt.gen.v1 import plugin_pb2
from tests.cli.conftest import DevRun, StartDev, gestalt, invoke_json, state_file, user_env

NOISY = """\
import logging
import sys

from gestalt import Plugin

plugin = Plugin("noisy")
log = logging.getLogger("noisy.ops")


@plugin.operation
def shout(text: str) -> dict[str, str]:
    print(f"printed {text}")
    print(f"to stderr {text}", file=sys.stderr)
    log.info("logged %s", text)
    return {"text": text}


@plugin.operation
def boom() -> dict[str, str]:
    log.warning("about to fail")
    raise RuntimeError("SECRET-detail: kaboom")


@plugin.operation
async def aboom() -> dict[str, str]:
    raise ValueError("SECRET-async: kaboom")
"""
PYPROJECT = (
    '[project]\nname = "noisy"\nversion = "0"\n\n[tool.gestalt]\nprovider = "noisy:plugin"\n'
)
GENERIC_500 = '{"error":"internal error"}'
CALL_LINE = re.compile(r"call (\w+) -> (\w+) \((\d+\.\d) ms\)")
EXECUTE = "/gestalt.provider.v1.IntegrationProvider/Execute"


@pytest.fixture
def noisy(tmp_path: Path) -> Path:
    """A provider project whose operations print, log and raise."""
    root = tmp_path / "noisy"
    root.mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (root / "noisy.py").write_text(NOISY, encoding="utf-8")
    return root


def call_line(run: DevRun, operation: str) -> tuple[list[str], str, float]:
    """The dev terminal's lines up to the call line of ``operation``: those before it, its
    status and its duration."""
    lines = run.lines_until(f"call {operation} -> ")
    match = CALL_LINE.fullmatch(lines[-1])
    assert match is not None, lines[-1]
    assert match[1] == operation
    return lines[:-1], match[2], float(match[3])


def test_output_and_one_line_per_call_stream_into_the_dev_terminal(
    dev: StartDev, noisy: Path
) -> None:
    run = dev(noisy)
    run.wait_ready()
    assert invoke_json(noisy, "shout", "text=hi") == (0, {"status": 200, "body": {"text": "hi"}})
    before, status, ms = call_line(run, "shout")
    # stdout, stderr and a log record, each on its own prefixed line, before the call line.
    assert before == [
        "[noisy] printed hi",
        "[noisy] to stderr hi",
        "[noisy] INFO noisy.ops: logged hi",
    ]
    assert status == "200"
    assert 0 < ms < 5000

    # Each call has its line, a 400 too; the handshake of a start is not a call.
    assert invoke_json(noisy, "shout")[1]["status"] == 400
    assert call_line(run, "shout")[1] == "400"
    assert invoke_json(noisy, "nope")[1]["status"] == 404
    assert call_line(run, "nope")[1] == "404"
    assert run.interrupt() == 0, run.output()
    assert not any("GetMetadata" in line or "StartProvider" in line for line in run.stdout)
    assert run.stderr == []


def test_json_mode_keeps_the_stream_off_stdout(dev: StartDev, noisy: Path) -> None:
    run = dev(noisy, json_output=True)
    assert run.wait_json()["target"] == "noisy:plugin"
    assert invoke_json(noisy, "shout", "text=hi")[0] == 0
    deadline = time.monotonic() + 20
    while not any(line.startswith("call shout -> 200") for line in run.stderr):
        assert time.monotonic() < deadline, run.output()
        time.sleep(0.05)
    assert "[noisy] printed hi" in run.stderr
    assert run.interrupt() == 0, run.output()
    assert run.stdout[-1] == "}"


def execute_as_the_host(socket: str, operation: str, *metadata: tuple[str, str]) -> str:
    """Call ``Execute`` as the host does; assert no exception text anywhere in the answer,
    and return its body."""
    with grpc.insecure_channel(f"unix:{socket}") as channel:
        execute = channel.unary_unary(
            EXECUTE,
            request_serializer=plugin_pb2.ExecuteRequest.SerializeToString,
            response_deserializer=plugin_pb2.OperationResult.FromString,
        )
        result, call = execute.with_call(
            plugin_pb2.ExecuteRequest(operation=operation), timeout=20, metadata=metadata
        )
    assert result.status == 500
    wire = [result.body, repr(call.initial_metadata()), repr(call.trailing_metadata())]
    assert not any("SECRET" in part or "Traceback" in part for part in wire), wire
    return str(result.body)


@pytest.mark.parametrize("operation", ["boom", "aboom"])
def test_a_handler_traceback_reaches_the_author_and_never_the_host(
    dev: StartDev, noisy: Path, operation: str
) -> None:
    secret = "SECRET-detail" if operation == "boom" else "SECRET-async"
    run = dev(noisy)
    info = run.wait_ready()
    socket = info["provider"].removeprefix("unix:")

    # The host gets the generic body, whatever metadata the call carries.
    assert execute_as_the_host(socket, operation) == GENERIC_500
    before, status, _ = call_line(run, operation)
    assert status == "500"
    assert f"[noisy] ERROR gestalt._authoring.plugin: operation {operation!r} failed" in before
    assert "[noisy] Traceback (most recent call last):" in before
    assert any(line.startswith("[noisy] ") and secret in line for line in before)
    call_id = "0123456789abcdef0123456789abcdef"
    assert execute_as_the_host(socket, operation, ("gestalt-dev-call", call_id)) == GENERIC_500
    call_line(run, operation)

    # Plain invoke: the generic body, and a pointer to --debug.
    plain = gestalt("invoke", operation, "--root", noisy, cwd=noisy.parent)
    assert plain.returncode == 1
    assert plain.stdout.splitlines()[0] == "status 500"
    assert secret not in plain.stdout + plain.stderr
    assert "--debug" in plain.stderr
    call_line(run, operation)

    # --debug invoke: the same body, and the provider's log of this call on stderr.
    debug = gestalt("--debug", "invoke", operation, "--root", noisy, cwd=noisy.parent)
    assert debug.returncode == 1
    assert debug.stdout.splitlines()[0] == "status 500"
    assert secret not in debug.stdout
    assert f"ERROR gestalt._authoring.plugin: operation {operation!r} failed" in debug.stderr
    assert "Traceback (most recent call last):" in debug.stderr
    assert secret in debug.stderr
    if operation == "boom":
        assert "WARNING noisy.ops: about to fail" in debug.stderr
    # Only this call's records: not those of the earlier calls.
    assert debug.stderr.count("Traceback (most recent call last):") == 1
    call_line(run, operation)
    # Read once and removed; calls without the call-id header leave nothing behind.
    calls_dir = Path(str(json.loads(state_file(noisy).read_text())["calls_dir"]))
    assert sorted(p.name for p in calls_dir.iterdir()) == [f"{call_id}.log"]
    assert run.interrupt() == 0, run.output()


def test_debug_invoke_without_gestalt_dev(noisy: Path) -> None:
    debug = gestalt("--debug", "invoke", "boom", "--root", noisy, cwd=noisy.parent)
    assert debug.returncode == 1
    assert debug.stdout.splitlines()[0] == "status 500"
    assert "RuntimeError: SECRET-detail: kaboom" in debug.stderr
    assert "SECRET" not in debug.stdout
    quiet = gestalt("invoke", "shout", "text=hi", "--root", noisy, cwd=noisy.parent)
    assert (quiet.returncode, quiet.stderr) == (0, "")


def test_a_closed_dev_terminal_does_not_block_the_provider(noisy: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gestalt", "dev", str(noisy)],
        cwd=noisy.parent,
        env=user_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("ready:"):
                break
        proc.stdout.close()  # the terminal is gone; gestalt dev still runs
        # More output than a pipe holds: the provider must not block writing it.
        for _ in range(3):
            run = gestalt(
                "invoke",
                "shout",
                f"text={'x' * 40_000}",
                "--root",
                noisy,
                cwd=noisy.parent,
                timeout=30,
            )
            assert run.returncode == 0, run.stderr
        assert proc.poll() is None
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
