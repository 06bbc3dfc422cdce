"""Unpacking a zip or tar that a user hands us, as hostile input.

An archive may try to write outside the folder it is unpacked into (``../`` names, absolute names,
symlinks or hard links pointing out, devices), to fill the disk or the memory (a small file that
unpacks to gigabytes: caps on the total, each member, the compression ratio and the number of
members), or to overwrite one of its own files with a second of the same name. Each is refused
before anything is written (``archive_unsafe``, ``archive_too_large``); the caller unpacks into a
staging folder it deletes in any case, so a refusal mid-way leaves nothing behind.

The stdlib reads the formats (``zipfile``, ``tarfile`` with its ``data`` filter as a second
guard); this module only decides which members may be written, and where. Only the members a
voice is made of are unpacked (``wanted``); the rest (READMEs, ``__MACOSX`` forks) are skipped
but still count against the caps, so a bomb is refused wherever it hides."""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from agent.errors import ServiceError

MB = 1024 * 1024
CHUNK = MB


@dataclass(frozen=True)
class Limits:
    """What an archive may unpack to. The ratio applies to members of at least ``ratio_from``
    bytes (a small JSON config compresses well and is no threat)."""

    total_bytes: int = 1024 * MB
    member_bytes: int = 1024 * MB
    members: int = 1000
    ratio: float = 100.0
    ratio_from: int = MB


@dataclass(frozen=True)
class Member:
    """One file of an archive: its safe relative name, declared size and compressed size (0: unknown)."""

    name: PurePosixPath
    size: int
    packed: int


def is_archive(path: Path) -> bool:
    """A zip or a tar (any compression ``tarfile`` reads), by its content, not its name."""
    if zipfile.is_zipfile(path):
        return True
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def safe_name(raw: str) -> PurePosixPath:
    """The member's name as a relative path that stays inside the folder, or ``archive_unsafe``."""
    if not raw or "\x00" in raw or "\\" in raw or any(ord(c) < 32 for c in raw):
        raise ServiceError("archive_unsafe", f"archive member {raw!r} has a name no file may have here")
    path = PurePosixPath(raw)
    if path.is_absolute() or raw.startswith("/"):
        raise ServiceError("archive_unsafe", f"archive member {raw!r} has an absolute name")
    if any(part == ".." for part in path.parts):
        raise ServiceError("archive_unsafe", f"archive member {raw!r} leaves the folder it is unpacked into")
    return path


def is_junk(name: PurePosixPath) -> bool:
    """macOS resource forks and folders (``__MACOSX/``, ``._x.pth``): never a voice's file."""
    return "__MACOSX" in name.parts or name.name.startswith("._") or name.name == ".DS_Store"


class Caps:
    """The caps of one archive, counted member by member from the headers alone (the unpacking
    counts the real bytes again): a zip's from its directory (``check_members``), a tar's as each
    header is read (``tar_members``)."""

    def __init__(self, limits: Limits, source: str) -> None:
        self.limits = limits
        self.source = source
        self.count = 0
        self.total = 0
        self._seen: set[PurePosixPath] = set()

    def header(self) -> None:
        """One more member, of any kind the caller counts."""
        self.count += 1
        if self.count > self.limits.members:
            raise ServiceError("archive_too_large", f"{self.source} has more than {self.limits.members} members")

    def add(self, member: Member) -> None:
        """One file member: a name already seen, its size, its ratio and the running total."""
        limits, source = self.limits, self.source
        if member.name in self._seen:
            raise ServiceError("archive_unsafe", f"{source} holds {member.name} twice (the second would replace the first)")
        self._seen.add(member.name)
        if member.size > limits.member_bytes:
            raise ServiceError("archive_too_large", f"{member.name} in {source} unpacks to {member.size} bytes; "
                                                    f"the limit is {limits.member_bytes}")
        if member.packed and member.size >= limits.ratio_from and member.size > member.packed * limits.ratio:
            raise ServiceError("archive_too_large", f"{member.name} in {source} is compressed {member.size // max(1, member.packed)}:1; "
                                                    f"more than {limits.ratio:g}:1 is taken for an archive bomb")
        self.total += member.size
        if self.total > limits.total_bytes:
            raise ServiceError("archive_too_large", f"{source} unpacks to more than {limits.total_bytes} bytes "
                                                    "(VOICE_AGENT_VOICE_IMPORT_MAX_MB)")

    def whole(self, archive_size: int) -> None:
        """The whole archive's ratio, once every member was added."""
        if self.total >= self.limits.ratio_from and self.total > max(1, archive_size) * self.limits.ratio:
            raise ServiceError("archive_too_large", f"{self.source} unpacks to {self.total} bytes from {archive_size}: "
                                                    "taken for an archive bomb")


def check_members(members: list[Member], archive_size: int, limits: Limits, source: str) -> None:
    """The caps of a zip's file members (its directory is read whole before anything is unpacked)."""
    caps = Caps(limits, source)
    for member in members:
        caps.header()
        caps.add(member)
    caps.whole(archive_size)


