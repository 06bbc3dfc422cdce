"""Other nodes' files fetched by hash into the bounded cache (agent/blobs/cache.py), from the real
blob route on a port of its own: a resumed transfer completes, a corrupted one (a resumed half
that is not the file's, a file that changed under its hash) is refused and leaves nothing, the
least recently used file goes first."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.blobs.cache import BlobCache
from agent.errors import ServiceError
from agent.http.server import HttpEdge
from agent.settings import AgentSettings
from tests.agent.http.fake_core import fake_core
from tests.mosquitto import free_port

TOKEN = "k" * 32
MODEL = os.urandom(300_000)
SHA = hashlib.sha256(MODEL).hexdigest()


@pytest.fixture()
def node(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "anna.pth").write_bytes(MODEL)
    port = free_port()
    door = HttpEdge(fake_core(kept=[kept]), AgentSettings(http_port=port, http_token=TOKEN))  # type: ignore[arg-type]
    door.start()
    try:
        yield f"http://127.0.0.1:{port}", kept
    finally:
        door.stop()


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_blob_is_fetched_once_then_found_here(node: tuple[str, Path], tmp_path: Path) -> None:
    url, kept = node
    cache = BlobCache(tmp_path / "cache", 10 << 20)
    got = cache.get(SHA, url, TOKEN)
    assert got.read_bytes() == MODEL and files(tmp_path / "cache") == [SHA]
    (kept / "anna.pth").unlink()  # the node no longer has it: the cache answers
    assert cache.get(SHA, url, TOKEN) == got


def test_a_resumed_transfer_completes(node: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = node
    cache = BlobCache(tmp_path / "cache", 10 << 20)
    cache.folder.mkdir()
    (cache.folder / f"{SHA}.part").write_bytes(MODEL[:120_000])
    assert cache.get(SHA, url, TOKEN, size=len(MODEL)).read_bytes() == MODEL
    assert files(cache.folder) == [SHA]


def test_a_resumed_half_that_is_not_the_files_is_refused(node: tuple[str, Path], tmp_path: Path) -> None:
    """The kept half is not fetched again (Range): the whole is not what the hash names, and goes."""
    url, _ = node
    cache = BlobCache(tmp_path / "cache", 10 << 20)
    cache.folder.mkdir()
    (cache.folder / f"{SHA}.part").write_bytes(b"\0" * 120_000)
    with pytest.raises(ServiceError) as refused:
        cache.get(SHA, url, TOKEN)
    assert refused.value.code == "blob_corrupt" and files(cache.folder) == []


def test_a_file_that_changed_under_its_hash_is_refused(node: tuple[str, Path], tmp_path: Path) -> None:
    url, kept = node
    cache = BlobCache(tmp_path / "cache", 10 << 20)
    cache.get(SHA, url, TOKEN)  # the node has hashed it
    (cache.folder / SHA).unlink()
    model = kept / "anna.pth"
    before = model.stat()
    model.write_bytes(bytes(len(MODEL)))  # same size, same time: the node's index still names it so
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(ServiceError) as refused:
        cache.get(SHA, url, TOKEN)
    assert refused.value.code == "blob_corrupt" and files(cache.folder) == []


def test_without_the_token_nothing_is_fetched(node: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = node
    cache = BlobCache(tmp_path / "cache", 10 << 20)
    with pytest.raises(ServiceError) as refused:
        cache.get(SHA, url, "w" * 32)
    assert refused.value.code == "blob_fetch_failed" and "HTTP 401" in str(refused.value)
    with pytest.raises(ServiceError) as missing:
        cache.get("0" * 64, url, TOKEN)
    assert "HTTP 404" in str(missing.value) and files(cache.folder) == []


def test_the_least_recently_used_go_first(node: tuple[str, Path], tmp_path: Path) -> None:
    url, kept = node
    other = os.urandom(300_000)
    (kept / "bob.pth").write_bytes(other)
    third = os.urandom(300_000)
    (kept / "cara.pt").write_bytes(third)
    cache = BlobCache(tmp_path / "cache", 700_000)  # two fit, not three
    first = cache.get(SHA, url, TOKEN)
    os.utime(first, (1, 1))
    second = cache.get(hashlib.sha256(other).hexdigest(), url, TOKEN)
    os.utime(second, (2, 2))
    assert cache.path(SHA) == first  # used again: now the newest
    cache.get(hashlib.sha256(third).hexdigest(), url, TOKEN)
    assert files(cache.folder) == sorted([SHA, hashlib.sha256(third).hexdigest()])


def test_a_blob_larger_than_the_cache_is_refused(node: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = node
    cache = BlobCache(tmp_path / "cache", 1000)
    with pytest.raises(ServiceError):
        cache.get(SHA, url, TOKEN)
    assert files(cache.folder) == []


def test_a_blob_whose_stated_size_is_larger_than_the_cache_is_refused_before_any_fetch(
        node: tuple[str, Path], tmp_path: Path) -> None:
    """A job states each file's size: a size over the cache's bound is not a cap of its own."""
    url, _ = node
    cache = BlobCache(tmp_path / "cache", 1000)
    with pytest.raises(ServiceError) as refused:
        cache.get(SHA, url, TOKEN, size=len(MODEL))
    assert refused.value.code == "disk_full" and files(cache.folder) == []


def test_a_file_taken_is_fetched_verified_and_moved_out_of_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The home's side: a worker's offered file (its blob route serves its offers first), fetched as
    any blob, then the caller's; a broken transfer resumes; a corrupted one is nowhere."""
    from agent.blobs.offers import Offers

    offers = Offers(tmp_path / "offered")
    (tmp_path / "made").mkdir()
    (tmp_path / "made" / "joe.pth").write_bytes(MODEL)
    offers.offer("j1.a", "trained", [tmp_path / "made" / "joe.pth"])
    port = free_port()
    door = HttpEdge(fake_core(offers=offers), AgentSettings(http_port=port, http_token=TOKEN))  # type: ignore[arg-type]
    door.start()
    try:
        url = f"http://127.0.0.1:{port}"
        cache = BlobCache(tmp_path / "cache", 10 << 20)
        cache.folder.mkdir()
        (cache.folder / f"{SHA}.part").write_bytes(MODEL[:100_000])  # a transfer that broke
        target = tmp_path / "home" / "joe.pth"
        target.parent.mkdir()
        assert cache.take(SHA, url, TOKEN, target, size=len(MODEL)) == target
        assert target.read_bytes() == MODEL and files(cache.folder) == []  # the home's now, not the cache's

        found = offers.find(SHA)
        assert found is not None
        found.write_bytes(bytes(len(MODEL)))  # its copy damaged after it was hashed
        with pytest.raises(ServiceError) as refused:
            cache.take(SHA, url, TOKEN, tmp_path / "home" / "again.pth", size=len(MODEL))
        assert refused.value.code == "blob_corrupt" and files(cache.folder) == []
        assert sorted(p.name for p in target.parent.iterdir()) == ["joe.pth"]

        replace = os.replace

        def across(source: Path, target: Path) -> None:
            if Path(target).parent == tmp_path / "home":
                raise OSError(18, "Invalid cross-device link")
            replace(source, target)

        monkeypatch.setattr(os, "replace", across)
        found.write_bytes(MODEL)
        cache.take(SHA, url, TOKEN, tmp_path / "home" / "copied.pth", size=len(MODEL))  # another file system: copied
        assert (tmp_path / "home" / "copied.pth").read_bytes() == MODEL
    finally:
        door.stop()


def test_a_file_taken_keeps_the_stated_size_and_the_fetchs_limits(node: tuple[str, Path], tmp_path: Path) -> None:
    """``take`` fetches as ``get`` does: a stated size over the cache's bound is refused before any
    fetch, and the caller's ``how`` (the room left on its disk) bounds the transfer."""
    from agent.transfer import Fetch

    url, _ = node
    cache = BlobCache(tmp_path / "cache", 1000)
    with pytest.raises(ServiceError) as refused:
        cache.take(SHA, "http://127.0.0.1:9", TOKEN, tmp_path / "joe.pth", size=len(MODEL))  # nothing listens there
    assert refused.value.code == "disk_full" and "VOICE_AGENT_BLOB_CACHE_MB" in str(refused.value)
    cache = BlobCache(tmp_path / "cache", 10 << 20)
    with pytest.raises(ServiceError) as refused:
        cache.take(SHA, url, TOKEN, tmp_path / "joe.pth", size=len(MODEL), how=Fetch(room=1000))
    assert refused.value.code == "disk_full" and not (tmp_path / "joe.pth").exists()
