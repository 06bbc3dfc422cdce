"""``train`` in voice.json: automatic retraining when enough new good samples have arrived, and\nwhat training keeps on disk."""

from __future__ import annotations

from pydantic import Field

from providers.settings_base import CamelModel


class AutoRetrainConfig(CamelModel):
    enabled: bool = Field(False, description="Queue an idle-time job when enough new samples arrived.")
    provider: str = Field("rvc", pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="The voice to retrain (kokoro, rvc).")
    speaker: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    new_samples: int = Field(50, ge=1, le=100000, description="Kept samples since the last model.")


class TrainKeepConfig(CamelModel):
    """What training leaves on disk: checkpoints of ended jobs go, a few failed ones stay to look into."""

    failed_runs: int = Field(3, ge=0, le=100, description="Checkpoint folders of failed jobs kept, newest first.")
    log_max_mb: float = Field(10.0, gt=0, le=10000, alias="logMaxMB",
                              description="A speaker's training log above this is moved to <log>.1 at the next job.")


class TrainConfig(CamelModel):
    auto_retrain: AutoRetrainConfig = AutoRetrainConfig()
    keep: TrainKeepConfig = TrainKeepConfig()
