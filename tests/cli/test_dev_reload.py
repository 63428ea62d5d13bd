"""``gestalt dev`` reloads ``[tool.gestalt]`` with the code, and ``gestalt invoke`` says why
the provider under it is not running instead of trying to start another one."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from tests.cli.conftest import StartDev, gestalt, invoke_json, one_line_error, state_file
from tests.cli.test_dev import edit, greet

OTHER = """\
from gestalt import Plugin

plugin = Plugin("other")


@plugin.operation
def ping() -> dict[str, bool]:
    return {"pong": True}
"""


def refused(root: Path) -> str:
    """The one-line error of ``gestalt invoke greet`` while the provider is down."""
    return one_line_error(gestalt("invoke", "greet", "name=Ann", "--root", root, cwd=root.parent))


def test_an_edited_target_is_picked_up_or_refused_with_file_and_key(
    dev: StartDev, hello_copy: Path
) -> None:
    pyproject = hello_copy / "pyproject.toml"
    (hello_copy / "other.py").write_text(OTHER, encoding="utf-8")
    run = dev(hello_copy)
    run.wait_ready()
    assert greet(hello_copy)["times"] == 1  # also: gestalt dev has its first snapshot
    services = json.loads(state_file(hello_copy).read_text())["services"]

    # A new target: the provider restarts on it.
    edit(pyproject, 'provider = "hello:plugin"', 'provider = "other:plugin"')
    lines = run.lines_until("provider restarted")
    assert "  target     other:plugin (integration)" in lines
    assert invoke_json(hello_copy, "ping") == (0, {"status": 200, "body": {"pong": True}})

    # An invalid value: refused with file and key; invoke says why nothing runs.
    edit(pyproject, 'provider = "other:plugin"', 'provider = ""')
    lines = run.lines_until("fix the error and save again")
    reason = f"{pyproject}: tool.gestalt.provider must be a non-empty string"
    assert lines[-2] == f"restart failed: {reason}"
    assert refused(hello_copy) == f"the provider under gestalt dev failed to start: {reason}"

    # A target that does not resolve: the runtime's reason, also with file and key.
    edit(pyproject, 'provider = ""', 'provider = "hello:plugn"')
    lines = run.lines_until("fix the error and save again")
    reason = (
        f"{pyproject}: tool.gestalt.provider: the provider exited with status 1: "
        "hello:plugn did not resolve: no attribute 'plugn'"
    )
    assert lines[-2] == f"restart failed: {reason}"
    assert refused(hello_copy) == f"the provider under gestalt dev failed to start: {reason}"

    edit(pyproject, 'provider = "hello:plugn"', 'provider = "hello:plugin"')
    lines = run.lines_until("provider restarted")
    assert "  target     hello:plugin (integration)" in lines
    assert greet(hello_copy)["times"] == 1  # a new process; the services stayed up
    assert json.loads(state_file(hello_copy).read_text())["services"] == services
    assert run.interrupt() == 0, run.output()
    assert run.stderr == []


def test_invoke_says_the_provider_failed_to_restart(dev: StartDev, hello_copy: Path) -> None:
    source = hello_copy / "hello.py"
    run = dev(hello_copy)
    run.wait_ready()
    assert greet(hello_copy)["times"] == 1

    edit(source, "def stats(", "def stats(:")
    run.wait_for("fix the error and save again")
    assert refused(hello_copy) == (
        "the provider under gestalt dev failed to start: the provider exited with status 1: "
        f"{source}:47:11: SyntaxError: invalid syntax"
    )
    state = json.loads(state_file(hello_copy).read_text())
    assert (state["pid"], state["status"]) == (run.proc.pid, "failed")

    edit(source, "def stats(:", "def stats(")
    run.wait_for("provider restarted")
    assert greet(hello_copy)["times"] == 1  # a new provider process
    assert run.interrupt() == 0, run.output()


def test_invoke_says_the_provider_stopped(dev: StartDev, hello_copy: Path) -> None:
    run = dev(hello_copy)
    run.wait_ready()
    provider_pid = json.loads(state_file(hello_copy).read_text())["provider_pid"]
    os.kill(provider_pid, signal.SIGKILL)
    assert run.lines_until("save a change to start it again")[-2:] == [
        "the provider exited with status -9",
        "save a change to start it again",
    ]
    assert refused(hello_copy) == (
        "the provider under gestalt dev stopped: the provider exited with status -9"
    )
    # A save starts it again.
    edit(hello_copy / "hello.py", 'f"Hello {name}', 'f"Hi {name}')
    run.wait_for("provider restarted")
    assert greet(hello_copy)["message"] == "Hi Ann. (asked by someone)"
    assert run.interrupt() == 0, run.output()
