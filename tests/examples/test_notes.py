"""The notes example against the embedded services: Cache, IndexedDB transaction and cursor,
S3 streaming, in both harness modes, and its data surviving a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from gestalt import S3, IndexedDB, ObjectRef
from gestalt.testing import Mode, start_provider
from tests.conftest import REPO

NOTES = REPO / "examples" / "notes"


@pytest.mark.parametrize("mode", ["inprocess", "subprocess"])
def test_notes_use_all_three_services(mode: Mode, tmp_path: Path) -> None:
    with start_provider(NOTES, mode=mode, data_dir=tmp_path) as notes:
        for i, text in enumerate(["first", "second", "third"]):
            result = notes.invoke("add_note", {"id": f"n{i}", "author": "ann", "text": text})
            assert result.status == 200, result
        assert notes.invoke("add_note", {"id": "n0", "author": "bob", "text": "x"}).status == 409

        listed = notes.invoke("list_notes", {"limit": 2}).decode(list[dict[str, str]])
        assert [n["id"] for n in listed] == ["n2", "n1"]
        assert notes.invoke("note_count").body == {"count": 3, "cached": False}
        assert notes.invoke("note_count").body == {"count": 3, "cached": True}

        # The failed add left nothing behind: the transaction rolled back as a whole.
        with IndexedDB() as db:
            assert db.object_store("authors").get_all() == [{"id": "ann", "count": 3}]

        attached = notes.invoke("attach", {"note_id": "n1", "size_mib": 8}).decode(
            dict[str, int | str]
        )
        assert attached["size"] == 8 * 1024 * 1024
        digest = notes.invoke("attachment_digest", {"note_id": "n1"}).decode(dict[str, int | str])
        assert digest["size"] == attached["size"]
        assert digest["sha256"] == attached["etag"]
        assert notes.invoke("attachment_digest", {"note_id": "nope"}).status == 404
        with S3() as s3:
            assert s3.head_object(ObjectRef(bucket="attachments", key="n1")).size == 8 << 20


def test_notes_survive_a_restart(tmp_path: Path) -> None:
    with start_provider(NOTES, data_dir=tmp_path) as notes:
        assert notes.invoke("add_note", {"id": "a", "author": "ann", "text": "kept"}).ok
        assert notes.invoke("attach", {"note_id": "a", "size_mib": 1}).ok
    with start_provider(NOTES, data_dir=tmp_path) as notes:
        assert [n["text"] for n in notes.invoke("list_notes").decode(list[dict[str, str]])] == [
            "kept"
        ]
        digest = notes.invoke("attachment_digest", {"note_id": "a"}).decode(dict[str, int | str])
        assert digest["size"] == 1 << 20
