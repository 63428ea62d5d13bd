"""Notes: an integration plugin that uses the host's Cache, IndexedDB and S3 services.

* ``add_note`` writes a note and bumps a per-author counter in one IndexedDB transaction, then
  drops the cached note count;
* ``list_notes`` walks the ``notes`` store with a cursor, newest first, up to ``limit``;
* ``note_count`` answers from the Cache when it can, else counts in IndexedDB and caches it;
* ``attach`` streams a generated attachment of ``size_mib`` MiB to S3 without holding it in
  memory; ``attachment_digest`` streams it back and returns its SHA-256.

The host (or ``gestalt dev``) passes the three services' sockets in ``GESTALT_CACHE_SOCKET``,
``GESTALT_INDEXEDDB_SOCKET`` and ``GESTALT_S3_SOCKET``; the clients find them there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from collections.abc import Iterator

from gestalt import (
    CURSOR_PREV,
    S3,
    AlreadyExistsError,
    Cache,
    Error,
    IndexedDB,
    KeyRange,
    Model,
    ObjectRef,
    ObjectStoreSchema,
    Plugin,
    S3NotFoundError,
    field,
)

plugin = Plugin("notes")
BUCKET = "attachments"
COUNT_KEY = "notes:count"
_clients: dict[str, object] = {}


def db() -> IndexedDB:
    """One IndexedDB client for the process, with the two stores created on first use."""
    client = _clients.get("db")
    if client is None:
        client = IndexedDB()
        for store in ("notes", "authors"):
            with contextlib.suppress(AlreadyExistsError):
                client.create_object_store(store, ObjectStoreSchema())
        _clients["db"] = client
    assert isinstance(client, IndexedDB)
    return client


def cache() -> Cache:
    """One Cache client for the process."""
    client = _clients.setdefault("cache", Cache())
    assert isinstance(client, Cache)
    return client


def s3() -> S3:
    """One S3 client for the process."""
    client = _clients.setdefault("s3", S3())
    assert isinstance(client, S3)
    return client


@plugin.on_close
def close_clients() -> None:
    """Close the clients when the runtime shuts down."""
    for client in _clients.values():
        client.close()  # type: ignore[attr-defined]
    _clients.clear()


class NewNote(Model):
    """A note to store."""

    id: str = field(description="note id, unique")
    author: str = field(description="who wrote it")
    text: str = field(description="the note itself")


class Note(Model):
    """A stored note."""

    id: str
    author: str
    text: str
    created: str


@plugin.operation(title="Add a note")
def add_note(params: NewNote) -> Note:
    """Store the note and count it for its author, atomically."""
    created = dt.datetime.now(dt.UTC).isoformat()
    record = {"id": params.id, "author": params.author, "text": params.text, "created": created}
    try:
        with db().transaction(["notes", "authors"], "readwrite") as tx:
            tx.object_store("notes").add(record)
            authors = tx.object_store("authors")
            # A range lookup answers "no such author" with [] instead of NOT_FOUND, which
            # would end the transaction.
            found = authors.get_all(KeyRange(lower=params.author, upper=params.author))
            count = int(found[0]["count"]) + 1 if found else 1
            authors.put({"id": params.author, "count": count})
    except AlreadyExistsError:
        raise Error(409, f"note {params.id!r} already exists") from None
    cache().delete(COUNT_KEY)
    return Note(**record)


@plugin.operation(method="GET", read_only=True, title="List notes")
def list_notes(limit: int = 10) -> list[Note]:
    """The last ``limit`` notes by id, walking the store backwards with a cursor."""
    found: list[Note] = []
    cursor = db().object_store("notes").open_cursor(direction=CURSOR_PREV)
    with cursor:
        for entry in cursor:
            value = entry.value
            found.append(Note(**{k: str(value[k]) for k in ("id", "author", "text", "created")}))
            if len(found) >= limit:
                break
    return found


@plugin.operation(method="GET", read_only=True, title="Count notes")
def note_count() -> dict[str, object]:
    """The number of notes, from the cache when it is fresh."""
    cached = cache().get(COUNT_KEY)
    if cached is not None:
        return {"count": int(cached), "cached": True}
    count = db().object_store("notes").count()
    cache().set(COUNT_KEY, str(count).encode(), dt.timedelta(minutes=5))
    return {"count": count, "cached": False}


def _blob(size_mib: int) -> Iterator[bytes]:
    """``size_mib`` MiB of deterministic bytes, one MiB at a time."""
    for i in range(size_mib):
        yield hashlib.sha256(str(i).encode()).digest() * (1024 * 1024 // 32)


class Attachment(Model):
    """Which note to attach a generated file to, and how large."""

    note_id: str
    size_mib: int = field(default=1, description="attachment size in MiB (1-256)")


@plugin.operation(title="Attach a generated file")
def attach(params: Attachment) -> dict[str, object]:
    """Stream ``size_mib`` MiB to S3 under the note's id; never held in memory whole."""
    if not 1 <= params.size_mib <= 256:
        raise Error(400, "size_mib must be between 1 and 256")
    meta = s3().write_object(ObjectRef(bucket=BUCKET, key=params.note_id), _blob(params.size_mib))
    return {"key": params.note_id, "size": meta.size, "etag": meta.etag}


@plugin.operation(method="GET", read_only=True, title="Digest of an attachment")
def attachment_digest(note_id: str) -> dict[str, object]:
    """Stream the attachment back and hash it."""
    digest = hashlib.sha256()
    size = 0
    try:
        meta, stream = s3().read_object(ObjectRef(bucket=BUCKET, key=note_id))
    except S3NotFoundError:
        raise Error(404, f"no attachment for note {note_id!r}") from None
    with stream:
        for chunk in stream.iter_chunks():
            digest.update(chunk)
            size += len(chunk)
    return {"key": note_id, "size": size, "sha256": digest.hexdigest(), "etag": meta.etag}
