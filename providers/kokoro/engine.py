"""Kokoro engine: the prepared ONNX model through kokoro-onnx, one chunk per sentence."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from providers.base import AudioChunk, ProviderContext, ProviderError, ProviderUnavailableError, VoiceInfo
from providers.common.audio import to_pcm16
from providers.common.files import file_tag
from providers.common.onnx_arena import shrink
from providers.common.process import release_free_memory
from providers.kokoro import assets
from providers.kokoro.config import KokoroSettings
from providers.kokoro.phonemes import LANGUAGES, Phonemizer, check_length, split_sentences
from providers.kokoro.prepare import Runtime, choose_runtime, folded, interim_runtime, open_session, ready_runtime
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
    """Keeps each Kokoro model loaded once (prepared for this CPU) and speaks sentence by sentence.
    A model not prepared yet speaks as shipped (int8) while a background thread prepares it."""

    name = "kokoro"

    def __init__(self) -> None:
        self._models: dict[tuple[str, str, int], _Loaded] = {}
        self._voices = VoiceLibrary()
        self._load_lock = threading.Lock()
        # Two runs at once on a small CPU only slow both down: one inference at a time.
        self._infer_lock = threading.Lock()
        self._prepare_lock = threading.Lock()  # one preparation (fold, timing) at a time
        self._preparing: dict[tuple[str, str, int], threading.Thread] = {}
        self._generation = 0  # ``close`` makes a preparation still running drop its result
        self._arena = True
        self._spinning = False
        self._inferences = 0  # started so far: the preparation times its runs when nothing speaks

    def use_spinning(self, spinning: bool) -> None:
        """ONNX Runtime's threads spin while waiting for work, for the models loaded from now on
        (providers/common/onnx_spinning.py)."""
        self._spinning = spinning

    def use_arena(self, arena: bool) -> None:
        """ONNX Runtime's CPU arena for the models loaded from now on (the host says so before the
        first: providers/common/onnx_arena.py)."""
        self._arena = arena

    def release_memory(self) -> None:
        """Hand back what the loaded models' arenas keep for the next sentence (speech is idle):
        a run of one phoneme that ends by freeing the arena's regions not in use."""
        with self._load_lock:
            models = list(self._models.values())
        for loaded in models:
            with self._infer_lock:
                shrink(loaded.kokoro.sess, shrink_feed(loaded.kokoro))

    # -- model ---------------------------------------------------------------------------
    def _source(self, settings: KokoroSettings, ctx: ProviderContext) -> assets.ModelSource:
        if settings.model_path:
            return assets.user_model(settings.model_path, ctx)
        return assets.bundled_model(ctx)

    def _model(self, settings: KokoroSettings, ctx: ProviderContext, prepared: bool = False) -> _Loaded:
        """The loaded model; ``prepared``: wait for the preparation (the CLI, the trainer) instead
        of speaking as shipped meanwhile."""
        with self._load_lock:
            source = self._source(settings, ctx)
            key = (source.key, settings.optimize, settings.threads)
            loaded = self._models.get(key)
            if loaded is not None and not (prepared and key in self._preparing):
                return loaded
            directory = assets.data_dir(ctx)
            runtime = ready_runtime(source, directory, settings.optimize, settings.threads)
            if runtime is None and not prepared:
                loaded = self._load(source, interim_runtime(source, settings.threads))
                self._models[key] = loaded
                self._start_preparing(key, source, directory, settings)
                return loaded
        if runtime is None:  # outside the load lock: requests go on with the interim model meanwhile
            with self._prepare_lock:
                runtime = choose_runtime(source, directory, settings.optimize, settings.threads)
        with self._load_lock:
            loaded = self._load(source, runtime)
            self._models[key] = loaded
            return loaded

    def _load(self, source: assets.ModelSource, runtime: Runtime) -> _Loaded:
        try:
            from kokoro_onnx import Kokoro
        except ImportError as exc:
            raise ProviderUnavailableError(
                f"Kokoro needs a package that is not installed ({exc.name}): pip install 'voice-agent[kokoro]'"
            ) from exc
        session = open_session(runtime.path, runtime.threads, self._arena, self._spinning)
        try:
            kokoro = Kokoro.from_session(session, str(assets.bundled_voices_file()))
        except Exception as exc:  # kokoro-onnx validates files and espeak with its own errors
            raise ProviderError(f"cannot start Kokoro: {type(exc).__name__}: {exc}") from exc
        log.info("loaded Kokoro %s (%s, %d threads)", runtime.path.name, runtime.variant, runtime.threads)
        return _Loaded(source, runtime, kokoro, Phonemizer(kokoro.tokenizer.vocab))

    def _start_preparing(self, key: tuple[str, str, int], source: assets.ModelSource, directory: Path,
                         settings: KokoroSettings) -> None:
        """Under the load lock: fold and time in the background, then switch to the choice."""
        if key in self._preparing:
            return
        generation = self._generation
        thread = threading.Thread(target=self._prepare, args=(key, source, directory, settings, generation),
                                  name="kokoro-prepare", daemon=True)
        self._preparing[key] = thread
        log.info("Kokoro: speaking with the model as shipped (int8) while it is prepared for this machine")
        thread.start()

    def _prepare(self, key: tuple[str, str, int], source: assets.ModelSource, directory: Path,
                 settings: KokoroSettings, generation: int) -> None:
        lowest_priority()  # requests speaking meanwhile come first (threads ONNX Runtime starts here inherit it)
        try:
            with self._prepare_lock:
                runtime = choose_runtime(source, directory, settings.optimize, settings.threads, self.activity)
            loaded = self._load(source, runtime) if runtime.variant != "int8" or runtime.path != source.path else None
            with self._load_lock:
                if generation == self._generation:
                    current = self._models.get(key)
                    if loaded is not None:
                        self._models[key] = loaded
                    elif current is not None:
                        current.runtime = runtime  # the same file: only the record of the timings is new
            current = loaded = None
            # Loading the float model leaves about 150 MB of freed heap behind (ONNX Runtime's
            # rewriting of its graph at load), and the model as shipped is let go: both back to the
            # system now, not at the next request's end.
            release_free_memory()
            log.info("Kokoro: prepared; speaking with %s from now on", runtime.variant)
        except Exception:
            log.exception("Kokoro: preparing the model failed; it keeps speaking as shipped (int8)")
        finally:
            with self._load_lock:
                self._preparing.pop(key, None)

    def activity(self) -> int:
        """How many inferences have run, once the one running (if any) has ended
        (``prepare.time_sessions``)."""
        with self._infer_lock:
            return self._inferences

    def preparing(self) -> bool:
        """Whether a model is still being prepared in the background."""
        with self._load_lock:
            return bool(self._preparing)

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
        pause = np.zeros(int(SENTENCE_PAUSE_S * SAMPLE_RATE), np.float32)
        for sentence, phonemes in batches:
            # every sentence, the text's last too: kokoro-onnx trims the silence after it, and the
            # core hands a text over in pieces (the first sentence alone, agent/speak/text.py), so
            # the next sentence may come from the next call
            audio = np.concatenate([self.render(loaded, phonemes, style, settings.speed), pause])
            yield AudioChunk(pcm=to_pcm16(audio), sample_rate=SAMPLE_RATE, text=sentence)

    def render(self, loaded: _Loaded, phonemes: str, style: np.ndarray, speed: float) -> np.ndarray:
        """Float audio for one sentence's phonemes (kokoro-onnx cuts it into <= 510-phoneme calls)."""
        try:
            with self._infer_lock:
                self._inferences += 1
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
            self._generation += 1

    # -- used by the CLI, the benchmark and the voicepack trainer --------------------------
    def runtime(self, settings: KokoroSettings, ctx: ProviderContext) -> Runtime:
        """What runs for ``settings`` here (preparing the model first if needed)."""
        return self._model(settings, ctx, prepared=True).runtime

    def speak_phonemes(self, settings: KokoroSettings, ctx: ProviderContext, phonemes: str, style: np.ndarray) -> np.ndarray:
        return self.render(self._model(settings, ctx), phonemes, style, settings.speed)

    def tokens(self, settings: KokoroSettings, ctx: ProviderContext, phonemes: str) -> list[int]:
        return list(self._model(settings, ctx).kokoro.tokenizer.tokenize(phonemes))

    def float_model(self, settings: KokoroSettings, ctx: ProviderContext) -> Path:
        """The float version of the model, folded once if only the int8 one runs here (the
        voicepack trainer differentiates it)."""
        loaded = self._model(settings, ctx, prepared=True)
        if loaded.runtime.variant == "float":
            return loaded.runtime.path
        return folded(loaded.source, assets.data_dir(ctx))

    def phonemize(self, settings: KokoroSettings, ctx: ProviderContext, text: str) -> str:
        loaded = self._model(settings, ctx)
        return " ".join(loaded.phonemizer(s, settings.language) for s in split_sentences(text))


def lowest_priority() -> None:
    """This thread at nice 19 (Linux sets it per thread), so preparing never slows speech."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):  # not Linux, or not allowed: prepare at the usual priority
        pass


_DTYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32}


def shrink_feed(kokoro: Any) -> dict[str, np.ndarray]:
    """The smallest input the model takes, shaped from its own inputs: one phoneme between the
    boundary tokens, a zero style, speed 1."""
    token = (kokoro.tokenizer.tokenize("a") or [0])[0]
    feed: dict[str, np.ndarray] = {}
    for item in kokoro.sess.get_inputs():
        dtype = _DTYPES.get(item.type, np.float32)
        if item.name in ("input_ids", "tokens"):
            feed[item.name] = np.array([[0, token, 0]], dtype=dtype)
        elif item.name == "speed":
            feed[item.name] = np.ones(1, dtype=dtype)
        else:  # the style: its fixed dimensions, 1 for a named one
            feed[item.name] = np.zeros([d if isinstance(d, int) else 1 for d in item.shape], dtype=dtype)
    return feed
