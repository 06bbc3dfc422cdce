"""``tts.rvc`` in voice.json (conversion defaults are RVC WebUI's, so a model sounds as it did there)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from providers.common.names import PlainName
from providers.settings_base import FallbackSettings, LocalPath

F0Method = Literal["rmvpe", "crepe", "harvest", "dio"]
Semitones = Annotated[int, Field(ge=-12, le=12)]


class RvcSettings(FallbackSettings):
    voice_field = "speaker_id"
    speed_field = "speed"

    speaker_id: PlainName = Field("default", description="Model folder under rvc-models/.")
    pitch_shift: Semitones | Literal["auto"] = Field(
        0, description="Semitones, or 'auto': the shift from the base voice's median pitch to the owner's samples'."
    )
    speed: float = Field(1.0, ge=0.5, le=2.0, description="Speed of the base voice.")
    index_rate: float = Field(0.75, ge=0.0, le=1.0, description="Share of FAISS-retrieved features.")
    volume_envelope: float = Field(0.25, ge=0.0, le=1.0, description="1 keeps the output's loudness envelope, 0 the input's.")
    protect: float = Field(0.33, ge=0.0, le=0.5, description="Consonant protection (0.5 = off).")
    f0_method: F0Method = Field("rmvpe", description="Pitch estimator; a missing asset falls to the next one.")
    filter_radius: int = Field(3, ge=0, le=7, description="Median-filter harvest pitch when 3 or more.")
    pause_ollama_during_inference: bool = Field(False, description="Pause GPU hogs while converting on the GPU.")
    base_provider: Literal["piper", "kokoro"] = Field("piper", description="Engine that speaks before conversion.")
    base_voice: LocalPath | None = Field(
        None, min_length=1, description="Voice of the base engine (Piper model or Kokoro voice); its default when unset."
    )
    content_encoder_path: LocalPath = Field(
        "",
        description="hubert_base.pt, or a folder with config.json + weights (HuBERT/ContentVec); "
        "relative to the profile directory, or absolute. Empty: looked up under out/voices/rvc-models/.",
    )
    rmvpe_path: LocalPath = Field("", description="rmvpe.pt; same lookup rules as contentEncoderPath.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: the GPU when it has room, else the CPU.")

    def cache_key(self) -> str:
        return (
            f"rvc:{self.speaker_id}:{self.pitch_shift}:{self.speed:g}:{self.index_rate:g}:"
            f"{self.volume_envelope:g}:{self.protect:g}:{self.f0_method}:{self.filter_radius}:"
            f"{self.base_provider}:{self.base_voice or ''}"
        )
