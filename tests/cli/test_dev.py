"""``gestalt dev``: the local host, run as a user runs it, on copies of the hello example."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import time
from pathlib import Path

import grpc
import pytest

from gestalt.gen.v1 import datastore_clients, datastore_pb2, s3_clients, s3_pb2
from tests.cli.conftest import (
    StartDev,
    gestalt,
    invoke_json,
    one_line_error,
    state_file,
)

SERVICE_VARS = (
    "GESTALT_AGENT_MANAGER_SOCKET",
    "GESTALT_AUTHORIZATION_SOCKET",
    "GESTALT_CACHE_SOCKET",
    "GESTALT_INDEXEDDB_SOCKET",
    "GESTALT_PLUGIN_INVOKER_SOCKET",
    "GESTALT_RUNTIME_LOG_SOCKET",
    "GESTALT_S3_SOCKET",
    "GESTALT_WORKFLOW_MANAGER_SOCKET",
)


def greet(root: Path, name: str = "Ann") -> dict[str, object]:
    """Call ``greet`` through ``gestalt invoke``; the body of the answer."""
    code, document = invoke_json(root, "greet", f"name={name}")
    assert code == 0, document
    body: dict[str, object] = document["body"]
    return body


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in one step, as editors save (never seen half-written)."""
    text = path.read_text(encoding="utf-8")
    assert old in text
    draft = path.with_suffix(".draft")
    draft.write_text(text.replace(old, new), encoding="utf-8")
    draft.replace(path)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_announces_serves_and_stops_on_ctrl_c(dev: StartDev, hello_copy: Path) -> None:
    run = dev(hello_copy)
    info = run.wait_ready()
    assert run.stdout[0] == "gestalt dev: hello:plugin (integration)"
    socket = info["provider"].removeprefix("unix:")
    assert Path(socket).is_socket()
    for var in SERVICE_VARS:
        assert Path(info[var]).is_socket()
    # The service sockets stand in one column, however long the variable names.
    columns = {line.index("/") for line in run.stdout if line.strip().startswith("GESTALT_")}
    assert len(columns) == 1
    assert info["data"] == str(hello_copy / ".gestalt" / "data")
    assert info["operations"].splitlines() == ["POST greet", "GET stats", "POST reset"]

    state = json.loads(state_file(hello_copy).read_text())
    assert (state["pid"], state["socket"], state["kind"]) == (run.proc.pid, socket, "integration")
    assert state["services"] == {var: info[var] for var in SERVICE_VARS}
    assert pid_alive(state["provider_pid"])

    # Both calls reach the provider gestalt dev runs: the count goes on.
    assert greet(hello_copy)["times"] == 1
    assert greet(hello_copy)["times"] == 2

    # Ctrl-C in a terminal signals the whole foreground process group.
    assert run.interrupt(group=True) == 0, run.output()
    assert run.stdout[-1] == "stopped"
    assert run.stderr == []
    assert not state_file(hello_copy).exists()
    assert not Path(socket).exists()
    assert not any(Path(info[var]).exists() for var in SERVICE_VARS)


def test_json_announcement_and_data_surviving_a_restart(dev: StartDev, hello_copy: Path) -> None:
    first = dev(hello_copy, json_output=True)
    info = first.wait_json()
    assert info["target"] == "hello:plugin"
    assert info["kind"] == "integration"
    assert info["data_dir"] == str(hello_copy / ".gestalt" / "data")
    assert [op["id"] for op in info["operations"]] == ["greet", "stats", "reset"]
    assert sorted(info["services"]) == list(SERVICE_VARS)

    ref = s3_pb2.S3ObjectRef(bucket="keep", key="notes/1.txt")
    record = datastore_pb2.Record(
        fields={
            "id": datastore_pb2.TypedValue(string_value="n1"),
            "text": datastore_pb2.TypedValue(string_value="kept across restarts"),
        }
    )
    with grpc.insecure_channel(f"unix:{info['services']['GESTALT_S3_SOCKET']}") as channel:
        opened = s3_pb2.WriteObjectOpen(ref=ref, content_type="text/plain")
        frames = [
            s3_pb2.WriteObjectRequest(open=opened),
            s3_pb2.WriteObjectRequest(data=b"hello, disk"),
        ]
        s3_clients.S3Client(channel).write_object(iter(frames), timeout=10)
    with grpc.insecure_channel(f"unix:{info['services']['GESTALT_INDEXEDDB_SOCKET']}") as channel:
        db = datastore_clients.IndexedDBClient(channel)
        db.create_object_store(datastore_pb2.CreateObjectStoreRequest(name="notes"), timeout=10)
        db.put(datastore_pb2.RecordRequest(store="notes", record=record), timeout=10)

    # Only the dev process is signalled here; it stops its provider itself.
    assert first.interrupt() == 0, first.output()
    assert first.stdout[-1] == "}"  # JSON mode prints the document and nothing else
    data = hello_copy / ".gestalt" / "data"
    assert (data / "indexeddb.sqlite3").is_file()
    assert (data / "s3").is_dir()

    second = dev(hello_copy)
    again = second.wait_ready()
    assert again["GESTALT_S3_SOCKET"] != info["services"]["GESTALT_S3_SOCKET"]
    with grpc.insecure_channel(f"unix:{again['GESTALT_S3_SOCKET']}") as channel:
        read = s3_pb2.ReadObjectRequest(ref=ref)
        chunks = list(s3_clients.S3Client(channel).read_object(read, timeout=10))
    assert b"".join(c.data for c in chunks) == b"hello, disk"
    with grpc.insecure_channel(f"unix:{again['GESTALT_INDEXEDDB_SOCKET']}") as channel:
        db = datastore_clients.IndexedDBClient(channel)
        got = db.get(datastore_pb2.ObjectStoreRequest(store="notes", id="n1"), timeout=10)
    assert got.record == record
    assert second.interrupt(group=True) == 0, second.output()


