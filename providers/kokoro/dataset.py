"""A voicepack's dataset: WAVs with their transcripts in ``metadata.csv`` (``file|text``), as the
record path exports it. Light (soundfile reads headers only), so a job is refused before it exists."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

from providers.kokoro.train_params import VoicepackParams
from providers.training import TrainingRefused

log = logging.getLogger(__name__)


class DatasetError(TrainingRefused):
    """The dataset cannot train a voicepack; the message says what is missing."""


@dataclass(frozen=True)
class Sample:
    path: Path
    transcript: str
    seconds: float


def read_dataset(directory: Path) -> list[Sample]:
    """WAVs in ``directory`` with their transcripts from ``metadata.csv`` (``file|text``) if any."""
    import soundfile

    if not directory.is_dir():
        raise DatasetError(f"no dataset at {directory}: export one with `voice-agent samples export kokoro`")
    transcripts: dict[str, str] = {}
    metadata = directory / "metadata.csv"
    if metadata.is_file():
        with metadata.open(encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle, delimiter="|"):
                if len(row) >= 2:
                    transcripts[row[0]] = row[1].strip()
    samples = []
    for path in sorted(directory.glob("*.wav")):
        try:
            info = soundfile.info(str(path))
        except RuntimeError as exc:
            log.warning("skipping unreadable %s: %s", path.name, exc)
            continue
        samples.append(Sample(path, transcripts.get(path.name, ""), info.frames / info.samplerate))
    return samples


def check_dataset(samples: list[Sample], params: VoicepackParams, directory: Path) -> None:
    minutes = sum(s.seconds for s in samples) / 60
    problems = []
    if len(samples) < params.min_samples:
        problems.append(f"{len(samples)} WAV files, need at least {params.min_samples}")
    if minutes < params.min_minutes:
        problems.append(f"{minutes:.1f} minutes of audio, need at least {params.min_minutes:g}")
    if problems:
        raise DatasetError(f"not enough to train a Kokoro voicepack from {directory}: " + "; ".join(problems) + ". Record more samples.")


def problems(directory: Path, params: VoicepackParams) -> list[str]:
    """What this dataset lacks for these parameters (nothing: it will do)."""
    try:
        check_dataset(read_dataset(directory), params, directory)
    except DatasetError as exc:
        return [str(exc)]
    return []
