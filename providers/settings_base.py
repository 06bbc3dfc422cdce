"""The shape shared by every provider's section of ``voice.json``."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Self, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


class InputModel(BaseModel):
    """The base of every model that reads what comes from outside (requests, voice.json, trainer
    and action parameters): unknown keys are refused, and numbers that are not finite. Python's
    JSON reader takes ``Infinity``, ``NaN`` and ``1e999999`` (infinity); a ``maxSizeMB`` of
    infinity, once written, failed every speak of its profile, restarts included."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _LocalPath:
    """The mark of a field whose value names a file or folder on this machine. voice.json's
    ``access.paths`` keeps every field so marked, and only those, inside the agent's home when a
    request sets it (agent/access.py): a field is a path because it says so, not by its name."""

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        described = handler(schema)
        described["format"] = "path"  # a form may offer a file picker
        return described

    def __repr__(self) -> str:
        return "LOCAL_PATH"


LOCAL_PATH = _LocalPath()


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("a path cannot contain a NUL character")
    return value


# A file or folder: absolute, relative (to the profile directory or the home, as the field says),
# or a name the provider looks up in its own folders. Empty means "not set" where allowed.
LocalPath = Annotated[str, AfterValidator(_no_nul), LOCAL_PATH]


def is_local_path(field: FieldInfo) -> bool:
    """Whether ``field`` is a ``LocalPath`` (also inside ``Optional`` or ``list``)."""
    return any(item is LOCAL_PATH for item in field.metadata) or _marked(field.annotation)


def _marked(annotation: Any) -> bool:
    args = get_args(annotation)
    return any(item is LOCAL_PATH for item in args[1:]) or any(_marked(arg) for arg in args)


class CamelModel(InputModel):
    """voice.json uses camelCase keys; Python code uses snake_case attributes."""

    model_config = ConfigDict(alias_generator=to_camel, frozen=True)

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

    def with_speaker(self, speaker: str) -> Self:
        """This section speaking with one speaker (by name) of a multi-speaker voice; a provider
        whose voices have one speaker refuses (a ValueError: the request is not valid for it)."""
        raise ValueError(f"its voices have one speaker each; there is no speaker {speaker!r} to pick")

    def language_update(self, lang: str) -> dict[str, object]:
        """The fields a request's language tag sets (none: this provider's voices have one language)."""
        return {}

    def for_text(self, text: str) -> Self:
        """These settings for one text: a provider whose default voice depends on the text's
        language picks it here (Kokoro); the others are as they are."""
        return self

    @property
    def voice_name(self) -> str:
        return str(getattr(self, self.voice_field))

    @property
    def voice_chosen(self) -> bool:
        """Whether the settings name their voice (else the provider picks one when it speaks:
        nothing is fetched for it ahead, and its absence is no error of the profile's)."""
        return bool(getattr(self, self.voice_field))

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
