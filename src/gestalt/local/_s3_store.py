"""Object storage on a local directory for the embedded S3 service.

Layout under the root directory::

    lock                 held (flock) while a store has the directory open
    index.sqlite3        one row per object: bucket, key, size, etag, last-modified,
                         content headers, user metadata and the name of its blob file
    blobs/<xx>/<name>    object bodies; <name> is a random hex id, <xx> its first two
                         characters (keeps directories small)

Bucket names and keys never become file names, so no key (``../x``, absolute paths,
NUL-free oddities) can reach outside the root. Blobs are immutable once written: a write
streams into ``<name>.tmp`` beside its final place, fsyncs it, renames it with
:func:`os.replace` and only then points the index row at it inside one SQLite
transaction that also re-checks the caller's conditions. Replaced or deleted blobs are
unlinked after the commit; readers that already opened one keep reading their snapshot.
Leftover ``.tmp`` files and blobs no row points at (a crash between rename and commit)
are removed when the store opens.

The store only ever acts on what it created itself: blob names read back from the index
must follow its naming scheme (32 lower-case hex digits), every folder on a blob's path must
be a real directory under the root (never a symlink) and blob files are opened without
following symlinks. Anything else found in the folder or the index (a planted symlink, a
row naming ``../x``) is reported in one log line and left alone; a read of such an object
fails with ``INTERNAL``. Folders are created 0700 and files 0600 whatever the umask.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import stat
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import grpc

from gestalt.local._files import FILE_MODE, lock_exclusive, private_dir, private_file

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_MAX_KEYS",
    "Conditions",
    "ListResult",
    "LocalObjectStore",
    "ObjectHeaders",
    "ObjectReader",
    "RangeRequest",
    "S3ServiceError",
    "StoredObject",
    "check_header_fields",
    "has_control",
]

#: Body bytes per ReadObject frame and per file read, as the host forwards them.
CHUNK_SIZE = 64 * 1024
#: Page size when a listing asks for zero or fewer keys; also the largest page served.
DEFAULT_MAX_KEYS = 1000
#: Longest key accepted, in UTF-8 bytes (the S3 limit).
MAX_KEY_BYTES = 1024

_log = logging.getLogger("gestalt.local.s3")

#: Names of blob files the store creates (``uuid4().hex``) and of their folders.
_BLOB_NAME = re.compile(r"[0-9a-f]{32}")
_BLOB_FOLDER = re.compile(r"[0-9a-f]{2}")

_NOT_FOUND = "s3: not found"
_PRECONDITION = "s3: precondition failed"
_INVALID_RANGE = "s3: invalid range"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    blob TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    last_modified_us INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    cache_control TEXT NOT NULL,
    content_disposition TEXT NOT NULL,
    content_encoding TEXT NOT NULL,
    content_language TEXT NOT NULL,
    metadata TEXT NOT NULL,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID
"""
_COLUMNS = (
    "bucket, key, blob, size, etag, last_modified_us, content_type, cache_control, "
    "content_disposition, content_encoding, content_language, metadata"
)


class S3ServiceError(Exception):
    """A request the store refuses, with the gRPC status and message the host would send.

    ``not_modified`` marks precondition failures caused by ``if_none_match`` or
    ``if_modified_since`` (HTTP answers those with 304 on reads); ``size`` is the object
    size for invalid ranges (HTTP reports it in ``Content-Range``).
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        not_modified: bool = False,
        size: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.not_modified = not_modified
        self.size = size


@dataclass(frozen=True, slots=True)
class ObjectHeaders:
    """Content headers and user metadata stored with an object."""

    content_type: str = ""
    cache_control: str = ""
    content_disposition: str = ""
    content_encoding: str = ""
    content_language: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One object as the index describes it (``last_modified_us``: µs since the epoch)."""

    bucket: str
    key: str
    size: int
    etag: str
    last_modified_us: int
    headers: ObjectHeaders
    blob: str