def test_reloads_on_change_and_recovers_from_a_syntax_error(
    dev: StartDev, hello_copy: Path
) -> None:
    source = hello_copy / "hello.py"
    run = dev(hello_copy)
    run.wait_ready()
    before = json.loads(state_file(hello_copy).read_text())["socket"]
    # Also lets gestalt dev take its first snapshot of the sources, just after "ready:".
    assert greet(hello_copy)["message"] == "Hello Ann. (asked by someone)"

    edit(source, 'f"Hello {name}', 'f"Howdy there {name}')
    run.wait_for("change detected: restarting the provider")
    run.wait_for("provider restarted")
    assert json.loads(state_file(hello_copy).read_text())["socket"] != before
    assert greet(hello_copy)["message"] == "Howdy there Ann. (asked by someone)"

    edit(source, "def stats(", "def stats(:")
    failed = run.lines_until("fix the error and save again")
    where = f"{source}:47:11: SyntaxError: invalid syntax"
    # The runtime's own line streams by, then the dev host says why the restart failed.
    assert failed[-4:] == [
        "change detected: restarting the provider",
        f"[hello] gestalt runtime: {where}",
        f"restart failed: the provider exited with status 1: {where}",
        "fix the error and save again",
    ]

    edit(source, "def stats(:", "def stats(")
    run.wait_for("provider restarted")
    assert greet(hello_copy, "Bo")["message"] == "Howdy there Bo. (asked by someone)"
    assert run.interrupt() == 0, run.output()
    assert not state_file(hello_copy).exists()


def test_data_option_and_no_reload(dev: StartDev, hello_copy: Path, tmp_path: Path) -> None:
    data = tmp_path / "elsewhere"
    run = dev(hello_copy, "--data", str(data), "--no-reload")
    assert run.wait_ready()["data"] == str(data)
    assert (data / "indexeddb.sqlite3").is_file()
    assert greet(hello_copy)["message"] == "Hello Ann. (asked by someone)"
    edit(hello_copy / "hello.py", 'f"Hello {name}', 'f"Howdy there {name}')
    time.sleep(1.2)  # more than two polls of a reloading dev host
    assert greet(hello_copy)["message"] == "Hello Ann. (asked by someone)"
    assert run.interrupt() == 0, run.output()
    assert not any("change detected" in line for line in run.stdout)
    assert not (hello_copy / ".gestalt" / "data").exists()


def test_a_quick_same_size_edit_is_seen(dev: StartDev, hello_copy: Path) -> None:
    source = hello_copy / "hello.py"
    second = (int(time.time()) + 60) * 1_000_000_000
    run = dev(hello_copy)
    run.wait_ready()
    # gestalt dev takes its first snapshot of the sources just after "ready:"; an edit
    # made before it is not noticed. One call is enough time.
    assert greet(hello_copy)["times"] == 1
    for step, (old, new) in enumerate([("Hello", "Howdy"), ("Howdy", "Hiya!")], start=1):
        # Two saves within one second, each appearing at once with its final time.
        draft = source.with_suffix(".draft")
        draft.write_text(source.read_text().replace(f'f"{old} ', f'f"{new} '))
        stamp = second + step * 100_000_000
        os.utime(draft, ns=(stamp, stamp))
        draft.replace(source)
        run.wait_for("provider restarted")
        assert greet(hello_copy)["message"] == f"{new} Ann. (asked by someone)"


