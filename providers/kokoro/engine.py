"""Kokoro engine: the prepared ONNX model through kokoro-onnx, one chunk per sentence."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from providers.base import AudioChunk, ProviderContext, ProviderError, ProviderUnavailableError, VoiceInfo
from providers.common.audio import to_pcm16
from providers.common.files import file_tag
from providers.kokoro import assets
from providers.kokoro.config import KokoroSettings
from providers.kokoro.phonemes import LANGUAGES, Phonemizer, check_length, split_sentences
from providers.kokoro.prepare import Runtime, choose_runtime, fold_to, folded_path, open_session
from providers.kokoro.voices import VoiceLibrary
from providers.settings_base import ProviderSettings

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000
SENTENCE_PAUSE_S = 0.25


@dataclass
class _Loaded:
    source: assets.ModelSource
    runtime: Runtime
    kokoro: Any  # kokoro_onnx.Kokoro
    phonemizer: Phonemizer


class KokoroProvider:
    """Keeps each Kokoro model loaded once (prepared for this CPU) and speaks sentence by sentence."""

    name = "kokoro"

    def __init__(self) -> None:
        self._models: dict[tuple[str, str, int], _Loaded] = {}
        self._voices = VoiceLibrary()
        self._load_lock = threading.Lock()
        # Two runs at once on a small CPU only slow both down: one inference at a time.
        self._infer_lock = threading.Lock()

    # -- model ---------------------------------------------------------------------------
    def _source(self, settings: KokoroSettings, ctx: ProviderContext) -> assets.ModelSource:
        if settings.model_path:
            return assets.user_model(settings.model_path, ctx)
        return assets.bundled_model(ctx)

    def _model(self, settings: KokoroSettings, ctx: ProviderContext) -> _Loaded:
        with self._load_lock:
            source = self._source(settings, ctx)
            key = (source.key, settings.optimize, settings.threads)
            loaded = self._models.get(key)
            if loaded is not None:
                return loaded
            try:
                from kokoro_onnx import Kokoro
            except ImportError as exc:
                raise ProviderUnavailableError(
                    f"Kokoro needs a package that is not installed ({exc.name}): pip install 'voice-agent[kokoro]'"
                ) from exc
            runtime = choose_runtime(source, assets.data_dir(ctx), settings.optimize, settings.threads)
            session = open_session(runtime.path, runtime.threads)
            try:
                kokoro = Kokoro.from_session(session, str(assets.bundled_voices_file()))
            except Exception as exc:  # kokoro-onnx validates files and espeak with its own errors
                raise ProviderError(f"cannot start Kokoro: {type(exc).__name__}: {exc}") from exc
            loaded = _Loaded(source, runtime, kokoro, Phonemizer(kokoro.tokenizer.vocab))
            log.info("loaded Kokoro %s (%s, %d threads)", runtime.path.name, runtime.variant, runtime.threads)
            self._models[key] = loaded
            return loaded

    def _style(self, settings: KokoroSettings, ctx: ProviderContext) -> tuple[np.ndarray, list[Path]]:
        if settings.use_custom_voicepack:
            if not settings.voicepack_path:
                raise ProviderError("Kokoro useCustomVoicepack is on but voicepackPath is empty")
            style, path = self._voices.voicepack(settings.voicepack_path, ctx)
            return style, [path]
        return self._voices.style(settings.voice_name, settings.voices_path, ctx)

    # -- Provider ------------------------------------------------------------------------
    def asset_tag(self, settings: ProviderSettings, ctx: ProviderContext) -> str:
        assert isinstance(settings, KokoroSettings)
        _, files = self._style(settings, ctx)  # first: a bad voice fails without loading the model
        loaded = self._model(settings, ctx)
        voices = "+".join(file_tag(p) for p in files)
        return f"{loaded.source.key}.{loaded.runtime.tag}:{voices}"

    def preload(self, settings: ProviderSettings, ctx: ProviderContext) -> None:
        assert isinstance(settings, KokoroSettings)
        self._style(settings, ctx)
        self._model(settings, ctx)

    def synthesize(self, text: str, settings: ProviderSettings, ctx: ProviderContext) -> Iterator[AudioChunk]:
        assert isinstance(settings, KokoroSettings)
        settings = settings.for_text(text)  # no voice named: the text's language's own
        style, _ = self._style(settings, ctx)
        loaded = self._model(settings, ctx)
        # Phonemize everything first: a sentence that cannot be said fails before any audio.
        batches = []
        for sentence in split_sentences(text):
            phonemes = loaded.phonemizer(sentence, settings.language)
            if phonemes.strip():
                check_length(phonemes, sentence)
                batches.append((sentence, phonemes))
        for index, (sentence, phonemes) in enumerate(batches):
            audio = self.render(loaded, phonemes, style, settings.speed)
            if index < len(batches) - 1:
                audio = np.concatenate([audio, np.zeros(int(SENTENCE_PAUSE_S * SAMPLE_RATE), np.float32)])
            yield AudioChunk(pcm=to_pcm16(audio), sample_rate=SAMPLE_RATE, text=sentence)

    def render(self, loaded: _Loaded, phonemes: str, style: np.ndarray, speed: float) -> np.ndarray:
        """Float audio for one sentence's phonemes (kokoro-onnx cuts it into <= 510-phoneme calls)."""
        try:
            with self._infer_lock:
                audio, _ = loaded.kokoro.create(phonemes, voice=style, speed=speed, is_phonemes=True)
        except ValueError as exc:  # kokoro-onnx's word for bad input
            raise ProviderError(f"Kokoro could not say this: {exc}") from exc
        return np.asarray(audio, np.float32).ravel()

    def voices(self, ctx: ProviderContext) -> list[VoiceInfo]:
        """The bundled voices and the voicepacks in out/voices/kokoro (a configured voicesPath
        is per profile config, which this call does not get)."""
        found = self._voices.names("", ctx)
        return [
            VoiceInfo(
                name=name,
                provider="kokoro",
                language=LANGUAGES.get(name[:1], "") if name[1:2] in ("f", "m") else "",
                sample_rate=SAMPLE_RATE,
                location=str(path),
            )
            for name, path in sorted(found.items())
        ]

    def close(self) -> None:
        with self._load_lock:
            self._models.clear()

    # -- used by the CLI, the benchmark and the voicepack trainer --------------------------
    def runtime(self, settings: KokoroSettings, ctx: ProviderContext) -> Runtime:
        """What runs for ``settings`` here (preparing the model first if needed)."""
        return self._model(settings, ctx).runtime

    def speak_phonemes(self, settings: KokoroSettings, ctx: ProviderContext, phonemes: str, style: np.ndarray) -> np.ndarray:
        return self.render(self._model(settings, ctx), phonemes, style, settings.speed)

    def tokens(self, settings: KokoroSettings, ctx: ProviderContext, phonemes: str) -> list[int]:
        return list(self._model(settings, ctx).kokoro.tokenizer.tokenize(phonemes))

    def float_model(self, settings: KokoroSettings, ctx: ProviderContext) -> Path:
        """The float version of the model, folded once if only the int8 one runs here (the
        voicepack trainer differentiates it)."""
        loaded = self._model(settings, ctx)
        if loaded.runtime.variant == "float":
            return loaded.runtime.path
        target = folded_path(loaded.source, assets.data_dir(ctx))
        if not target.is_file():
            fold_to(loaded.source.path, target)
        return target

    def phonemize(self, settings: KokoroSettings, ctx: ProviderContext, text: str) -> str:
        loaded = self._model(settings, ctx)
        return " ".join(loaded.phonemizer(s, settings.language) for s in split_sentences(text))
