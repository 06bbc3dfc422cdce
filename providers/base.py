"""The provider interface every speech engine implements, and its error types.

A provider turns text into 16-bit mono PCM, one chunk per sentence, so the speak path can
stream and cache without knowing the engine. Providers keep their models loaded between
requests; ``synthesize`` may be called from several threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from providers.settings_base import ProviderSettings


@dataclass(frozen=True)
class AudioChunk:
    """Speech, a sentence or a part of one: little-endian int16 mono PCM at ``sample_rate``.
    ``partial``: the rest of the same sentence follows at once (its first part, sent early so a
    listener hears it sooner); whoever must take a sentence whole (RVC converts one) joins it to
    what follows."""

    pcm: bytes
    sample_rate: int
    text: str = ""
    partial: bool = False

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


@dataclass(frozen=True)
class VoiceInfo:
    name: str
    provider: str
    language: str = ""
    sample_rate: int = 0
    speakers: int = 1
    location: str = ""


@dataclass(frozen=True)
class ProviderContext:
    """Where a provider finds a profile's assets and keeps what it derives from them. The host
    (the agent's layout) hands it in: providers never work out paths of their own. And, for one
    call, ``listener_waits``: someone waits on this text's first audio (a streamed request's first
    piece), so an engine that can send a sentence's first part early (``AudioChunk.partial``)
    does; otherwise the audio is heard later or not at once, and a sentence goes whole."""

    profile: str
    profile_dir: Path
    voices_dirs: tuple[Path, ...]  # the profile's voices first, then the household's
    data_dir: Path  # derived files shared by every profile (assembled and prepared models)
    run_dir: Path  # logs and pid files of the servers a provider runs
    home: Path  # where relative paths in settings (an install folder) are resolved
    samples_dir: Path  # the owner's kept recordings (RVC measures their pitch)
    listener_waits: bool = False


class ProviderError(Exception):
    """Synthesis failed; the message is shown to the requester as is."""

    code = "provider_error"


class ProviderUnavailableError(ProviderError):
    """The engine cannot run here (not installed, server down, assets missing)."""

    code = "provider_unavailable"


class VoiceNotFoundError(ProviderError):
    code = "voice_not_found"


class VoiceUnavailableError(ProviderError):
    """The voice is installed but cannot be loaded (a corrupt or truncated file)."""

    code = "voice_unavailable"


VOICE_CODES = frozenset({VoiceNotFoundError.code, VoiceUnavailableError.code})  # the voice, not the engine, failed


class Provider(Protocol):
    name: str

    def synthesize(
        self, text: str, settings: ProviderSettings, ctx: ProviderContext
    ) -> Iterator[AudioChunk]:
        """Yield one chunk per sentence as soon as it is ready."""
        ...

    def voices(self, ctx: ProviderContext) -> list[VoiceInfo]: ...

    def asset_tag(self, settings: ProviderSettings, ctx: ProviderContext) -> str:
        """Changes whenever the files behind ``settings`` change (a retrained model, a replaced
        voice), so cached audio made with the old files is never served."""
        ...

    def preload(self, settings: ProviderSettings, ctx: ProviderContext) -> None:
        """Load what ``settings`` needs so the first request is fast."""
        ...

    def close(self) -> None: ...
