"""Which provider a voice name means, when a request names a voice but no provider.

A name without a provider used to mean "the profile's configured provider", so a Piper catalog
name (``en_US-lessac-medium``, what wyoming-piper users have stored) sent to a profile that speaks
Kokoro went to Kokoro, failed, and fell back to Piper's default voice: a silent wrong voice. The
catalogs know every stock name, and no name is in two of them, so the name decides: a name in the
configured provider's catalog stays there, a name in exactly one other provider's catalog goes to
that provider, and any other name (a trained or imported voice) stays with the configured provider,
whose engine says whether it has it. Older names (catalog aliases, ``en-us-lessac-medium``) become
the voice's name, so the voice is found, cached and downloaded under one name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agent.voices.catalog import Catalog

Installed = Callable[[str, str], bool]  # (provider, name) -> the profile has this voice installed


@dataclass(frozen=True)
class Named:
    """The provider (None: the profile's configured one) and the voice's name a request means."""

    provider: str | None
    voice: str | None


def resolve(provider: str | None, voice: str | None, configured: str, catalog: Catalog,
            installed: Installed = lambda provider, name: False) -> Named:
    """``provider`` and ``voice`` as a request sent them; ``configured``: the profile's provider.
    An installed voice of that name (``installed``, asked only when the catalog would change the
    request) is kept as sent: a newer catalog's alias never takes an installed voice's name over."""
    named = _by_catalog(provider, voice, configured, catalog)
    if named != Named(provider, voice) and voice is not None and installed(provider or configured, voice):
        return Named(provider, voice)
    return named


def _by_catalog(provider: str | None, voice: str | None, configured: str, catalog: Catalog) -> Named:
    if voice is None:
        return Named(provider, voice)
    if provider is not None:
        return Named(provider, canonical(provider, voice, catalog))
    entry = catalog.find(configured, voice)
    if entry is not None:
        return Named(None, entry.voice.name)
    found = [(name, entry) for name in catalog.specs() if (entry := catalog.find(name, voice)) is not None]
    if len(found) == 1:
        return Named(found[0][0], found[0][1].voice.name)
    return Named(None, voice)


def voice_parts(provider: str, voice: str) -> list[str]:
    """The voices a setting names: each of a Kokoro blend ``a:0.6,b:0.4``, else the one."""
    if provider != "kokoro":
        return [voice]
    return [part.partition(":")[0].strip() for part in voice.split(",") if part.strip()]


def canonical(provider: str, voice: str, catalog: Catalog) -> str:
    """``voice`` with each catalog alias made the voice's own name (each part of a blend, its weight
    kept): the name the engine finds and a download installs. Anything else is as it was."""
    if provider != "kokoro":
        entry = catalog.find(provider, voice)
        return entry.voice.name if entry is not None else voice
    parts = []
    for part in voice.split(","):
        name, colon, weight = part.partition(":")
        entry = catalog.find(provider, name.strip())
        parts.append(f"{entry.voice.name}{colon}{weight}" if entry is not None else part)
    return ",".join(parts)
