"""The ``describe`` answer: one ``tts`` program whose voices are what the core's ``voices``
command lists for each profile, named by ``names`` (the scheme Home Assistant's picker sees).

Catalog voices (Piper's 176, Kokoro's 54) are listed once, under the ``default`` profile (the one
a name without a profile goes to), not again for every profile: with a handful of profiles that
would be a thousand entries Home Assistant lists in one picker. Other profiles list their
installed voices. A catalog voice is listed as wyoming-piper lists its catalog: ``installed`` true
while on-demand download is on (a ``synthesize`` naming it fetches it, and Home Assistant only
offers voices marked installed), false when downloads are off (it cannot speak until someone
downloads it); its description says it is a download and how big.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future
from typing import Any

from wyoming.info import Attribution, Info, TtsProgram, TtsVoice, TtsVoiceSpeaker

from agent import __version__
from agent.commands import Command
from agent.voices.listing import language_code
from agent.voices.picks import DEFAULT_PROFILE, profile_voice_name, voice_name
from agent.voices.requests import VoicesRequest
from agent.wyoming.names import profile_voice_description, voice_description

log = logging.getLogger(__name__)

PROGRAM = "voice-agent"


class _NoAudio:
    """Listing voices makes no sound."""

    def chunk(self, request_id: str, seq: int, wav: bytes) -> None: ...

    def whole(self, request_id: str, wav: bytes) -> None: ...

    def where(self, request_id: str, stream: bool) -> str:
        return ""


async def describe(voices: Command, profiles: list[str], download_on_demand: bool = True) -> Info:
    listings = await asyncio.gather(
        *(_voices_of(voices, profile, catalog=profile == DEFAULT_PROFILE) for profile in profiles))
    tts_voices: list[TtsVoice] = []
    for profile, listing in zip(profiles, listings):
        voices_of = [_voice(profile, found, download_on_demand) for found in listing]
        installed = [voice for voice, found in zip(voices_of, listing) if found.get("installed", True)]
        tts_voices.append(_own_voice(profile, installed))
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


async def _voices_of(voices: Command, profile: str, catalog: bool) -> list[dict[str, Any]]:
    try:
        result = voices.run(profile, VoicesRequest(catalog=catalog), _NoAudio())
        answer = await asyncio.wrap_future(result) if isinstance(result, Future) else result
    except Exception as exc:  # one profile's problem must not hide the others' voices
        log.warning("cannot list the voices of %s for Wyoming: %s", profile, exc)
        return []
    return list(answer.get("voices", []))


def _own_voice(profile: str, voices: list[TtsVoice]) -> TtsVoice:
    """``<profile>/``: whatever the profile's voice.json speaks with (a trained voice, RVC), under
    every language its installed voices have, so the picker offers it where it offers them."""
    return TtsVoice(
        name=profile_voice_name(profile),
        attribution=Attribution(name=PROGRAM, url=""),
        installed=True,
        description=profile_voice_description(profile),
        version=None,
        languages=sorted({language for voice in voices for language in voice.languages}),
    )


def _voice(profile: str, found: dict[str, Any], download_on_demand: bool) -> TtsVoice:
    provider, name = str(found["provider"]), str(found["name"])
    language = str(found.get("language") or "")
    installed = bool(found.get("installed", True))
    speakers = [str(speaker) for speaker in found.get("speaker_names") or []]
    return TtsVoice(
        name=voice_name(profile, provider, name),
        attribution=Attribution(name=provider, url=str(found.get("attribution") or "")),
        installed=installed or download_on_demand,
        description=voice_description(profile, provider, name, None if installed else int(found.get("size") or 0)),
        version=None,
        languages=[language_code(language)] if language else [],
        speakers=[TtsVoiceSpeaker(name=speaker) for speaker in speakers] if len(speakers) > 1 else None,
    )
