"""Kokoro as the registry knows it: its voice.json section, the dataset a voicepack is trained
on (samples with their transcripts, listed in metadata.csv) and the voicepack trainer."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from providers.kokoro import cli, dataset
from providers.kokoro.catalog import CATALOG
from providers.kokoro.config import KokoroSettings
from providers.kokoro.train_params import FAST_PEAK_MB, LOW_PEAK_MB, VoicepackParams
from providers.spec import (CliSpec, DatasetSpec, ProviderSpec, Readiness, RoughPace, SampleView, TrainerSpec,
                            enough, true_transcript)

METADATA = "metadata.csv"  # LJSpeech-style: file|transcript, what the trainer reads


def with_transcripts(samples: Sequence[SampleView]) -> list[SampleView]:
    """Samples with a transcript that is what was said (a take of other words stays out)."""
    return [s for s in samples if true_transcript(s)]


def readiness(samples: Sequence[SampleView], threshold: float) -> Readiness:
    return enough(with_transcripts(samples), 30, 5.0, noun="samples with transcripts")


def use_voicepack(outputs: Sequence[Path], speaker: str, params: Any) -> dict[str, Any]:
    """The profile speaks Kokoro with the voicepack (the .npy: reading it needs no torch)."""
    pack = next((p for p in outputs if p.suffix == ".npy"), None)
    if pack is None:
        return {}
    lang = getattr(params, "lang_code", "a")
    return {"tts": {"provider": "kokoro", "kokoro": {"useCustomVoicepack": True, "voicepackPath": str(pack), "langCode": lang}}}


# bench/RESULTS.md: a 60-step run took 7.5 minutes alone on the 2-core bench machine, checks included, before
# the steps were recomputed in pieces (about twice the CPU a step, bench/voicepack_step_memory.py): about 15 now
# where memory is short (the pace assumes the slower way)
BENCH_PACE = RoughPace(15.0, 0.0, "cpu", "bench/RESULTS.md: 60 steps in 7.5 min on a 2-core CPU, about twice that recomputing the steps")


def voicepack_memory_mb(params: VoicepackParams) -> int:
    """What the job declares: auto asks for the low figure and takes the fast way only where the
    job's process finds the memory for it when it starts (providers.kokoro.voicepack_trainer)."""
    return FAST_PEAK_MB if params.memory == "fast" else LOW_PEAK_MB


def write_metadata(directory: Path, samples: Sequence[SampleView]) -> None:
    lines = io.StringIO()
    writer = csv.writer(lines, delimiter="|", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    for sample in samples:
        writer.writerow([sample.file, sample.transcript])
    (directory / METADATA).write_text(lines.getvalue(), encoding="utf-8")


SPEC = ProviderSpec(
    name="kokoro",
    settings=KokoroSettings,
    engine="providers.kokoro.engine:KokoroProvider",
    summary="Kokoro-82M (StyleTTS2, ONNX): stock voices, blends and voicepacks trained on the owner's samples",
    extra="kokoro",
    dataset=DatasetSpec("kokoro-datasets", readiness, "samples with transcripts", with_transcripts, write_metadata),
    trainer=TrainerSpec("providers.kokoro.voicepack_trainer:KokoroVoicepackTrainer", VoicepackParams, "kokoro-voicepacks",
                        dataset.problems, steps=lambda params: int(params.epochs), rough=BENCH_PACE, use=use_voicepack,
                        memory_mb=voicepack_memory_mb),
    cli=CliSpec(cli.add_parser, cli.run),
    catalog=CATALOG,
)