@dataclass(frozen=True, slots=True)
class Conditions:
    """Request conditions; empty strings and ``None`` mean "no condition".

    Times are microseconds since the epoch. Evaluation follows RFC 9110 section 13.2.2:
    ``if_match`` replaces ``if_unmodified_since`` and ``if_none_match`` replaces
    ``if_modified_since`` when both are given.
    """

    if_match: str = ""
    if_none_match: str = ""
    if_modified_since_us: int | None = None
    if_unmodified_since_us: int | None = None


@dataclass(frozen=True, slots=True)
class RangeRequest:
    """Requested bytes: inclusive ``start``/``end``, or the last ``suffix`` bytes.

    With ``clamp`` an ``end`` past the object is cut to its last byte (HTTP ranges);
    without it such a range is invalid, as on the host's backend.
    """

    start: int | None = None
    end: int | None = None
    suffix: int | None = None
    clamp: bool = False


@dataclass(frozen=True, slots=True)
class ListResult:
    """One page of a listing; ``next_token`` is the last key or common prefix returned."""

    objects: list[StoredObject]
    common_prefixes: list[str]
    next_token: str
    has_more: bool


class ObjectReader:
    """An open object body limited to the requested bytes; close it when done."""

    def __init__(self, obj: StoredObject, handle: BinaryIO, offset: int, length: int) -> None:
        self.obj = obj
        self.offset = offset
        self.length = length
        self._handle = handle

    def chunks(self, size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The selected bytes in pieces of at most ``size`` bytes."""
        remaining = self.length
        self._handle.seek(self.offset)
        while remaining > 0:
            data = self._handle.read(min(size, remaining))
            if not data:
                raise OSError(f"s3: blob of {self.obj.bucket}/{self.obj.key} is truncated")
            remaining -= len(data)
            yield data

    def close(self) -> None:
        """Release the file handle."""
        self._handle.close()

    def __enter__(self) -> ObjectReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fail(code: grpc.StatusCode, message: str) -> S3ServiceError:
    return S3ServiceError(code, message)


def _corrupt(obj: StoredObject) -> S3ServiceError:
    return _fail(
        grpc.StatusCode.INTERNAL,
        f"s3: the stored body of {obj.bucket}/{obj.key} is missing or damaged",
    )


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character (C0, including CR and LF, or DEL)."""
    return any(ord(char) < 0x20 or ord(char) == 0x7F for char in text)


def check_header_fields(fields: Mapping[str, str], metadata: Mapping[str, str]) -> None:
    """``INVALID_ARGUMENT`` naming the field when a header value or metadata entry holds a
    control character (CR and LF included), since it would end up in an HTTP header."""
    for name, value in fields.items():
        if has_control(value):
            raise S3ServiceError(
                grpc.StatusCode.INVALID_ARGUMENT, f"s3: {name} must not contain control characters"
            )
    for key, value in metadata.items():
        if not key or has_control(key):
            raise S3ServiceError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"s3: metadata key {key!r} is empty or contains control characters",
            )
        if has_control(value):
            raise S3ServiceError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"s3: metadata value of {key!r} must not contain control characters",
            )


def validate_ref(bucket: str, key: str) -> None:
    """Reject empty or unusable bucket names and keys with ``INVALID_ARGUMENT``."""
    if not bucket.strip():
        raise _fail(grpc.StatusCode.INVALID_ARGUMENT, "s3: object bucket is required")
    if not key:
        raise _fail(grpc.StatusCode.INVALID_ARGUMENT, "s3: object key is required")
    if "\x00" in bucket or "\x00" in key:
        raise _fail(grpc.StatusCode.INVALID_ARGUMENT, "s3: bucket and key must not contain NUL")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise _fail(
            grpc.StatusCode.INVALID_ARGUMENT, f"s3: object key longer than {MAX_KEY_BYTES} bytes"
        )


def _etag_list(spec: str) -> list[str]:
    """Entity tags of a condition: comma separated, quotes and weak markers dropped."""
    tags = []
    for part in spec.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        tags.append(tag.strip('"'))
    return [tag for tag in tags if tag]