def test_stale_state_file_after_a_crash(
    dev: StartDev, hello_copy: Path, request: pytest.FixtureRequest
) -> None:
    crashed = dev(hello_copy)
    crashed.wait_ready()
    state = json.loads(state_file(hello_copy).read_text())
    crashed.proc.send_signal(signal.SIGKILL)  # no clean-up at all
    crashed.proc.wait(timeout=10)
    # What a crash leaves in /tmp: the provider's and the services' socket directories.
    leftovers = [Path(state["socket"]).parent, Path(state["services"][SERVICE_VARS[0]]).parent]
    for leftover in leftovers:
        request.addfinalizer(functools.partial(shutil.rmtree, leftover, ignore_errors=True))
    assert state_file(hello_copy).exists()
    # The orphaned provider notices that its host is gone and stops (removing its socket).
    deadline = time.monotonic() + 10
    while Path(state["socket"]).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(state["socket"]).exists()

    # invoke sees that nothing runs there and starts the provider once itself.
    assert greet(hello_copy)["times"] == 1
    assert greet(hello_copy)["times"] == 1

    run = dev(hello_copy)
    run.wait_ready()
    assert json.loads(state_file(hello_copy).read_text())["pid"] == run.proc.pid
    assert greet(hello_copy)["times"] == 1
    assert greet(hello_copy)["times"] == 2
    assert run.interrupt() == 0, run.output()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing"], "/missing: no such directory"),
        (["ROOT", "--config", "{oops"], "--config is not valid JSON: "),
        (["ROOT", "--config", "[1, 2]"], "--config must be a JSON object"),
    ],
    ids=["missing-root", "config-not-json", "config-not-object"],
)
def test_usage_errors_are_one_line(hello_copy: Path, args: list[str], message: str) -> None:
    args = [str(hello_copy) if a == "ROOT" else a for a in args]
    run = gestalt("dev", *args, cwd=hello_copy.parent, timeout=30)
    assert message in one_line_error(run)
    assert run.stdout == ""
    assert not state_file(hello_copy).exists()


def test_project_without_gestalt_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    run = gestalt("dev", ".", cwd=tmp_path, timeout=30)
    assert one_line_error(run) == f"{tmp_path / 'pyproject.toml'}: no [tool.gestalt] table"


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    run = gestalt("--debug", "dev", "missing", cwd=tmp_path, timeout=30)
    assert run.returncode == 1
    assert "Traceback (most recent call last)" in run.stderr
    last = run.stderr.rstrip().splitlines()[-1]
    assert (
        last == f"gestalt._runtime.project.ProjectError: {tmp_path / 'missing'}: no such directory"
    )


def break_import(root: Path) -> None:
    """Make the provider's module raise while it is imported."""
    edit(root / "hello.py", "GREETINGS: dict", "1 / 0\nGREETINGS: dict")


def test_broken_provider_import(hello_copy: Path) -> None:
    break_import(hello_copy)
    run = gestalt("dev", hello_copy, cwd=hello_copy.parent, timeout=60)
    assert run.returncode == 1
    assert run.stderr == (
        "gestalt: error: the provider exited with status 1: importing hello "
        "failed at hello.py:17: ZeroDivisionError: division by zero\n"
    )
    assert "gestalt/_cli.py" not in run.stderr  # no traceback of the CLI itself
    # The provider's own output (its traceback) streamed into the terminal, prefixed.
    lines = run.stdout.splitlines()
    assert lines[0] == "[hello] Traceback (most recent call last):"
    assert "[hello] ZeroDivisionError: division by zero" in lines
    assert all(line.startswith("[hello] ") for line in lines[:-1])
    assert lines[-1] == "stopped"
    assert not state_file(hello_copy).exists()


def test_broken_provider_import_is_one_line(hello_copy: Path) -> None:
    break_import(hello_copy)
    run = gestalt("dev", hello_copy, cwd=hello_copy.parent, timeout=60)
    message = one_line_error(run)
    assert "ZeroDivisionError: division by zero" in message
    assert "hello.py" in message


@pytest.fixture
def running(dev: StartDev, hello_copy: Path) -> Path:
    """A ``gestalt dev`` serving the copy of hello, which was greeted once."""
    dev(hello_copy).wait_ready()
    assert greet(hello_copy)["times"] == 1
    return hello_copy


def test_second_dev_for_the_same_root_is_refused_in_one_line(running: Path) -> None:
    run = gestalt("dev", running, cwd=running.parent, timeout=60)
    assert "already" in one_line_error(run)


def test_second_dev_leaves_the_running_one_usable(running: Path) -> None:
    state = state_file(running).read_text()
    gestalt("dev", running, cwd=running.parent, timeout=60)
    assert state_file(running).exists() and state_file(running).read_text() == state
    assert greet(running)["times"] == 2
