"""Hostile archives handed to an import: each is refused with its code before a byte lands, and
the voices folder is left as it was (no staging folder, no file outside the target)."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from agent.errors import ServiceError
from agent.voices.archives import Limits, copy_capped, safe_name
from agent.voices.imports import ImportOptions, import_voices
from tests.agent.voices.files import make_tar, make_zip, piper_config, tar_entry, tiny_onnx, zip_symlink

LIMITS = Limits(total_bytes=8 * 1024 * 1024, member_bytes=4 * 1024 * 1024, members=20, ratio=100.0, ratio_from=1024 * 1024)


def pair(prefix: str = "") -> dict[str, bytes]:
    return {f"{prefix}en_US-a-medium.onnx": tiny_onnx(), f"{prefix}en_US-a-medium.onnx.json": piper_config()}


def refused(archive: Path, voices: Path, code: str, limits: Limits = LIMITS) -> str:
    with pytest.raises(ServiceError) as caught:
        import_voices(archive, voices, ImportOptions(), limits)
    assert caught.value.code == code, caught.value
    assert list(voices.iterdir()) == [], "a refused import left files behind"
    return str(caught.value)


@pytest.fixture
def voices(tmp_path: Path) -> Path:
    return tmp_path / "home" / "out" / "voices"


def test_a_safe_archive_in_nested_folders_is_taken(tmp_path: Path, voices: Path) -> None:
    archive = make_zip(tmp_path / "v.zip", {**pair("Voices/piper/"), "README.txt": b"hi", "__MACOSX/._x.onnx": b"junk"})
    installed = import_voices(archive, voices, ImportOptions(), LIMITS)
    assert [(v["provider"], v["name"]) for v in installed] == [("piper", "en_US-a-medium")]
    assert sorted(p.name for p in voices.iterdir()) == ["en_US-a-medium.onnx", "en_US-a-medium.onnx.json"]


@pytest.mark.parametrize("name", ["../en_US-a-medium.onnx", "voices/../../en_US-a-medium.onnx", "/tmp/en_US-a-medium.onnx",
                                  "dir\\..\\..\\x.onnx"])
def test_names_that_leave_the_folder_are_refused(tmp_path: Path, voices: Path, name: str) -> None:
    archive = make_zip(tmp_path / "slip.zip", {**pair(), name: tiny_onnx()})
    refused(archive, voices, "archive_unsafe")
    assert not (tmp_path / "home" / "out" / "en_US-a-medium.onnx").exists()
    assert not (tmp_path / "en_US-a-medium.onnx").exists()


def test_tar_slip_is_refused(tmp_path: Path, voices: Path) -> None:
    archive = make_tar(tmp_path / "slip.tar.gz", [("../../evil.onnx", tiny_onnx()), *pair().items()])
    assert "leaves the folder" in refused(archive, voices, "archive_unsafe")
    assert not (tmp_path / "evil.onnx").exists()


def test_a_zip_symlink_is_refused(tmp_path: Path, voices: Path) -> None:
    archive = zip_symlink(tmp_path / "link.zip", "en_US-a-medium.onnx", "/etc/passwd")
    assert "link" in refused(archive, voices, "archive_unsafe")


@pytest.mark.parametrize("entry", [
    tar_entry("en_US-a-medium.onnx", tarfile.SYMTYPE, "/etc/passwd"),
    tar_entry("en_US-a-medium.onnx", tarfile.SYMTYPE, "en_US-a-medium.onnx.json"),  # inside: tarfile's filter allows it
    tar_entry("en_US-a-medium.onnx", tarfile.LNKTYPE, "../../outside.onnx"),
    tar_entry("en_US-a-medium.onnx", tarfile.CHRTYPE),
    tar_entry("en_US-a-medium.onnx", tarfile.FIFOTYPE),
], ids=["symlink", "inner-symlink", "hardlink", "device", "fifo"])
def test_tar_links_and_devices_are_refused(tmp_path: Path, voices: Path, entry: tarfile.TarInfo) -> None:
    archive = make_tar(tmp_path / "links.tar", [entry, ("en_US-a-medium.onnx.json", piper_config())], mode="w")
    refused(archive, voices, "archive_unsafe")


def test_a_member_twice_is_refused(tmp_path: Path, voices: Path) -> None:
    archive = tmp_path / "twice.zip"
    with zipfile.ZipFile(archive, "w") as out, pytest.warns(UserWarning):
        for name, data in pair().items():
            out.writestr(name, data)
        out.writestr("en_US-a-medium.onnx", b"\x08 replaced")
    assert "twice" in refused(archive, voices, "archive_unsafe")


def test_a_zip_bomb_is_refused_by_its_ratio(tmp_path: Path, voices: Path) -> None:
    noise = np.random.default_rng(0).bytes(3 * 1024 * 1024)  # the whole archive's ratio stays low
    archive = make_zip(tmp_path / "bomb.zip", {**pair(), "noise.npy": noise, "en_US-b-medium.onnx": bytes(3 * 1024 * 1024)},
                       compress=zipfile.ZIP_DEFLATED)
    assert "compressed" in refused(archive, voices, "archive_too_large")


@pytest.mark.parametrize("name", ["../x.onnx", "a/../../x.onnx", "/etc/x.onnx", "a\\..\\x.onnx", "a\x00b.onnx", ""])
def test_safe_name_refuses_names_that_leave_the_folder(name: str) -> None:
    with pytest.raises(ServiceError) as caught:
        safe_name(name)
    assert caught.value.code == "archive_unsafe"
    assert safe_name("Voices/piper/en_US-a-medium.onnx").parts == ("Voices", "piper", "en_US-a-medium.onnx")


def test_a_tar_gz_bomb_is_refused_by_the_whole_archives_ratio(tmp_path: Path, voices: Path) -> None:
    archive = make_tar(tmp_path / "bomb.tar.gz", [*pair().items(), ("filler.bin", bytes(3 * 1024 * 1024))])
    assert "archive bomb" in refused(archive, voices, "archive_too_large")


def test_caps_on_total_member_and_count(tmp_path: Path, voices: Path) -> None:
    small = Limits(total_bytes=200_000, member_bytes=150_000, members=3, ratio=100.0, ratio_from=1024 * 1024)
    noise = bytes(range(256)) * 600  # 153 600 bytes that do not compress
    refused(make_zip(tmp_path / "member.zip", {**pair(), "x.npy": noise}), voices, "archive_too_large", small)
    two = {**pair(), "x.npy": noise[:100_000], "y.npy": noise[:100_000]}
    refused(make_zip(tmp_path / "total.zip", two), voices, "archive_too_large", Limits(200_000, 150_000, 10, 100.0))
    many = {**pair(), **{f"readme{i}.txt": b"x" for i in range(3)}}
    assert "members" in refused(make_zip(tmp_path / "many.zip", many), voices, "archive_too_large", small)


def test_a_member_bigger_than_it_declared_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    with pytest.raises(ServiceError) as caught:
        copy_capped(io.BytesIO(b"x" * 2000), target, 1000, "member")
    assert caught.value.code == "archive_too_large"
    assert not target.exists()


def test_an_archive_that_is_not_one_is_not_a_voice(tmp_path: Path, voices: Path) -> None:
    fake = tmp_path / "voice.zip"
    fake.write_bytes(b"this is text, not a zip")
    refused(fake, voices, "not_a_voice")


@pytest.mark.parametrize("sizes", [[5 * 1024 * 1024], [3 * 1024 * 1024, 3 * 1024 * 1024, 3 * 1024 * 1024]],
                         ids=["member", "running-total"])
def test_tar_caps_are_checked_as_each_header_is_read(tmp_path: Path, voices: Path, sizes: list[int]) -> None:
    archive = tmp_path / "huge.tar.gz"
    with gzip.open(archive, "wb") as out:  # full members up to the last, which only declares its size
        for i, size in enumerate(sizes):
            info = tarfile.TarInfo(f"m{i}.npy")
            info.size = size
            out.write(info.tobuf(format=tarfile.PAX_FORMAT))
            out.write(bytes(size + (-size % 512)) if i < len(sizes) - 1 else bytes(1024))
    # refused at the header over the cap, not as a damaged tar once the reader ran out of data
    refused(archive, voices, "archive_too_large")
