"""Atomic writes and change tags (providers/common/files.py): a reader never sees half a file, the
temporary file lives beside the target (a rename across file systems would not be atomic), and a
tag changes whenever the file or a file in the folder does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from providers.common import files
from providers.common.files import atomic_write_bytes, atomic_write_text, file_tag


def test_a_write_makes_missing_folders_and_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "voice.json"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["voice.json"]


def test_the_temporary_file_lives_beside_the_target_and_is_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str, str]] = []
    real = os.replace

    def replace(src: str, dst: Path) -> None:
        src_path = Path(src)
        seen.append((str(src_path.parent), src_path.name, src_path.read_text()))
        real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    target = tmp_path / "sub" / "voice.json"
    atomic_write_text(target, "é")
    ((folder, name, content),) = seen
    assert folder == str(target.parent)
    assert name.startswith(".voice.json.") and name.endswith(".tmp")
    assert content == "é"
    assert target.read_bytes() == "é".encode("utf-8")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "voice.json"
    target.write_bytes(b"old")

    def broken(src: str, dst: Path) -> None:
        assert Path(src).read_bytes() == b"new", "the data was flushed before the rename"
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["voice.json"]


def test_the_data_is_synced_before_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        order.append("fsync")
        real_fsync(fd)

    def replace(src: str, dst: Path) -> None:
        order.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "fsync", fsync)
    monkeypatch.setattr(files.os, "replace", replace)
    atomic_write_bytes(tmp_path / "x", b"data")
    assert order == ["fsync", "replace"]


def test_a_file_tag_is_its_time_and_size_in_hex(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"x" * 300)
    os.utime(path, ns=(0, 0x1234))
    assert file_tag(path) == "1234-12c"


def test_a_folder_tag_joins_its_files_in_name_order_and_skips_folders(tmp_path: Path) -> None:
    for name, size, ns in (("b.bin", 17, 0xB), ("a.json", 10, 0xA)):
        (tmp_path / name).write_bytes(b"x" * size)
        os.utime(tmp_path / name, ns=(0, ns))
    (tmp_path / "sub").mkdir()
    assert file_tag(tmp_path) == "a-a+b-11"


def test_a_tag_changes_when_the_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"one")
    os.utime(path, ns=(0, 1000))
    before = file_tag(path)
    path.write_bytes(b"two")  # same size
    os.utime(path, ns=(0, 2000))
    assert file_tag(path) != before
