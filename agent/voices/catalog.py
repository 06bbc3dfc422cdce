"""The household's catalog: every provider's catalog voices, each with the URL it comes from, and
the names a request may use for them (aliases, wyoming-piper's older names).

A newer catalog fetched on request (``voices catalog --update``) is kept in
``out/voices/catalog/<provider>.json`` and read instead of the snapshot the package ships."""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from pathlib import Path

from agent.layout import Layout
from agent.settings import AgentSettings
from providers import registry
from providers.base import ProviderError
from providers.catalog import CatalogSpec, CatalogVoice
from providers.common.names import is_voice_file_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """A catalog voice and where to fetch it."""

    voice: CatalogVoice
    base_url: str
    spec: CatalogSpec

    def url(self, path: str) -> str:
        return self.base_url + path


class Catalog:
    """Loaded once per catalog file version; cheap to ask."""

    def __init__(self, base_urls: dict[str, str], folder: Path) -> None:
        """``base_urls``: provider -> download base (the settings); ``folder``: where fetched
        catalogs are kept."""
        self._base_urls = base_urls
        self._folder = folder
        self._entries: dict[tuple[str, str], Entry] | None = None
        self._aliases: dict[tuple[str, str], str] = {}

    @classmethod
    def for_settings(cls, settings: AgentSettings) -> Catalog:
        """The household's catalog as the settings configure it (the download URLs; fetched
        catalogs under ``out/voices/catalog``): the agent and the CLI without an agent build it here."""
        return cls({"piper": settings.piper_voices_url, "kokoro": settings.kokoro_voices_url},
                   Layout(settings.home).household_voices / "catalog")

    def fetched_file(self, provider: str) -> Path:
        return self._folder / f"{provider}.json"

    def specs(self) -> dict[str, CatalogSpec]:
        return {spec.name: spec.catalog for spec in registry.SPECS if spec.catalog is not None}

    def entries(self) -> dict[tuple[str, str], Entry]:
        """(provider, name) -> entry, for every catalog voice."""
        if self._entries is None:
            entries: dict[tuple[str, str], Entry] = {}
            aliases: dict[tuple[str, str], str] = {}
            for provider, spec in self.specs().items():
                for voice in self._load(provider, spec):
                    entries[(provider, voice.name)] = Entry(voice, self._base_urls.get(provider, spec.base_url), spec)
                    for alias in voice.aliases:
                        aliases[(provider, alias)] = voice.name
            self._entries, self._aliases = entries, _checked_aliases(aliases, entries)
        return self._entries

    def _load(self, provider: str, spec: CatalogSpec) -> list[CatalogVoice]:
        fetched = self.fetched_file(provider)
        if fetched.is_file():
            try:
                return spec.load(fetched)
            except ProviderError as exc:  # a damaged fetched catalog: the snapshot still lists the voices
                log.warning("%s; using the catalog this version ships", exc)
        return spec.load(None)

    def forget(self) -> None:
        """Read the catalog files again (after a refresh)."""
        self._entries = None

    def find(self, provider: str, name: str) -> Entry | None:
        """The entry for a voice's name or one of its aliases."""
        entries = self.entries()
        found = entries.get((provider, name))
        if found is None and (provider, name) in self._aliases:
            found = entries.get((provider, self._aliases[(provider, name)]))
        return found

    def voices(self, provider: str | None = None) -> list[CatalogVoice]:
        """Catalog voices, of one provider when asked (a language: ``listing.speaks``)."""
        return [entry.voice for (name_provider, _), entry in sorted(self.entries().items())
                if provider is None or name_provider == provider]


def _checked_aliases(aliases: dict[tuple[str, str], str], entries: dict[tuple[str, str], Entry]) -> dict[tuple[str, str], str]:
    """A fetched catalog is the network's word: an alias must be a plain voice name, and never one
    of the catalog's own voice names (an alias ``en_US-amy-low`` on another voice would send
    every request for that voice to the other one)."""
    kept: dict[tuple[str, str], str] = {}
    for (provider, alias), name in aliases.items():
        if not is_voice_file_name(alias) or (provider, alias) in entries:
            log.warning("%s catalog: alias %r of %s ignored (not a plain voice name, or a voice's own name)",
                        provider, alias[:80], name)
            continue
        kept[(provider, alias)] = name
    return kept


def closest(name: str, known: list[str], count: int = 3) -> list[str]:
    """The names most like ``name`` (a typo's "did you mean")."""
    return difflib.get_close_matches(name, known, n=count, cutoff=0.6)
