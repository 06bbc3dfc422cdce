"""The files a home keeps for other nodes, by SHA-256 (agent/blobs/index.py): only the kinds of
file and folders it names, never hidden files or links; hashes kept while a file is unchanged."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from agent.blobs import index as blob_index
from agent.blobs.index import BlobIndex, check_hash, kept_roots
from agent.layout import Layout


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_kept_file_is_found_by_its_hash(tmp_path: Path) -> None:
    model = write(tmp_path / "rvc" / "anna" / "anna.pth", b"model")
    write(tmp_path / "rvc" / "anna" / "anna.index", b"index")
    index = BlobIndex(lambda: [tmp_path])
    assert index.find(sha(b"model")) == model
    assert index.find(sha(b"nothing")) is None


def test_what_is_not_kept_has_no_hash(tmp_path: Path) -> None:
    outside = write(tmp_path / "secret.pth", b"outside")
    root = tmp_path / "voices"
    write(root / "notes.sqlite", b"a database")
    write(root / ".downloads" / "x.onnx", b"staged")
    write(root / "y.onnx.part", b"half")
    write(root / ".hidden.wav", b"hidden")
    (root / "link.pth").symlink_to(outside)
    index = BlobIndex(lambda: [root])
    for data in (b"outside", b"a database", b"staged", b"half", b"hidden"):
        assert index.find(sha(data)) is None, data


def test_a_file_is_hashed_once_while_it_is_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sample = write(tmp_path / "samples" / "s1.wav", b"RIFF one")
    write(tmp_path / "samples" / "s2.wav", b"RIFF two")
    hashed: list[Path] = []
    real = blob_index.sha256_file
    monkeypatch.setattr(blob_index, "sha256_file", lambda path: (hashed.append(path), real(path))[1])
    index = BlobIndex(lambda: [tmp_path])
    assert index.find(sha(b"RIFF one")) == sample
    assert index.find(sha(b"RIFF two")) is not None and index.find(sha(b"none")) is None
    assert len(hashed) == 2  # two walks after the first: nothing new to hash
    sample.write_bytes(b"RIFF changed")
    os.utime(sample, ns=(1, 1))
    assert index.find(sha(b"RIFF one")) is None  # a changed file is not what its old hash names
    assert index.find(sha(b"RIFF changed")) == sample
    sample.unlink()
    assert index.find(sha(b"RIFF changed")) is None


def test_the_voices_and_checkpoint_folders_are_kept(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    (layout.profiles_root / "anna").mkdir(parents=True)
    roots = kept_roots(layout)
    assert layout.household_voices in roots and layout.voices_dir("anna") in roots
    assert layout.trainings_dir("anna") in roots and layout.training_dir("anna", "j1").parent in roots
    assert not any(layout.jobs_db.is_relative_to(root) for root in roots)
    assert layout.etc_dir not in roots and all(layout.etc_dir not in root.parents for root in roots)


@pytest.mark.parametrize(("text", "expected"), [
    ("A" * 64, "a" * 64), ("0123456789abcdef" * 4, "0123456789abcdef" * 4),
    ("a" * 63, None), ("g" * 64, None), ("../" + "a" * 61, None), ("", None),
])
def test_a_hash_is_64_hex_digits(text: str, expected: str | None) -> None:
    assert check_hash(text) == expected


def test_hash_of_names_a_kept_file_as_find_knows_it_and_nothing_else(tmp_path: Path) -> None:
    """What a job names by hash is a file the blob route will serve: a kept kind, inside the
    folders, not hidden; worked out again only when the file changed."""
    voices = tmp_path / "voices"
    model = write(voices / "rvc-models" / "anna" / "anna.pth", b"model")
    index = BlobIndex(lambda: [voices])
    assert index.hash_of(model) == sha(b"model") and index.find(sha(b"model")) == model
    outside = write(tmp_path / "elsewhere" / "hubert_base.pt", b"encoder")
    hidden = write(voices / ".staging" / "x.pth", b"hidden")
    settings = write(voices / "agent.env", b"TOKEN=secret")
    assert [index.hash_of(p) for p in (outside, hidden, settings, voices / "missing.pth")] == [None] * 4
    write(model, b"model, retrained")
    os.utime(model, ns=(1, 1))  # a new size and time: hashed again
    assert index.hash_of(model) == sha(b"model, retrained")
