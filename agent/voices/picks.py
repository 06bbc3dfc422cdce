"""How a voice name a door receives maps onto a profile, a provider and a voice: the one grammar
the Wyoming door and the OpenAI-compatible door share.

A name is ``[<profile>/][<provider>:]<voice>``. A name without a provider (``en_US-joe-medium``,
what wyoming-piper users have stored) is the profile's configured provider speaking that voice; a
name that is only ``<profile>/`` is that profile's own voice (what its voice.json says); no name at
all is the ``default`` profile's own voice. Neither ``/`` nor ``:`` can be part of a profile or
provider name, so parsing needs no look-up: it is pure translation, and what the core does not
know it refuses. (A Kokoro blend ``af_bella:0.6,af_sky:0.4`` is a voice: ``af_bella`` is no
provider.)

OpenAI's voice names (``alloy``, ``echo``, ...) are one more layer (``openai_pick``): a profile's
``openai.voices`` table in voice.json says which voice each one is; a name the table leaves out is
the profile's own voice, so any OpenAI client speaks with the household's voice unless told
otherwise. Any other name is read as above.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.errors import ServiceError
from providers import registry

DEFAULT_PROFILE = "default"
_PROVIDERS = (*registry.NAMES, *registry.ALIASES)

# OpenAI's speech voices (its API reference, 2025): each is a name a client may send
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")
# OpenAI's speech models: each means "the profile's own provider"
OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")


@dataclass(frozen=True)
class VoicePick:
    """Where a speak request goes: the profile, and the request's provider and voice."""

    profile: str
    provider: str | None = None
    voice: str | None = None
    speaker: str | None = None  # a multi-speaker voice's speaker, by name (synthesize.voice.speaker)


def parse_voice_name(name: str | None) -> VoicePick:
    if not name:
        return VoicePick(DEFAULT_PROFILE)
    profile, slash, rest = name.partition("/")
    if not slash:
        profile, rest = DEFAULT_PROFILE, name
    provider, colon, voice = rest.partition(":")
    if colon and provider in _PROVIDERS:
        return VoicePick(profile, provider, voice or None)
    return VoicePick(profile, None, rest or None)


def voice_name(profile: str, provider: str, voice: str) -> str:
    """The listed name of a profile's voice (``parse_voice_name`` reads it back)."""
    local = f"{provider}:{voice}"
    return local if profile == DEFAULT_PROFILE else f"{profile}/{local}"


def profile_voice_name(profile: str) -> str:
    """``<profile>/``: the profile's own voice, as its voice.json says."""
    return f"{profile}/"


def openai_pick(voice: str, table: dict[str, str]) -> VoicePick:
    """The voice an OpenAI request's ``voice`` means. ``table``: the profile's ``openai.voices``
    (the profile is the name's, ``kitchen/alloy``, else ``default``; the caller reads that profile's
    table with ``profile_of``). A table entry is ``[provider:]voice``, or empty: the profile's own."""
    pick = parse_voice_name(voice)
    if pick.provider is None and pick.voice is not None and (pick.voice in table or pick.voice in OPENAI_VOICES):
        mapped = parse_voice_name(table.get(pick.voice, "") or None)
        return VoicePick(pick.profile, mapped.provider, mapped.voice)
    return pick


def profile_of(voice: str) -> str:
    """The profile an OpenAI ``voice`` names (``kitchen/alloy``: kitchen), before its table is read."""
    return parse_voice_name(voice).profile


def with_model(pick: VoicePick, model: str) -> VoicePick:
    """An OpenAI ``model``: one of OpenAI's names (or a dated one, ``tts-1-1106``) keeps the pick; a
    provider's name (``piper``, ``kokoro``) makes that provider speak, with the pick's voice when the
    voice is that provider's too. Anything else is ``unknown_model``."""
    if model in OPENAI_MODELS or model.startswith(OPENAI_MODELS):
        return pick
    if model not in _PROVIDERS:
        raise ServiceError("unknown_model", f"unknown model {model!r}: use {', '.join(OPENAI_MODELS)} (the profile's "
                                            f"own provider) or a provider: {', '.join(registry.NAMES)}",
                           {"param": "model"})
    if pick.provider is not None and registry.canonical(pick.provider) != registry.canonical(model):
        raise ServiceError("invalid_params", f"model {model!r} and voice provider {pick.provider!r} disagree: "
                                             "name one provider", {"param": "model"})
    if pick.provider is None and pick.voice is None:
        return VoicePick(pick.profile, model)  # that provider's own voice in this profile
    return VoicePick(pick.profile, model, pick.voice)
