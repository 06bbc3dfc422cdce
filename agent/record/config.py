"""``record`` in voice.json: how utterances are cut, scored and kept."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from providers.settings_base import CamelModel


class VadConfig(CamelModel):
    frame_ms: Literal[10, 20, 30] = Field(30, description="webrtcvad frame length.")
    aggressiveness: int = Field(2, ge=0, le=3, description="0 keeps the most audio as speech, 3 the least.")
    hangover_ms: int = Field(300, ge=30, le=2000, description="Silence that ends an utterance; also kept as padding.")


class SpeakerConfig(CamelModel):
    min_similarity: float = Field(
        0.70, ge=0.0, le=1.0, description="Below this Resemblyzer similarity a sample is another speaker."
    )


class KeepConfig(CamelModel):
    """How much the record path keeps: the disk of a home server is not endless."""

    max_samples: int = Field(5000, ge=1, le=1_000_000, description="Above this, the lowest-scoring samples go.")
    max_days: float = Field(0, ge=0, description="Samples older than this go (0: kept however old).")
    max_exports: int = Field(4, ge=1, le=100, description="Exported datasets per provider; an export beyond replaces the oldest.")


class RecordConfig(CamelModel):
    enabled: bool = Field(True, description="Accept audio for this profile.")
    threshold: float = Field(70.0, ge=0, le=100, description="Keep samples scoring at least this.")
    min_seconds: float = Field(1.0, ge=0.3, le=30, description="Shorter utterances are dropped.")
    max_seconds: float = Field(15.0, ge=2, le=60, description="Longer utterances are split at their longest pause.")
    dnsmos: bool = Field(True, description="Score with DNSMOS P.835 (the slowest component).")
    drop_own_speech: bool = Field(
        True, description="Streamed audio recorded while the agent spoke (for this profile or site) is not a sample."
    )
    vad: VadConfig = VadConfig()
    speaker: SpeakerConfig = SpeakerConfig()
    keep: KeepConfig = KeepConfig()

    @model_validator(mode="after")
    def _lengths(self) -> "RecordConfig":
        if self.min_seconds >= self.max_seconds:
            raise ValueError("minSeconds must be less than maxSeconds")
        return self
