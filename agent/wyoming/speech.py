"""One speak request, as Wyoming events: the core's ``speak`` command with ``stream`` on, each
sentence's WAV cut into ``audio-chunk`` events as soon as the speak worker hands it over, framed
by ``audio-start`` and ``audio-stop``; a refusal becomes an ``error {text, code}`` event.

The speak worker runs on its own thread: ``LoopAudio`` (the door's ``AudioOut``, ``speak.handoff``)
only hands each WAV to the connection's asyncio loop, where the events are written. Once the client
has gone, ``LoopAudio`` refuses the worker's next sentence (``client_gone``, ``speak.departure``): a
long text is not synthesized to its end for nobody.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from pydantic import ValidationError
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event

from agent.commands import Command
from agent.errors import ServiceError
from agent.requests import describe_validation_error
from agent.speak.departure import Departure
from agent.speak.handoff import DONE, LoopAudio
from agent.wyoming.connection import Write
from agent.voices.picks import VoicePick
from providers.base import ProviderError
from providers.common.audio import read_wav_pcm
from providers.common.names import is_plain_name

log = logging.getLogger(__name__)

SAMPLES_PER_CHUNK = 1024  # what wyoming-piper sends: 46 ms at 22.05 kHz
WIDTH, CHANNELS = 2, 1  # the core's audio: 16-bit mono

ProfileExists = Callable[[str], bool]

def refusal(exc: BaseException) -> Error:
    """The agent's error code as Wyoming's error event (what the MQTT door puts in ``code``)."""
    if isinstance(exc, (ServiceError, ProviderError)):
        return Error(text=str(exc), code=exc.code)
    return Error(text=f"{type(exc).__name__}: {exc}", code="internal_error")


class Speech:
    """Speaks texts for one connection through the core's ``speak`` command."""

    def __init__(self, speak: Command, profile_exists: ProfileExists, write: Write, peer: str) -> None:
        self._speak = speak
        self._profile_exists = profile_exists
        self._write = write
        self._where = f"wyoming://{peer}"
        self._departure = Departure("the Wyoming client", self._where)
        self._speaking = 0
        self._cut_off = False

    def stop(self) -> bool:
        """The connection has ended: refuse what the worker still produces for it. True when
        that cut its speech off (a write failed, or a text was still being spoken)."""
        self._departure.leave()
        return self._cut_off or self._speaking > 0

    async def say(self, text: str, pick: VoicePick) -> bool:
        """Write ``text``'s audio (audio-start, chunks, audio-stop) or an error; True when spoken."""
        if self._departure.gone:
            raise ConnectionAbortedError("the connection has ended")
        self._speaking += 1
        try:
            return await self._say(text, pick)
        except ConnectionError:
            self._cut_off = True
            self._departure.leave()
            raise
        finally:
            self._speaking -= 1

    async def _say(self, text: str, pick: VoicePick) -> bool:
        out = LoopAudio(asyncio.get_running_loop(), self._departure, self._where)
        try:
            future = self._submit(text, pick, out)
        except (ServiceError, ProviderError) as exc:
            return await self._refuse(exc, pick)
        except Exception as exc:
            log.exception("Wyoming speak request failed")
            return await self._refuse(exc, pick)
        future.add_done_callback(out.finished)
        started = False
        while (wav := await out.queue.get()) is not DONE:
            pcm, rate = read_wav_pcm(wav)
            if not started:
                started = True
                await self._write(AudioStart(rate=rate, width=WIDTH, channels=CHANNELS).event())
            for event in audio_events(pcm, rate):
                await self._write(event)
        error = future.exception()
        if error is not None:
            await self._refuse(error, pick)
        elif future.result().get("fallback"):
            spoken = future.result()
            log.warning("Wyoming synthesize for %s spoken by %s/%s instead (%s): %s", self._where, spoken["provider"],
                        spoken["voice"], spoken.get("fallback_code"), spoken.get("fallback_reason"))
        elif not started:  # answered without audio: the core does not do that, but stay framed
            await self._write(AudioStart(rate=future.result()["sample_rate"], width=WIDTH, channels=CHANNELS).event())
            started = True
        if started:
            await self._write(AudioStop().event())
        return error is None

    def _submit(self, text: str, pick: VoicePick, out: LoopAudio) -> Future[dict[str, Any]]:
        if not is_plain_name(pick.profile):
            raise ServiceError("invalid_profile", f"profile name {pick.profile!r} is not a plain identifier")
        if not self._profile_exists(pick.profile):
            raise ServiceError("unknown_profile", f"no profile {pick.profile!r} (profiles are directories under profiles/)")
        document = {"id": f"wy-{uuid.uuid4().hex[:10]}", "text": text, "stream": True}
        document.update({k: v for k, v in (("provider", pick.provider), ("voice", pick.voice), ("speaker", pick.speaker)) if v is not None})
        try:
            request = self._speak.model.model_validate(document)
        except ValidationError as exc:
            raise ServiceError("invalid_payload", describe_validation_error(exc)) from exc
        result = self._speak.run(pick.profile, request, out)
        if not isinstance(result, Future):
            raise TypeError("the speak command answers with a Future")
        return result

    async def _refuse(self, exc: BaseException, pick: VoicePick) -> bool:
        error = refusal(exc)
        log.warning("Wyoming speak request for %s refused: %s: %s", pick.profile, error.code, error.text)
        await self._write(error.event())
        return False


def audio_events(pcm: bytes, rate: int) -> list[Event]:
    """One sentence's PCM as audio-chunk events of ``SAMPLES_PER_CHUNK`` samples."""
    step = SAMPLES_PER_CHUNK * WIDTH * CHANNELS
    return [
        AudioChunk(rate=rate, width=WIDTH, channels=CHANNELS, audio=pcm[i : i + step]).event()
        for i in range(0, len(pcm), step)
    ]

