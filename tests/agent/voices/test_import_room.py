"""What keeps imports from filling the disk: one at a time (``busy``), room under the voices' disk
cap checked for the announced length and for each chunk (``disk_full``), an upload's file moved
rather than copied, and what a crash left removed at start-up."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from agent.errors import ServiceError
from agent.voices.archives import Limits
from agent.voices.download import stale_parts
from agent.voices.imports import ImportOptions, ImportSlot, clean_leftovers, import_voices, limits_for, upload_room
from tests.agent.voices.files import write_piper


def code(call: object, *args: object) -> str:
    with pytest.raises(ServiceError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value.code


def test_a_second_import_is_busy_until_the_first_is_done() -> None:
    slot = ImportSlot()
    slot.take()
    assert code(slot.take) == "busy"
    slot.release()
    slot.take()


def test_an_upload_is_refused_by_its_announced_length_and_cut_as_it_passes_the_room(tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    voices.mkdir()
    (voices / "old.onnx").write_bytes(bytes(600))
    assert code(upload_room, [voices], 1000, 500) == "disk_full"  # 600 held: 400 left under the cap
    room = upload_room([voices, tmp_path / "empty"], 1000, 300)
    room.take(300)
    assert code(room.take, 200) == "disk_full"


def test_an_import_counts_against_the_voices_cap(tmp_path: Path) -> None:
    model = write_piper(tmp_path / "src", "en_US-a-medium")
    assert code(import_voices, model, tmp_path / "voices", ImportOptions(), limits_for(1024, 10)) == "archive_too_large"
    assert not (tmp_path / "voices" / "en_US-a-medium.onnx").exists()


def test_an_uploads_file_is_moved_not_copied(tmp_path: Path) -> None:
    model = write_piper(tmp_path / "upload", "en_US-a-medium")
    import_voices(model, tmp_path / "voices", ImportOptions(consume=True), Limits())
    assert (tmp_path / "voices" / "en_US-a-medium.onnx").is_file()
    assert not model.exists(), "the upload was copied: it took its size twice"
    kept = write_piper(tmp_path / "mine", "en_US-b-medium")
    import_voices(kept, tmp_path / "voices", ImportOptions(), Limits())
    assert kept.exists(), "a user's own file is never moved"


def test_what_a_crash_left_is_removed_at_start_up(tmp_path: Path) -> None:
    uploads, voices = tmp_path / "uploads", tmp_path / "voices"
    for folder in (uploads / "upload-x1", voices / ".import-y2", voices / "kokoro"):
        folder.mkdir(parents=True)
    (uploads / "upload-x1" / "v.zip").write_bytes(b"z")
    staging = voices / ".downloads" / "piper"
    staging.mkdir(parents=True)
    old, fresh = staging / "old.onnx.part", staging / "fresh.onnx.part"
    old.write_bytes(b"o")
    fresh.write_bytes(b"f")
    day_ago = time.time() - 2 * 86400
    os.utime(old, (day_ago, day_ago))
    clean_leftovers(uploads, [voices])
    stale_parts(voices / ".downloads")
    assert list(uploads.iterdir()) == []
    assert sorted(p.name for p in voices.iterdir()) == [".downloads", "kokoro"]
    assert not old.exists() and fresh.exists()
