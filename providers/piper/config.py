"""``tts.piper`` in voice.json."""

from __future__ import annotations

from pydantic import Field, field_validator

from providers.settings_base import ProviderSettings

DEFAULT_PIPER_VOICE = "en_US-joe-medium"


class PiperSettings(ProviderSettings):
    voice_field = "model"
    speed_field = "speaking_rate"

    model: str = Field(
        DEFAULT_PIPER_VOICE,
        min_length=1,
        description="Voice name (an installed *.onnx under out/voices/) or an absolute path to one.",
    )
    speaking_rate: float = Field(1.0, ge=0.5, le=2.0, description="1.0 = the voice's own pace.")
    speaker_id: int | None = Field(None, ge=0, description="Speaker of a multi-speaker voice.")

    @field_validator("model")
    @classmethod
    def _bare_name(cls, value: str) -> str:
        """'x.onnx' and 'x' are the same voice (and the same cache entries)."""
        return value if value.startswith("/") else value.removesuffix(".onnx")



    def cache_key(self) -> str:
        speaker = "" if self.speaker_id is None else f":{self.speaker_id}"
        return f"piper:{self.model}{speaker}:{self.speaking_rate:g}"
