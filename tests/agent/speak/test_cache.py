from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.speak.cache import AudioCache, cache_name

PCM = b"\x01\x00" * 4000  # 4000 samples: a WAV of about 8 kB


def test_roundtrip_and_key_separation(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, 10**6)
    cache.put("piper:a:1", "hello", PCM, 22050)
    hit = cache.get("piper:a:1", "hello")
    assert hit is not None and hit.pcm == PCM and hit.sample_rate == 22050
    assert cache.get("piper:a:1.5", "hello") is None
    assert cache.get("piper:a:1", "hello!") is None


def test_least_recently_used_goes_first(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, 3 * 8100)
    for text in ("one", "two", "three"):
        cache.put("k", text, PCM, 16000)
    assert cache.get("k", "one") is not None  # "two" is now the oldest
    cache.put("k", "four", PCM, 16000)
    assert cache.get("k", "two") is None
    assert all(cache.get("k", t) is not None for t in ("one", "three", "four"))
    assert sum(p.stat().st_size for p in tmp_path.glob("*.wav")) <= 3 * 8100
    assert len(list(tmp_path.glob("*.wav"))) == 3


def test_order_survives_a_restart(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, 10**6)
    cache.put("k", "old", PCM, 16000)
    cache.put("k", "new", PCM, 16000)
    old = tmp_path / cache_name("k", "old")
    os.utime(old, ns=(1, 1))
    reopened = AudioCache(tmp_path, 8100)  # room for one: the oldest file goes on the next put
    reopened.put("k", "newest", PCM, 16000)
    assert not old.exists()


def test_a_hit_counts_as_use_across_restarts(tmp_path: Path) -> None:
    """Reading an entry makes it the newest on disk too, so a restarted agent evicts what was
    not heard for longest, not what was written first."""
    cache = AudioCache(tmp_path, 10**6)
    cache.put("k", "written first, heard often", PCM, 16000)
    cache.put("k", "written later, never heard", PCM, 16000)
    often, never = (tmp_path / cache_name("k", t) for t in ("written first, heard often", "written later, never heard"))
    os.utime(often, ns=(1_000_000_000, 1_000_000_000))
    os.utime(never, ns=(2_000_000_000, 2_000_000_000))
    assert cache.get("k", "written first, heard often") is not None
    assert often.stat().st_mtime_ns > never.stat().st_mtime_ns
    reopened = AudioCache(tmp_path, 2 * 8100)  # room for two: the next put evicts one
    reopened.put("k", "new", PCM, 16000)
    assert often.exists() and not never.exists()


def test_corrupt_or_partial_entries_are_never_served(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, 10**6)
    cache.put("k", "text", PCM, 16000)
    path = tmp_path / cache_name("k", "text")
    path.write_bytes(path.read_bytes()[:100])  # truncated behind the cache's back
    assert cache.get("k", "text") is None
    assert not path.exists()
    (tmp_path / ".abc.wav.123.tmp").write_bytes(b"partial")  # a crash mid-write
    AudioCache(tmp_path, 10**6)
    assert not (tmp_path / ".abc.wav.123.tmp").exists()


def test_entry_larger_than_the_cache_is_skipped(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, 100)
    cache.put("k", "big", PCM, 16000)
    assert cache.get("k", "big") is None


WAV_SIZE = 8044  # PCM above as a WAV: 44-byte header


def wav_bytes_on_disk(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.wav"))


def test_an_entry_of_exactly_the_cache_size_fits(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, WAV_SIZE)
    cache.put("k", "exact", PCM, 16000)
    assert cache.get("k", "exact") is not None and wav_bytes_on_disk(tmp_path) == WAV_SIZE


def test_a_large_entry_evicts_as_many_old_ones_as_it_takes(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, 3 * WAV_SIZE)
    for text in ("one", "two", "three"):
        cache.put("k", text, PCM, 16000)
    cache.put("k", "double", PCM * 2, 16000)  # 16 044 bytes: two of the old must go
    assert [cache.get("k", t) is not None for t in ("one", "two", "three", "double")] == [False, False, True, True]
    assert wav_bytes_on_disk(tmp_path) <= 3 * WAV_SIZE


def test_writing_an_entry_again_makes_it_the_newest(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, 2 * WAV_SIZE)
    cache.put("k", "a", PCM, 16000)
    cache.put("k", "b", PCM, 16000)
    cache.put("k", "a", PCM, 16000)
    cache.put("k", "c", PCM, 16000)
    assert cache.get("k", "b") is None and cache.get("k", "a") is not None


def test_a_dropped_entry_no_longer_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = AudioCache(tmp_path, 2 * WAV_SIZE)
    cache.put("k", "broken", PCM, 16000)
    name = cache_name("k", "broken")
    (tmp_path / name).write_bytes(b"RIFF")
    assert cache.get("k", "broken") is None
    [record] = [r for r in caplog.records if "unreadable cache entry" in r.getMessage()]
    assert record.getMessage().startswith(f"dropping unreadable cache entry {name}: ")
    assert not record.getMessage().endswith(": None")  # the reason is said
    cache.put("k", "x", PCM, 16000)
    cache.put("k", "y", PCM, 16000)  # two fit: the dropped entry's bytes are not counted
    assert cache.get("k", "x") is not None and cache.get("k", "y") is not None


def test_a_dropped_newest_entry_does_not_push_out_an_older_one(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, 2 * WAV_SIZE)
    cache.put("k", "old", PCM, 16000)
    cache.put("k", "broken", PCM, 16000)  # the newest
    (tmp_path / cache_name("k", "broken")).write_bytes(b"RIFF")
    assert cache.get("k", "broken") is None
    cache.put("k", "new", PCM, 16000)  # old + new fit, unless the dropped entry still counted
    assert cache.get("k", "old") is not None and cache.get("k", "new") is not None


def test_an_entry_deleted_by_hand_is_a_miss(tmp_path: Path) -> None:
    cache = AudioCache(tmp_path, 10**6)
    cache.put("k", "gone", PCM, 16000)
    (tmp_path / cache_name("k", "gone")).unlink()  # someone cleaned out the folder
    assert cache.get("k", "gone") is None
    cache.put("k", "gone", PCM, 16000)
    assert cache.get("k", "gone") is not None
