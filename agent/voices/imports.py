"""Importing voices a user has: a file, a folder, or a zip/tar of them, into a voices folder (a
profile's or the household's).

Everything happens in a staging folder inside the target voices folder (same filesystem, hidden
from the engines, deleted in any case): the files are copied or unpacked there
(``archives.unpack``, hostile input), checked by their providers' loaders (``formats.plan``),
and only then renamed into place, where the engines find them by name. An existing voice of the
same name is replaced only when asked (``replace``), else ``voice_exists``; nothing is landed
when any voice of the import is refused."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from agent.errors import ServiceError
from agent.voices import formats
from agent.voices.archives import MB, Limits, copy_capped, is_archive, remove_tree, unpack
from agent.voices.download import room

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
STAGING_PREFIX = ".import-"


UPLOAD_PREFIX = "upload-"


@dataclass(frozen=True)
class ImportOptions:
    name: str | None = None  # the voice's name when the files' names are not it (one voice only)
    replace: bool = False  # an existing voice of the same name is replaced (else voice_exists)
    consume: bool = False  # the source is the agent's own (an upload): moved into staging, not copied


def limits_for(max_mb: int, free: int | None = None) -> Limits:
    """The caps of one import, from ``voice_import_max_mb`` and the room the voices folder has
    left (``free``: the voices' disk cap and the free space, ``download.room``)."""
    cap = max_mb * MB if free is None else min(max_mb * MB, free)
    return Limits(total_bytes=cap, member_bytes=cap)


class ImportSlot:
    """One import at a time, for the whole household: an upload holds the slot from before its
    body is read until its voices landed, so a flood of uploads takes one upload's room on the
    disk, not one per connection. A second import is answered ``busy`` at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def take(self) -> None:
        if not self._lock.acquire(blocking=False):
            raise ServiceError("busy", "another voice import is running: try again once it is done")

    def release(self) -> None:
        self._lock.release()


class UploadRoom:
    """The bytes an upload may still write: under the voices' disk cap and the disk's free space
    (``download.room``), checked for the length the request announces and for each chunk."""

    def __init__(self, free: int) -> None:
        self.free = free
        self.received = 0

    def take(self, size: int) -> None:
        self.received += size
        if self.received > self.free:
            raise ServiceError("disk_full", f"the upload is more than the {self.free} bytes the voices may still take "
                                            "on this disk: free some space, or raise VOICE_AGENT_VOICE_DOWNLOAD_MAX_MB")


def upload_room(voices_dirs: list[Path], max_bytes: int, announced: int) -> UploadRoom:
    """Room for an upload into any of ``voices_dirs`` (the scope is in the form, read later: the
    tightest counts), or ``disk_full`` when the announced length does not fit."""
    made = UploadRoom(min(room(folder, max_bytes) for folder in voices_dirs))
    made.take(announced)
    made.received = 0
    return made


def clean_leftovers(uploads_dir: Path, voices_dirs: list[Path]) -> None:
    """At start-up: what a crash left of uploads (``out/uploads/upload-*``) and imports' staging
    folders (``.import-*`` in each voices folder): nothing is importing yet, so none is in use."""
    found = list(uploads_dir.glob(f"{UPLOAD_PREFIX}*")) if uploads_dir.is_dir() else []
    for folder in voices_dirs:
        if folder.is_dir():
            found += folder.glob(f"{STAGING_PREFIX}*")
    for path in found:
        log.info("removing %s, left by an import the agent did not finish", path)
        shutil.rmtree(path, ignore_errors=True)


def is_archive_name(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def import_voices(source: Path, voices_dir: Path, options: ImportOptions, limits: Limits) -> list[dict[str, Any]]:
    """Install the voices ``source`` holds into ``voices_dir``: ``[{provider, name, files}]``."""
    if source.is_symlink() and not source.resolve().exists() or not source.exists():
        raise ServiceError("file_not_found", f"nothing to import at {source}")
    voices_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=voices_dir))
    try:
        files = _stage(source, staging / "in", limits, options.consume)
        voices = formats.plan(files, staging, options.name, limits)
        for voice in voices:
            _check_free(voice, voices_dir, options.replace)
        installed = _land_all(voices, voices_dir, staging)
    finally:
        remove_tree(staging)
    for entry in installed:
        log.info("imported %s voice %s into %s", entry["provider"], entry["name"], voices_dir)
    return installed


def _stage(source: Path, folder: Path, limits: Limits, consume: bool = False) -> list[Path]:
    """``source``'s voice files, as copies under ``folder`` (an archive unpacked; an upload's
    file moved, ``consume``: it would otherwise take its size twice)."""
    folder.mkdir()
    if source.is_dir():
        return _copy_folder(source, folder, limits)
    if is_archive_name(source):
        if not is_archive(source):
            raise ServiceError("not_a_voice", f"{source.name} is not the archive its name says")
        return unpack(source, folder, limits, formats.wanted)
    if source.name.endswith(".onnx.json"):
        source = source.with_name(source.name.removesuffix(".json"))  # the pair, from either file
    if not formats.wanted(PurePosixPath(source.name)):
        raise ServiceError("not_a_voice", f"{source.name} is not a voice file: import a Piper .onnx (with its "
                                          ".onnx.json), a Kokoro .pt/.npy or voices .bin, an RVC .pth, or a zip/tar")
    members = [source]
    if source.suffix == ".onnx" and source.with_name(source.name + ".json").is_file():
        members.append(source.with_name(source.name + ".json"))
    return [_copy_file(member, folder / member.name, limits, consume) for member in members]


def _copy_folder(source: Path, folder: Path, limits: Limits) -> list[Path]:
    """A folder's voice files (subfolders too); links are not followed, as in an archive."""
    found: list[Path] = []
    total = 0
    for root, dirs, names in os.walk(source, followlinks=False):
        for name in sorted(names):
            path = Path(root) / name
            if not formats.wanted(PurePosixPath(name)):
                continue
            if path.is_symlink():
                raise ServiceError("archive_unsafe", f"{path} is a link: copy the file itself into the folder")
            if len(found) >= limits.members:
                raise ServiceError("archive_too_large", f"{source} holds more than {limits.members} voice files")
            target = folder / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            found.append(_copy_file(path, target, limits))
            total += target.stat().st_size
            if total > limits.total_bytes:
                raise ServiceError("archive_too_large", f"{source} holds more than {limits.total_bytes} bytes of voice "
                                                        "files (VOICE_AGENT_VOICE_IMPORT_MAX_MB)")
    return found