def _etag_matches(spec: str, etag: str) -> bool:
    tags = _etag_list(spec)
    return "*" in tags or etag in tags


def check_conditions(obj: StoredObject | None, cond: Conditions) -> None:
    """Raise ``FAILED_PRECONDITION`` unless ``obj`` (``None``: absent) meets ``cond``."""
    if cond.if_match:
        if obj is None or not _etag_matches(cond.if_match, obj.etag):
            raise _fail(grpc.StatusCode.FAILED_PRECONDITION, _PRECONDITION)
    elif (
        cond.if_unmodified_since_us is not None
        and obj is not None
        and obj.last_modified_us > cond.if_unmodified_since_us
    ):
        raise _fail(grpc.StatusCode.FAILED_PRECONDITION, _PRECONDITION)
    if cond.if_none_match:
        if obj is not None and _etag_matches(cond.if_none_match, obj.etag):
            raise S3ServiceError(
                grpc.StatusCode.FAILED_PRECONDITION, _PRECONDITION, not_modified=True
            )
    elif (
        cond.if_modified_since_us is not None
        and obj is not None
        and obj.last_modified_us <= cond.if_modified_since_us
    ):
        raise S3ServiceError(grpc.StatusCode.FAILED_PRECONDITION, _PRECONDITION, not_modified=True)


def resolve_range(size: int, rng: RangeRequest | None) -> tuple[int, int]:
    """``(offset, length)`` of the bytes ``rng`` selects, or ``OUT_OF_RANGE``.

    No range selects everything. A start alone may equal the size (an empty tail); an
    explicit end must lie inside the object (unless clamped) and not before the start.
    """
    if rng is None:
        return 0, size
    invalid = S3ServiceError(grpc.StatusCode.OUT_OF_RANGE, _INVALID_RANGE, size=size)
    if rng.suffix is not None:
        if rng.suffix <= 0 and size > 0:
            raise invalid
        length = min(max(rng.suffix, 0), size)
        return size - length, length
    start = rng.start
    end = rng.end
    if (start is not None and start < 0) or (end is not None and end < 0):
        raise invalid
    first = start or 0
    if end is None:
        if first > size:
            raise invalid
        return first, size - first
    if end >= size:
        if not rng.clamp or size == 0:
            raise invalid
        end = size - 1
    if first > end:
        raise invalid
    return first, end - first + 1


def _successor(prefix: str) -> str | None:
    """The smallest string above every string starting with ``prefix`` (None: none)."""
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return None
    bump = last + 1
    if 0xD800 <= bump <= 0xDFFF:  # surrogates cannot appear in keys; skip past them
        bump = 0xE000
    return prefix[:-1] + chr(bump)


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _lock_root(root: Path) -> BinaryIO:
    """Hold an exclusive lock on ``root`` (its sweep would delete another store's uploads)."""
    return lock_exclusive(root / "lock", f"{root} (local S3 store)")


class _CorruptEntry(Exception):
    """An index row or file the store did not create; the message says which."""


