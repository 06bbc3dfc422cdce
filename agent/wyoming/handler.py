"""One Wyoming connection: its events in, the core's answers out as events.

``describe`` -> ``info``; ``synthesize`` -> audio (or an ``error``); a ``synthesize-start`` ...
``synthesize-stop`` stream -> audio sentence by sentence, then ``synthesize-stopped`` (a
``synthesize`` inside a stream is the compatibility copy of the streamed text, and is ignored);
``ping`` -> ``pong``. A bad event is answered with an ``error`` and the connection stays open
(one that cannot even be read is ``connection``'s: it answers and closes). When the connection
ends, what is still being said or queued for it is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.ping import Ping, Pong
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice

from agent.commands import Command
from agent.wyoming.connection import Write
from agent.wyoming.info import describe
from agent.voices.picks import VoicePick, parse_voice_name
from agent.wyoming.speech import Speech
from agent.wyoming.text_stream import TextStream

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DoorContext:
    """What every connection needs of the agent: the command table and the profiles."""

    commands: dict[str, Command]
    profile_names: Callable[[], list[str]]
    profile_exists: Callable[[str], bool]
    max_text_chars: int
    download_on_demand: bool = True  # catalog voices are then listed as installed (info.py says why)


class BadEvent(Exception):
    """An event whose data is not what the protocol says."""


class TtsHandler:
    """A connection's events, as ``connection.Connection`` hands them over."""

    def __init__(self, door: DoorContext, write: Write, peer: str) -> None:
        self._door = door
        self._peer = peer
        self._write = write
        self._speech = Speech(door.commands["speak"], door.profile_exists, write, peer)
        self._stream: TextStream | None = None

    async def handle_event(self, event: Event) -> bool:
        """False (the connection then closes) only when the client has gone."""
        try:
            try:
                await self._handle(event)
            except BadEvent as exc:
                log.warning("Wyoming %s from %s refused: %s", event.type, self._peer, exc)
                await self._write(Error(text=f"{event.type}: {exc}", code="invalid_payload").event())
            except ConnectionError:
                raise
            except Exception as exc:  # a bug: answer it and keep the connection
                log.exception("Wyoming %s from %s failed", event.type, self._peer)
                await self._write(Error(text=f"{type(exc).__name__}: {exc}", code="internal_error").event())
        except ConnectionError:
            return False
        return True

    async def disconnect(self) -> None:
        """The connection has ended: the speech for it stops at the next sentence, and the
        sentences still queued in its stream are dropped."""
        cut_off = self._speech.stop()
        dropped = self._stream.cancel() if self._stream is not None else 0
        self._stream = None
        if cut_off or dropped:
            log.info("Wyoming client %s has gone: its speech stops (%d queued sentence(s) dropped)", self._peer, dropped)

    async def _handle(self, event: Event) -> None:
        if Describe.is_type(event.type):
            info = await describe(self._door.commands["voices"], self._door.profile_names(), self._door.download_on_demand)
            await self._write(info.event())
        elif Synthesize.is_type(event.type):
            if self._stream is None:  # inside a stream it repeats the streamed text: ignore it
                synthesize = _parse(Synthesize.from_event, event)
                await self._speech.say(synthesize.text, _pick(synthesize.voice))
        elif SynthesizeStart.is_type(event.type):
            start = _parse(SynthesizeStart.from_event, event)
            if self._stream is not None:  # a new stream before the last one stopped: end that one first
                await self._end_stream()
            self._stream = TextStream(self._speech, _pick(start.voice), self._door.max_text_chars)
        elif SynthesizeChunk.is_type(event.type):
            chunk = _parse(SynthesizeChunk.from_event, event)
            if self._stream is None:
                raise BadEvent("no synthesize-start came before it")
            if not isinstance(chunk.text, str):
                raise BadEvent("text must be a string")
            self._stream.add(chunk.text)
        elif SynthesizeStop.is_type(event.type):
            await self._end_stream()
        elif Ping.is_type(event.type):
            await self._write(Pong(text=Ping.from_event(event).text).event())
        else:
            log.debug("Wyoming event %s from %s ignored", event.type, self._peer)

    async def _end_stream(self) -> None:
        """Speak the rest of the stream (if one is open) and say it has stopped (always: a stop
        without a start is answered too)."""
        if self._stream is not None:
            await self._stream.finish()  # if the client goes meanwhile, disconnect drops the rest
            self._stream = None
        await self._write(SynthesizeStopped().event())


def _parse(reader: Callable[[Event], Any], event: Event) -> Any:
    try:
        return reader(event)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise BadEvent(f"malformed data ({type(exc).__name__}: {exc})") from exc


def _pick(voice: SynthesizeVoice | None) -> VoicePick:
    """The voice's name, and the speaker Home Assistant picked of a multi-speaker voice."""
    name = voice.name if voice is not None else None
    speaker = voice.speaker if voice is not None else None
    if name is not None and not isinstance(name, str):
        raise BadEvent("voice.name must be a string")
    if speaker is not None and not isinstance(speaker, str):
        raise BadEvent("voice.speaker must be a string")
    return replace(parse_voice_name(name), speaker=speaker or None)
