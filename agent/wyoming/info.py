"""The ``describe`` answer: one ``tts`` program whose voices are what the core's ``voices``
command lists for each profile, named by ``names`` (the scheme Home Assistant's picker sees)."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future
from typing import Any

from wyoming.info import Attribution, Info, TtsProgram, TtsVoice

from agent import __version__
from agent.commands import Command
from agent.wyoming.names import (
    profile_voice_description,
    profile_voice_name,
    voice_description,
    voice_name,
    wyoming_language,
)

log = logging.getLogger(__name__)

PROGRAM = "voice-agent"


class _NoAudio:
    """Listing voices makes no sound."""

    def chunk(self, request_id: str, seq: int, wav: bytes) -> None: ...

    def whole(self, request_id: str, wav: bytes) -> None: ...

    def where(self, request_id: str, stream: bool) -> str:
        return ""


async def describe(voices: Command, profiles: list[str]) -> Info:
    listings = await asyncio.gather(*(_voices_of(voices, profile) for profile in profiles))
    tts_voices: list[TtsVoice] = []
    for profile, listing in zip(profiles, listings):
        voices_of = [_voice(profile, found) for found in listing]
        tts_voices.append(_own_voice(profile, voices_of))
        tts_voices.extend(voices_of)
    program = TtsProgram(
        name=PROGRAM,
        attribution=Attribution(name=PROGRAM, url=""),
        installed=True,
        description=f"{PROGRAM}: the household's voices ({', '.join(profiles) or 'no profiles'})",
        version=__version__,
        voices=tts_voices,
        supports_synthesize_streaming=True,
    )
    return Info(tts=[program])


async def _voices_of(voices: Command, profile: str) -> list[dict[str, Any]]:
    try:
        result = voices.run(profile, voices.model(), _NoAudio())
        answer = await asyncio.wrap_future(result) if isinstance(result, Future) else result
    except Exception as exc:  # one profile's problem must not hide the others' voices
        log.warning("cannot list the voices of %s for Wyoming: %s", profile, exc)
        return []
    return list(answer.get("voices", []))


def _own_voice(profile: str, voices: list[TtsVoice]) -> TtsVoice:
    """``<profile>/``: whatever the profile's voice.json speaks with (a trained voice, RVC), under
    every language its voices have, so the picker offers it where it offers them."""
    return TtsVoice(
        name=profile_voice_name(profile),
        attribution=Attribution(name=PROGRAM, url=""),
        installed=True,
        description=profile_voice_description(profile),
        version=None,
        languages=sorted({language for voice in voices for language in voice.languages}),
    )


def _voice(profile: str, found: dict[str, Any]) -> TtsVoice:
    provider, name = str(found["provider"]), str(found["name"])
    language = str(found.get("language") or "")
    return TtsVoice(
        name=voice_name(profile, provider, name),
        attribution=Attribution(name=provider, url=""),
        installed=True,
        description=voice_description(profile, provider, name),
        version=None,
        languages=[wyoming_language(language)] if language else [],
    )
