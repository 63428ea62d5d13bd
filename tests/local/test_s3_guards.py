"""The embedded S3 service under hostile or careless use: planted files, bad headers, raw
HTTP abuse and stalled clients. Everything runs over real sockets against real files."""

from __future__ import annotations

import base64
import logging
import os
import socket
import sqlite3
import stat
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from gestalt.gen.support import RPCError
from gestalt.gen.v1 import s3_pb2
from gestalt.gen.v1.s3_clients import S3Client, S3ObjectAccessClient
from gestalt.local import LocalServices
from gestalt.local.s3 import S3ServiceHandle, serve_s3

T = 10.0
BLOB = "ab" + "0" * 30  # a name following the store's naming scheme


def ref(bucket: str, key: str) -> s3_pb2.S3ObjectRef:
    return s3_pb2.S3ObjectRef(bucket=bucket, key=key)


def frames(
    target: s3_pb2.S3ObjectRef, chunks: Iterable[bytes], **header: Any
) -> Iterator[s3_pb2.WriteObjectRequest]:
    yield s3_pb2.WriteObjectRequest(open=s3_pb2.WriteObjectOpen(ref=target, **header))
    for chunk in chunks:
        yield s3_pb2.WriteObjectRequest(data=chunk)


def put(client: S3Client, target: s3_pb2.S3ObjectRef, data: bytes, **header: Any) -> None:
    client.write_object(frames(target, [data], **header), timeout=T)


