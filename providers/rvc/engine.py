"""RVC provider: a base engine (Piper, or Kokoro) speaks each sentence, RVC converts it to the
owner's timbre, and the converted sentence is yielded at once, so streaming still works.

The base engine is obtained through a factory (by default ``providers.registry.create_provider``,
one instance per engine kept here): the speak path hands providers only their own settings,
so the RVC provider owns the base engine it drives. Models, content encoder and RMVPE stay
loaded between requests and are reloaded when their files change. torch is imported only
when something is converted or loaded, never when this module is imported.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from providers.base import AudioChunk, Provider, ProviderContext, ProviderError, ProviderUnavailableError, VoiceInfo
from providers.common.audio import from_pcm16, whole_sentences
from providers.common.files import file_tag
from providers.rvc import assets
from providers.rvc.config import RvcSettings
from providers.rvc.device import GpuGuard, device_for, local_guard
from providers.settings_base import ProviderSettings

log = logging.getLogger(__name__)

BaseFactory = Callable[[str], Provider]


def _default_factory(name: str) -> Provider:
    from providers.registry import create_provider

    return create_provider(name)


def base_settings(settings: RvcSettings) -> ProviderSettings:
    """The base engine's settings: its voice and speed come from ``tts.rvc``."""
    if settings.base_provider == "kokoro":
        from providers.kokoro.config import KokoroSettings

        doc: dict[str, Any] = {"speed": settings.speed, "autoFallbackToPiper": False}
        if settings.base_voice:
            doc["voice"] = settings.base_voice  # its language follows from its name (af_heart: en-us)
        return KokoroSettings.model_validate(doc)
    from providers.piper.config import PiperSettings

    doc = {"speakingRate": settings.speed}
    if settings.base_voice:
        doc["model"] = settings.base_voice
    return PiperSettings.model_validate(doc)


def _heavy() -> Any:
    """The torch-based parts, imported on first real use."""
    try:
        from providers.rvc import runtime
    except ImportError as exc:
        raise ProviderUnavailableError(
            f"RVC needs packages that are not installed ({exc.name}): pip install 'voice-agent[rvc]'"
        ) from exc
    return runtime