def zip_members(archive: zipfile.ZipFile, source: str) -> list[tuple[Member, zipfile.ZipInfo]]:
    """Each file member with its checked name; links and encrypted members are refused."""
    found = []
    for info in archive.infolist():
        name = safe_name(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode) or (mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR)):
            raise ServiceError("archive_unsafe", f"{info.filename} in {source} is a link or a device, not a file")
        if info.flag_bits & 0x1:
            raise ServiceError("archive_unsafe", f"{info.filename} in {source} is encrypted")
        if info.is_dir():
            continue
        found.append((Member(name, info.file_size, info.compress_size), info))
    return found


def tar_members(archive: tarfile.TarFile, caps: Caps) -> list[tuple[Member, tarfile.TarInfo]]:
    """Each file member with its checked name; links, devices and FIFOs are refused. Read lazily,
    and the caps are checked as each header is read: the next header of a .tar.gz lies behind the
    member's data, so reading on past a member that declares 100 GB would decompress all of it
    before a check at the end could say no; a million empty members (folders too) stop at the count."""
    found = []
    for info in archive:
        caps.header()
        name = safe_name(info.name)
        if info.isdir():
            continue
        if not info.isreg():
            kind = "link" if info.issym() or info.islnk() else "device or special file"
            raise ServiceError("archive_unsafe", f"{info.name} in {caps.source} is a {kind}, not a file")
        member = Member(name, info.size, 0)
        caps.add(member)
        found.append((member, info))
    return found


def copy_capped(source: IO[bytes], target: Path, cap: int, what: str) -> int:
    """Copy at most ``cap`` bytes; a member that gives more than it declared is refused."""
    written = 0
    try:
        with open(target, "xb") as out:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                if written > cap:
                    raise ServiceError("archive_too_large", f"{what} unpacks to more than it declared ({cap} bytes)")
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return written


def _target(folder: Path, name: PurePosixPath) -> Path:
    path = folder.joinpath(*name.parts)
    if not path.resolve().is_relative_to(folder.resolve()):  # a parent that is a link (cannot happen: none are written)
        raise ServiceError("archive_unsafe", f"archive member {name} leaves the folder it is unpacked into")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def unpack(archive: Path, folder: Path, limits: Limits, wanted: Callable[[PurePosixPath], bool]) -> list[Path]:
    """The archive's wanted members, written under ``folder`` (which must be empty and private):
    every member checked first, then the wanted ones copied with their real sizes counted."""
    source = archive.name
    size = archive.stat().st_size
    if zipfile.is_zipfile(archive):
        return list(_unpack_zip(archive, folder, limits, wanted, source, size))
    try:
        opened = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise ServiceError("not_a_voice", f"{source} is neither a zip nor a tar archive: {exc}") from None
    with opened as tar:
        caps = Caps(limits, source)
        try:
            members = tar_members(tar, caps)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ServiceError("archive_unsafe", f"{source} is a damaged tar: {exc}") from None
        caps.whole(size)
        written = []
        for member, info in members:
            if is_junk(member.name) or not wanted(member.name):
                continue
            _data_filter(info, folder, source)
            handle = tar.extractfile(info)
            if handle is None:
                raise ServiceError("archive_unsafe", f"{info.name} in {source} cannot be read as a file")
            path = _target(folder, member.name)
            copy_capped(handle, path, min(member.size, limits.member_bytes), f"{member.name} in {source}")
            written.append(path)
        return written


def _data_filter(info: tarfile.TarInfo, folder: Path, source: str) -> None:
    """tarfile's own ``data`` filter (Python 3.11.4+, PEP 706) as a second opinion on a member
    that passed ours."""
    data_filter = getattr(tarfile, "data_filter", None)
    if data_filter is None:
        return
    try:
        data_filter(info, str(folder))
    except tarfile.TarError as exc:  # FilterError and its kinds
        raise ServiceError("archive_unsafe", f"{info.name} in {source}: {exc}") from None


def _unpack_zip(archive: Path, folder: Path, limits: Limits, wanted: Callable[[PurePosixPath], bool], source: str,
                size: int) -> Iterator[Path]:
    try:
        with zipfile.ZipFile(archive) as opened:
            members = zip_members(opened, source)
            check_members([m for m, _ in members], size, limits, source)
            for member, info in members:
                if is_junk(member.name) or not wanted(member.name):
                    continue
                path = _target(folder, member.name)
                with opened.open(info) as handle:
                    copy_capped(handle, path, member.size, f"{member.name} in {source}")
                yield path
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise ServiceError("archive_unsafe", f"{source} is a damaged or unsupported zip: {exc}") from None


def check_npz(path: Path, limits: Limits) -> None:
    """An NPZ voice table (``voices-v1.0.bin``) is a zip too: its caps are checked before numpy
    reads it (numpy would allocate what each member's header declares)."""
    try:
        with zipfile.ZipFile(path) as opened:
            members = zip_members(opened, path.name)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as exc:
        raise ServiceError("not_a_voice", f"{path.name} is not a Kokoro voices file (an NPZ): {exc}") from None
    check_members([m for m, _ in members], path.stat().st_size, limits, path.name)


def remove_tree(folder: Path) -> None:
    """Delete a staging folder, whatever it holds (nothing in it is followed out: links are not written)."""
    shutil.rmtree(folder, ignore_errors=True)
