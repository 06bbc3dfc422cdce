"""``tts.rvc`` in voice.json (defaults are RVC WebUI's)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from providers.settings_base import FallbackSettings


class RvcSettings(FallbackSettings):
    speaker_id: str = Field("default", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Model under rvc-models/.")
    pitch_shift: int = Field(0, ge=-12, le=12, description="Semitones.")
    speed: float = Field(1.0, ge=0.5, le=2.0, description="Speed of the base voice.")
    index_rate: float = Field(0.75, ge=0.0, le=1.0, description="Share of FAISS-retrieved features.")
    volume_envelope: float = Field(0.25, ge=0.0, le=1.0, description="1 keeps the output's loudness envelope.")
    protect: float = Field(0.33, ge=0.0, le=0.5, description="Consonant protection.")
    f0_method: Literal["rmvpe", "crepe", "harvest", "dio"] = Field("rmvpe", description="Pitch estimator.")
    pause_ollama_during_inference: bool = Field(False, description="Pause GPU hogs while converting.")

    def with_request(self, voice: str | None, speed: float | None) -> "RvcSettings":
        update: dict[str, object] = {}
        if voice is not None:
            update["speaker_id"] = voice
        if speed is not None:
            update["speed"] = speed
        return self.model_copy(update=update)

    @property
    def voice_name(self) -> str:
        return self.speaker_id

    def cache_key(self) -> str:
        return (
            f"rvc:{self.speaker_id}:{self.pitch_shift}:{self.speed:g}:{self.index_rate:g}:"
            f"{self.volume_envelope:g}:{self.protect:g}:{self.f0_method}"
        )
