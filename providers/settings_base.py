"""The shape shared by every provider's section of ``voice.json``."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    """voice.json uses camelCase keys; Python code uses snake_case attributes."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True)

    def updated(self, **changes: object) -> Self:
        """A copy with ``changes`` (snake_case names), validated like voice.json itself, so a
        speak request's overrides meet the same ranges and patterns as the file."""
        data = self.model_dump(by_alias=True)
        for name, value in changes.items():
            data[type(self).model_fields[name].alias or name] = value
        return type(self).model_validate(data)


class ProviderSettings(CamelModel):
    """Base of every provider section: what a speak request may override, and the cache key."""

    # The fields a speak request's "voice" and "speed" set, named by each provider.
    voice_field: ClassVar[str]
    speed_field: ClassVar[str]

    @property
    def fallback_to_piper(self) -> bool:
        return False

    def with_request(self, voice: str | None, speed: float | None, lang: str | None = None) -> Self:
        """This section with a speak request's overrides, validated like the file. ``lang`` (a
        language tag such as ``en-us``) matters to providers that speak several languages."""
        update: dict[str, object] = {}
        if voice is not None:
            update[self.voice_field] = voice
        if speed is not None:
            update[self.speed_field] = speed
        if lang is not None:
            update.update(self.language_update(lang))
        return self.updated(**update)

    def language_update(self, lang: str) -> dict[str, object]:
        """The fields a request's language tag sets (none: this provider's voices have one language)."""
        return {}

    @property
    def voice_name(self) -> str:
        return str(getattr(self, self.voice_field))

    @property
    def pace(self) -> float:
        """The speed in force, whatever the provider calls it (1.0: the voice's own pace)."""
        return float(getattr(self, self.speed_field))

    def cache_key(self) -> str:
        """Everything that changes the audio, in the seed's ``<provider>:...`` form."""
        raise NotImplementedError


class FallbackSettings(ProviderSettings):
    """A provider that may fail over to Piper (every provider but Piper itself)."""

    auto_fallback_to_piper: bool = Field(True, description="Speak with Piper when this provider fails.")

    @property
    def fallback_to_piper(self) -> bool:
        return self.auto_fallback_to_piper
