"""The embedded S3 host service, driven through the generated clients over unix sockets.

Statuses and results follow the host semantics of contract section 4 and the golden
transcript ``examples/clients/s3_wire.txt``; presigned and object-access URLs are fetched
with urllib from the service's real HTTP endpoint.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import tracemalloc
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf import timestamp_pb2

from gestalt.gen.support import RPCError
from gestalt.gen.v1 import s3_pb2
from gestalt.gen.v1.s3_clients import AsyncS3Client, S3Client, S3ObjectAccessClient
from gestalt.local.s3 import S3Service, S3ServiceHandle, serve_s3

CHUNK = 64 * 1024
# 150020 bytes, the transcript's payload and its SHA-256 ETag.
PAYLOAD = bytes(range(256)) * 586 + b"tail"
PAYLOAD_ETAG = "b5dee6680f4199039308425ab4cd875ed79abea3ebf3eb82b081fe7585e1d842"
EMPTY_ETAG = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
X_ETAG = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def s3_server(tmp_path: Path) -> Iterator[S3ServiceHandle]:
    """A running service on a unix socket with a fresh data directory."""
    with serve_s3(tmp_path / "s3.sock", root=tmp_path / "data") as handle:
        yield handle


@pytest.fixture
def s3_channel(s3_server: S3ServiceHandle) -> Iterator[grpc.Channel]:
    """A channel to :func:`s3_server`."""
    channel = grpc.insecure_channel(s3_server.target)
    yield channel
    channel.close()


@pytest.fixture
def s3(s3_channel: grpc.Channel) -> S3Client:
    """The generated sync S3 client on :func:`s3_channel`."""
    return S3Client(s3_channel)


@pytest.fixture
def s3_access(s3_channel: grpc.Channel) -> S3ObjectAccessClient:
    """The generated sync S3ObjectAccess client on :func:`s3_channel`."""
    return S3ObjectAccessClient(s3_channel)


def ref(bucket: str, key: str, version_id: str = "") -> s3_pb2.S3ObjectRef:
    return s3_pb2.S3ObjectRef(bucket=bucket, key=key, version_id=version_id)


def frames(
    target: s3_pb2.S3ObjectRef, chunks: Iterable[bytes], **header: Any
) -> Iterator[s3_pb2.WriteObjectRequest]:
    yield s3_pb2.WriteObjectRequest(open=s3_pb2.WriteObjectOpen(ref=target, **header))
    for chunk in chunks:
        yield s3_pb2.WriteObjectRequest(data=chunk)


def sliced(data: bytes) -> list[bytes]:
    return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]


def put(
    client: S3Client, target: s3_pb2.S3ObjectRef, data: bytes, **header: Any
) -> s3_pb2.S3ObjectMeta:
    return client.write_object(frames(target, sliced(data), **header), timeout=10).meta


def read(
    client: S3Client, request: s3_pb2.ReadObjectRequest
) -> tuple[s3_pb2.S3ObjectMeta, list[bytes]]:
    """Metadata and the data frames of one ReadObject call (frames kept separate)."""
    stream = list(client.read_object(request, timeout=10))
    assert stream and stream[0].WhichOneof("result") == "meta"
    assert all(m.WhichOneof("result") == "data" for m in stream[1:])
    return stream[0].meta, [m.data for m in stream[1:]]


def status(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(RPCError) as info:
        call()
    return info.value.code, info.value.message


def ts_us(micros: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=micros // 1_000_000, nanos=micros % 1_000_000 * 1000)


def meta_us(meta: s3_pb2.S3ObjectMeta) -> int:
    return int(meta.last_modified.seconds) * 1_000_000 + int(meta.last_modified.nanos) // 1000


def http(
    method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with NO_PROXY.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, dict(err.headers), err.read()


NOT_FOUND = (grpc.StatusCode.NOT_FOUND, "s3: not found")
PRECONDITION = (grpc.StatusCode.FAILED_PRECONDITION, "s3: precondition failed")
INVALID_RANGE = (grpc.StatusCode.OUT_OF_RANGE, "s3: invalid range")


# -- the golden transcript -------------------------------------------------------------------


def test_golden_writes(s3: S3Client) -> None:
    before = time.time()
    big = s3.write_object(frames(ref("docs", "big.bin"), sliced(PAYLOAD))).meta
    assert (big.ref.bucket, big.ref.key, big.ref.version_id) == ("docs", "big.bin", "")
    assert (big.etag, big.size, big.content_type, dict(big.metadata)) == (
        PAYLOAD_ETAG,
        150020,
        "",
        {},
    )
    assert before - 1 <= big.last_modified.seconds <= time.time() + 1

    full = put(
        s3,
        ref("docs", "file.txt"),
        b"f" * 70000,
        content_type="text/plain",
        cache_control="no-cache",
        content_disposition="inline",
        content_encoding="identity",
        content_language="en",
        metadata={"b": "2", "a": "1"},
        if_none_match="*",
    )
    assert full.etag == "5cff25ec8b0734556e55be316ab925397365d5c6107909b55d2555bb59d24940"
    assert (full.size, full.content_type, dict(full.metadata)) == (
        70000,
        "text/plain",
        {"a": "1", "b": "2"},
    )
    chunks = s3.write_object(frames(ref("docs", "iter.txt"), [b"ab", b"cd", b"ef"])).meta
    assert (chunks.etag, chunks.size) == (
        "bef57ec7f53a6d40beb640a780a639c83bc29ac8a9816f1fc6c5c6dcd93c4721",
        6,
    )
    empty = s3.write_object(frames(ref("docs", "empty.bin"), [])).meta
    assert (empty.etag, empty.size, empty.HasField("last_modified")) == (EMPTY_ETAG, 0, True)
    mv = put(s3, ref("docs", "mv.bin"), b"mv")
    assert mv.etag == "d1829078fe03f2ec5f692c7a217859409b6822240625c10282bb022888657148"

    # if_none_match="*" on an existing object: the write is refused, the object kept.
    again = frames(ref("docs", "file.txt"), [b"again"], if_none_match="*")
    assert status(lambda: s3.write_object(again)) == PRECONDITION
    assert s3.head_object(s3_pb2.HeadObjectRequest(ref=ref("docs", "file.txt"))).meta.size == 70000


def test_golden_failed_upload_stores_nothing(s3: S3Client) -> None:
    """The transcript's ``str`` body: the client's request stream dies after the header."""

    def broken() -> Iterator[s3_pb2.WriteObjectRequest]:
        yield s3_pb2.WriteObjectRequest(open=s3_pb2.WriteObjectOpen(ref=ref("docs", "bad.txt")))
        yield s3_pb2.WriteObjectRequest(data=b"partial")
        raise TypeError("a str chunk")

    code, message = status(lambda: s3.write_object(broken(), timeout=10))
    assert (code, message) == (grpc.StatusCode.UNKNOWN, "Exception iterating requests!")
    head = s3_pb2.HeadObjectRequest(ref=ref("docs", "bad.txt"))
    assert status(lambda: s3.head_object(head)) == NOT_FOUND


def test_golden_head_and_read(s3: S3Client) -> None:
    put(s3, ref("docs", "big.bin"), PAYLOAD)
    put(s3, ref("docs", "empty.bin"), b"")
    big = ref("docs", "big.bin")
    head = s3.head_object(s3_pb2.HeadObjectRequest(ref=big)).meta
    assert (head.etag, head.size) == (PAYLOAD_ETAG, 150020)
    missing = s3_pb2.HeadObjectRequest(ref=ref("docs", "missing"))
    assert status(lambda: s3.head_object(missing)) == NOT_FOUND

    meta, data = read(s3, s3_pb2.ReadObjectRequest(ref=big))
    assert meta == head
    assert [len(d) for d in data] == [65536, 65536, 18948]
    assert b"".join(data) == PAYLOAD

    # Range 1-3 (inclusive) under four satisfied conditions. The transcript's emulator
    # ignored the dates; here they are evaluated, so the unmodified-since date lies
    # after the write instead of before it.
    when = meta_us(head)
    request = s3_pb2.ReadObjectRequest(
        ref=big,
        range=s3_pb2.ByteRange(start=1, end=3),
        if_match=head.etag,
        if_none_match="x",
        if_modified_since=timestamp_pb2.Timestamp(seconds=1748779200),
        if_unmodified_since=ts_us(when + 3_600_000_000),
    )
    meta, data = read(s3, request)
    assert (meta.size, data) == (150020, [b"\x01\x02\x03"])

    meta, data = read(s3, s3_pb2.ReadObjectRequest(ref=big, range=s3_pb2.ByteRange()))
    assert sum(map(len, data)) == 150020

    beyond = s3_pb2.ReadObjectRequest(ref=big, range=s3_pb2.ByteRange(start=200000))
    assert status(lambda: list(s3.read_object(beyond))) == INVALID_RANGE
    absent = s3_pb2.ReadObjectRequest(ref=ref("docs", "missing"))
    assert status(lambda: list(s3.read_object(absent))) == NOT_FOUND
    wrong = s3_pb2.ReadObjectRequest(ref=big, if_match="wrong")
    assert status(lambda: list(s3.read_object(wrong))) == PRECONDITION

    # A zero-byte object is exactly one frame: the metadata.
    frames_ = list(s3.read_object(s3_pb2.ReadObjectRequest(ref=ref("docs", "empty.bin"))))
    assert len(frames_) == 1 and frames_[0].meta.size == 0


def test_golden_helpers_shapes(s3: S3Client) -> None:
    """What S3Object.write_json/json/text/bytes/exists/stat send and get back."""
    note = ref("docs", "note.json")
    first = put(s3, note, b'{"b": [1, 2], "a": "\\u00e9"}', content_type="application/json")
    assert first.etag == "04b90600de24942a53e7c656f1140492a789b518394f3f7328aea76c3d012cac"
    assert (first.size, first.content_type) == (28, "application/json")
    second = put(s3, note, b'{"k": 1}', content_type="application/json", cache_control="max-age=60")
    assert second.etag == "4514a0c66d60ecfeb7170caceddfb3d012a7ede1afea4863ba8bcc490ccf63b8"
    meta, data = read(s3, s3_pb2.ReadObjectRequest(ref=note))
    assert (meta.content_type, b"".join(data)) == ("application/json", b'{"k": 1}')
    _, data = read(s3, s3_pb2.ReadObjectRequest(ref=note, range=s3_pb2.ByteRange(end=2)))
    assert data == [b'{"k']

    text = ref("docs", "t.txt")
    assert put(s3, text, "héllo".encode()).etag == (
        "3c48591d8d098a4538f5e013dfcf406e948eac4d3277b10bf614e295d6068179"
    )
    assert put(s3, text, "héllo".encode("latin-1")).etag == (
        "c63c19ed1e0ee079f22ddb0d4112cfc799132c88684eb42324c62b9899b0c6c1"
    )
    # Versions are not kept: a version id reads the current object and is not echoed.
    versioned = s3.head_object(s3_pb2.HeadObjectRequest(ref=ref("docs", "t.txt", "v1"))).meta
    assert (versioned.size, versioned.ref.version_id) == (5, "")


def test_golden_list_copy_delete(s3: S3Client) -> None:
    for key in ["p/a.txt", "p/b.txt", "p/sub/c.txt"]:
        put(s3, ref("files", key), b"x")

    page = s3.list_objects(s3_pb2.ListObjectsRequest(bucket="files", prefix="p/", max_keys=2))
    assert [o.ref.key for o in page.objects] == ["p/a.txt", "p/b.txt"]
    assert [o.etag for o in page.objects] == [X_ETAG, X_ETAG]
    assert (list(page.common_prefixes), page.next_continuation_token, page.has_more) == (
        [],
        "p/b.txt",
        True,
    )
    page = s3.list_objects(
        s3_pb2.ListObjectsRequest(
            bucket="files", prefix="p/", continuation_token="p/b.txt", start_after="p/a", max_keys=2
        )
    )
    assert [o.ref.key for o in page.objects] == ["p/sub/c.txt"]
    assert (page.next_continuation_token, page.has_more) == ("", False)
    page = s3.list_objects(s3_pb2.ListObjectsRequest(bucket="files", prefix="p/", delimiter="/"))
    assert [o.ref.key for o in page.objects] == ["p/a.txt", "p/b.txt"]
    assert list(page.common_prefixes) == ["p/sub/"]
    assert (page.next_continuation_token, page.has_more) == ("", False)

    source, copy = ref("files", "p/a.txt"), ref("files", "p/copy.txt")
    copied = s3.copy_object(s3_pb2.CopyObjectRequest(source=source, destination=copy)).meta
    assert (copied.ref.key, copied.etag, copied.size) == ("p/copy.txt", X_ETAG, 1)
    refused = s3_pb2.CopyObjectRequest(
        source=source, destination=ref("files", "p/copy2.txt"), if_match="wrong", if_none_match="*"
    )
    assert status(lambda: s3.copy_object(refused)) == PRECONDITION
    nope = s3_pb2.CopyObjectRequest(source=ref("files", "nope"), destination=ref("files", "x"))
    assert status(lambda: s3.copy_object(nope)) == NOT_FOUND

    s3.delete_object(s3_pb2.DeleteObjectRequest(ref=copy))
    s3.delete_object(s3_pb2.DeleteObjectRequest(ref=copy))  # missing: still no error
    assert status(lambda: s3.head_object(s3_pb2.HeadObjectRequest(ref=copy))) == NOT_FOUND


def test_golden_presign_and_access_urls(
    s3_server: S3ServiceHandle, s3: S3Client, s3_access: S3ObjectAccessClient
) -> None:
    big = ref("docs", "big.bin")
    put(s3, big, PAYLOAD)
    now = time.time()

    plain = s3.presign_object(s3_pb2.PresignObjectRequest(ref=big))
    assert plain.url.startswith(s3_server.http_base_url + "/s3/docs/big.bin?")
    assert plain.method == s3_pb2.PRESIGN_METHOD_GET
    assert now + 900 - 2 <= plain.expires_at.seconds <= now + 900 + 2
    assert dict(plain.headers) == {}

    upload = s3.presign_object(
        s3_pb2.PresignObjectRequest(
            ref=big,
            method=s3_pb2.PRESIGN_METHOD_PUT,
            expires_seconds=90,
            content_type="text/plain",
            content_disposition="attachment",
            headers={"x-b": "2", "x-a": "1"},
        )
    )
    assert upload.method == s3_pb2.PRESIGN_METHOD_PUT
    assert now + 90 - 2 <= upload.expires_at.seconds <= now + 90 + 2
    assert dict(upload.headers) == {"x-a": "1", "x-b": "2", "Content-Type": "text/plain"}

    access = s3_access.create_object_access_url(
        s3_pb2.CreateObjectAccessURLRequest(
            ref=big, method=s3_pb2.PRESIGN_METHOD_GET, expires_seconds=300
        )
    )
    assert access.url.startswith(s3_server.http_base_url + "/api/v1/s3/object-access/")
    assert access.method == s3_pb2.PRESIGN_METHOD_GET
    assert now + 300 - 2 <= access.expires_at.seconds <= now + 300 + 2
    default = s3_access.create_object_access_url(s3_pb2.CreateObjectAccessURLRequest(ref=big))
    assert default.method == s3_pb2.PRESIGN_METHOD_GET
    # Expiry is capped at 24 hours.
    capped = s3_access.create_object_access_url(
        s3_pb2.CreateObjectAccessURLRequest(ref=big, expires_seconds=10**9)
    )
    assert capped.expires_at.seconds <= time.time() + 86400 + 2

    no_key = s3_pb2.CreateObjectAccessURLRequest(ref=ref("docs", ""))
    assert status(lambda: s3_access.create_object_access_url(no_key)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "s3 object key is required",
    )
    no_bucket = s3_pb2.PresignObjectRequest(ref=ref(" ", "k"))
    assert status(lambda: s3.presign_object(no_bucket)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "s3 object bucket is required",
    )
    odd = s3_pb2.PresignObjectRequest(ref=big, method=7)  # type: ignore[arg-type]
    assert status(lambda: s3.presign_object(odd))[0] == grpc.StatusCode.FAILED_PRECONDITION


# -- streaming, memory, cancellation ---------------------------------------------------------


def test_64_mib_round_trip_keeps_memory_bounded(s3_server: S3ServiceHandle, s3: S3Client) -> None:
    size = 64 * 1024 * 1024
    block = bytes(range(256)) * 256  # 64 KiB
    target = ref("big", "64mib.bin")
    expected = hashlib.sha256()
    for _ in range(size // CHUNK):
        expected.update(block)

    tracemalloc.start()
    try:
        meta = s3.write_object(frames(target, (block for _ in range(size // CHUNK))), timeout=60)
        got = hashlib.sha256()
        total = frames_seen = 0
        stream = s3.read_object(s3_pb2.ReadObjectRequest(ref=target), timeout=60)
        first = next(stream)
        for message in stream:
            assert len(message.data) <= CHUNK
            got.update(message.data)
            total += len(message.data)
            frames_seen += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert meta.meta.size == size and meta.meta.etag == expected.hexdigest()
    assert first.meta.size == size
    assert (total, frames_seen, got.hexdigest()) == (size, size // CHUNK, expected.hexdigest())
    # Client and service share this process; neither may hold the object in memory.
    assert peak < 8 * 1024 * 1024, f"peak Python allocations {peak} bytes"


def test_abandoned_read_stream_is_cancelled(s3_server: S3ServiceHandle, s3: S3Client) -> None:
    target = ref("b", "16mib")
    block = b"z" * CHUNK
    s3.write_object(frames(target, (block for _ in range(256))), timeout=30)
    service = s3_server.service

    stream = s3.read_object(s3_pb2.ReadObjectRequest(ref=target), timeout=30)
    assert next(stream).HasField("meta")
    assert len(next(stream).data) == CHUNK
    # 16 MiB is more than flow control lets the service push ahead: it is still streaming.
    assert service.active_reads == 1
    stream.cancel()
    deadline = time.monotonic() + 5
    while service.active_reads and time.monotonic() < deadline:
        time.sleep(0.01)
    assert service.active_reads == 0
    with pytest.raises(RPCError) as info:
        next(stream)
    assert info.value.code == grpc.StatusCode.CANCELLED

    # Leaving a stream's context manager cancels too; the service keeps serving.
    with s3.read_object(s3_pb2.ReadObjectRequest(ref=target), timeout=30) as again:
        next(again)
        next(again)
    deadline = time.monotonic() + 5
    while service.active_reads and time.monotonic() < deadline:
        time.sleep(0.01)
    assert service.active_reads == 0
    assert s3.head_object(s3_pb2.HeadObjectRequest(ref=target)).meta.size == 256 * CHUNK


def test_readers_keep_their_snapshot(s3: S3Client) -> None:
    target = ref("snap", "obj")
    s3.write_object(frames(target, (b"1" * CHUNK for _ in range(128))), timeout=30)
    stream = s3.read_object(s3_pb2.ReadObjectRequest(ref=target), timeout=30)
    assert next(stream).meta.size == 128 * CHUNK
    put(s3, target, b"replaced")
    got = b"".join(m.data for m in stream)
    assert got == b"1" * 128 * CHUNK
    stream = s3.read_object(s3_pb2.ReadObjectRequest(ref=target), timeout=30)
    next(stream)
    s3.delete_object(s3_pb2.DeleteObjectRequest(ref=target))
    assert b"".join(m.data for m in stream) == b"replaced"


def test_concurrent_create_only_writes_admit_one(s3: S3Client) -> None:
    target = ref("race", "obj")
    start = threading.Barrier(8)

    def attempt(n: int) -> str:
        start.wait(timeout=10)
        try:
            return put(s3, target, f"writer {n}".encode() * 1000, if_none_match="*").etag
        except RPCError as err:
            assert (err.code, err.message) == PRECONDITION
            return ""

    with ThreadPoolExecutor(8) as pool:
        etags = list(pool.map(attempt, range(8)))
    winners = [etag for etag in etags if etag]
    assert len(winners) == 1
    assert s3.head_object(s3_pb2.HeadObjectRequest(ref=target)).meta.etag == winners[0]


# -- ranges and conditions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 0, PAYLOAD[:1]),
        (None, 149999 + 20, PAYLOAD),
        (65530, 65545, PAYLOAD[65530:65546]),
        (150000, None, PAYLOAD[150000:]),
        (150020, None, b""),
        (None, 9, PAYLOAD[:10]),
        (7, 7, PAYLOAD[7:8]),
    ],
)
def test_valid_ranges(s3: S3Client, start: int | None, end: int | None, expected: bytes) -> None:
    put(s3, ref("r", "obj"), PAYLOAD)
    rng = s3_pb2.ByteRange()
    if start is not None:
        rng.start = start
    if end is not None:
        rng.end = end
    meta, data = read(s3, s3_pb2.ReadObjectRequest(ref=ref("r", "obj"), range=rng))
    assert meta.size == len(PAYLOAD)
    assert b"".join(data) == expected
    assert all(0 < len(d) <= CHUNK for d in data)


@pytest.mark.parametrize(
    ("start", "end"),
    [(None, 150020), (150021, None), (5, 4), (-1, None), (None, -1), (200000, 200001)],
)
def test_invalid_ranges(s3: S3Client, start: int | None, end: int | None) -> None:
    put(s3, ref("r", "obj"), PAYLOAD)
    rng = s3_pb2.ByteRange()
    if start is not None:
        rng.start = start
    if end is not None:
        rng.end = end
    request = s3_pb2.ReadObjectRequest(ref=ref("r", "obj"), range=rng)
    assert status(lambda: list(s3.read_object(request))) == INVALID_RANGE


def test_range_on_empty_object(s3: S3Client) -> None:
    put(s3, ref("r", "empty"), b"")
    whole = s3_pb2.ReadObjectRequest(ref=ref("r", "empty"), range=s3_pb2.ByteRange(start=0))
    assert read(s3, whole)[1] == []
    first = s3_pb2.ReadObjectRequest(ref=ref("r", "empty"), range=s3_pb2.ByteRange(start=0, end=0))
    assert status(lambda: list(s3.read_object(first))) == INVALID_RANGE


def test_read_conditions(s3: S3Client) -> None:
    target = ref("c", "obj")
    meta = put(s3, target, b"body")
    when = meta_us(meta)

    def outcome(**fields: Any) -> Any:
        request = s3_pb2.ReadObjectRequest(ref=target, **fields)
        try:
            return b"".join(read(s3, request)[1])
        except RPCError as err:
            return (err.code, err.message)

    assert outcome(if_match=meta.etag) == b"body"
    assert outcome(if_match=f'"{meta.etag}", "other"') == b"body"
    assert outcome(if_match="*") == b"body"
    assert outcome(if_match="other") == PRECONDITION
    assert outcome(if_none_match=meta.etag) == PRECONDITION
    assert outcome(if_none_match="*") == PRECONDITION
    assert outcome(if_none_match="other") == b"body"
    assert outcome(if_modified_since=ts_us(when)) == PRECONDITION
    assert outcome(if_modified_since=ts_us(when - 1)) == b"body"
    assert outcome(if_unmodified_since=ts_us(when)) == b"body"
    assert outcome(if_unmodified_since=ts_us(when - 1)) == PRECONDITION
    # An ETag condition takes precedence over the matching date condition (RFC 9110).
    assert outcome(if_match=meta.etag, if_unmodified_since=ts_us(when - 1)) == b"body"
    assert outcome(if_none_match="other", if_modified_since=ts_us(when)) == b"body"
    # Missing objects are NOT_FOUND whatever the conditions say.
    absent = s3_pb2.ReadObjectRequest(ref=ref("c", "absent"), if_match="*")
    assert status(lambda: list(s3.read_object(absent))) == NOT_FOUND


def test_write_conditions(s3: S3Client) -> None:
    target = ref("c", "obj")
    assert status(lambda: put(s3, target, b"v0", if_match="anything")) == PRECONDITION
    v1 = put(s3, target, b"v1", if_none_match="*")
    assert status(lambda: put(s3, target, b"v2", if_none_match="*")) == PRECONDITION
    assert status(lambda: put(s3, target, b"v2", if_none_match=v1.etag)) == PRECONDITION
    assert status(lambda: put(s3, target, b"v2", if_match="stale")) == PRECONDITION
    v2 = put(s3, target, b"v2", if_match=v1.etag)
    v3 = put(s3, target, b"v3", if_none_match="stale")
    assert v2.etag != v1.etag != v3.etag
    assert b"".join(read(s3, s3_pb2.ReadObjectRequest(ref=target))[1]) == b"v3"


def test_write_protocol_errors(s3: S3Client, s3_server: S3ServiceHandle) -> None:
    data_first = iter([s3_pb2.WriteObjectRequest(data=b"x")])
    assert status(lambda: s3.write_object(data_first)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "first message must be WriteObjectOpen",
    )
    assert status(lambda: s3.write_object(iter([])))[0] == grpc.StatusCode.INVALID_ARGUMENT
    twice = frames(ref("w", "k"), [])
    two_opens = [*twice, s3_pb2.WriteObjectRequest(open=s3_pb2.WriteObjectOpen())]
    assert status(lambda: s3.write_object(iter(two_opens)))[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert status(lambda: put(s3, ref("w", ""), b"x"))[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert status(lambda: put(s3, ref("", "k"), b"x"))[0] == grpc.StatusCode.INVALID_ARGUMENT
    long_key = ref("w", "k" * 1025)
    assert status(lambda: put(s3, long_key, b"x"))[0] == grpc.StatusCode.INVALID_ARGUMENT
    empty_bucket = s3_pb2.ListObjectsRequest(bucket="")
    assert status(lambda: s3.list_objects(empty_bucket))[0] == grpc.StatusCode.INVALID_ARGUMENT
    # Failed uploads leave no files behind.
    blobs = s3_server.service.root / "blobs"
    assert [p for p in blobs.rglob("*") if p.is_file()] == []


def test_keys_never_reach_the_file_system(s3: S3Client, s3_server: S3ServiceHandle) -> None:
    root = s3_server.service.root
    nasty = ["../../escape", "/etc/passwd", "a/../../b", "..", "c:\\x", "dir/", "é/ü"]
    for key in nasty:
        put(s3, ref("../bucket", key), key.encode())
    for key in nasty:
        _, data = read(s3, s3_pb2.ReadObjectRequest(ref=ref("../bucket", key)))
        assert b"".join(data) == key.encode()
    files = {p.relative_to(root).parts[0] for p in root.rglob("*")}
    assert files <= {"blobs", "lock", "index.sqlite3", "index.sqlite3-wal", "index.sqlite3-shm"}
    assert not (root.parent / "escape").exists()
    page = s3.list_objects(s3_pb2.ListObjectsRequest(bucket="../bucket"))
    assert [o.ref.key for o in page.objects] == sorted(nasty, key=lambda k: k.encode())


# -- listing ---------------------------------------------------------------------------------


def expected_listing(keys: list[str], prefix: str, delimiter: str) -> list[str]:
    """Every entry of a full listing, prefixes marked with a trailing '#'."""
    out: list[str] = []
    for key in sorted(keys, key=lambda k: k.encode()):
        if not key.startswith(prefix):
            continue
        pos = key.find(delimiter, len(prefix)) if delimiter else -1
        entry = key if pos < 0 else key[: pos + len(delimiter)] + "#"
        if entry not in out:
            out.append(entry)
    return out


def walk(s3: S3Client, bucket: str, prefix: str, delimiter: str, max_keys: int) -> list[str]:
    entries: list[str] = []
    token = ""
    for _ in range(100):
        page = s3.list_objects(
            s3_pb2.ListObjectsRequest(
                bucket=bucket,
                prefix=prefix,
                delimiter=delimiter,
                continuation_token=token,
                max_keys=max_keys,
            )
        )
        got = [o.ref.key for o in page.objects] + [p + "#" for p in page.common_prefixes]
        assert len(got) <= max_keys
        entries += sorted(got, key=lambda e: e.rstrip("#").encode())
        if not page.has_more:
            assert page.next_continuation_token == ""
            return entries
        assert page.next_continuation_token
        token = page.next_continuation_token
    raise AssertionError("listing did not end")


KEYS = [
    "a.txt",
    "b/1",
    "b/2",
    "b/3/x",
    "b/3/y",
    "b/4",
    "c/1",
    "c/2/z",
    "d",
    "e/",
    "e/f",
    "zz",
    "é/1",
    "\U0001f600",
    "b0",
    "b/",
]


@pytest.mark.parametrize("max_keys", [1, 2, 3, 1000])
@pytest.mark.parametrize(("prefix", "delimiter"), [("", ""), ("", "/"), ("b/", "/"), ("b", "/")])
def test_list_pagination(
    s3_channel: grpc.Channel, max_keys: int, prefix: str, delimiter: str
) -> None:
    s3 = S3Client(s3_channel)
    bucket = f"list-{max_keys}-{prefix}-{delimiter or 'none'}"
    for key in KEYS:
        put(s3, ref(bucket, key), b"x")
    put(s3, ref("other-bucket", "b/1"), b"x")
    assert walk(s3, bucket, prefix, delimiter, max_keys) == expected_listing(
        KEYS, prefix, delimiter
    )


def test_list_groups_across_batches(s3: S3Client) -> None:
    keys = [f"loose{i:02d}" for i in range(40)] + [f"g{i % 3}/{i:02d}" for i in range(45)]
    for key in keys:
        put(s3, ref("batches", key), b"")
    for max_keys in (7, 1000):
        assert walk(s3, "batches", "", "/", max_keys) == expected_listing(keys, "", "/")
    assert walk(s3, "batches", "g1/", "/", 4) == expected_listing(keys, "g1/", "/")


def test_list_start_after_defaults_and_caps(s3: S3Client) -> None:
    for i in range(1005):
        put(s3, ref("many", f"k{i:04d}"), b"")
    page = s3.list_objects(s3_pb2.ListObjectsRequest(bucket="many"))
    assert len(page.objects) == 1000 and page.has_more
    assert page.next_continuation_token == "k0999"
    capped = s3.list_objects(s3_pb2.ListObjectsRequest(bucket="many", max_keys=5000))
    assert len(capped.objects) == 1000
    after = s3.list_objects(s3_pb2.ListObjectsRequest(bucket="many", start_after="k1001"))
    assert [o.ref.key for o in after.objects] == ["k1002", "k1003", "k1004"]
    assert not after.has_more
    unknown = s3.list_objects(s3_pb2.ListObjectsRequest(bucket="nothing-here"))
    assert (list(unknown.objects), unknown.has_more) == ([], False)


# -- copy --------------------------------------------------------------------------------------


def test_copy_keeps_headers_and_survives_source_delete(s3: S3Client) -> None:
    source = ref("src", "obj")
    original = put(s3, source, PAYLOAD, content_type="image/png", metadata={"m": "1"})
    time.sleep(0.002)
    dest = ref("dst", "obj")
    ok = s3_pb2.CopyObjectRequest(source=source, destination=dest, if_match=original.etag)
    copied = s3.copy_object(ok).meta
    assert (copied.ref.bucket, copied.ref.key) == ("dst", "obj")
    assert (copied.etag, copied.size, copied.content_type) == (original.etag, 150020, "image/png")
    assert dict(copied.metadata) == {"m": "1"}
    assert meta_us(copied) > meta_us(original)

    refused = s3_pb2.CopyObjectRequest(source=source, destination=dest, if_none_match=original.etag)
    assert status(lambda: s3.copy_object(refused)) == PRECONDITION

    # Overwriting the source or deleting it leaves the copy intact.
    put(s3, source, b"new")
    s3.delete_object(s3_pb2.DeleteObjectRequest(ref=source))
    assert b"".join(read(s3, s3_pb2.ReadObjectRequest(ref=dest))[1]) == PAYLOAD
    # Copying onto itself is allowed and refreshes the modification time.
    onto = s3.copy_object(s3_pb2.CopyObjectRequest(source=dest, destination=dest)).meta
    assert onto.etag == original.etag
    assert b"".join(read(s3, s3_pb2.ReadObjectRequest(ref=dest))[1]) == PAYLOAD


# -- HTTP endpoint -----------------------------------------------------------------------------


def presign(s3: S3Client, target: s3_pb2.S3ObjectRef, method: int, **fields: Any) -> str:
    request = s3_pb2.PresignObjectRequest(ref=target, method=method, **fields)  # type: ignore[arg-type]
    return s3.presign_object(request).url


def access_url(client: S3ObjectAccessClient, target: s3_pb2.S3ObjectRef, method: int) -> str:
    request = s3_pb2.CreateObjectAccessURLRequest(ref=target, method=method)  # type: ignore[arg-type]
    return client.create_object_access_url(request).url


def test_presigned_get_head_put_delete(s3: S3Client) -> None:
    target = ref("web", "dir/file.bin")
    meta = put(s3, target, PAYLOAD, content_type="application/x-test", metadata={"who": "me"})

    code, headers, body = http("GET", presign(s3, target, s3_pb2.PRESIGN_METHOD_GET))
    assert (code, body) == (200, PAYLOAD)
    assert headers["ETag"] == f'"{meta.etag}"'
    assert headers["Content-Type"] == "application/x-test"
    assert headers["x-amz-meta-who"] == "me"

    url = presign(s3, target, s3_pb2.PRESIGN_METHOD_GET)
    code, headers, body = http("GET", url, headers={"Range": "bytes=65530-65545"})
    assert (code, body) == (206, PAYLOAD[65530:65546])
    assert headers["Content-Range"] == "bytes 65530-65545/150020"
    code, _, body = http("GET", url, headers={"Range": "bytes=-4"})
    assert (code, body) == (206, b"tail")
    code, _, body = http("GET", url, headers={"Range": "bytes=150000-999999"})
    assert (code, body) == (206, PAYLOAD[150000:])
    code, headers, _ = http("GET", url, headers={"Range": "bytes=200000-"})
    assert (code, headers["Content-Range"]) == (416, "bytes */150020")
    assert http("GET", url, headers={"Range": "bytes=150020-"})[0] == 416
    code, _, body = http("GET", url, headers={"Range": "bytes=1-2,5-6"})  # ignored
    assert (code, len(body)) == (200, 150020)
    code, _, _ = http("GET", url, headers={"If-None-Match": f'"{meta.etag}"'})
    assert code == 304
    code, _, _ = http("GET", url, headers={"If-Match": '"nope"'})
    assert code == 412
    last_modified = formatdate(meta.last_modified.seconds, usegmt=True)
    code, _, _ = http("GET", url, headers={"If-Modified-Since": last_modified})
    assert code == 304

    code, headers, body = http("HEAD", presign(s3, target, s3_pb2.PRESIGN_METHOD_HEAD))
    assert (code, body, headers["Content-Length"]) == (200, b"", "150020")

    upload = presign(s3, ref("web", "up.txt"), s3_pb2.PRESIGN_METHOD_PUT, content_type="text/plain")
    code, _, _ = http("PUT", upload, b"hello", {"Content-Type": "text/html"})
    assert code == 403
    code, headers, _ = http("PUT", upload, b"hello", {"Content-Type": "text/plain"})
    assert code == 200
    stored = s3.head_object(s3_pb2.HeadObjectRequest(ref=ref("web", "up.txt"))).meta
    assert (stored.size, stored.content_type) == (5, "text/plain")
    assert headers["ETag"] == f'"{stored.etag}"'
    # Conditional PUT: create-only.
    create_only = {"Content-Type": "text/plain", "If-None-Match": "*"}
    assert http("PUT", upload, b"again", create_only)[0] == 412

    big_upload = presign(s3, ref("web", "big"), s3_pb2.PRESIGN_METHOD_PUT)
    assert http("PUT", big_upload, PAYLOAD * 3)[0] == 200
    assert s3.head_object(s3_pb2.HeadObjectRequest(ref=ref("web", "big"))).meta.size == 450060

    removal = presign(s3, target, s3_pb2.PRESIGN_METHOD_DELETE)
    assert http("DELETE", removal)[0] == 204
    assert http("DELETE", removal)[0] == 204
    assert status(lambda: s3.head_object(s3_pb2.HeadObjectRequest(ref=target))) == NOT_FOUND
    assert http("GET", url)[0] == 404


def test_urls_refuse_tampering_other_methods_and_expiry(
    s3: S3Client, s3_access: S3ObjectAccessClient, s3_server: S3ServiceHandle
) -> None:
    put(s3, ref("web", "a"), b"secret-a")
    put(s3, ref("web", "b"), b"secret-b")
    url = presign(s3, ref("web", "a"), s3_pb2.PRESIGN_METHOD_GET)
    assert http("GET", url)[2] == b"secret-a"
    assert http("PUT", url, b"x")[0] == 403  # signed for GET only
    assert http("DELETE", url)[0] == 403
    assert http("GET", url.replace("/web/a?", "/web/b?"))[0] == 403
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    later = {**query, "X-Gestalt-Expires": str(int(query["X-Gestalt-Expires"]) + 3600)}
    assert http("GET", parts._replace(query=urllib.parse.urlencode(later)).geturl())[0] == 403
    as_put = {**query, "X-Gestalt-Method": "PUT"}
    resigned = parts._replace(query=urllib.parse.urlencode(as_put)).geturl()
    assert http("PUT", resigned, b"x")[0] == 403
    flipped = query["X-Gestalt-Signature"]
    flipped = ("0" if flipped[0] != "0" else "1") + flipped[1:]
    forged = {**query, "X-Gestalt-Signature": flipped}
    assert http("GET", parts._replace(query=urllib.parse.urlencode(forged)).geturl())[0] == 403
    assert http("GET", parts._replace(query="").geturl())[0] == 403
    assert http("GET", s3_server.http_base_url + "/elsewhere")[0] == 404

    token_url = access_url(s3_access, ref("web", "a"), s3_pb2.PRESIGN_METHOD_GET)
    assert http("GET", token_url)[2] == b"secret-a"
    assert http("HEAD", token_url)[0] == 403
    prefix, token = token_url.rsplit("/", 1)
    payload, signature = token.split(".")
    assert http("GET", f"{prefix}/{payload}x.{signature}")[0] == 403
    assert http("GET", f"{prefix}/{payload}")[0] == 403
    assert http("GET", f"{prefix}/{payload}.{signature[::-1]}")[0] == 403

    # Required headers are part of the grant.
    guarded = s3.presign_object(
        s3_pb2.PresignObjectRequest(ref=ref("web", "a"), headers={"X-Token": "t1"})
    )
    assert dict(guarded.headers) == {"X-Token": "t1"}
    assert http("GET", guarded.url)[0] == 403
    assert http("GET", guarded.url, headers={"X-Token": "t2"})[0] == 403
    assert http("GET", guarded.url, headers={"X-Token": "t1"})[0] == 200

    short = s3.presign_object(s3_pb2.PresignObjectRequest(ref=ref("web", "a"), expires_seconds=1))
    assert http("GET", short.url)[0] == 200
    time.sleep(max(0.0, short.expires_at.seconds + 1 - time.time()) + 0.05)
    assert http("GET", short.url)[0] == 403


def test_access_url_put_and_delete(s3: S3Client, s3_access: S3ObjectAccessClient) -> None:
    target = ref("acc", "x/y z.txt")
    upload = access_url(s3_access, target, s3_pb2.PRESIGN_METHOD_PUT)
    code, _, _ = http(
        "PUT", upload, b"via token", {"Content-Type": "text/plain", "x-amz-meta-k": "v"}
    )
    assert code == 200
    meta = s3.head_object(s3_pb2.HeadObjectRequest(ref=target)).meta
    assert (meta.size, meta.content_type, dict(meta.metadata)) == (9, "text/plain", {"k": "v"})
    assert http("DELETE", access_url(s3_access, target, s3_pb2.PRESIGN_METHOD_DELETE))[0] == 204
    assert status(lambda: s3.head_object(s3_pb2.HeadObjectRequest(ref=target))) == NOT_FOUND


# -- persistence and lifecycle -----------------------------------------------------------------


def test_data_survives_restart(tmp_path: Path) -> None:
    root = tmp_path / "data"
    target = ref("keep", "me")
    with serve_s3(tmp_path / "one.sock", root=root) as first:
        channel = grpc.insecure_channel(first.target)
        written = put(S3Client(channel), target, PAYLOAD, content_type="a/b", metadata={"x": "1"})
        channel.close()
    # Leftovers of a crash between rename and commit, or mid-write, are swept at start.
    stray = root / "blobs" / "ff"
    stray.mkdir(exist_ok=True)
    (stray / ("ff" + "0" * 30 + ".tmp")).write_bytes(b"partial")
    (stray / ("ff" + "1" * 30)).write_bytes(b"orphan")
    with serve_s3(tmp_path / "two.sock", root=root) as second:
        channel = grpc.insecure_channel(second.target)
        s3 = S3Client(channel)
        meta, data = read(s3, s3_pb2.ReadObjectRequest(ref=target))
        assert meta == written
        assert b"".join(data) == PAYLOAD
        channel.close()
    assert not (stray / ("ff" + "0" * 30 + ".tmp")).exists()
    assert not (stray / ("ff" + "1" * 30)).exists()


def test_one_service_per_root(tmp_path: Path) -> None:
    with S3Service(tmp_path / "shared"), pytest.raises(RuntimeError, match="already used"):
        S3Service(tmp_path / "shared")
    with S3Service(tmp_path / "shared") as again:  # released by close()
        assert again.root == tmp_path / "shared"


def test_temporary_root_is_removed_and_stop_is_idempotent(tmp_path: Path) -> None:
    handle = serve_s3(tmp_path / "t.sock")
    root = handle.service.root
    channel = grpc.insecure_channel(handle.target)
    put(S3Client(channel), ref("t", "k"), b"v")
    channel.close()
    assert handle.socket_path is not None
    assert root.is_dir() and handle.socket_path.exists()
    handle.stop()
    handle.stop()
    assert not root.exists()
    assert not handle.socket_path.exists()
    with pytest.raises(RuntimeError):
        handle.service.http_base_url  # noqa: B018


def test_serves_on_an_aio_server(tmp_path: Path) -> None:
    async def scenario() -> None:
        with S3Service(tmp_path / "aio") as service:
            server = grpc.aio.server()
            service.add_to_server(server)
            server.add_insecure_port(f"unix:{tmp_path / 'aio.sock'}")
            await server.start()
            try:
                async with grpc.aio.insecure_channel(f"unix:{tmp_path / 'aio.sock'}") as channel:
                    client = AsyncS3Client(channel)
                    target = ref("aio", "obj")
                    written = await client.write_object(frames(target, sliced(PAYLOAD)), timeout=10)
                    assert written.meta.etag == PAYLOAD_ETAG
                    stream = client.read_object(s3_pb2.ReadObjectRequest(ref=target), timeout=10)
                    got = [m async for m in stream]
                    assert got[0].meta.size == len(PAYLOAD)
                    assert b"".join(m.data for m in got[1:]) == PAYLOAD
                    with pytest.raises(RPCError) as info:
                        await client.head_object(
                            s3_pb2.HeadObjectRequest(ref=ref("aio", "none")), timeout=10
                        )
                    assert (info.value.code, info.value.message) == NOT_FOUND
            finally:
                await server.stop(None)

    asyncio.run(asyncio.wait_for(scenario(), timeout=30))


def test_bad_arguments_to_serve(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        serve_s3(tmp_path / "x.sock", max_workers=0)
    with pytest.raises(RuntimeError):
        serve_s3(tmp_path / "no-such-dir" / "x.sock")


def test_handle_exposes_targets(s3_server: S3ServiceHandle) -> None:
    assert s3_server.target == f"unix:{s3_server.socket_path}"
    assert s3_server.socket_path is not None and s3_server.socket_path.is_absolute()
    assert s3_server.http_base_url.startswith("http://127.0.0.1:")
