"""Voices a provider can fetch: its catalog (a snapshot shipped with the package, so listing works
offline) and how a fetched voice becomes an installed one.

A catalog voice names its files relative to the provider's download base URL (a setting, so a
household can use a mirror); each file has a size and an MD5 where the catalog publishes them.
The agent downloads and checks those (``agent/voices``); the provider's ``install`` checks the
content (a Piper config that parses, a Kokoro style table) and moves the files into a voices
folder, atomically, under the names its engine looks for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CatalogFile:
    path: str  # relative to the base URL: en/en_US/lessac/medium/en_US-lessac-medium.onnx
    size: int | None = None  # bytes, where the catalog says
    md5: str | None = None  # hex digest, where the catalog says
    limit: int | None = None  # most bytes taken where no size is published (a mirror is not trusted)


@dataclass(frozen=True)
class CatalogVoice:
    provider: str
    name: str  # what voice.json's voice field holds once it is installed
    language: str  # en_US, ja_JP: the code Wyoming and Home Assistant use
    files: tuple[CatalogFile, ...]
    quality: str = ""
    speakers: tuple[str, ...] = ()  # the speakers of a multi-speaker voice, by id
    aliases: tuple[str, ...] = ()  # older names that mean this voice (wyoming-piper's)
    attribution: str = ""  # where the voice is described (a URL)
    description: str = ""

    @property
    def size(self) -> int:
        return sum(f.size or 0 for f in self.files)


# (the catalog voice, its downloaded files by catalog path, the voices folder) -> installed files
Install = Callable[[CatalogVoice, Mapping[str, Path], Path], list[Path]]


@dataclass(frozen=True)
class CatalogSpec:
    """A provider's catalog: where its files come from and how they are installed."""

    base_url: str  # the default download base; VOICE_AGENT_<PROVIDER>_VOICES_URL replaces it
    load: Callable[[Path | None], list[CatalogVoice]]  # the snapshot, or a newer catalog file fetched on request
    install: Install
    index: str = ""  # the catalog file under base_url that a refresh fetches ("" = no newer one to fetch)
