"""The ``python -m gestalt.local.*`` entry points as separate processes: start-up errors in
one line, one process per data set, and data that survives ``kill -9``."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from gestalt.gen.support import RPCError
from gestalt.gen.v1 import datastore_pb2 as pb
from gestalt.gen.v1 import s3_pb2
from gestalt.gen.v1.datastore_clients import IndexedDBClient
from gestalt.gen.v1.s3_clients import S3Client

T = 10.0
MODULES = ("cache", "indexeddb", "s3")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory short enough for ``AF_UNIX`` sockets."""
    path = Path(tempfile.mkdtemp(prefix="gp-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def start(module: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Run ``python -m gestalt.local.<module> args``; the process and its printed target."""
    proc = subprocess.Popen(
        [sys.executable, "-m", f"gestalt.local.{module}", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    target = proc.stdout.readline().strip()
    if not target:
        proc.kill()
        _, err = proc.communicate(timeout=T)
        pytest.fail(f"gestalt.local.{module} did not start: {err}")
    return proc, target


def refused(module: str, *args: str) -> str:
    """Run an entry point expected to refuse to start; its one line of stderr."""
    done = subprocess.run(
        [sys.executable, "-m", f"gestalt.local.{module}", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2, done
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


@pytest.mark.parametrize("module", MODULES)
def test_unusable_socket_paths_are_one_line(module: str, short_dir: Path) -> None:
    missing = short_dir / "no-such-dir" / "x.sock"
    line = refused(module, str(missing))
    assert str(missing.parent) in line and "does not exist" in line
    long_path = short_dir / ("x" * 120)
    line = refused(module, str(long_path))
    assert str(long_path)[:30] in line and "longer than the 107" in line


def test_one_process_per_data_set(short_dir: Path) -> None:
    data = short_dir / "data"
    idb, _ = start("indexeddb", str(short_dir / "a.sock"), "--db", str(data / "idb.sqlite3"))
    s3, _ = start("s3", str(short_dir / "b.sock"), "--root", str(data / "s3"))
    try:
        line = refused("indexeddb", str(short_dir / "c.sock"), "--db", str(data / "idb.sqlite3"))
        assert "idb.sqlite3" in line and "already used" in line
        line = refused("s3", str(short_dir / "d.sock"), "--root", str(data / "s3"))
        assert str(data / "s3") in line and "already used" in line
    finally:
        for proc in (idb, s3):
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=T) == 0


def _stalled_upload(release: threading.Event) -> Iterator[s3_pb2.WriteObjectRequest]:
    ref = s3_pb2.S3ObjectRef(bucket="b", key="partial")
    yield s3_pb2.WriteObjectRequest(open=s3_pb2.WriteObjectOpen(ref=ref))
    yield s3_pb2.WriteObjectRequest(data=b"z" * 300_000)
    release.wait(20)


def test_kill_9_keeps_committed_data_and_nothing_else(short_dir: Path) -> None:
    data = short_dir / "data"
    s3_args = ("--root", str(data / "s3"))
    idb_args = ("--db", str(data / "idb.sqlite3"))
    s3_proc, s3_target = start("s3", str(short_dir / "s3.sock"), *s3_args)
    idb_proc, idb_target = start("indexeddb", str(short_dir / "idb.sock"), *idb_args)
    release = threading.Event()
    with (
        grpc.insecure_channel(s3_target) as s3_channel,
        grpc.insecure_channel(idb_target) as idb_channel,
    ):
        s3 = S3Client(s3_channel)
        kept = s3_pb2.S3ObjectRef(bucket="b", key="kept")
        s3.write_object(
            iter(
                [
                    s3_pb2.WriteObjectRequest(open=s3_pb2.WriteObjectOpen(ref=kept)),
                    s3_pb2.WriteObjectRequest(data=b"committed"),
                ]
            ),
            timeout=T,
        )
        upload = threading.Thread(
            target=lambda: _ignore_rpc_error(
                lambda: s3.write_object(_stalled_upload(release), timeout=20)
            )
        )
        upload.start()
        idb = IndexedDBClient(idb_channel)
        idb.put(pb.RecordRequest(store="s", record=_rec("kept")), timeout=T)
        frames = iter(
            [
                pb.TransactionClientMessage(
                    begin=pb.BeginTransactionRequest(stores=["s"], mode=pb.TRANSACTION_READWRITE)
                ),
                pb.TransactionClientMessage(
                    operation=pb.TransactionOperation(
                        request_id=1, put=pb.RecordRequest(store="s", record=_rec("uncommitted"))
                    )
                ),
            ]
        )
        tx_release = threading.Event()

        def tx_frames() -> Iterator[pb.TransactionClientMessage]:
            yield from frames
            tx_release.wait(20)

        tx = idb.transaction(tx_frames(), timeout=20)
        assert next(tx).WhichOneof("msg") == "begin"
        assert next(tx).operation.request_id == 1
        blobs = data / "s3" / "blobs"
        _wait(lambda: any(p.name.endswith(".tmp") for p in blobs.rglob("*")))
        for proc in (s3_proc, idb_proc):
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=T)
        release.set()
        tx_release.set()
        upload.join(timeout=T)
        tx.cancel()

    s3_proc, s3_target = start("s3", str(short_dir / "s3.sock"), *s3_args)
    idb_proc, idb_target = start("indexeddb", str(short_dir / "idb.sock"), *idb_args)
    try:
        with (
            grpc.insecure_channel(s3_target) as s3_channel,
            grpc.insecure_channel(idb_target) as idb_channel,
        ):
            s3 = S3Client(s3_channel)
            listed = s3.list_objects(s3_pb2.ListObjectsRequest(bucket="b"), timeout=T).objects
            assert [m.ref.key for m in listed] == ["kept"]
            chunks = list(s3.read_object(s3_pb2.ReadObjectRequest(ref=kept), timeout=T))
            assert b"".join(c.data for c in chunks[1:]) == b"committed"
            assert not any(p.name.endswith(".tmp") for p in blobs.rglob("*"))
            keys = IndexedDBClient(idb_channel).get_all_keys(
                pb.ObjectStoreRangeRequest(store="s"), timeout=T
            )
            assert list(keys.keys) == ["kept"]
    finally:
        for proc in (s3_proc, idb_proc):
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=T) == 0


def _rec(rid: str) -> pb.Record:
    record = pb.Record()
    record.fields["id"].string_value = rid
    return record


def _ignore_rpc_error(call: Callable[[], object]) -> None:
    with contextlib.suppress(RPCError):  # the server was killed under it
        call()


def _wait(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)
