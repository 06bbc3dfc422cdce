from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from agent.record.store import CorruptDatabase, SampleStore, open_store


def add(store: SampleStore, score: float = 80.0, transcript: str | None = None) -> str:
    audio = (0.1 * np.sin(np.arange(16000) / 10)).astype(np.float32)
    return store.add(audio, 16000, score, {"snr": 90.0}, {"seconds": 1.0}, transcript, "test", 0.9).id


def test_add_list_get_delete(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "samples", tmp_path / "voice-agent.db")
    first, second = add(store, 75), add(store, 90, "hello")
    assert [s.id for s in store.list(order="score")] == [second, first]
    sample = store.get(second)
    assert sample is not None and sample.transcript == "hello" and store.path(sample).is_file()
    assert store.delete([first, "missing"]) == [first]
    assert [s.id for s in store.list()] == [second]
    assert len(list(store.samples_dir.glob("*.wav"))) == 1


def test_reconcile_keeps_audio_without_rows_and_drops_rows_without_audio(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "samples", tmp_path / "voice-agent.db")
    kept, lost = add(store), add(store)
    lost_sample = store.get(lost)
    assert lost_sample is not None
    store.path(lost_sample).unlink()  # the file vanished: its row must go
    (store.samples_dir / "stray.wav").write_bytes(b"RIFF")  # a file without a row
    (store.samples_dir / ".x.wav.staged").write_bytes(b"half")  # a crash mid-write
    (store.samples_dir / ".a.wav.tmp").write_bytes(b"part")  # an atomic write that never finished
    store.close()

    reopened = SampleStore(tmp_path / "samples", tmp_path / "voice-agent.db")
    assert [s.id for s in reopened.list()] == [kept]
    assert sorted(p.name for p in reopened.samples_dir.iterdir() if p.is_file()) == [f"{kept}.wav"]  # .tmp gone
    # audio is never deleted: what has no row waits in orphans/ to be scored again
    assert sorted(p.name for p in reopened.orphans()) == ["stray.wav", "x.wav"]
    assert sorted(p.name for p in reopened.orphans_dir.iterdir()) == ["stray.wav", "x.wav"]  # not the partial write
    assert (reopened.orphans_dir / "x.wav").read_bytes() == b"half"


def test_a_lost_database_loses_no_audio(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "samples", tmp_path / "voice-agent.db")
    ids = [add(store) for _ in range(3)]
    store.close()
    (tmp_path / "voice-agent.db").unlink()  # moved, restored from an old backup, corrupt
    reopened = SampleStore(tmp_path / "samples", tmp_path / "voice-agent.db")
    assert reopened.list() == []
    assert sorted(p.stem for p in reopened.orphans()) == sorted(ids)


