"""The ``OpenCursor`` stream of the embedded IndexedDB service (contract section 3.8).

Cursors are live: each move asks the database for the next entry after the current
position, so a cursor sees writes made after it was opened and holds no snapshot in memory.
The database lock is taken per command, never for the life of the cursor.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
from google.protobuf import struct_pb2

from gestalt.gen.v1 import datastore_pb2 as pb
from gestalt.local._indexeddb_access import Gate, client_frames, opening_frame
from gestalt.local._indexeddb_keys import (
    DatastoreError,
    decode_primary,
    encode_key_values,
    record_id,
)
from gestalt.local._indexeddb_model import CursorScan, Row

__all__ = ["serve_cursor"]

_DESCENDING = frozenset({pb.CURSOR_PREV, pb.CURSOR_PREV_UNIQUE})
_UNIQUE = frozenset({pb.CURSOR_NEXT_UNIQUE, pb.CURSOR_PREV_UNIQUE})


def serve_cursor(
    gate: Gate, requests: Iterator[pb.CursorClientMessage], context: grpc.ServicerContext
) -> Iterator[pb.CursorResponse]:
    """Serve one cursor stream: open (acknowledged with ``done: false``), then commands.

    ``next``, ``continue_to_key`` and ``advance`` answer the new entry or ``done: true``;
    ``update`` answers the refreshed entry, ``delete`` ``done: false``; ``close`` or a
    half-close ends the stream with OK. Errors end the stream with their status.
    """
    frames = client_frames(requests)
    first = opening_frame(frames, context, "open", "cursor")
    if first is None:
        return
    spec = first.open
    key_range = spec.range if spec.HasField("range") else None
    if spec.index:
        index, values = spec.index, list(spec.values)
        scan = gate.run(
            context, False, lambda: gate.db.index_scan(spec.store, index, values, key_range)
        )
    else:
        scan = gate.run(context, False, lambda: gate.db.store_scan(spec.store, key_range))
    walk = _Walk(gate, scan, spec, context)
    yield pb.CursorResponse(done=False)
    for frame in frames:
        if frame.WhichOneof("msg") != "command":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the cursor is already open")
        command = frame.command
        which = command.WhichOneof("command")
        if which == "close":
            return
        if which == "next":
            yield walk.step()
        elif which == "advance":
            if command.advance <= 0:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "advance count must be positive")
            yield walk.step(skip=command.advance)
        elif which == "continue_to_key":
            yield walk.step(target=_target(command.continue_to_key.key, context))
        elif which == "delete":
            walk.delete()
            yield pb.CursorResponse(done=False)
        elif which == "update":
            yield walk.update(command.update)
        else:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unknown cursor command")


def _target(key: Any, context: grpc.ServicerContext) -> bytes:
    if not key:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "continue_to_key needs a key")
    try:
        return encode_key_values(key)
    except DatastoreError as exc:
        context.abort(exc.code, exc.message)


class _Walk:
    """Position and moves of one live cursor."""

    __slots__ = ("_context", "_exhausted", "_gate", "_position", "_scan", "_spec")

    def __init__(
        self,
        gate: Gate,
        scan: CursorScan,
        spec: pb.OpenCursorRequest,
        context: grpc.ServicerContext,
    ) -> None:
        self._gate = gate
        self._scan = scan
        self._spec = spec
        self._context = context
        self._position: tuple[bytes, bytes] | None = None
        self._exhausted = False

    def step(self, *, skip: int = 0, target: bytes | None = None) -> pb.CursorResponse:
        """Move (``skip + 1`` steps, or on to ``target``) and answer the entry or done."""
        if self._exhausted:
            return pb.CursorResponse(done=True)
        direction = self._spec.direction  # unknown values walk like CURSOR_NEXT
        # Records are needed for the value, and on index cursors for the key components.
        with_record = self._scan.index is not None or not self._spec.keys_only
        row = self._gate.run(
            self._context,
            False,
            lambda: self._gate.db.move(
                self._scan,
                self._position,
                descending=direction in _DESCENDING,
                unique=direction in _UNIQUE,
                skip=skip,
                target=target,
                with_record=with_record,
            ),
        )
        if row is None:
            self._position = None
            self._exhausted = True
            return pb.CursorResponse(done=True)
        self._position = (row[0], row[1])
        return pb.CursorResponse(entry=self._entry(row))

    def _current(self) -> tuple[bytes, bytes]:
        if self._position is None:
            self._context.abort(
                grpc.StatusCode.NOT_FOUND, "datastore: not found: the cursor is past its end"
            )
        return self._position

    def delete(self) -> None:
        """Delete the record under the cursor (the position stays)."""
        pkey = self._current()[1]
        store = self._spec.store
        self._gate.run(self._context, True, lambda: self._gate.db.delete_key(store, pkey))

    def update(self, record: pb.Record) -> pb.CursorResponse:
        """Replace the record under the cursor and answer the refreshed entry."""
        key, pkey = self._current()
        expected = decode_primary(pkey)
        if "id" not in record.fields:
            record.fields["id"].string_value = expected
        elif record_id(record) != expected:
            self._context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "cursor update must keep the primary key"
            )
        store = self._spec.store
        self._gate.run(
            self._context, True, lambda: self._gate.db.write(store, record, replace=True)
        )
        return pb.CursorResponse(entry=self._entry((key, pkey, record.SerializeToString())))

    def _entry(self, row: Row) -> pb.CursorEntry:
        _, pkey, data = row
        entry = pb.CursorEntry(primary_key=decode_primary(pkey))
        index = self._scan.index
        if index is None:
            entry.key.add().scalar.string_value = entry.primary_key
            if data is not None and not self._spec.keys_only:
                entry.record.MergeFromString(data)
            return entry
        assert data is not None
        record = pb.Record.FromString(data)
        for field in index.key_path:
            component = entry.key.add().scalar
            if field in record.fields:
                component.CopyFrom(record.fields[field])
            else:
                component.null_value = struct_pb2.NULL_VALUE
        if not self._spec.keys_only:
            entry.record.CopyFrom(record)
        return entry
