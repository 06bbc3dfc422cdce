"""What a worker's replies bring home (agent/train/received.py), the corners the round-seven
mutants found: trained files land in a voices folder whose parents do not exist yet, and across
file systems (a copy renamed, no ``.tmp`` left); the fetch is asked for the file named; the
refusals say what is wrong in words of their own; a leftover folder that cannot be removed never
hides what happened (the kept checkpoint, the landed files, the fetch's own error)."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.nodes.work import BlobRef, FileData, WorkError
from agent.train import received as module
from agent.train.received import held_checkpoint, keep_checkpoint, land_outputs, receive

REF = BlobRef(sha256="ab" * 32, size=5, name="joe.pth")


def test_trained_files_land_in_a_voices_folder_that_does_not_exist_yet(tmp_path: Path) -> None:
    voices = tmp_path / "profiles" / "default" / "out" / "voices" / "owner"  # a new speaker's: no parent yet
    landed = land_outputs(voices, [FileData.of("joe.npy", b"pack")], staging=tmp_path / "job")
    assert landed == [voices / "joe.npy"] and (voices / "joe.npy").read_bytes() == b"pack"
    assert list((tmp_path / "job").iterdir()) == []


def test_trained_files_land_across_file_systems_as_a_copy_renamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    voices, staging = tmp_path / "voices", tmp_path / "job"
    replace = os.replace
    moved: list[tuple[str, str]] = []

    def across(source: str | Path, target: str | Path) -> None:
        if Path(source).parent.parent == staging:  # out of the staging folder: another file system
            raise OSError(18, "Invalid cross-device link")
        moved.append((Path(source).name, Path(target).name))
        replace(source, target)

    monkeypatch.setattr(module.os, "replace", across)

    def fetched(ref: BlobRef, target: Path) -> None:
        target.write_bytes(b"model")

    landed = land_outputs(voices, [FileData.of("joe.index", b"i")], [REF], fetched, staging=staging)
    assert landed == [voices / "joe.index", voices / "joe.pth"]
    assert (voices / "joe.index").read_bytes() == b"i" and (voices / "joe.pth").read_bytes() == b"model"
    assert sorted(p.name for p in voices.iterdir()) == ["joe.index", "joe.pth"]  # no .tmp left
    assert [target for _, target in moved] == ["joe.index", "joe.pth"]
    assert all(source.startswith((".joe.index.", ".joe.pth.")) and source.endswith(".tmp") for source, _ in moved)
    assert list(staging.iterdir()) == []


def test_the_fetch_is_asked_for_the_file_the_reply_names(tmp_path: Path) -> None:
    asked: list[tuple[BlobRef, Path]] = []

    def fetch(ref: BlobRef, target: Path) -> None:
        asked.append((ref, target))
        target.write_bytes(b"model")

    incoming = receive(tmp_path, [], [REF], fetch)
    assert asked == [(REF, incoming / "joe.pth")] and incoming.parent == tmp_path
    kept = keep_checkpoint(tmp_path / "ckpt", [], 7, [REF], fetch)
    assert asked[1][0] == REF and held_checkpoint(tmp_path / "ckpt") == (kept, 7)


def test_a_reply_that_cannot_be_received_says_why(tmp_path: Path) -> None:
    with pytest.raises(WorkError, match="^a reply names a file twice$"):
        receive(tmp_path, [FileData.of("joe.pth", b"i")], [REF], lambda ref, target: None)
    with pytest.raises(WorkError, match="^the reply names files to fetch, and its worker offers none$"):
        receive(tmp_path, [], [REF], None)
    assert list(tmp_path.iterdir()) == []  # nothing begun


def unremovable(monkeypatch: pytest.MonkeyPatch, *prefixes: str) -> list[str]:
    """Folders whose names start with one of ``prefixes`` cannot be removed (their files can): the
    names refused, in order."""
    rmdir, refused = os.rmdir, []

    def refusing(path: str | Path, *args: object, **kwargs: object) -> None:
        if Path(path).name.startswith(prefixes):
            refused.append(Path(path).name)
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        rmdir(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "rmdir", refusing)
    return refused


def fails(ref: BlobRef, target: Path) -> None:
    target.write_bytes(b"half")
    raise WorkError("joe.pth is not the one named")


def test_an_older_checkpoint_that_cannot_be_removed_stays_and_the_new_one_is_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "job"
    first = keep_checkpoint(folder, [FileData.of("state.json", b'{"step": 5}')], 5)
    refused = unremovable(monkeypatch, first.name)
    second = keep_checkpoint(folder, [FileData.of("state.json", b'{"step": 10}')], 10)
    assert refused == [first.name] and held_checkpoint(folder) == (second, 10)


@pytest.mark.parametrize("receiving", [
    lambda folder: receive(folder, [FileData.of("a.json", b"{}")], [REF], fails),
    lambda folder: keep_checkpoint(folder, [FileData.of("a.json", b"{}")], 3, [REF], fails),
    lambda folder: land_outputs(folder.parent / "voices", [], [REF], fails, staging=folder),
], ids=["receive", "keep_checkpoint", "land_outputs"])
def test_a_half_received_folder_that_cannot_be_removed_does_not_hide_the_fetchs_error(
        receiving: Callable[[Path], object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    refused = unremovable(monkeypatch, module.INCOMING)
    with pytest.raises(WorkError, match="^joe.pth is not the one named$"):
        receiving(tmp_path / "job")
    assert len(refused) == 1 and held_checkpoint(tmp_path / "job") == (None, 0)
    assert [list(p.iterdir()) for p in (tmp_path / "job").iterdir()] == [[]]  # its files went, the folder stayed


def test_a_checkpoint_that_cannot_be_renamed_fails_with_the_renames_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(source: Path, target: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(module.os, "rename", full)
    refused = unremovable(monkeypatch, module.INCOMING)
    with pytest.raises(OSError) as failed:
        keep_checkpoint(tmp_path / "job", [FileData.of("a.json", b"{}")], 3)
    assert failed.value.errno == errno.ENOSPC and len(refused) == 1 and held_checkpoint(tmp_path / "job") == (None, 0)


def test_trained_files_that_landed_stay_landed_when_their_staging_folder_cannot_be_removed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    refused = unremovable(monkeypatch, module.INCOMING)
    landed = land_outputs(tmp_path / "voices", [FileData.of("joe.npy", b"pack")], staging=tmp_path / "job")
    assert landed == [tmp_path / "voices" / "joe.npy"] and landed[0].read_bytes() == b"pack" and len(refused) == 1
