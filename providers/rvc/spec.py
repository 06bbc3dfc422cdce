"""RVC as the registry knows it: the dataset a model is trained on (every kept sample, of good
average quality) and the trainer that writes the .pth and its FAISS index."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from providers.rvc import cli
from providers.rvc.config import RvcSettings
from providers.rvc.trainer import RvcTrainParams
from providers.spec import CliSpec, DatasetSpec, ProviderSpec, Readiness, SampleView, TrainerSpec, enough

TINY_PEAK_MB = 1500
STANDARD_BASE_MB = 2000
STANDARD_PER_CHUNK_MB = 150


def readiness(samples: Sequence[SampleView], threshold: float) -> Readiness:
    extra = []
    if samples:
        average = sum(s.score for s in samples) / len(samples)
        if average < threshold:
            extra.append(f"average quality {average:.0f} below {threshold:g}")
    return enough(samples, 50, 10.0, extra)


def training_memory_mb(params: RvcTrainParams) -> int:
    """The peak memory of a training job on the CPU (bench/memory.py, bench/RESULTS.md "Memory"):
    the content encoder and pitch model while the dataset is prepared, then the generator and
    discriminator with the activations of a batch."""
    if params.size == "tiny":
        return TINY_PEAK_MB
    return STANDARD_BASE_MB + STANDARD_PER_CHUNK_MB * params.batch_size


def dataset_problems(directory: Path, params: RvcTrainParams) -> list[str]:
    """What a dataset folder lacks for training (from the WAVs' headers: nothing is decoded)."""
    import soundfile

    wavs = sorted(directory.glob("*.wav"))
    if not wavs:
        return [f"no WAVs in {directory}"]
    seconds = 0.0
    for wav in wavs:
        try:
            info = soundfile.info(str(wav))
        except RuntimeError:
            continue
        seconds += info.frames / info.samplerate
    if seconds / 60 < params.min_minutes:
        return [f"only {seconds / 60:.1f} minutes of audio in {directory}; at least {params.min_minutes:g} are needed"]
    return []


def use_model(outputs: Sequence[Path], speaker: str, params: Any) -> dict[str, Any]:
    """The profile speaks through the model: its folder under rvc-models/ is the speaker's."""
    return {"tts": {"provider": "rvc", "rvc": {"speakerId": speaker}}} if outputs else {}


SPEC = ProviderSpec(
    name="rvc",
    settings=RvcSettings,
    engine="providers.rvc.engine:RvcProvider",
    summary="Piper or Kokoro speech converted to the owner's timbre by an RVC model and its index",
    extra="rvc",
    dataset=DatasetSpec("rvc-reference", readiness),
    trainer=TrainerSpec("providers.rvc.trainer:RvcTrainer", RvcTrainParams, "rvc-models", dataset_problems,
                        steps=lambda params: int(params.total_epochs), use=use_model,
                        memory_mb=training_memory_mb),
    cli=CliSpec(cli.add_parser, cli.run),
)
