"""``train`` in voice.json: automatic retraining when enough new good samples have arrived."""

from __future__ import annotations

from pydantic import Field

from providers.settings_base import CamelModel


class AutoRetrainConfig(CamelModel):
    enabled: bool = Field(False, description="Queue an idle-time job when enough new samples arrived.")
    provider: str = Field("rvc", pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="The voice to retrain (kokoro, rvc).")
    speaker: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    new_samples: int = Field(50, ge=1, le=100000, description="Kept samples since the last model.")


class TrainConfig(CamelModel):
    auto_retrain: AutoRetrainConfig = AutoRetrainConfig()
