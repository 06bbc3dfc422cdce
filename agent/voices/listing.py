"""One list of voices for every door: the installed ones (what the engines find on disk) and the
catalog's, marked ``installed`` or not, with the languages and speakers pickers show."""

from __future__ import annotations

from typing import Any

from agent.voices.catalog import Catalog
from providers.base import VoiceInfo
from providers.catalog import CatalogVoice


def language_code(tag: str) -> str:
    """One spelling of a language for every provider, as Piper's catalog and Wyoming write it:
    Kokoro's ``en-us`` is ``en_US``, ``ja`` stays ``ja``."""
    language, _, region = tag.strip().replace("-", "_").partition("_")
    return f"{language.lower()}_{region.upper()}" if region else language.lower()


def speaks(language: str, wanted: str) -> bool:
    """``wanted`` is a family (``en``) or a code (``en_US``); empty wants every language."""
    if not wanted:
        return True
    code, wanted = language_code(language), language_code(wanted)
    return code == wanted or code.split("_")[0] == wanted


def voice_entry(info: VoiceInfo, known: CatalogVoice | None) -> dict[str, Any]:
    """An installed voice; what its catalog entry adds (speakers' names, attribution) when it has one."""
    return {
        **info.__dict__,
        "language": language_code(info.language or (known.language if known else "")),
        "installed": True,
        "speaker_names": list(known.speakers) if known else [],
        "quality": known.quality if known else "",
        "attribution": known.attribution if known else "",
        "description": known.description if known else "",
        "size": known.size if known else 0,
    }


def catalog_entry(voice: CatalogVoice) -> dict[str, Any]:
    """A voice a download would install."""
    return {
        "name": voice.name, "provider": voice.provider, "language": language_code(voice.language), "sample_rate": 0,
        "speakers": max(1, len(voice.speakers)), "location": "", "installed": False,
        "speaker_names": list(voice.speakers), "quality": voice.quality, "attribution": voice.attribution,
        "description": voice.description, "size": voice.size,
    }


def listing(installed: list[VoiceInfo], catalog: Catalog, *, with_catalog: bool = True, provider: str | None = None,
            language: str = "") -> list[dict[str, Any]]:
    """Installed voices first, each provider's in name order, then the catalog's others."""
    entries = []
    for info in installed:
        if provider is None or info.provider == provider:
            known = catalog.find(info.provider, info.name)
            entries.append(voice_entry(info, known.voice if known else None))
    have = {(info.provider, info.name) for info in installed}
    if with_catalog:
        entries += [
            catalog_entry(voice) for voice in catalog.voices(provider)
            if (voice.provider, voice.name) not in have
        ]
    return [entry for entry in entries if speaks(entry["language"], language)]
