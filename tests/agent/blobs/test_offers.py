"""A worker's offered files (agent/blobs/offers.py): found by hash while offered, one job's at a
time, the newest of each kind, withdrawn when released; a file that changed while it was copied is
not offered; an earlier run's go at start."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from pathlib import Path

import pytest

from agent.blobs import offers as module
from agent.blobs.offers import ChangedWhileRead, Offered, Offers


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def made(folder: Path, **files: bytes) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return [folder / name for name in files]


def stored(offers: Offers) -> list[Path]:
    return sorted(p for p in offers.folder.rglob("*") if p.is_file()) if offers.folder.exists() else []


def test_offered_files_are_found_by_hash_as_copies_until_withdrawn(tmp_path: Path) -> None:
    offers = Offers(tmp_path / "offered")
    sources = made(tmp_path / "ckpt", **{"latest.pth": b"weights", "prepared.pth": b"data"})
    got = offers.offer("j1.a", "checkpoint", sources)
    assert got == [Offered("latest.pth", sha(b"weights"), 7), Offered("prepared.pth", sha(b"data"), 4)]
    found = offers.find(sha(b"weights"))
    assert found is not None and found.read_bytes() == b"weights" and not found.is_relative_to(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "latest.pth").write_bytes(b"the next epoch")  # the trainer goes on: the copy stays
    assert found.read_bytes() == b"weights"
    assert offers.find(sha(b"nothing")) is None
    offers.withdraw("j1.a", {sha(b"weights")})
    assert offers.find(sha(b"weights")) is None and offers.held() == [sha(b"data")]
    offers.withdraw("j2.b")  # another job's release: not this one's files
    assert offers.held() == [sha(b"data")]
    offers.withdraw("j1.a")
    assert offers.held() == [] and stored(offers) == [] and list(offers.folder.iterdir()) == []


def test_a_kinds_newest_files_replace_the_ones_before_and_another_jobs_replace_all(tmp_path: Path) -> None:
    offers = Offers(tmp_path / "offered")
    offers.offer("j1.a", "checkpoint", made(tmp_path / "1", **{"latest.pth": b"epoch 1"}))
    offers.offer("j1.a", "checkpoint", made(tmp_path / "2", **{"latest.pth": b"epoch 2"}))
    offers.offer("j1.a", "trained", made(tmp_path / "3", **{"joe.pth": b"model"}), move=True)
    assert offers.held() == sorted([sha(b"epoch 2"), sha(b"model")])
    assert not (tmp_path / "3" / "joe.pth").exists()  # moved: nobody writes it any more
    assert len(stored(offers)) == 2
    offers.offer("j2.b", "checkpoint", made(tmp_path / "4", **{"latest.pth": b"another job"}))
    assert offers.held() == [sha(b"another job")] and len(stored(offers)) == 1
    offers.withdraw_others("j2.b")  # its own files stay
    assert offers.held() == [sha(b"another job")]
    offers.withdraw_others("j3.c")  # a new job starts: nothing of the one before waits
    assert offers.held() == [] and stored(offers) == []


def test_a_file_that_changes_while_it_is_copied_is_not_offered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    offers = Offers(tmp_path / "offered")
    offers.offer("j1.a", "checkpoint", made(tmp_path / "1", **{"latest.pth": b"epoch 1"}))
    source = made(tmp_path / "2", **{"latest.pth": b"epoch 2"})
    copy = shutil.copyfile

    def written_meanwhile(src: Path, dst: Path) -> None:
        copy(src, dst)
        Path(src).write_bytes(b"epoch 3, longer")

    monkeypatch.setattr(module.shutil, "copyfile", written_meanwhile)
    with pytest.raises(ChangedWhileRead, match="latest.pth changed while it was copied$"):  # what the worker logs
        offers.offer("j1.a", "checkpoint", source)
    assert offers.held() == [sha(b"epoch 1")] and len(stored(offers)) == 1  # the one before stays


def test_a_copys_folder_that_cannot_be_removed_does_not_hide_the_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker tries a checkpoint that changed again; another error (no room) it gives up on."""
    offers = Offers(tmp_path / "offered")
    source = made(tmp_path / "1", **{"latest.pth": b"epoch 1"})
    copy, rmdir, refused = shutil.copyfile, os.rmdir, []

    def written_meanwhile(src: Path, dst: Path) -> None:
        copy(src, dst)
        Path(src).write_bytes(b"epoch 2, longer")

    def refusing(path: str, *args: object, **kwargs: object) -> None:
        if Path(path).name.startswith("checkpoint-"):
            refused.append(path)
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        rmdir(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(module.shutil, "copyfile", written_meanwhile)
    monkeypatch.setattr(os, "rmdir", refusing)
    with pytest.raises(ChangedWhileRead):
        offers.offer("j1.a", "checkpoint", source)
    assert len(refused) == 1 and offers.held() == [] and len(stored(offers)) == 0


def test_an_earlier_runs_offers_go_at_start(tmp_path: Path) -> None:
    made(tmp_path / "offered" / "checkpoint-0123abcd", **{"latest.pth": b"left"})
    offers = Offers(tmp_path / "offered")
    offers.start()
    assert not offers.folder.exists() and offers.find(sha(b"left")) is None
    Offers(tmp_path / "never").start()  # nothing there: nothing to do


def test_a_copy_gone_from_under_the_offers_is_withdrawn_without_an_error(tmp_path: Path) -> None:
    """Someone cleaned the offers' folder by hand: the next checkpoint, a release and another job's
    files go on as if the copies had been withdrawn."""
    offers = Offers(tmp_path / "offered")
    offers.offer("j1.a", "checkpoint", made(tmp_path / "1", **{"latest.pth": b"epoch 1"}))
    offers.offer("j1.a", "trained", made(tmp_path / "2", **{"joe.pth": b"model"}))
    shutil.rmtree(offers.folder)
    offers.offer("j1.a", "checkpoint", made(tmp_path / "3", **{"latest.pth": b"epoch 2"}))  # the one before: gone
    offers.withdraw("j1.a", {sha(b"model")})
    assert offers.held() == [sha(b"epoch 2")]
    found = offers.find(sha(b"epoch 2"))
    assert found is not None
    found.unlink()
    offers.offer("j2.b", "checkpoint", made(tmp_path / "4", **{"latest.pth": b"another job"}))
    assert offers.held() == [sha(b"another job")] and len(stored(offers)) == 1
