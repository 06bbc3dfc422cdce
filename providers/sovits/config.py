"""``tts.sovits`` in voice.json."""

from __future__ import annotations

from pydantic import Field, HttpUrl

from providers.settings_base import FallbackSettings


class SovitsSettings(FallbackSettings):
    server_url: HttpUrl = Field(HttpUrl("http://127.0.0.1:9880"), description="GPT-SoVITS API server.")
    speaker_id: str = Field("default", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Reference speaker.")
    temperature: float = Field(1.0, gt=0.0, le=2.0, description="Sampling temperature.")
    speed: float = Field(1.0, ge=0.5, le=2.0, description="Speed factor.")
    auto_start: bool = Field(False, description="Start the configured server when this provider is selected.")

    def with_request(self, voice: str | None, speed: float | None) -> "SovitsSettings":
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
        return f"sovits:{self.speaker_id}:{self.temperature:g}:{self.speed:g}"