def test_failed_insert_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SampleStore(tmp_path / "samples", tmp_path / "voice-agent.db")
    add(store)
    store._db.execute("CREATE TRIGGER refuse BEFORE INSERT ON samples BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(sqlite3.IntegrityError):
        add(store)
    assert len(list(store.samples_dir.iterdir())) == 1  # only the first sample's file


def test_speaker_centroid_and_enrollment(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "samples", tmp_path / "voice-agent.db")
    assert store.speaker() is None
    store.add_to_centroid(np.array([1, 0], np.float32))
    store.add_to_centroid(np.array([0, 1], np.float32))
    kind, embedding, count = store.speaker()  # type: ignore[misc]
    assert kind == "centroid" and count == 2 and np.allclose(embedding, [0.5, 0.5])
    store.set_enrolled(np.array([0, 2], np.float32))
    assert store.speaker()[0] == "enrolled"  # type: ignore[index]
    store.set_enrolled(None)
    assert store.speaker()[0] == "centroid"  # type: ignore[index]


def test_every_field_comes_back_as_it_was_stored(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "samples", tmp_path / "voice-agent.db")
    audio = np.zeros(12345, np.float32)  # 0.5144 s at 24 kHz: stored rounded to the millisecond
    added = store.add(audio, 24000, 81.5, {"snr": 77.0}, {"seconds": 0.514}, "Hello.", "hermes:sat1", 0.87)
    store.close()
    [again] = SampleStore(tmp_path / "samples", tmp_path / "voice-agent.db").list()
    assert again == added and again.as_dict() == added.__dict__
    assert (again.duration, again.sample_rate, again.transcript, again.score) == (0.514, 24000, "Hello.", 81.5)
    assert (again.components, again.measurements, again.source, again.speaker_similarity) == (
        {"snr": 77.0}, {"seconds": 0.514}, "hermes:sat1", 0.87)
    assert again.file == f"{again.id}.wav" and re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", again.id)


def test_list_orders_filters_and_limits(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "samples", tmp_path / "voice-agent.db")
    short = store.add(np.zeros(8000, np.float32), 16000, 95.0, {}, {}, None, None, None).id
    long = store.add(np.zeros(32000, np.float32), 16000, 60.0, {}, {}, None, None, None).id
    middle = store.add(np.zeros(16000, np.float32), 16000, 80.0, {}, {}, None, None, None).id
    assert [s.id for s in store.list(order="duration")] == [long, middle, short]
    assert [s.id for s in store.list(order="score", min_score=80.0)] == [short, middle]
    assert [s.id for s in store.list(order="score", limit=2)] == [short, middle]
    assert [s.id for s in store.list(order="duration", min_score=70.0, limit=1)] == [middle]
    assert store.get("nope") is None


def test_delete_goes_on_past_unknown_ids_and_files_already_gone(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "samples", tmp_path / "voice-agent.db")
    first, second, third = add(store), add(store), add(store)
    sample = store.get(second)
    assert sample is not None
    store.path(sample).unlink()  # removed by hand
    assert store.delete(["unknown", first, second, third]) == [first, second, third]
    assert store.list() == [] and list(store.samples_dir.glob("*.wav")) == []


def test_the_centroid_is_the_running_mean_of_kept_samples(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "samples", tmp_path / "voice-agent.db")
    assert store.centroid() is None and store.speaker() is None
    for vector in ([1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 4, 0]):
        store.add_to_centroid(np.array(vector, np.float32))
    centroid = store.centroid()
    assert centroid is not None and centroid.tolist() == pytest.approx([1 / 3, 1 / 3, 4 / 3, 0])
    speaker = store.speaker()
    assert speaker is not None and (speaker[0], speaker[2]) == ("centroid", 3)
    store.set_enrolled(np.array([0, 0, 0, 1], np.float64))
    enrolled = store.speaker()
    assert enrolled is not None and enrolled[0] == "enrolled" and enrolled[1].tolist() == [0, 0, 0, 1]
    store.set_enrolled(None)
    back = store.speaker()
    assert back is not None and back[0] == "centroid"


GARBAGE = b"not a database at all\n" * 1000


def test_a_file_that_is_not_a_database_is_set_aside_and_its_audio_kept(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "samples", tmp_path / "voice-agent.db")
    ids = [add(store) for _ in range(2)]
    store.close()
    (tmp_path / "voice-agent.db").write_bytes(GARBAGE)
    reopened, aside = open_store(tmp_path / "samples", tmp_path / "voice-agent.db")
    assert aside is not None and aside.reason == "file is not a database"
    assert re.fullmatch(r"voice-agent\.db\.corrupt-\d{8}-\d{6}", aside.kept_as.name), aside.kept_as
    assert aside.kept_as.read_bytes() == GARBAGE  # as it was, for whoever looks into it
    assert reopened.list() == [] and sorted(p.stem for p in reopened.orphans()) == sorted(ids)
    add(reopened)  # a database that works
    assert len(reopened.list()) == 1


def test_damaged_pages_are_found_when_the_store_opens(tmp_path: Path) -> None:
    """A database whose header is fine but whose pages are not: every later query could fail."""
    store = SampleStore(tmp_path / "samples", tmp_path / "voice-agent.db")
    for _ in range(60):
        add(store, transcript="a transcript long enough to fill the pages of the table " * 4)
    store.close()
    data = bytearray((tmp_path / "voice-agent.db").read_bytes())
    data[4096 * 3: 4096 * 4] = b"\xab" * 4096
    (tmp_path / "voice-agent.db").write_bytes(bytes(data))
    with pytest.raises(CorruptDatabase) as damaged:
        SampleStore(tmp_path / "samples", tmp_path / "voice-agent.db")
    assert damaged.value.reason == "database disk image is malformed"
    assert damaged.value.kept_as.read_bytes() == bytes(data) and not (tmp_path / "voice-agent.db").exists()


def test_the_write_ahead_log_goes_aside_with_its_database(tmp_path: Path) -> None:
    (tmp_path / "voice-agent.db").write_bytes(GARBAGE)
    (tmp_path / "voice-agent.db-wal").write_bytes(b"wal")
    (tmp_path / "voice-agent.db-shm").write_bytes(b"shm")
    _, aside = open_store(tmp_path / "samples", tmp_path / "voice-agent.db")
    assert aside is not None
    assert (tmp_path / f"{aside.kept_as.name}-wal").read_bytes() == b"wal"  # a new database never replays it
    assert (tmp_path / f"{aside.kept_as.name}-shm").exists()  # its index, which SQLite rewrites: no data
    assert sorted(p.name for p in tmp_path.glob("voice-agent.db.corrupt-*")) == sorted(
        f"{aside.kept_as.name}{suffix}" for suffix in ("", "-shm", "-wal"))


def test_a_database_that_cannot_be_opened_is_not_taken_for_a_damaged_one(tmp_path: Path) -> None:
    (tmp_path / "voice-agent.db").mkdir()  # unable to open: nothing to set aside, nothing to rebuild
    with pytest.raises(sqlite3.OperationalError):
        open_store(tmp_path / "samples", tmp_path / "voice-agent.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples", "voice-agent.db"]
