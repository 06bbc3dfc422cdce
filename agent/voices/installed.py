"""Which voices a profile has installed, per provider: the one answer behind "is it installed?"
(a speak request naming a catalog voice, a download that may have nothing to do, the voice-name
check of a voice.json, the CLI without an agent).

The engines' own listings (``Provider.voices``) read every voice's files (Piper parses each
``.onnx.json``): too much for every speak request. A listing is kept until the voice folders
change: the key is the mtimes of the profile's and household's voice folders and their ``kokoro/``
subfolders (a voice installed, imported or removed renames a file in or out of one of them), plus
the tag of a configured Kokoro voices file. Asking again while nothing changed costs a few stat
calls. A folder changed less than ``RACY_NS`` ago may change again within its mtime's granularity
unseen, so such a listing is not trusted: it is read again at the next ask."""

from __future__ import annotations

import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from providers.base import ProviderContext, VoiceInfo
from providers.common.files import file_tag

Lister = Callable[[str, ProviderContext], list[VoiceInfo]]  # provider, profile's folders -> the engine's voices()
RACY_NS = 2_000_000_000  # a folder's mtime this recent: its next change may keep the same mtime

_State = tuple[tuple[int, ...], bool]  # the folders' mtimes (-1: absent), whether the listing may be stale


class InstalledVoices:
    """The engines' listings of installed voices, cached per (provider, profile folders)."""

    def __init__(self, lister: Lister) -> None:
        """``lister``: an engine's ``voices(ctx)`` by provider name (core: ``ProviderPool``)."""
        self._lister = lister
        self._lock = threading.Lock()
        self._voices: dict[tuple[str, tuple[Path, ...]], tuple[tuple[int, ...], list[VoiceInfo]]] = {}
        self._tables: dict[Path, tuple[str, list[str]]] = {}

    def voices(self, provider: str, ctx: ProviderContext) -> list[VoiceInfo]:
        """The provider's installed voices for the profile; the engine's error when it cannot list."""
        key = (provider, ctx.voices_dirs)
        state, racy = folders_state(ctx.voices_dirs)
        with self._lock:
            known = self._voices.get(key)
        if known is not None and known[0] == state:
            return known[1]
        found = self._lister(provider, ctx)
        with self._lock:
            if racy:  # the folders may change again unseen: ask the engine next time too
                self._voices.pop(key, None)
            else:
                self._voices[key] = (state, found)
        return found

    def names(self, provider: str, ctx: ProviderContext, voices_file: Path | None = None) -> list[str]:
        """The installed voices' names, and those of a Kokoro voices file the profile configures
        (``voicesPath``, resolved: it is read again only when the file changes)."""
        names = [voice.name for voice in self.voices(provider, ctx)]
        return names + self.table(voices_file) if voices_file is not None else names

    def has(self, provider: str, ctx: ProviderContext, name: str, voices_file: Path | None = None) -> bool:
        """Whether the profile can use this voice now; an engine that cannot list has none (a
        download is what can help)."""
        try:
            return name in self.names(provider, ctx, voices_file)
        except Exception:  # noqa: BLE001  the engine says what is wrong when it speaks
            return False

    def table(self, path: Path) -> list[str]:
        """The voice names in a Kokoro voices file, read again when its tag changes."""
        try:
            tag = file_tag(path)
        except OSError:
            return []
        with self._lock:
            known = self._tables.get(path)
        if known is not None and known[0] == tag:
            return known[1]
        names = table_names(path)
        with self._lock:
            self._tables[path] = (tag, names)
        return names


def folders_state(voices_dirs: tuple[Path, ...]) -> _State:
    """The mtimes of each voice folder and its ``kokoro/`` subfolder (-1 when absent), and whether
    one of them changed too recently to trust."""
    mtimes: list[int] = []
    for directory in voices_dirs:
        for folder in (directory, directory / "kokoro"):
            try:
                mtimes.append(folder.stat().st_mtime_ns)
            except OSError:
                mtimes.append(-1)
    return tuple(mtimes), time.time_ns() - max(mtimes, default=-1) < RACY_NS


def table_names(path: Path) -> list[str]:
    """The voice names in a Kokoro voices file (an NPZ: one ``<name>.npy`` per voice), read from
    its listing without loading a voice; a voicepack file is one voice named by its stem."""
    if path.suffix in (".pt", ".npy"):
        return [path.stem]
    try:
        with zipfile.ZipFile(path) as archive:
            return [name.removesuffix(".npy") for name in archive.namelist() if name.endswith(".npy")]
    except (OSError, zipfile.BadZipFile):
        return []  # the engine says what is wrong with the file when it loads it