def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _create_exclusive(path: Path) -> BinaryIO:
    """A new file at ``path`` (0600, never through a symlink) open for writing."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


@contextlib.contextmanager
def _writing(final: Path) -> Iterator[BinaryIO]:
    """A new file that appears at ``final`` whole (synced, then renamed) or not at all."""
    temp = final.with_name(final.name + ".tmp")
    try:
        with _create_exclusive(temp) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _now_us() -> int:
    return time.time_ns() // 1000


class LocalObjectStore:
    """Objects of any number of buckets kept under one root directory (see module doc).

    Thread-safe: index access is serialised by a lock, body transfers run outside it.
    Intended for one process per root at a time.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._blobs = root / "blobs"
        private_dir(root)
        if not _is_real_dir(root / "blobs"):
            if (root / "blobs").is_symlink():
                raise RuntimeError(f"{root / 'blobs'} is a symlink; refusing to use it")
            private_dir(root / "blobs")
        self._real_blobs = self._blobs.resolve()
        self._root_lock = _lock_root(root)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        try:
            db = sqlite3.connect(
                private_file(root / "index.sqlite3"),
                check_same_thread=False,
                isolation_level=None,
            )
            self._db = db
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(_SCHEMA)
            self._sweep()
        except BaseException:
            self.close()
            self._root_lock.close()
            raise

    # -- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Close the index; later calls fail with ``UNAVAILABLE``. Idempotent."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
                self._root_lock.close()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise _fail(grpc.StatusCode.UNAVAILABLE, "s3: the local object store is closed")
        return self._db

    def _sweep(self) -> None:
        """Remove temp files and blobs no index row refers to (left by a crash).

        Only regular files named like the store's blobs, in real folders named like its
        folders, are candidates; anything else is reported and left alone.
        """
        live = {row[0] for row in self._conn().execute("SELECT blob FROM objects")}
        for folder in self._blobs.iterdir():
            if not _BLOB_FOLDER.fullmatch(folder.name) or not _is_real_dir(folder):
                _log.warning("s3 store: ignoring %s, which the store did not create", folder)
                continue
            for path in folder.iterdir():
                name = path.name.removesuffix(".tmp")
                mode = os.lstat(path).st_mode
                if (
                    not _BLOB_NAME.fullmatch(name)
                    or name[:2] != folder.name
                    or not stat.S_ISREG(mode)
                ):
                    _log.warning("s3 store: ignoring %s, which the store did not create", path)
                elif path.name.endswith(".tmp") or name not in live:
                    path.unlink(missing_ok=True)

    # -- rows -----------------------------------------------------------------------------

    def _blob_path(self, name: str) -> Path:
        """Where blob ``name`` lives; :class:`_CorruptEntry` unless it is one of ours.

        The name must follow the naming scheme and the path must resolve under the
        blob folder with no symlink on the way.
        """
        if not _BLOB_NAME.fullmatch(name):
            raise _CorruptEntry(f"index names blob {name!r}, which is no blob of this store")
        folder = self._blobs / name[:2]
        path = folder / name
        if folder.exists() and not _is_real_dir(folder):
            raise _CorruptEntry(f"{folder} is not a folder the store created")
        if os.path.realpath(path) != os.path.join(self._real_blobs, name[:2], name):
            raise _CorruptEntry(f"{path} resolves outside {self._blobs}")
        return path

    def _discard_blob(self, obj: StoredObject) -> None:
        """Unlink the blob of a replaced or deleted object (a corrupt entry is only logged)."""
        try:
            path = self._blob_path(obj.blob)
        except _CorruptEntry as exc:
            _log.warning("s3 store: object %s/%s: %s; blob left alone", obj.bucket, obj.key, exc)
            return
        path.unlink(missing_ok=True)

    def _open_blob(self, obj: StoredObject) -> BinaryIO:
        """The object's blob open for reading, never through a symlink."""
        try:
            path = self._blob_path(obj.blob)
        except _CorruptEntry as exc:
            _log.warning("s3 store: object %s/%s: %s", obj.bucket, obj.key, exc)
            raise _corrupt(obj) from None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            _log.warning("s3 store: object %s/%s: blob unreadable: %s", obj.bucket, obj.key, exc)
            raise _corrupt(obj) from None
        return os.fdopen(fd, "rb")

    @staticmethod
    def _row(row: tuple[object, ...]) -> StoredObject:
        (bucket, key, blob, size, etag, modified, ctype, cache, disp, enc, lang, meta) = row
        metadata = {str(k): str(v) for k, v in json.loads(str(meta)).items()}
        return StoredObject(
            bucket=str(bucket),
            key=str(key),
            size=int(str(size)),
            etag=str(etag),
            last_modified_us=int(str(modified)),
            headers=ObjectHeaders(str(ctype), str(cache), str(disp), str(enc), str(lang), metadata),
            blob=str(blob),
        )

    def _get(self, bucket: str, key: str) -> StoredObject | None:
        row = (
            self._conn()
            .execute(f"SELECT {_COLUMNS} FROM objects WHERE bucket = ? AND key = ?", (bucket, key))
            .fetchone()
        )
        return None if row is None else self._row(row)

    def _put(self, obj: StoredObject) -> None:
        h = obj.headers
        self._conn().execute(
            f"INSERT OR REPLACE INTO objects ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                obj.bucket,
                obj.key,
                obj.blob,
                obj.size,
                obj.etag,
                obj.last_modified_us,
                h.content_type,
                h.cache_control,
                h.content_disposition,
                h.content_encoding,
                h.content_language,
                json.dumps(dict(sorted(h.metadata.items()))),
            ),
        )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- operations -----------------------------------------------------------------------

    def head(self, bucket: str, key: str) -> StoredObject:
        """The object's metadata, or ``NOT_FOUND``."""
        validate_ref(bucket, key)
        with self._lock:
            obj = self._get(bucket, key)
        if obj is None:
            raise _fail(grpc.StatusCode.NOT_FOUND, _NOT_FOUND)
        return obj

    def open_read(
        self,
        bucket: str,
        key: str,
        cond: Conditions = Conditions(),
        rng: RangeRequest | None = None,
    ) -> ObjectReader:
        """Open the object's body after checking existence, conditions and the range."""
        validate_ref(bucket, key)
        with self._lock:
            obj = self._get(bucket, key)
            if obj is None:
                raise _fail(grpc.StatusCode.NOT_FOUND, _NOT_FOUND)
            check_conditions(obj, cond)
            offset, length = resolve_range(obj.size, rng)
            # Opened under the lock: a concurrent replace or delete cannot unlink it first.
            handle = self._open_blob(obj)
        return ObjectReader(obj, handle, offset, length)

    def write(
        self,
        bucket: str,
        key: str,
        chunks: Iterable[bytes],
        headers: ObjectHeaders = ObjectHeaders(),
        cond: Conditions = Conditions(),
    ) -> StoredObject:
        """Store the body ``chunks`` yields, atomically replacing any previous object.

        Conditions are checked before the body is consumed (to fail fast) and again at
        commit (so a concurrent writer cannot slip in between).
        """
        validate_ref(bucket, key)
        with self._lock:
            check_conditions(self._get(bucket, key), cond)
        final = self._new_blob()
        name = final.name
        digest = hashlib.sha256()
        size = 0
        with _writing(final) as out:
            for chunk in chunks:
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        _fsync_dir(final.parent)
        obj = StoredObject(
            bucket=bucket,
            key=key,
            size=size,
            etag=digest.hexdigest(),
            last_modified_us=_now_us(),
            headers=headers,
            blob=name,
        )
        return self._commit(obj, cond)

    def _commit(self, obj: StoredObject, cond: Conditions) -> StoredObject:
        try:
            with self._lock:
                with self._transaction():
                    previous = self._get(obj.bucket, obj.key)
                    check_conditions(previous, cond)
                    self._put(obj)
                if previous is not None:
                    self._discard_blob(previous)
        except BaseException:
            self._discard_blob(obj)
            raise
        return obj

    def _new_blob(self) -> Path:
        """The path for a new blob, its folder created (0700) when missing."""
        name = uuid.uuid4().hex
        final = self._blob_path(name)
        if not final.parent.exists():
            private_dir(final.parent)
        return final

    def delete(self, bucket: str, key: str) -> bool:
        """Remove the object; ``False`` if there was none (not an error)."""
        validate_ref(bucket, key)
        with self._lock:
            with self._transaction() as conn:
                previous = self._get(bucket, key)
                conn.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket, key))
            if previous is None:
                return False
            self._discard_blob(previous)
        return True

    def copy(
        self,
        source: tuple[str, str],
        destination: tuple[str, str],
        cond: Conditions = Conditions(),
    ) -> StoredObject:
        """Copy body, headers and metadata; ``cond`` is checked against the source.

        Blobs never change once written, so the copy is a hard link when the file system
        allows it and a streamed copy otherwise.
        """
        validate_ref(*source)
        validate_ref(*destination)
        final = self._new_blob()
        name = final.name
        with self._lock:
            src = self._get(*source)
            if src is None:
                raise _fail(grpc.StatusCode.NOT_FOUND, _NOT_FOUND)
            check_conditions(src, cond)
            # The blob is opened (without following links) first: a hard link is only made
            # to a file the store vouched for.
            handle: BinaryIO | None = self._open_blob(src)
            assert handle is not None
            try:
                os.link(self._blob_path(src.blob), final, follow_symlinks=False)
            except OSError:
                pass
            else:
                handle.close()
                handle = None
        if handle is not None:
            with handle, _writing(final) as out:
                shutil.copyfileobj(handle, out, CHUNK_SIZE)
        _fsync_dir(final.parent)
        obj = StoredObject(
            bucket=destination[0],
            key=destination[1],
            size=src.size,
            etag=src.etag,
            last_modified_us=_now_us(),
            headers=src.headers,
            blob=name,
        )
        return self._commit(obj, Conditions())

    def list(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        after: str = "",
        max_keys: int = 0,
    ) -> ListResult:
        """One page of keys above ``after`` in byte order (UTF-8, like the host).

        With a delimiter, keys sharing ``prefix + <text> + delimiter`` are returned once
        as a common prefix; objects and prefixes both count towards ``max_keys``. The
        returned token resumes after the last entry, skipping the rest of a prefix group.
        """
        if not bucket.strip():
            raise _fail(grpc.StatusCode.INVALID_ARGUMENT, "s3: bucket is required")
        limit = DEFAULT_MAX_KEYS if max_keys <= 0 else min(max_keys, DEFAULT_MAX_KEYS)
        bound, inclusive, skip = after, False, ""
        rest = after[len(prefix) :] if after.startswith(prefix) else ""
        if (
            delimiter
            and rest.endswith(delimiter)
            and rest.find(delimiter) == len(rest) - len(delimiter)
        ):
            # The token is a common prefix: resume past its whole group.
            bound, inclusive, skip = self._past_group(after)
        if prefix > bound:
            bound, inclusive = prefix, True
        entries: list[StoredObject | str] = []
        with self._lock:
            conn = self._conn()
            done = False
            while not done and len(entries) <= limit:
                # One row gives at most one entry; with a delimiter most rows of a batch
                # may fall into a group that is skipped, so batches stay small.
                want = limit + 1 - len(entries)
                batch = min(want, 32) if delimiter else want
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM objects WHERE bucket = ? "
                    f"AND key {'>=' if inclusive else '>'} ? ORDER BY key LIMIT ?",
                    (bucket, bound, batch),
                ).fetchall()
                done = len(rows) < batch
                for row in rows:
                    key = str(row[1])
                    bound, inclusive = key, False
                    if not key.startswith(prefix):
                        done = True
                        break
                    if skip and key.startswith(skip):
                        continue
                    pos = key.find(delimiter, len(prefix)) if delimiter else -1
                    if pos < 0:
                        entries.append(self._row(row))
                    else:
                        group = key[: pos + len(delimiter)]
                        entries.append(group)
                        # Jump past the group with a fresh query instead of scanning it.
                        bound, inclusive, skip = self._past_group(group)
                        done = False
                        break
                    if len(entries) > limit:
                        break
        has_more = len(entries) > limit
        page = entries[:limit]
        last = page[-1] if page else ""
        return ListResult(
            objects=[e for e in page if isinstance(e, StoredObject)],
            common_prefixes=[e for e in page if isinstance(e, str)],
            next_token=(last if isinstance(last, str) else last.key) if has_more else "",
            has_more=has_more,
        )

    @staticmethod
    def _past_group(group: str) -> tuple[str, bool, str]:
        """Where to resume after common prefix ``group``: (bound, inclusive, skip)."""
        above = _successor(group)
        if above is None:
            return group, False, group
        return above, True, ""
