"""RVC as the registry knows it: the dataset a model is trained on (every kept sample, of good
average quality) and the trainer that writes the .pth and its FAISS index."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from providers.rvc import cli, remote
from providers.rvc.config import RvcSettings
from providers.rvc.trainer import RvcTrainParams
from providers.spec import CliSpec, DatasetSpec, ProviderSpec, Readiness, RemoteSpec, SampleView, TrainerSpec, enough

# bench/memory.py, a standard-size job on the CPU: 4361 MB at its peak with batch 2, 4956 MB with batch 8
# (bench/RESULTS.md "Memory"); larger batches are the same line, not measured
STANDARD_BASE_MB = 4200
STANDARD_PER_CHUNK_MB = 100


def readiness(samples: Sequence[SampleView], threshold: float) -> Readiness:
    extra = []
    if samples:
        average = sum(s.score for s in samples) / len(samples)
        if average < threshold:
            extra.append(f"average quality {average:.0f} below {threshold:g}")
    return enough(samples, 50, 10.0, extra)


def training_memory_mb(params: RvcTrainParams) -> int:
    """The peak memory (MB) of a training job on the CPU: the generator and discriminator with
    their optimiser state, and the activations of a batch. The tiny network (smoke tests) is not
    measured: 0, not checked."""
    if params.size == "tiny":
        return 0
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
    remote=RemoteSpec(remote.inputs, remote.place),
)
