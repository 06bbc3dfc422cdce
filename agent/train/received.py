"""What a worker's replies bring home for a training job (agent/train/remote.py): its checkpoints
and its trained files, received whole or not at all. Every file, the ones a reply carries checked
against their hashes and the ones it names fetched by hash (checked as they come), goes into a new
hidden folder first; a checkpoint is that folder renamed ``received-<step>-…``, which ``remote.json``
then names (an atomic write); trained files go from it into the profile's voices, each by one
rename, once every one of them is there. A half-received file never becomes a checkpoint or a voice.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from agent.nodes.work import BlobRef, FileData, WorkError
from providers.common.files import atomic_write_text

POINTER = "remote.json"
RECEIVED = "received-"
INCOMING = ".incoming-"

Fetch = Callable[[BlobRef, Path], None]  # a worker's offered file by hash onto the path given, verified


def held_checkpoint(folder: Path) -> tuple[Path | None, int]:
    """The folder of the last checkpoint received for a job (``folder``: its checkpoint folder) and
    its step; (None, 0) when there is none."""
    try:
        pointer = json.loads((folder / POINTER).read_text())
        name, step = pointer["folder"], pointer["step"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, 0
    if not isinstance(name, str) or not name.startswith(RECEIVED) or "/" in name or not isinstance(step, int):
        return None, 0
    found = folder / name
    return (found, step) if found.is_dir() else (None, 0)


def receive(folder: Path, files: Sequence[FileData], fetched: Sequence[BlobRef] = (), fetch: Fetch | None = None) -> Path:
    """Every file of a reply into a new hidden folder under ``folder``: the ones it carries checked
    against their hashes before any is written, the others fetched by hash (checked as they come).
    The folder, once every file is there; else ``WorkError`` (or the fetch's ``ServiceError``) and
    nothing left behind."""
    names = [file.name for file in files] + [ref.name for ref in fetched]
    if len(set(names)) != len(names):
        raise WorkError("a reply names a file twice")
    if fetched and fetch is None:
        raise WorkError("the reply names files to fetch, and its worker offers none")
    contents = [(file.name, file.content()) for file in files]
    folder.mkdir(parents=True, exist_ok=True)
    incoming = folder / f"{INCOMING}{uuid.uuid4().hex[:8]}"
    incoming.mkdir()
    try:
        for name, content in contents:
            with open(incoming / name, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
        for ref in fetched:
            assert fetch is not None
            fetch(ref, incoming / ref.name)
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    return incoming


def keep_checkpoint(folder: Path, files: Sequence[FileData], step: int, fetched: Sequence[BlobRef] = (),
                    fetch: Fetch | None = None) -> Path:
    """A reply's checkpoint files as the job's checkpoint of ``step``: received whole (``receive``)
    into a hidden folder that one rename makes the checkpoint; then the pointer names it, and older
    ones go. ``WorkError`` (or the fetch's ``ServiceError``) when a file is not the one named:
    nothing changes."""
    names = [file.name for file in files] + [ref.name for ref in fetched]
    if not names or len(set(names)) != len(names):
        raise WorkError("a checkpoint needs its files, each once")
    incoming = receive(folder, files, fetched, fetch)
    target = folder / f"{RECEIVED}{step:09d}-{uuid.uuid4().hex[:6]}"
    try:
        os.rename(incoming, target)
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    atomic_write_text(folder / POINTER, json.dumps({"folder": target.name, "step": step}))
    for old in folder.iterdir():
        if old != target and old.is_dir() and old.name.startswith((RECEIVED, INCOMING)):
            shutil.rmtree(old, ignore_errors=True)
    return target


def land_outputs(output_dir: Path, files: Sequence[FileData], fetched: Sequence[BlobRef] = (),
                 fetch: Fetch | None = None, staging: Path | None = None) -> list[Path]:
    """A finished job's trained files into the profile's voices: received whole (``receive``, under
    ``staging``: the job's checkpoint folder, else ``output_dir``) before any lands, then each moved
    by one rename (a copy renamed, across file systems)."""
    names = [file.name for file in files] + [ref.name for ref in fetched]
    if not names:
        raise WorkError("a finished job sent no trained files")
    incoming = receive(staging or output_dir, files, fetched, fetch)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        landed = []
        for name in names:
            try:
                os.replace(incoming / name, output_dir / name)
            except OSError:
                temp = output_dir / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
                shutil.copyfile(incoming / name, temp)
                os.replace(temp, output_dir / name)
            landed.append(output_dir / name)
        return landed
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
