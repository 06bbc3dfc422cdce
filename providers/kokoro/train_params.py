"""The Kokoro voicepack trainer's parameters: light, so a request is validated before a job exists."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from providers.kokoro.config import LangCode
from providers.settings_base import InputModel, LocalPath

# bench/kokoro_voicepack.py: the job's process peaked at 2.3 GB recomputing each step in pieces (VmHWM; steps cut
# at 64 phonemes, large blocks mapped: bench/RESULTS.md "Kokoro voicepack training <= 3 GB") and at 6.1-7.3 GB
# keeping the whole step; 3 GB leaves room for a machine whose checks run the float model and for the owner's
# longer check sentences
LOW_PEAK_MB = 3000
FAST_PEAK_MB = 7500


class VoicepackParams(InputModel):
    """The seed's training parameters, with their ranges (camelCase or snake_case keys)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    base_voice: str = Field("auto", min_length=1, description="Start voice or blend; auto = the stock voice or blend closest to the target.")
    epochs: int = Field(60, ge=1, le=20000, description="Gradient steps (one training sentence each).")
    learning_rate: float = Field(0.3, gt=0.0, le=2.0, description="Adam step per style value, in standard deviations of the stock voices.")
    device: Literal["cpu", "cuda"] = Field("cpu", description="Where the speaker encoder runs (synthesis runs on the CPU).")
    max_samples: int = Field(20, ge=1, le=1000, description="Target samples used to describe the voice.")
    lang_code: LangCode = Field("a", description="Language the voicepack is tuned to speak.")
    voices_path: LocalPath = Field("", description="A voices-v1.0.bin whose voices join the starting set (as tts.kokoro.voicesPath).")
    lines: int = Field(3, ge=1, le=8, description="Sentences each checked voicepack says (more: steadier, slower).")
    check_every: int = Field(10, ge=1, le=1000, description="Steps between checks on the real engine; the best checked voicepack is kept.")
    min_minutes: float = Field(5.0, ge=0.0, le=600.0, description="Refuse datasets with less speech than this.")
    memory: Literal["auto", "low", "fast"] = Field(
        "auto", description="low: recompute each step in pieces (about 3 GB, twice the CPU); fast: keep the whole "
                            "step (about 7.5 GB); auto: fast where the job has the memory when it starts, else low.")
    min_samples: int = Field(10, ge=1, le=10000, description="Refuse datasets with fewer WAVs than this.")


def recompute_steps(params: VoicepackParams, memory_mb: int | None) -> bool:
    """Whether the job recomputes each step in pieces: memory for CPU. Auto keeps the whole step
    only where the job's process is known to have room for it when it starts."""
    if params.memory == "auto":
        return memory_mb is None or memory_mb < FAST_PEAK_MB
    return params.memory == "low"
