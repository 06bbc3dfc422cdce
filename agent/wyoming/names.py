"""How Wyoming voice names map onto profiles, providers and voices.

A name is ``[<profile>/][<provider>:]<voice>``. ``describe`` lists every voice the core knows as
``<provider>:<voice>`` for the ``default`` profile and ``<profile>/<provider>:<voice>`` for the
others, so a name Home Assistant stored keeps meaning the same provider whatever a profile's
voice.json says later; and ``<profile>/`` for each profile's own voice (what its voice.json
says). A name without a provider (``en_US-joe-medium``, what wyoming-piper users have stored) is
the profile's configured provider speaking that voice; no name at all is the ``default``
profile's own voice. Neither ``/`` nor ``:`` can be part of a profile or provider name, so
parsing needs no look-up: it is pure translation, and what the core does not know it refuses.
"""

from __future__ import annotations

from dataclasses import dataclass

from providers import registry

DEFAULT_PROFILE = "default"
_PROVIDERS = (*registry.NAMES, *registry.ALIASES)


@dataclass(frozen=True)
class VoicePick:
    """Where a synthesize request goes: the profile, and the speak request's provider and voice."""

    profile: str
    provider: str | None = None
    voice: str | None = None
    speaker: str | None = None  # a multi-speaker voice's speaker, by name (synthesize.voice.speaker)


def parse_voice_name(name: str | None) -> VoicePick:
    if not name:
        return VoicePick(DEFAULT_PROFILE)
    profile, slash, rest = name.partition("/")
    if not slash:
        profile, rest = DEFAULT_PROFILE, name
    provider, colon, voice = rest.partition(":")
    if colon and provider in _PROVIDERS:
        return VoicePick(profile, provider, voice or None)
    return VoicePick(profile, None, rest or None)


def voice_name(profile: str, provider: str, voice: str) -> str:
    """The listed name of a profile's voice (``parse_voice_name`` reads it back)."""
    local = f"{provider}:{voice}"
    return local if profile == DEFAULT_PROFILE else f"{profile}/{local}"


def profile_voice_name(profile: str) -> str:
    """``<profile>/``: the profile's own voice, as its voice.json says."""
    return f"{profile}/"


def profile_voice_description(profile: str) -> str:
    return f"{profile}: its own voice (voice.json)"


def voice_description(profile: str, provider: str, voice: str, download: int | None = None) -> str:
    """What Home Assistant's voice picker shows (it sorts by this). ``download``: the bytes a
    voice that is not installed yet would fetch (the picker shows the description alone)."""
    spoken = f"{voice} ({provider})" if download is None else f"{voice} ({provider}, download {_size(download)})"
    return spoken if profile == DEFAULT_PROFILE else f"{profile}: {spoken}"


def _size(size: int) -> str:
    if size <= 0:
        return "size unknown"  # Kokoro's catalog publishes none (a voice is about 0.5 MB)
    return f"{size / 1e6:.0f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"