def failure(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(RPCError) as info:
        call()
    return info.value.code, info.value.message


def body_of(client: S3Client, target: s3_pb2.S3ObjectRef) -> bytes:
    stream = list(client.read_object(s3_pb2.ReadObjectRequest(ref=target), timeout=T))
    return b"".join(m.data for m in stream[1:])


def raw_http(base_url: str, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` (request line and headers, CRLF ends added) as is; the parsed answer.

    A connection closed without a status line fails the test: the endpoint must answer.
    """
    host, port = urllib.parse.urlsplit(base_url).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=T) as conn:
        try:
            conn.sendall(head.encode("latin-1") + b"\r\n\r\n" + body)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered (and closed) before reading everything
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    assert data, "the endpoint dropped the connection without answering"
    header_text, _, rest = data.partition(b"\r\n\r\n")
    lines = header_text.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, rest


@pytest.fixture
def server(tmp_path: Path) -> Iterator[S3ServiceHandle]:
    with serve_s3(tmp_path / "s3.sock", root=tmp_path / "data") as handle:
        yield handle


@pytest.fixture
def client(server: S3ServiceHandle) -> Iterator[S3Client]:
    channel = grpc.insecure_channel(server.target)
    yield S3Client(channel)
    channel.close()


def presign(server: S3ServiceHandle, target: s3_pb2.S3ObjectRef, **fields: Any) -> str:
    channel = grpc.insecure_channel(server.target)
    try:
        url: str = (
            S3Client(channel)
            .presign_object(s3_pb2.PresignObjectRequest(ref=target, **fields), timeout=T)
            .url
        )
        return url
    finally:
        channel.close()


def path_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


# -- nothing outside the root -----------------------------------------------------------------


def test_start_up_sweep_leaves_planted_symlinks_and_their_targets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "data"
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / BLOB).write_bytes(b"precious")  # named like a blob, not referenced by the index
    (victim / (BLOB + ".tmp")).write_bytes(b"precious too")
    outside_file = tmp_path / "outside.txt"
    outside_file.write_bytes(b"keep me")
    with serve_s3(tmp_path / "a.sock", root=root) as first:
        channel = grpc.insecure_channel(first.target)
        put(S3Client(channel), ref("b", "k"), b"v")
        channel.close()
    # A folder of the blob tree replaced by a symlink to another directory, and a symlink
    # named like a blob inside a real folder.
    (root / "blobs" / "ab").symlink_to(victim, target_is_directory=True)
    (root / "blobs" / "cd").mkdir()
    (root / "blobs" / "cd" / ("cd" + "1" * 30)).symlink_to(outside_file)
    with (
        caplog.at_level(logging.WARNING, "gestalt.local.s3"),
        serve_s3(tmp_path / "b.sock", root=root) as second,
    ):
        channel = grpc.insecure_channel(second.target)
        assert body_of(S3Client(channel), ref("b", "k")) == b"v"
        channel.close()
    assert (victim / BLOB).read_bytes() == b"precious"
    assert (victim / (BLOB + ".tmp")).read_bytes() == b"precious too"
    assert outside_file.read_bytes() == b"keep me"
    assert (root / "blobs" / "cd" / ("cd" + "1" * 30)).is_symlink()
    ignored = [r for r in caplog.records if "did not create" in r.getMessage()]
    assert len(ignored) == 2 and all(r.exc_info is None for r in ignored)


def _tamper(root: Path, key: str, blob: str) -> None:
    with sqlite3.connect(root / "index.sqlite3") as db:
        assert db.execute("UPDATE objects SET blob = ? WHERE key = ?", (blob, key)).rowcount == 1


def test_index_rows_pointing_outside_are_neither_served_nor_deleted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "data"
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"top secret")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / BLOB).write_bytes(b"also secret")
    with serve_s3(tmp_path / "a.sock", root=root) as first:
        channel = grpc.insecure_channel(first.target)
        s3 = S3Client(channel)
        for key in ("dotdot", "linked", "absolute"):
            put(s3, ref("b", key), b"mine")
        channel.close()
    _tamper(root, "dotdot", "../../secret.txt")
    _tamper(root, "absolute", str(secret))
    used = {p.name for p in (root / "blobs").iterdir()}
    folder = next(f"{n:02x}" for n in range(256) if f"{n:02x}" not in used)
    (elsewhere / BLOB).rename(elsewhere / (folder + BLOB[2:]))
    _tamper(root, "linked", folder + BLOB[2:])
    (root / "blobs" / folder).symlink_to(elsewhere, target_is_directory=True)

    with (
        caplog.at_level(logging.WARNING, "gestalt.local.s3"),
        serve_s3(tmp_path / "b.sock", root=root) as second,
    ):
        channel = grpc.insecure_channel(second.target)
        s3 = S3Client(channel)
        for key in ("dotdot", "linked", "absolute"):
            code, message = failure(lambda key=key: body_of(s3, ref("b", key)))
            assert code == grpc.StatusCode.INTERNAL
            assert message == f"s3: the stored body of b/{key} is missing or damaged"
            url = presign(second, ref("b", key))
            status, _, answer = raw_http(second.http_base_url, f"GET {path_of(url)} HTTP/1.1")
            assert status == 500 and b"secret" not in answer
        # Copying, replacing and deleting never touch the outside files either.
        assert (
            failure(
                lambda: s3.copy_object(
                    s3_pb2.CopyObjectRequest(source=ref("b", "linked"), destination=ref("b", "c")),
                    timeout=T,
                )
            )[0]
            == grpc.StatusCode.INTERNAL
        )
        put(s3, ref("b", "dotdot"), b"replaced")
        assert body_of(s3, ref("b", "dotdot")) == b"replaced"
        s3.delete_object(s3_pb2.DeleteObjectRequest(ref=ref("b", "linked")), timeout=T)
        s3.delete_object(s3_pb2.DeleteObjectRequest(ref=ref("b", "absolute")), timeout=T)
        channel.close()
    assert secret.read_bytes() == b"top secret"
    assert (elsewhere / (folder + BLOB[2:])).read_bytes() == b"also secret"
    reports = [r.getMessage() for r in caplog.records]
    assert any("'../../secret.txt'" in m for m in reports)
    assert all("\n" not in m for m in reports)


def test_keys_with_dots_and_slashes_stay_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "data"
    with serve_s3(tmp_path / "s.sock", root=root) as handle:
        channel = grpc.insecure_channel(handle.target)
        s3 = S3Client(channel)
        for key in ("../escape", "/etc/passwd", "a/../../b", "..", "./x"):
            put(s3, ref("../bucket", key), key.encode())
            assert body_of(s3, ref("../bucket", key)) == key.encode()
        channel.close()
    inside = {p.resolve() for p in tmp_path.rglob("*")}
    assert all(p.is_relative_to(tmp_path) for p in inside)
    assert {p.name for p in tmp_path.iterdir()} == {"data"}


# -- private files --------------------------------------------------------------------------


def test_data_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        data = tmp_path / "nested" / "data"
        with LocalServices(data_dir=data) as services:
            channel = grpc.insecure_channel("unix:" + services.env()["GESTALT_S3_SOCKET"])
            put(S3Client(channel), ref("b", "k"), b"v")
            channel.close()
            created = [tmp_path / "nested", *data.rglob("*"), data]
            dirs = [p for p in created if p.is_dir()]
            files = [p for p in created if p.is_file()]
            assert {p.name for p in files} >= {"index.sqlite3", "lock", "indexeddb.sqlite3"}
            assert any(p.parent.parent.name == "blobs" for p in files)
            assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in dirs} == {"0o700"}
            assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {"0o600"}
    finally:
        os.umask(old)


# -- headers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ({"content_type": "text/plain\r\nX-Injected: 1"}, "content_type"),
        ({"content_disposition": "inline\nSet-Cookie: a=b"}, "content_disposition"),
        ({"cache_control": "no-cache\x00"}, "cache_control"),
        ({"metadata": {"ok\r\nX-Evil": "v"}}, "metadata key"),
        ({"metadata": {"k": "v\x01"}}, "metadata value"),
        ({"metadata": {"k": "v\x7f"}}, "metadata value"),
    ],
)
def test_control_characters_in_headers_are_invalid_argument(
    client: S3Client, header: dict[str, Any], field: str
) -> None:
    code, message = failure(lambda: put(client, ref("b", "k"), b"v", **header))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message.startswith(f"s3: {field}")
    assert failure(lambda: body_of(client, ref("b", "k")))[0] == grpc.StatusCode.NOT_FOUND


def test_control_characters_in_url_requests_are_invalid_argument(
    server: S3ServiceHandle, client: S3Client
) -> None:
    access = S3ObjectAccessClient(grpc.insecure_channel(server.target))
    for fields in (
        {"content_type": "a\r\nb: c"},
        {"content_disposition": "x\ny"},
        {"headers": {"x-a": "b\rc"}},
        {"headers": {"x-a\n": "b"}},
    ):
        code, _ = failure(
            lambda fields=fields: client.presign_object(
                s3_pb2.PresignObjectRequest(ref=ref("b", "k"), **fields), timeout=T
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        code, _ = failure(
            lambda fields=fields: access.create_object_access_url(
                s3_pb2.CreateObjectAccessURLRequest(ref=ref("b", "k"), **fields), timeout=T
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_http_put_refuses_control_characters_and_get_encodes_non_ascii(
    server: S3ServiceHandle, client: S3Client
) -> None:
    url = presign(server, ref("b", "k"), method=s3_pb2.PRESIGN_METHOD_PUT)
    status, _, _ = raw_http(
        server.http_base_url,
        f"PUT {path_of(url)} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nX-Amz-Meta-A: b\x01c",
        b"v",
    )
    assert status == 400
    put(client, ref("b", "n"), b"v", metadata={"name": "日本"}, content_disposition="é")
    url = presign(server, ref("b", "n"))
    status, headers, body = raw_http(server.http_base_url, f"GET {path_of(url)} HTTP/1.1")
    assert (status, body) == (200, b"v")
    encoded = base64.b64encode("日本".encode()).decode()
    assert headers["x-amz-meta-name"] == f"=?UTF-8?B?{encoded}?="
    assert headers["content-disposition"].startswith("=?UTF-8?B?")


# -- the HTTP endpoint answers every request --------------------------------------------------


def test_http_endpoint_answers_abuse_with_4xx(server: S3ServiceHandle, client: S3Client) -> None:
    put(client, ref("b", "k"), b"0123456789")
    get_path = path_of(presign(server, ref("b", "k")))
    base = server.http_base_url
    nested = base64.urlsafe_b64encode(b"[" * 5000).decode().rstrip("=")
    signature = base64.urlsafe_b64encode(b"x" * 32).decode().rstrip("=")
    expires = get_path.replace("X-Gestalt-Expires=", "X-Gestalt-Expires=" + "9" * 5000)
    cases = {
        f"GET {get_path} HTTP/1.1\r\nRange: bytes={'9' * 5000}-": {416},
        f"GET {get_path} HTTP/1.1\r\nRange: bytes=0-{'9' * 5000}": {206},
        f"GET {get_path} HTTP/1.1\r\nRange: bytes=abc": {416},
        f"GET {get_path} HTTP/1.1\r\nRange: bytes=5-2": {416},
        f"GET {get_path} HTTP/1.1\r\nRange: lines=1-2": {416},
        f"GET {get_path} HTTP/1.1\r\nRange: bytes=20-": {416},
        f"GET {expires} HTTP/1.1": {403},
        f"GET /api/v1/s3/object-access/{nested}.{signature} HTTP/1.1": {403},
        f"GET /api/v1/s3/object-access/{'A' * 60_000} HTTP/1.1": {403, 414},
        "GET /api/v1/s3/object-access/%%%.!!! HTTP/1.1": {403},
        "GET //[bad HTTP/1.1": {400, 403, 404},
        f"DELETE {get_path} HTTP/1.1": {403},
    }
    for head, expected in cases.items():
        status, _, _ = raw_http(base, head)
        assert status in expected, (head[:80], status)
    # A body on GET is refused rather than read as the next request.
    status, _, _ = raw_http(base, f"GET {get_path} HTTP/1.1\r\nContent-Length: 5", b"GET /")
    assert status == 400
    status, _, body = raw_http(base, f"GET {get_path} HTTP/1.1\r\nRange: bytes=2-4")
    assert (status, body) == (206, b"234")


def test_presigned_urls_refuse_tampering_and_expiry(
    server: S3ServiceHandle, client: S3Client
) -> None:
    put(client, ref("b", "k"), b"v")
    good = path_of(presign(server, ref("b", "k")))
    base = server.http_base_url
    assert raw_http(base, f"GET {good} HTTP/1.1")[0] == 200
    tampered = [
        good.replace("/s3/b/k", "/s3/b/other"),
        good.replace("X-Gestalt-Method=GET", "X-Gestalt-Method=DELETE"),
        good[:-1] + ("0" if good[-1] != "0" else "1"),
    ]
    for path in tampered:
        assert raw_http(base, f"GET {path} HTTP/1.1")[0] == 403
    expired = path_of(presign(server, ref("b", "k"), expires_seconds=1))
    time.sleep(2.1)
    assert raw_http(base, f"GET {expired} HTTP/1.1")[0] == 403
    assert urllib.parse.urlsplit(base).hostname == "127.0.0.1"


def test_client_leaving_mid_reply_is_one_quiet_line_at_most(
    server: S3ServiceHandle, client: S3Client, caplog: pytest.LogCaptureFixture
) -> None:
    client.write_object(frames(ref("b", "big"), [b"x" * (1 << 20)] * 16), timeout=T)
    path = path_of(presign(server, ref("b", "big")))
    host, port = urllib.parse.urlsplit(server.http_base_url).netloc.split(":")
    with caplog.at_level(logging.DEBUG, "gestalt.local"):
        for _ in range(3):
            conn = socket.create_connection((host, int(port)), timeout=T)
            conn.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert conn.recv(1024).startswith(b"HTTP/1.1 200")
            conn.close()  # with linger 0: a reset while the server is still writing
        time.sleep(0.5)
        assert raw_http(server.http_base_url, f"GET {path} HTTP/1.1")[0] == 200
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert noisy == []
    assert sum("went away" in r.getMessage() for r in caplog.records) <= 3


# -- stalled clients cannot wedge the service ------------------------------------------------


def _head(target: str) -> grpc.StatusCode:
    channel = grpc.insecure_channel(target)
    try:
        S3Client(channel).head_object(s3_pb2.HeadObjectRequest(ref=ref("b", "small")), timeout=3)
        return grpc.StatusCode.OK
    except RPCError as err:
        return err.code
    finally:
        channel.close()


def _eventually_head_ok(target: str) -> None:
    """HeadObject answers promptly every time (busy or not) and succeeds within seconds."""
    deadline = time.monotonic() + 8
    while True:
        started = time.monotonic()
        code = _head(target)
        assert time.monotonic() - started < 2.0, "HeadObject was blocked"
        if code == grpc.StatusCode.OK:
            return
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert time.monotonic() < deadline, "the stalled streams never ended"
        time.sleep(0.1)


def test_stalled_uploads_do_not_block_other_clients(tmp_path: Path) -> None:
    release = threading.Event()

    def stalled(target: s3_pb2.S3ObjectRef) -> Iterator[s3_pb2.WriteObjectRequest]:
        yield s3_pb2.WriteObjectRequest(open=s3_pb2.WriteObjectOpen(ref=target))
        yield s3_pb2.WriteObjectRequest(data=b"partial")
        release.wait(20)

    with serve_s3(tmp_path / "s.sock", root=tmp_path / "d", idle_timeout=0.5) as handle:
        channel = grpc.insecure_channel(handle.target)
        s3 = S3Client(channel)
        put(s3, ref("b", "small"), b"v")
        pool = ThreadPoolExecutor(16)
        uploads = [
            pool.submit(s3.write_object, stalled(ref("b", f"u{i}")), timeout=20) for i in range(16)
        ]
        try:
            time.sleep(0.2)
            _eventually_head_ok(handle.target)
            for upload in uploads:
                with pytest.raises(RPCError):
                    upload.result(timeout=5)
            keys = s3.list_objects(s3_pb2.ListObjectsRequest(bucket="b"), timeout=T).objects
            assert [m.ref.key for m in keys] == ["small"]
        finally:
            release.set()
            pool.shutdown()
            channel.close()


def test_unread_downloads_do_not_block_other_clients(tmp_path: Path) -> None:
    with serve_s3(tmp_path / "s.sock", root=tmp_path / "d", idle_timeout=0.5) as handle:
        channel = grpc.insecure_channel(handle.target)
        s3 = S3Client(channel)
        put(s3, ref("b", "small"), b"v")
        s3.write_object(frames(ref("b", "big"), [b"y" * (1 << 20)] * 8), timeout=T)
        readers = []
        for _ in range(16):
            stream = s3.read_object(s3_pb2.ReadObjectRequest(ref=ref("b", "big")), timeout=20)
            assert next(stream).WhichOneof("result") == "meta"
            readers.append(stream)  # and never read again
        try:
            _eventually_head_ok(handle.target)
            assert handle.service.active_reads == 0 or _settles(
                lambda: handle.service.active_reads == 0
            )
        finally:
            for stream in readers:
                stream.cancel()
            channel.close()


def _settles(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_storage_failures_name_the_object_not_sqlite(tmp_path: Path) -> None:
    with serve_s3(tmp_path / "s.sock", root=tmp_path / "d") as handle:
        channel = grpc.insecure_channel(handle.target)
        s3 = S3Client(channel)
        put(s3, ref("b", "k"), b"v")
        # Break the index under the running service: every query now fails inside SQLite.
        with sqlite3.connect(tmp_path / "d" / "index.sqlite3") as db:
            db.execute("ALTER TABLE objects RENAME TO gone")
        code, message = failure(
            lambda: s3.head_object(s3_pb2.HeadObjectRequest(ref=ref("b", "k")), timeout=T)
        )
        assert code == grpc.StatusCode.INTERNAL
        assert message == "s3: storage failure while reading b/k"
        channel.close()
