"""The shape shared by every provider's section of ``voice.json``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    """voice.json uses camelCase keys; Python code uses snake_case attributes."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, frozen=True
    )


class ProviderSettings(CamelModel):
    """Base of every provider section: what a speak request may override, and the cache key."""

    @property
    def fallback_to_piper(self) -> bool:
        return False

    def with_request(self, voice: str | None, speed: float | None) -> "ProviderSettings":
        """Apply a speak request's voice/speed overrides (each provider maps them)."""
        raise NotImplementedError

    @property
    def voice_name(self) -> str:
        raise NotImplementedError

    def cache_key(self) -> str:
        """Everything that changes the audio, in the seed's ``<provider>:...`` form."""
        raise NotImplementedError


class FallbackSettings(ProviderSettings):
    """A provider that may fail over to Piper (every provider but Piper itself)."""

    auto_fallback_to_piper: bool = Field(True, description="Speak with Piper when this provider fails.")

    @property
    def fallback_to_piper(self) -> bool:
        return self.auto_fallback_to_piper
