"""``tts.piper`` in voice.json."""

from __future__ import annotations

from pathlib import PurePosixPath

from pydantic import Field, field_validator

from providers.settings_base import LocalPath, ProviderSettings

DEFAULT_PIPER_VOICE = "en_US-joe-medium"


class PiperSettings(ProviderSettings):
    voice_field = "model"
    speed_field = "speaking_rate"

    model: LocalPath = Field(
        DEFAULT_PIPER_VOICE,
        min_length=1,
        description="Voice name (an installed *.onnx under out/voices/), a path to one under the profile or the "
        "home (out/voices/amy/amy.onnx, as the seed writes it), or an absolute path.",
    )
    speaking_rate: float = Field(1.0, ge=0.5, le=2.0, description="1.0 = the voice's own pace.")
    speaker_id: int | None = Field(None, ge=0, description="Speaker of a multi-speaker voice.")
    speaker: str | None = Field(
        None, min_length=1, max_length=128,
        description="Speaker of a multi-speaker voice, by name (a key of its .onnx.json's speaker_id_map, as Home "
        "Assistant picks it); wins over speakerId.",
    )

    def with_speaker(self, speaker: str) -> PiperSettings:
        """The speaker's id is the voice's business: the engine maps the name when it loads it."""
        return self.updated(speaker=speaker, speaker_id=None)

    @field_validator("model")
    @classmethod
    def _bare_name(cls, value: str) -> str:
        """'x.onnx' and 'x' are the same voice (and the same cache entries); a relative path stays
        below the profile or the home."""
        if value.startswith("/"):
            return value
        if "/" in value:
            if ".." in PurePosixPath(value).parts or not value.endswith(".onnx"):
                raise ValueError("a relative model path must stay below the profile or the home and end in .onnx")
            return value
        return value.removesuffix(".onnx")

    def cache_key(self) -> str:
        speaker = "" if self.speaker_id is None else f":{self.speaker_id}"
        if self.speaker is not None:
            speaker = f":{self.speaker!r}"  # quoted: a name such as "3" is not the id 3
        return f"piper:{self.model}{speaker}:{self.speaking_rate:g}"
