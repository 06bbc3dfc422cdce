"""Whether the voices a voice.json names exist, checked where the file is written (``config.set``,
the page, Home Assistant) and where it is read again (a hot reload), so a typo is refused with the
closest names instead of silencing the profile at its next request.

A name is known when it is installed (what the engines list for the profile, plus the names of a
configured Kokoro ``voicesPath``) or in a catalog (a catalog voice that is not installed is fetched
on demand). A path (a Piper model given as a path, a Kokoro voicepack or voices file) must exist.
Nothing is loaded: names come from file listings and the catalogs, which is cheap."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from agent.config.model import ConfigProblem, VoiceConfig
from agent.voices.catalog import Catalog, closest
from agent.voices.installed import InstalledVoices
from agent.voices.picks import parse_voice_name
from agent.voices.resolve import canonical
from providers import registry
from providers.base import ProviderContext, ProviderError, VoiceNotFoundError
from providers.kokoro.assets import find_file
from providers.kokoro.config import KokoroSettings
from providers.kokoro.voices import VoiceSpec
from providers.piper.config import PiperSettings

log = logging.getLogger(__name__)

NOT_FOUND = VoiceNotFoundError.code


class VoiceNames:
    """Answers "does this voice exist?" for one profile's config, without loading any voice."""

    def __init__(self, catalog: Catalog, installed: InstalledVoices, context: Callable[[str], ProviderContext]) -> None:
        """``installed``: the profile's installed voices (agent/voices/installed.py); ``context``: a
        profile's folders (``Layout.provider_context``)."""
        self._catalog = catalog
        self._installed = installed
        self._context = context

    def problems(self, profile: str, config: VoiceConfig) -> list[ConfigProblem]:
        """One problem (code ``voice_not_found``, with "did you mean") per voice that is neither
        installed nor in a catalog, and per voice file that does not exist. ``file`` is left empty."""
        ctx = self._context(profile)
        found: list[ConfigProblem] = []
        piper = config.tts.settings_for("piper")
        assert isinstance(piper, PiperSettings)
        found += self._piper(piper.model, ctx, "tts.piper.model")
        kokoro = config.tts.settings_for("kokoro")
        assert isinstance(kokoro, KokoroSettings)
        found += self._kokoro(kokoro, ctx, "tts.kokoro")
        rvc = config.tts.settings_for("rvc")
        base = getattr(rvc, "base_voice", None)
        if base:
            if getattr(rvc, "base_provider", "piper") == "kokoro":
                found += self._kokoro_voice(base, kokoro.voices_path, ctx, "tts.rvc.baseVoice", voices_table(kokoro, ctx))
            else:
                found += self._piper(base, ctx, "tts.rvc.baseVoice")
        return found + self._openai(config, ctx)

    def _openai(self, config: VoiceConfig, ctx: ProviderContext) -> list[ConfigProblem]:
        """Each ``openai.voices`` entry (``[provider:]voice``) that names a Piper or Kokoro voice: a
        typo there would otherwise surface only when a chat bot asks for that voice."""
        found: list[ConfigProblem] = []
        for key, target in config.openai.voices.items():
            pick = parse_voice_name(target or None)
            if pick.voice is None:
                continue  # the profile's own voice (or a provider's): checked above
            provider = registry.canonical(pick.provider or config.tts.provider)
            field = f"openai.voices.{key}"
            if provider == "piper":
                found += self._piper(pick.voice, ctx, field)
            elif provider == "kokoro":
                kokoro = config.tts.settings_for("kokoro")
                assert isinstance(kokoro, KokoroSettings)
                found += self._kokoro_voice(pick.voice, kokoro.voices_path, ctx, field, voices_table(kokoro, ctx))
        return found

    def canonical(self, profile: str, config: VoiceConfig) -> VoiceConfig:
        """``config`` with catalog aliases (``ca-upc_ona-x-low``, each part of a Kokoro blend) made the
        voices' own names, as the config store keeps it: what the engine looks for, what a download
        installs and what ``want`` fetches are then one name."""
        tts = config.tts
        updates: dict[str, object] = {}
        piper = tts.settings_for("piper")
        assert isinstance(piper, PiperSettings)
        if "/" not in piper.model:
            model = canonical("piper", piper.model.removesuffix(".onnx"), self._catalog)
            if model != piper.model.removesuffix(".onnx"):
                updates["piper"] = piper.updated(model=model)
        kokoro = tts.settings_for("kokoro")
        assert isinstance(kokoro, KokoroSettings)
        if kokoro.voice and canonical("kokoro", kokoro.voice, self._catalog) != kokoro.voice:
            updates["kokoro"] = kokoro.updated(voice=canonical("kokoro", kokoro.voice, self._catalog))
        rvc = tts.settings_for("rvc")
        base = getattr(rvc, "base_voice", None)
        if base and "/" not in base:
            named = canonical(getattr(rvc, "base_provider", "piper"), base, self._catalog)
            if named != base:
                updates["rvc"] = rvc.updated(base_voice=named)
        if not updates:
            return config
        return config.model_copy(update={"tts": tts.model_copy(update=updates)})

    # -- Piper ---------------------------------------------------------------------------
    def _piper(self, model: str, ctx: ProviderContext, field: str) -> list[ConfigProblem]:
        if model.startswith("/") or "/" in model:
            roots = [Path("/")] if model.startswith("/") else [ctx.profile_dir, ctx.home]
            if any((root / model.lstrip("/")).is_file() for root in roots):
                return []
            where = "" if model.startswith("/") else f" under {ctx.profile_dir} or {ctx.home}"
            return [ConfigProblem("", field, f"Piper voice file {model} does not exist{where}", NOT_FOUND)]
        name = model.removesuffix(".onnx")
        installed = self._names("piper", ctx)
        if name in installed or self._catalog.find("piper", name) is not None:
            return []
        return [self._unknown(field, "Piper", name, installed)]

    # -- Kokoro --------------------------------------------------------------------------
    def installed(self, profile: str, provider: str, name: str, config: VoiceConfig) -> bool:
        """Whether the profile can use this voice now: installed, or in the Kokoro voices file its
        config names (``voicesPath``), which a download would not replace."""
        ctx = self._context(profile)
        table = None
        if registry.canonical(provider) == "kokoro":
            kokoro = config.tts.settings_for("kokoro")
            assert isinstance(kokoro, KokoroSettings)
            table = voices_table(kokoro, ctx)
        return self._installed.has(provider, ctx, name, table)

    def _kokoro(self, settings: KokoroSettings, ctx: ProviderContext, section: str) -> list[ConfigProblem]:
        found: list[ConfigProblem] = []
        table = voices_table(settings, ctx)
        if settings.voices_path and table is None:
            found.append(ConfigProblem("", f"{section}.voicesPath",
                                       f"Kokoro voices file {settings.voices_path} does not exist", NOT_FOUND))
        if settings.use_custom_voicepack:
            if settings.voicepack_path and find_file(settings.voicepack_path, ctx) is None:
                found.append(ConfigProblem("", f"{section}.voicepackPath",
                                           f"Kokoro voicepack {settings.voicepack_path} does not exist", NOT_FOUND))
            return found
        return found + self._kokoro_voice(settings.voice, settings.voices_path, ctx, f"{section}.voice", table)

    def _kokoro_voice(self, voice: str, voices_path: str, ctx: ProviderContext, field: str,
                      table: Path | None = None) -> list[ConfigProblem]:
        """Each voice of a blend ``a:0.6,b:0.4``; empty is the language's own voice (in the catalog)."""
        if not voice:
            return []
        try:
            spec = VoiceSpec.parse(voice)
        except ProviderError as exc:
            return [ConfigProblem("", field, str(exc), "invalid_config")]
        installed = self._names("kokoro", ctx, table)
        for name, _ in spec.parts:
            if name not in installed and self._catalog.find("kokoro", name) is None:
                return [self._unknown(field, "Kokoro", name, installed)]
        return []

    # -- shared --------------------------------------------------------------------------
    def _names(self, provider: str, ctx: ProviderContext, voices_file: Path | None = None) -> list[str]:
        try:
            return self._installed.names(provider, ctx, voices_file)
        except ProviderError as exc:  # the catalog still knows its voices
            log.warning("cannot list installed %s voices: %s", provider, exc)
            return []

    def _unknown(self, field: str, label: str, name: str, installed: list[str]) -> ConfigProblem:
        provider = label.lower()
        known = sorted(set(installed) | {voice.name for voice in self._catalog.voices(provider)})
        near = closest(name, known)
        hint = f"; did you mean {' or '.join(near)}?" if near else f"; `voice-agent voices --catalog` lists {provider}'s"
        return ConfigProblem("", field, f"{label} voice {name!r} is neither installed nor in the catalog{hint}", NOT_FOUND)



def voices_table(settings: KokoroSettings, ctx: ProviderContext) -> Path | None:
    """The Kokoro voices file the profile configures (``voicesPath``), found; None without one."""
    return find_file(settings.voices_path, ctx) if settings.voices_path else None
