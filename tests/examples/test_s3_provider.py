"""The S3 provider example: the raw S3 RPCs through the generated client."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from gestalt.gen.support import RPCError
from gestalt.gen.v1 import runtime_pb2, s3_clients, s3_pb2
from tests.examples.conftest import StartExample

BODY = bytes(range(256)) * 800  # 200 KiB: four chunks on the way out


def ref(key: str, bucket: str = "docs") -> s3_pb2.S3ObjectRef:
    """A reference to ``bucket/key``."""
    return s3_pb2.S3ObjectRef(bucket=bucket, key=key)


def upload(
    key: str, data: bytes, frame: int = 50_000, **open_fields: Any
) -> Iterator[s3_pb2.WriteObjectRequest]:
    """The ``write_object`` messages for ``docs/key``: the open header, then data frames."""
    yield s3_pb2.WriteObjectRequest(open=s3_pb2.WriteObjectOpen(ref=ref(key), **open_fields))
    for offset in range(0, len(data), frame):
        yield s3_pb2.WriteObjectRequest(data=data[offset : offset + frame])


@pytest.fixture
def s3(start_example: StartExample) -> s3_clients.S3Client:
    """A client of the S3 example, started in the test's mode."""
    harness = start_example("s3_provider")
    assert isinstance(harness.metadata, runtime_pb2.ProviderIdentity)
    assert harness.metadata.kind == runtime_pb2.PROVIDER_KIND_S3
    return s3_clients.S3Client(harness.channel)


def code_of(call: Callable[[], object]) -> grpc.StatusCode:
    """The status code ``call`` fails with."""
    with pytest.raises(RPCError) as failed:
        call()
    return failed.value.code


def test_write_head_and_read(s3: s3_clients.S3Client) -> None:
    written = s3.write_object(
        upload("a/report.bin", BODY, content_type="application/x-test", metadata={"owner": "ann"}),
        timeout=10,
    ).meta
    assert (written.ref.bucket, written.ref.key, written.size) == (
        "docs",
        "a/report.bin",
        len(BODY),
    )
    head = s3.head_object(s3_pb2.HeadObjectRequest(ref=ref("a/report.bin")), timeout=10).meta
    assert head == written
    assert head.content_type == "application/x-test"
    assert dict(head.metadata) == {"owner": "ann"}
    assert head.etag and head.last_modified.seconds > 0

    chunks = list(s3.read_object(s3_pb2.ReadObjectRequest(ref=ref("a/report.bin")), timeout=10))
    assert chunks[0].WhichOneof("result") == "meta"
    assert chunks[0].meta == head
    data = [c.data for c in chunks[1:]]
    assert all(c.WhichOneof("result") == "data" for c in chunks[1:])
    assert [len(d) for d in data] == [65536, 65536, 65536, len(BODY) - 3 * 65536]
    assert b"".join(data) == BODY


def test_ranges_and_conditions(s3: s3_clients.S3Client) -> None:
    etag = s3.write_object(upload("r", BODY), timeout=10).meta.etag

    def read(**fields: Any) -> bytes:
        """The body ``read_object`` streams for ``r`` with these request fields."""
        request = s3_pb2.ReadObjectRequest(ref=ref("r"), **fields)
        return b"".join(c.data for c in s3.read_object(request, timeout=10))

    assert read(range=s3_pb2.ByteRange(start=10, end=19)) == BODY[10:20]
    assert read(range=s3_pb2.ByteRange(start=len(BODY) - 5)) == BODY[-5:]
    assert read(range=s3_pb2.ByteRange(end=3)) == BODY[:4]
    assert read(if_match=f'"{etag}"') == BODY
    assert read(if_none_match='"other"') == BODY
    for bad in (
        s3_pb2.ByteRange(start=5, end=len(BODY)),
        s3_pb2.ByteRange(start=9, end=3),
        s3_pb2.ByteRange(start=len(BODY) + 1),
    ):
        assert code_of(functools.partial(read, range=bad)) is grpc.StatusCode.OUT_OF_RANGE
    assert code_of(lambda: read(if_match='"other"')) is grpc.StatusCode.FAILED_PRECONDITION
    assert code_of(lambda: read(if_none_match="*")) is grpc.StatusCode.FAILED_PRECONDITION

    def write(**fields: Any) -> object:
        """Overwrite ``r`` with these open fields."""
        return s3.write_object(upload("r", b"new", **fields), timeout=10)

    assert code_of(lambda: write(if_none_match="*")) is grpc.StatusCode.FAILED_PRECONDITION
    assert code_of(lambda: write(if_match='"stale"')) is grpc.StatusCode.FAILED_PRECONDITION
    write(if_match=etag)
    assert read() == b"new"