class RvcProvider:
    """Keeps base engines, RVC models, the content encoder and RMVPE loaded; converts sentence by sentence."""

    name = "rvc"

    def __init__(self, base_factory: BaseFactory | None = None, gpu_guard: GpuGuard | None = None) -> None:
        self._base_factory = base_factory or _default_factory
        self._guard: GpuGuard = gpu_guard or local_guard
        self._bases: dict[str, Provider] = {}
        self._cache: dict[tuple[str, ...], tuple[str, Any]] = {}  # what -> (file tag, loaded thing)
        self._auto: dict[tuple[str, ...], int] = {}  # (samples tag, base tag, base key) -> semitones
        self._load_lock = threading.RLock()
        self._run_lock = threading.Lock()  # one conversion at a time: it uses every core (or the GPU)

    def use_gpu_guard(self, guard: GpuGuard) -> None:
        """Plug in the agent's GPU arbitration (e.g. ``GpuArbiter.reserve``)."""
        self._guard = guard

    # -- Provider protocol ------------------------------------------------------------
    def synthesize(self, text: str, settings: ProviderSettings, ctx: ProviderContext) -> Iterator[AudioChunk]:
        assert isinstance(settings, RvcSettings)
        runtime = _heavy()
        files = assets.find_speaker(settings.speaker_id, ctx)
        encoder_path = assets.find_content_encoder(settings.content_encoder_path, ctx)
        base_cfg = base_settings(settings)
        base = self._base(settings.base_provider)
        semitones = self._semitones(settings, base, base_cfg, ctx)
        with device_for(settings.device, self._guard, settings.pause_ollama_during_inference) as device:
            voice = self._load(("voice", str(files.model), str(files.index), device),
                               file_tag(files.model) + (file_tag(files.index) if files.index else ""),
                               lambda: runtime.load_voice(files.model, files.index, device))
            converter = self._converter(runtime, encoder_path, settings, ctx, device)
            method = runtime.choose_method(settings.f0_method, converter.pitch) if voice.model.with_pitch else "none"
            options = runtime.ConvertOptions(
                semitones=semitones, index_rate=settings.index_rate, volume_envelope=settings.volume_envelope,
                protect=settings.protect, f0_method=method, filter_radius=settings.filter_radius,
            )
            whole = replace(ctx, listener_waits=False)  # a part alone would convert with a seam
            for chunk in whole_sentences(base.synthesize(text, base_cfg, whole)):
                audio = from_pcm16(chunk.pcm)
                audio16k = runtime.resample(audio, chunk.sample_rate, 16000)
                with self._run_lock:
                    out = converter.convert(audio16k, voice, options, method)
                yield AudioChunk(pcm=out.tobytes(), sample_rate=voice.sample_rate, text=chunk.text)

    def asset_tag(self, settings: ProviderSettings, ctx: ProviderContext) -> str:
        assert isinstance(settings, RvcSettings)
        files = assets.find_speaker(settings.speaker_id, ctx)
        parts = [file_tag(files.model), file_tag(files.index) if files.index else "noindex",
                 file_tag(assets.find_content_encoder(settings.content_encoder_path, ctx))]
        if settings.f0_method == "rmvpe":
            rmvpe, _ = assets.find_rmvpe(settings.rmvpe_path, ctx)
            parts.append(file_tag(rmvpe) if rmvpe else "normvpe")
        base_cfg = base_settings(settings)
        base = self._base(settings.base_provider)
        parts.append(base.asset_tag(base_cfg, ctx))
        if settings.pitch_shift == "auto":
            parts.append(f"auto{self._semitones(settings, base, base_cfg, ctx):+d}")
        return "|".join(parts)

    def preload(self, settings: ProviderSettings, ctx: ProviderContext) -> None:
        assert isinstance(settings, RvcSettings)
        runtime = _heavy()
        files = assets.find_speaker(settings.speaker_id, ctx)
        encoder_path = assets.find_content_encoder(settings.content_encoder_path, ctx)
        base_cfg = base_settings(settings)
        self._base(settings.base_provider).preload(base_cfg, ctx)
        with device_for(settings.device, self._guard, False) as device:
            self._load(("voice", str(files.model), str(files.index), device),
                       file_tag(files.model) + (file_tag(files.index) if files.index else ""),
                       lambda: runtime.load_voice(files.model, files.index, device))
            self._converter(runtime, encoder_path, settings, ctx, device)
            runtime.warm_up()

    def voices(self, ctx: ProviderContext) -> list[VoiceInfo]:
        found: dict[str, VoiceInfo] = {}
        for root in reversed(assets.model_dirs(ctx)):  # the profile's shadow the household's
            if root.is_dir():
                for folder in sorted(p for p in root.iterdir() if p.is_dir() and any(p.glob("*.pth"))):
                    found[folder.name] = VoiceInfo(name=folder.name, provider="rvc", location=str(folder))
        return [found[name] for name in sorted(found)]

    def close(self) -> None:
        with self._load_lock:
            self._cache.clear()
            self._auto.clear()
            bases, self._bases = list(self._bases.values()), {}
        for base in bases:
            base.close()

    # -- internals --------------------------------------------------------------------
    def _base(self, name: str) -> Provider:
        with self._load_lock:
            if name not in self._bases:
                self._bases[name] = self._base_factory(name)
            return self._bases[name]

    def _load(self, key: tuple[str, ...], tag: str, load: Callable[[], Any]) -> Any:
        """The cached object for ``key`` if its files still have ``tag``; else load it again."""
        with self._load_lock:
            known = self._cache.get(key)
            if known is not None and known[0] == tag:
                return known[1]
            try:
                value = load()
            except ProviderError:
                raise
            except Exception as exc:
                from providers.rvc.modelfile import ModelFileError

                if isinstance(exc, ModelFileError):
                    raise ProviderError(f"RVC cannot use {exc}") from exc
                raise
            self._cache[key] = (tag, value)
            return value

    def _converter(self, runtime: Any, encoder_path: Path, settings: RvcSettings, ctx: ProviderContext, device: str) -> Any:
        hubert = self._load(("encoder", str(encoder_path), device), file_tag(encoder_path),
                            lambda: runtime.load_hubert(encoder_path, device))
        rmvpe_path, looked = assets.find_rmvpe(settings.rmvpe_path, ctx)
        if settings.f0_method == "rmvpe":
            pitch = self._load(("rmvpe", str(rmvpe_path), looked, device),
                               file_tag(rmvpe_path) if rmvpe_path else "none",
                               lambda: runtime.rmvpe_loader(rmvpe_path, device, looked))
        else:
            pitch = runtime.PitchTools(None, f"rmvpe.pt not found ({looked})", device)
        return runtime.Converter(hubert, pitch, device)

    def _semitones(self, settings: RvcSettings, base: Provider, base_cfg: ProviderSettings, ctx: ProviderContext) -> int:
        if settings.pitch_shift != "auto":
            return settings.pitch_shift
        from providers.rvc import autopitch

        key = (str(ctx.profile_dir), autopitch.samples_tag(ctx), base.asset_tag(base_cfg, ctx), base_cfg.cache_key())
        with self._load_lock:
            if key not in self._auto:
                found = autopitch.suggest(base, base_cfg, ctx)
                log.info("pitchShift auto for %s: %s", ctx.profile, found.describe())
                self._auto[key] = found.semitones
            return self._auto[key]
