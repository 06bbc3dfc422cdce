"""The blob index and cache in-process, rule by rule: what a hash is (exactly 64 hex digits, no
trailing newline), which files are kept (the kinds in any case, never a link that replaced a
file), and the cache's fetch (the transfer it asks for, a corrupted one, the least recently used
file going first, the boundary of its size) with ``resume`` replaced by a scripted one."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

from agent.blobs import cache as blob_cache
from agent.blobs import index as blob_index
from agent.blobs.cache import BlobCache
from agent.blobs.index import KEPT, BlobIndex, check_hash, sha256_file
from agent.errors import ServiceError
from agent.transfer import Fetch, Source

A = b"a" * 100
SHA_A = hashlib.sha256(A).hexdigest()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("text", ["a" * 64 + "\n", "a" * 64 + " ", " " + "a" * 64, "a" * 65, "a" * 32,
                                  "a" * 63 + "/", "0x" + "a" * 62, "a" * 63 + "G"])
def test_what_only_resembles_a_hash_is_none(text: str) -> None:
    assert check_hash(text) is None


def test_a_hash_in_either_case_is_lower_cased() -> None:
    assert check_hash("AbCdEf0123456789" * 4) == "abcdef0123456789" * 4


def test_the_kinds_kept_are_the_voices_and_checkpoints_files() -> None:
    assert KEPT == {".wav", ".list", ".txt", ".csv", ".pth", ".index", ".pt", ".onnx", ".json", ".npy", ".npz", ".ckpt",
                    ".safetensors"}


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_kind_is_known_in_any_case_and_only_by_its_last_suffix(tmp_path: Path) -> None:
    upper = write(tmp_path / "ANNA.PTH", b"upper")
    write(tmp_path / "anna.pth.bak", b"backup")
    write(tmp_path / "pth", b"no suffix")
    index = BlobIndex(lambda: [tmp_path])
    assert index.find(sha(b"upper")) == upper
    assert index.find(sha(b"backup")) is None and index.find(sha(b"no suffix")) is None


def test_only_the_kinds_given_are_kept(tmp_path: Path) -> None:
    wav = write(tmp_path / "a.wav", b"wav")
    write(tmp_path / "a.pth", b"pth")
    index = BlobIndex(lambda: [tmp_path], kinds=frozenset({".wav"}))
    assert index.find(sha(b"wav")) == wav and index.find(sha(b"pth")) is None


def test_a_hidden_folder_deep_down_is_not_walked_but_a_dotted_name_inside_is_fine(tmp_path: Path) -> None:
    write(tmp_path / "anna" / ".staging" / "x.pth", b"staged")
    dotted = write(tmp_path / "anna" / "v1.2" / "x.pth", b"dotted")
    index = BlobIndex(lambda: [tmp_path])
    assert index.find(sha(b"staged")) is None and index.find(sha(b"dotted")) == dotted


def test_every_root_is_walked_and_asked_again_at_each_walk(tmp_path: Path) -> None:
    roots = [tmp_path / "one"]
    one = write(tmp_path / "one" / "a.wav", b"one")
    two = write(tmp_path / "two" / "b.wav", b"two")
    index = BlobIndex(lambda: list(roots))
    assert index.find(sha(b"one")) == one and index.find(sha(b"two")) is None
    roots.append(tmp_path / "two")  # a profile made since
    assert index.find(sha(b"two")) == two and index.find(sha(b"one")) == one


def test_a_file_replaced_by_a_link_is_no_longer_served(tmp_path: Path) -> None:
    secret = write(tmp_path / "secret.txt", b"secret")
    model = write(tmp_path / "voices" / "anna.pth", b"model")
    index = BlobIndex(lambda: [tmp_path / "voices"])
    assert index.find(sha(b"model")) == model
    model.unlink()
    model.symlink_to(secret)
    os.utime(model, follow_symlinks=False)
    assert index.find(sha(b"model")) is None and index.find(sha(b"secret")) is None


def test_a_known_hash_is_answered_without_a_walk_while_its_file_is_unchanged(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    model = write(tmp_path / "a.pth", b"model")
    index = BlobIndex(lambda: [tmp_path])
    assert index.find(sha(b"model")) == model
    walks: list[int] = []
    real = index._walk
    monkeypatch.setattr(index, "_walk", lambda: (walks.append(1), real())[1])
    assert index.find(sha(b"model")) == model and walks == []
    info = model.stat()
    os.utime(model, ns=(info.st_atime_ns, info.st_mtime_ns + 1000))  # touched, same bytes: hashed again
    assert index.find(sha(b"model")) == model and walks == [1]
    model.write_bytes(b"MODEL")  # same size, other bytes, and its time set back: the old hash still names it
    os.utime(model, ns=(info.st_atime_ns, info.st_mtime_ns + 1000))
    assert index.find(sha(b"model")) == model


def test_a_file_that_cannot_be_read_is_skipped_and_the_others_are_found(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "a.pth", b"unreadable")
    other = write(tmp_path / "b.pth", b"readable")
    real = blob_index.sha256_file

    def hashing(path: Path) -> str:
        if path.name == "a.pth":
            raise PermissionError("denied")
        return real(path)

    monkeypatch.setattr(blob_index, "sha256_file", hashing)
    index = BlobIndex(lambda: [tmp_path])
    assert index.find(sha(b"readable")) == other and index.find(sha(b"unreadable")) is None
    monkeypatch.setattr(blob_index, "sha256_file", real)
    assert index.find(sha(b"unreadable")) == tmp_path / "a.pth"  # readable again: found at the next walk


def test_a_file_larger_than_a_read_is_hashed_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blob_index, "CHUNK", 7)
    data = os.urandom(100)
    assert sha256_file(write(tmp_path / "a.wav", data)) == sha(data)


# The cache

class Fetcher:
    """``resume`` replaced: each call kept; the ``.part`` written with the bytes given, the digest of
    what is written (or the one given: a lie) returned."""

    def __init__(self, data: bytes, digest: str | None = None) -> None:
        self.data = data
        self.digest = digest
        self.calls: list[dict[str, Any]] = []

    def __call__(self, source: Source, part: Path, algorithm: str, **kwargs: Any) -> str:
        self.calls.append({"source": source, "part": part, "algorithm": algorithm, **kwargs})
        part.write_bytes(self.data)
        return self.digest or hashlib.new(algorithm, self.data).hexdigest()


def fetcher(monkeypatch: pytest.MonkeyPatch, data: bytes, digest: str | None = None) -> Fetcher:
    made = Fetcher(data, digest)
    monkeypatch.setattr(blob_cache, "resume", made)
    return made


def test_a_fetch_asks_the_node_for_the_hash_with_the_token_and_no_redirect(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    fetched = fetcher(monkeypatch, A)
    cache = BlobCache(tmp_path / "cache", 1000)
    how = Fetch(timeout=3)
    got = cache.get(SHA_A.upper(), "http://desk:4321/", "tok", size=100, how=how)
    assert got == tmp_path / "cache" / SHA_A and got.read_bytes() == A
    [call] = fetched.calls
    source = call["source"]
    assert source.url == f"http://desk:4321/api/blobs/{SHA_A}" and source.code == "blob_fetch_failed"
    assert source.headers == {"Authorization": "Bearer tok"} and source.redirects is False
    assert source.setting == "the node's address and VOICE_AGENT_HTTP_TOKEN"
    assert source.full == "raise VOICE_AGENT_BLOB_CACHE_MB or free some space"
    assert call["part"] == tmp_path / "cache" / f"{SHA_A}.part" and call["algorithm"] == "sha256"
    assert (call["size"], call["cap"], call["how"]) == (100, 1000, how)
    assert sorted(p.name for p in cache.folder.iterdir()) == [SHA_A]


def test_a_cached_file_is_not_fetched_again_and_is_marked_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fetched = fetcher(monkeypatch, A)
    cache = BlobCache(tmp_path / "cache", 1000)
    got = cache.get(SHA_A, "http://desk:4321", "tok")
    os.utime(got, (1, 1))
    assert cache.get(SHA_A, "http://desk:4321", "tok") == got and len(fetched.calls) == 1
    assert got.stat().st_mtime > time.time() - 3600


def test_a_transfer_whose_hash_is_not_the_one_asked_for_leaves_nothing(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fetcher(monkeypatch, b"b" * 100)
    cache = BlobCache(tmp_path / "cache", 1000)
    with pytest.raises(ServiceError) as refused:
        cache.get(SHA_A, "http://desk:4321", "tok")
    assert refused.value.code == "blob_corrupt" and list(cache.folder.iterdir()) == []
    assert str(refused.value) == (f"the file fetched from http://desk:4321/api/blobs/{SHA_A} has SHA-256 {sha(b'b' * 100)}, "
                                  "not the one asked for: not kept; try again (if it persists, the node's copy changed or "
                                  "is damaged)")
    assert refused.value.data == {"url": f"http://desk:4321/api/blobs/{SHA_A}"}


def test_a_digest_that_differs_only_in_case_is_not_the_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fetcher(monkeypatch, A, digest=SHA_A.upper())
    with pytest.raises(ServiceError):
        BlobCache(tmp_path / "cache", 1000).get(SHA_A, "http://desk:4321", "tok")


@pytest.mark.parametrize("text", ["../" + "a" * 61, "a" * 64 + "\n", "a" * 63, "x" * 200])
def test_what_is_not_a_hash_is_refused_before_any_file_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            text: str) -> None:
    fetched = fetcher(monkeypatch, A)
    cache = BlobCache(tmp_path / "cache", 1000)
    for ask in (lambda: cache.get(text, "http://desk:4321", "tok"), lambda: cache.path(text)):
        with pytest.raises(ServiceError) as refused:
            ask()
        assert refused.value.code == "invalid_params" and "is not a SHA-256 (64 hex digits)" in str(refused.value)
        assert repr(text[:80]) in str(refused.value) and "x" * 81 not in str(refused.value)
    assert fetched.calls == [] and not cache.folder.exists()


def test_a_hash_not_here_has_no_path(tmp_path: Path) -> None:
    assert BlobCache(tmp_path / "cache", 1000).path(SHA_A) is None


def put(cache: BlobCache, data: bytes, used: float) -> Path:
    cache.folder.mkdir(parents=True, exist_ok=True)
    path = cache.folder / sha(data)
    path.write_bytes(data)
    os.utime(path, (used, used))
    return path


def test_the_least_recently_used_go_until_the_cache_fits_and_parts_are_not_counted(tmp_path: Path,
                                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cache = BlobCache(tmp_path / "cache", 400)
    newest = put(cache, b"n" * 100, 3000)
    oldest = put(cache, b"o" * 100, 1000)
    middle = put(cache, b"m" * 100, 2000)
    half = cache.folder / f"{'f' * 64}.part"
    half.write_bytes(b"p" * 1000)
    os.utime(half, (1, 1))
    fetcher(monkeypatch, b"x" * 150)
    got = cache.get(sha(b"x" * 150), "http://desk:4321", "tok")  # 450 in all: the oldest goes, 350 stay
    assert not oldest.exists() and middle.exists() and newest.exists() and got.exists() and half.exists()


def test_a_cache_that_fits_exactly_keeps_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = BlobCache(tmp_path / "cache", 300)
    kept = [put(cache, bytes([i]) * 100, 1000 + i) for i in range(2)]
    fetcher(monkeypatch, A)
    cache.get(SHA_A, "http://desk:4321", "tok")
    assert all(path.exists() for path in kept)


def test_the_file_just_fetched_stays_even_when_it_alone_fills_the_cache(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cache = BlobCache(tmp_path / "cache", 100)
    other = put(cache, b"o" * 10, time.time() + 3600)  # used "later" than the new one: goes anyway
    fetcher(monkeypatch, A)
    got = cache.get(SHA_A, "http://desk:4321", "tok")
    assert got.exists() and not other.exists()


def test_eviction_goes_oldest_first_one_at_a_time_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    cache = BlobCache(tmp_path / "cache", 349)
    old = [put(cache, bytes([i]) * 100, 1000 + i) for i in range(3)]
    fetcher(monkeypatch, b"x" * 150)
    with caplog.at_level(logging.INFO, "agent.blobs.cache"):
        cache.get(sha(b"x" * 150), "http://desk:4321", "tok")  # 450: two of 100 go (350 is one too many), the two oldest
    assert [path.exists() for path in old] == [False, False, True]
    assert [r.getMessage() for r in caplog.records] == [f"blob cache: removing {path.name}, least recently used"
                                                        for path in old[:2]]


def test_start_removes_parts_a_day_old(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache", 1000)
    cache.folder.mkdir()
    old = cache.folder / f"{SHA_A}.part"
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    cache.start()
    assert not old.exists()


def test_the_cache_folder_is_made_with_its_parents_and_a_node_url_keeps_its_last_letter(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fetched = fetcher(monkeypatch, A)
    cache = BlobCache(tmp_path / "out" / "blobs", 1000)
    assert cache.get(SHA_A, "http://nodeX/", "tok").read_bytes() == A
    assert fetched.calls[0]["source"].url == f"http://nodeX/api/blobs/{SHA_A}"


def test_a_file_that_cannot_be_hashed_does_not_end_the_walk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    bad = write(tmp_path / "one" / "a.pth", b"unreadable")
    other = write(tmp_path / "two" / "b.pth", b"readable")
    real = blob_index.sha256_file

    def hashing(path: Path) -> str:
        if path == bad:
            raise PermissionError("denied")
        return real(path)

    monkeypatch.setattr(blob_index, "sha256_file", hashing)
    with caplog.at_level(logging.DEBUG, "agent.blobs.index"):
        assert BlobIndex(lambda: [tmp_path / "one", tmp_path / "two"]).find(sha(b"readable")) == other
    assert [r.getMessage() for r in caplog.records] == [f"not indexing {bad}: denied"]


def test_a_name_skipped_or_gone_does_not_end_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The names of a folder in an order that puts each skipped one first (os.walk's order is the
    file system's), and one that is gone by the time it is looked at."""
    kept = write(tmp_path / "z.pth", b"kept")
    write(tmp_path / ".hidden.wav", b"hidden")
    write(tmp_path / "a.sqlite", b"database")
    real = os.walk

    def walk(root: Path) -> Any:
        for folder, dirs, names in real(root):
            yield folder, dirs, sorted([*names, "b-gone.pth"])

    monkeypatch.setattr(blob_index.os, "walk", walk)
    assert BlobIndex(lambda: [tmp_path]).find(sha(b"kept")) == kept