def _copy_file(source: Path, target: Path, limits: Limits, move: bool = False) -> Path:
    if not source.is_file():
        raise ServiceError("not_a_voice", f"{source} is not a regular file")
    if source.stat().st_size > limits.member_bytes:
        raise ServiceError("archive_too_large", f"{source.name} is {source.stat().st_size} bytes; the voices may take "
                                                f"{limits.member_bytes} more (VOICE_AGENT_VOICE_IMPORT_MAX_MB, "
                                                "VOICE_AGENT_VOICE_DOWNLOAD_MAX_MB, the free space)")
    if move and not source.is_symlink():
        try:
            os.replace(source, target)  # the upload and the staging folder share out/: a rename
            return target
        except OSError:  # another filesystem: copied below
            pass
    with open(source, "rb") as handle:
        copy_capped(handle, target, limits.member_bytes, str(source))
    return target


def _check_free(voice: formats.Voice, voices_dir: Path, replace: bool) -> None:
    taken = [voices_dir / voice.folder] if voice.folder else [voices_dir / rel for _, rel in voice.files]
    if voice.provider == "kokoro":  # a voicepack of the same name as .pt shadows or is shadowed alike
        taken.append((voices_dir / voice.files[0][1]).with_suffix(".pt"))
    if not replace and any(path.exists() for path in taken):
        raise ServiceError("voice_exists", f"{voice.provider} voice {voice.name!r} is already in {voices_dir}: "
                                           "import with replace (--replace) to replace it, or give another name")


def _land_all(voices: list[formats.Voice], voices_dir: Path, staging: Path) -> list[dict[str, Any]]:
    """Every voice renamed into place, or none: when a rename fails (a full disk, a folder that
    became read-only), what landed before it is taken back and what it replaced is put back."""
    undo: list[tuple[Path, Path | None]] = []  # (landed path, the file or folder it replaced, kept in staging)
    try:
        return [_land(voice, voices_dir, staging, undo) for voice in voices]
    except BaseException:
        for landed, old in reversed(undo):
            try:
                if old is not None:
                    os.replace(old, landed)
                elif landed.is_dir():
                    remove_tree(landed)
                else:
                    landed.unlink(missing_ok=True)
            except OSError as exc:
                log.error("cannot take back %s after a failed import: %s", landed, exc)
        raise


def _put(source: Path, target: Path, staging: Path, undo: list[tuple[Path, Path | None]]) -> None:
    """``source`` renamed to ``target``; what ``target`` was is moved into staging first, to be
    put back if the import fails (deleted with staging if it succeeds)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    old: Path | None = None
    if target.exists() or target.is_symlink():
        old = staging / "replaced" / str(len(undo))
        old.parent.mkdir(parents=True, exist_ok=True)
        os.replace(target, old)
    undo.append((target, old))
    os.replace(source, target)


def _land(voice: formats.Voice, voices_dir: Path, staging: Path, undo: list[tuple[Path, Path | None]]) -> dict[str, Any]:
    """Rename the checked files into place. An RVC folder is swapped whole; a Piper model lands
    before its config, so the engine never sees a config without its model."""
    if voice.folder:
        new = staging / "out" / voice.folder
        for path, rel in voice.files:
            (staging / "out" / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, staging / "out" / rel)
        _put(new, voices_dir / voice.folder, staging, undo)
        return {"provider": voice.provider, "name": voice.name, "files": [str(voices_dir / rel) for _, rel in voice.files]}
    for path, rel in voice.files:
        _put(path, voices_dir / rel, staging, undo)
    if voice.provider == "kokoro":
        shadow = (voices_dir / voice.files[0][1]).with_suffix(".pt")  # replaced: the .pt would shadow it
        if shadow.exists():
            old = staging / "replaced" / str(len(undo))
            old.parent.mkdir(parents=True, exist_ok=True)
            os.replace(shadow, old)
            undo.append((shadow, old))
    return {"provider": voice.provider, "name": voice.name, "files": [str(voices_dir / rel) for _, rel in voice.files]}