def test_list_with_prefix_delimiter_and_pages(s3: s3_clients.S3Client) -> None:
    for key in ("a/1", "a/2", "b/x/1", "b/y", "c", "d"):
        s3.write_object(upload(key, key.encode()), timeout=10)
    s3.write_object(
        iter([s3_pb2.WriteObjectRequest(open=s3_pb2.WriteObjectOpen(ref=ref("c", "other")))]),
        timeout=10,
    )

    def page(**fields: Any) -> s3_pb2.ListObjectsResponse:
        """One ``list_objects`` page of bucket ``docs``."""
        return s3.list_objects(s3_pb2.ListObjectsRequest(bucket="docs", **fields), timeout=10)

    everything = page()
    assert [o.ref.key for o in everything.objects] == ["a/1", "a/2", "b/x/1", "b/y", "c", "d"]
    assert not everything.has_more and not everything.next_continuation_token
    assert [o.ref.key for o in page(prefix="b/").objects] == ["b/x/1", "b/y"]
    grouped = page(delimiter="/")
    assert list(grouped.common_prefixes) == ["a/", "b/"]
    assert [o.ref.key for o in grouped.objects] == ["c", "d"]
    nested = page(prefix="b/", delimiter="/")
    assert (list(nested.common_prefixes), [o.ref.key for o in nested.objects]) == (
        ["b/x/"],
        ["b/y"],
    )
    assert [o.ref.key for o in page(start_after="b/y").objects] == ["c", "d"]

    seen: list[str] = []
    token = ""
    while True:
        current = page(delimiter="/", max_keys=1, continuation_token=token)
        seen += list(current.common_prefixes) + [o.ref.key for o in current.objects]
        if not current.has_more:
            break
        token = current.next_continuation_token
    assert seen == ["a/", "b/", "c", "d"]


def test_delete_and_missing_objects(s3: s3_clients.S3Client) -> None:
    s3.write_object(upload("gone", b"x"), timeout=10)
    s3.delete_object(s3_pb2.DeleteObjectRequest(ref=ref("gone")), timeout=10)
    s3.delete_object(s3_pb2.DeleteObjectRequest(ref=ref("gone")), timeout=10)  # no error
    missing = s3_pb2.HeadObjectRequest(ref=ref("gone"))
    assert code_of(lambda: s3.head_object(missing, timeout=10)) is grpc.StatusCode.NOT_FOUND
    read = s3_pb2.ReadObjectRequest(ref=ref("gone"))
    assert code_of(lambda: list(s3.read_object(read, timeout=10))) is grpc.StatusCode.NOT_FOUND


def test_invalid_requests_and_unimplemented_rpcs(s3: s3_clients.S3Client) -> None:
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    data_first = iter([s3_pb2.WriteObjectRequest(data=b"x")])
    assert code_of(lambda: s3.write_object(data_first, timeout=10)) is invalid
    no_key = s3_pb2.HeadObjectRequest(ref=s3_pb2.S3ObjectRef(bucket="docs"))
    assert code_of(lambda: s3.head_object(no_key, timeout=10)) is invalid
    no_bucket = s3_pb2.ListObjectsRequest()
    assert code_of(lambda: s3.list_objects(no_bucket, timeout=10)) is invalid
    copy = s3_pb2.CopyObjectRequest(source=ref("a"), destination=ref("b"))
    assert code_of(lambda: s3.copy_object(copy, timeout=10)) is grpc.StatusCode.UNIMPLEMENTED
    presign = s3_pb2.PresignObjectRequest(ref=ref("a"))
    assert code_of(lambda: s3.presign_object(presign, timeout=10)) is grpc.StatusCode.UNIMPLEMENTED
