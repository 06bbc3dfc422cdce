"""The download of one catalog file (agent/voices/download.py) against the local mirror: resume,
a server that ignores Range, truncated and corrupt files, size caps; nothing half-made is kept."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.errors import ServiceError
from agent.voices.download import Fetch, fetch, redirect_refusal, room
from providers.catalog import CatalogFile
from tests.voice_mirror import VoiceMirror

BODY = bytes(range(256)) * 4096  # 1 MiB, every offset distinguishable enough
PATH = "en/en_US/test/medium/en_US-test-medium.onnx"


@pytest.fixture(scope="module")
def mirror() -> Iterator[VoiceMirror]:
    with VoiceMirror(with_kokoro=False) as server:
        server.files[PATH] = BODY
        yield server


@pytest.fixture(autouse=True)
def clean(mirror: VoiceMirror) -> Iterator[None]:
    mirror.faults.clear()
    mirror.requests.clear()
    yield
    mirror.faults.clear()


def catalog_file(**changes: object) -> CatalogFile:
    return CatalogFile(**{"path": PATH, "size": len(BODY), "md5": hashlib.md5(BODY).hexdigest(), **changes})  # type: ignore[arg-type]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_whole_file_is_fetched_checked_and_named_as_in_the_catalog(mirror: VoiceMirror, tmp_path: Path) -> None:
    seen: list[int] = []
    got = fetch(mirror.piper_url + PATH, catalog_file(), tmp_path, progress=seen.append)
    assert got == tmp_path / "en_US-test-medium.onnx" and got.read_bytes() == BODY
    assert leftovers(tmp_path) == ["en_US-test-medium.onnx"] and seen[-1] == len(BODY)


def test_a_part_file_is_resumed_with_a_range_request(mirror: VoiceMirror, tmp_path: Path) -> None:
    (tmp_path / "en_US-test-medium.onnx.part").write_bytes(BODY[:300_000])
    got = fetch(mirror.piper_url + PATH, catalog_file(), tmp_path)
    assert got.read_bytes() == BODY
    assert mirror.requests == [(PATH, "bytes=300000-")]


def test_a_broken_connection_keeps_its_part_and_the_next_try_completes(mirror: VoiceMirror, tmp_path: Path) -> None:
    mirror.faults.break_after[PATH] = 200_000
    with pytest.raises(ServiceError) as broke:
        fetch(mirror.piper_url + PATH, catalog_file(), tmp_path, how=Fetch(timeout=5))
    assert broke.value.code == "voice_download_failed" and mirror.piper_url + PATH in str(broke.value)
    assert "resumes" in str(broke.value)
    part = tmp_path / "en_US-test-medium.onnx.part"
    assert 0 < part.stat().st_size < len(BODY)
    kept = part.stat().st_size
    assert fetch(mirror.piper_url + PATH, catalog_file(), tmp_path).read_bytes() == BODY
    assert mirror.requests[-1] == (PATH, f"bytes={kept}-")


def test_a_server_that_ignores_range_restarts_from_zero(mirror: VoiceMirror, tmp_path: Path) -> None:
    (tmp_path / "en_US-test-medium.onnx.part").write_bytes(b"\xff" * 300_000)  # appended to, this would be corrupt
    mirror.faults.ignore_range.add(PATH)
    got = fetch(mirror.piper_url + PATH, catalog_file(), tmp_path)
    assert got.read_bytes() == BODY and mirror.requests == [(PATH, "bytes=300000-")]


@pytest.mark.parametrize("fault", ["truncate", "corrupt"])
def test_a_truncated_or_corrupt_file_is_refused_and_nothing_is_left(mirror: VoiceMirror, tmp_path: Path, fault: str) -> None:
    getattr(mirror.faults, fault).add(PATH)
    with pytest.raises(ServiceError) as refused:
        fetch(mirror.piper_url + PATH, catalog_file(), tmp_path)
    assert refused.value.code == "voice_download_failed" and mirror.piper_url + PATH in str(refused.value)
    assert ("truncated" if fault == "truncate" else "MD5") in str(refused.value)
    assert leftovers(tmp_path) == []


def test_without_a_published_size_the_limit_caps_the_bytes(mirror: VoiceMirror, tmp_path: Path) -> None:
    with pytest.raises(ServiceError) as refused:
        fetch(mirror.piper_url + PATH, CatalogFile(PATH, limit=len(BODY) - 1), tmp_path)
    assert refused.value.code == "voice_download_failed" and leftovers(tmp_path) == []
    assert fetch(mirror.piper_url + PATH, CatalogFile(PATH, limit=len(BODY)), tmp_path).read_bytes() == BODY


def test_the_disk_cap_refuses_before_and_while_fetching(mirror: VoiceMirror, tmp_path: Path) -> None:
    with pytest.raises(ServiceError) as before:
        fetch(mirror.piper_url + PATH, catalog_file(), tmp_path, how=Fetch(room=len(BODY) - 1))
    assert before.value.code == "disk_full" and mirror.requests == []
    with pytest.raises(ServiceError) as during:  # no published size: counted as it comes
        fetch(mirror.piper_url + PATH, CatalogFile(PATH, limit=10 * len(BODY)), tmp_path, how=Fetch(room=1000))
    assert during.value.code == "disk_full" and leftovers(tmp_path) == []


def test_a_stalled_server_times_out_with_what_to_do(mirror: VoiceMirror, tmp_path: Path) -> None:
    mirror.faults.stall[PATH] = 2.0
    with pytest.raises(ServiceError) as stalled:
        fetch(mirror.piper_url + PATH, catalog_file(), tmp_path, how=Fetch(timeout=0.3))
    assert stalled.value.code == "voice_download_failed" and "try again" in str(stalled.value)


def test_a_missing_file_names_the_url(mirror: VoiceMirror, tmp_path: Path) -> None:
    with pytest.raises(ServiceError) as missing:
        fetch(mirror.piper_url + "nope.onnx", CatalogFile("nope.onnx", 10), tmp_path)
    assert "HTTP 404" in str(missing.value) and mirror.piper_url + "nope.onnx" in str(missing.value)


def test_room_is_the_cap_less_what_the_voices_hold(tmp_path: Path) -> None:
    (tmp_path / "kokoro").mkdir()
    (tmp_path / "kokoro" / "a.npy").write_bytes(b"x" * 1000)
    assert room(tmp_path, 5000) == 4000
    assert room(tmp_path, 500) == 0


def test_redirects_are_followed_only_to_http_and_at_most_five_times(mirror: VoiceMirror, tmp_path: Path) -> None:
    hops = [f"hop/{i}" for i in range(6)]
    mirror.redirects.update({hop: mirror.url + (hops[i + 1] if i + 1 < len(hops) else PATH) for i, hop in enumerate(hops)})
    mirror.redirects["to-ftp"] = f"ftp://127.0.0.1:1/{PATH}"
    try:
        assert fetch(mirror.url + hops[1], catalog_file(), tmp_path / "five").read_bytes() == BODY  # 5 redirects
        with pytest.raises(ServiceError) as caught:
            fetch(mirror.url + hops[0], catalog_file(), tmp_path / "six")
        assert caught.value.code == "voice_download_failed" and "more than 5 redirects" in str(caught.value)
        with pytest.raises(ServiceError) as caught:
            fetch(mirror.url + "to-ftp", catalog_file(), tmp_path / "ftp")
        assert caught.value.code == "voice_download_failed" and "redirect to a ftp: URL" in str(caught.value)
    finally:
        mirror.redirects.clear()


@pytest.mark.parametrize(("origin", "target", "refused"), [
    ("93.184.216.34", "https://104.16.0.1/cdn/x.onnx", False),  # a catalog host hands over to its CDN
    ("93.184.216.34", "http://127.0.0.1:8080/x.onnx", True),
    ("93.184.216.34", "http://169.254.169.254/latest/meta-data", True),  # a cloud's metadata address
    ("93.184.216.34", "http://192.168.1.10/x.onnx", True),
    ("93.184.216.34", "http://localhost/x.onnx", True),
    ("192.168.1.2", "http://127.0.0.1/x.onnx", False),  # a mirror in the household may point anywhere there
    ("93.184.216.34", "file:///etc/passwd", True),
])
def test_a_redirect_from_the_internet_into_the_household_is_refused(origin: str, target: str, refused: bool) -> None:
    assert (redirect_refusal(origin, target) is not None) == refused


def test_a_download_slower_than_the_minimum_rate_stops_and_keeps_its_part(mirror: VoiceMirror, tmp_path: Path) -> None:
    ticks = iter(range(0, 10_000, 100))  # each look at the clock: 100 s later, so the mirror "trickles"
    how = Fetch(clock=lambda: float(next(ticks)))
    with pytest.raises(ServiceError) as caught:
        fetch(mirror.url + "piper/" + PATH, catalog_file(), tmp_path, how=how)
    assert caught.value.code == "voice_download_failed" and "slower than" in str(caught.value)
    assert leftovers(tmp_path) == ["en_US-test-medium.onnx.part"]  # the next try resumes it
    assert fetch(mirror.url + "piper/" + PATH, catalog_file(), tmp_path).read_bytes() == BODY
