"""The Wyoming door end to end: the wyoming library's own client against the real agent, as
Home Assistant Assist talks to it (describe, synthesize, streaming synthesis, errors)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient, AsyncTcpClient, AsyncUnixClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice

from providers.common.audio import wav_bytes
from tests.audio_checks import assert_speech
from tests.conftest import AgentProcess, Probe, make_home
from tests.piper_duo import TONE, write_duo
from tests.mosquitto import Mosquitto, free_port

PIPER = "piper:en_US-joe-medium"
TIMEOUT = 60.0


@dataclass
class Agent:
    process: AgentProcess
    port: int


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[Agent]:
    home = make_home(tmp_path_factory.mktemp("home"), profiles=("default", "kitchen"))
    write_duo(home / "out" / "voices")  # piper:duo, two speakers
    write_duo(home / "out" / "voices", "en_US-lessac-medium")  # a catalog voice, installed (alias en-us-lessac-medium)
    port = free_port()
    process = AgentProcess(home, broker.port, {"VOICE_AGENT_WYOMING_URI": f"tcp://127.0.0.1:{port}"}).start()
    process.wait_log("ready", timeout=60)
    yield Agent(process, port)
    process.stop()


@dataclass
class Audio:
    """One audio-start ... audio-stop: its format and PCM."""

    start: AudioStart
    chunks: list[AudioChunk] = field(default_factory=list)

    @property
    def wav(self) -> bytes:
        return wav_bytes(b"".join(c.audio for c in self.chunks), self.start.rate)


async def read(client: AsyncClient) -> Event:
    event = await asyncio.wait_for(client.read_event(), TIMEOUT)
    assert event is not None, "the agent closed the connection"
    return event


async def read_audio(client: AsyncClient, first: Event | None = None) -> Audio:
    """From audio-start to audio-stop; an error instead fails the test with its code."""
    event = first or await read(client)
    assert not Error.is_type(event.type), f"error: {event.data}"
    assert AudioStart.is_type(event.type), event.type
    audio = Audio(AudioStart.from_event(event))
    while not AudioStop.is_type((event := await read(client)).type):
        assert AudioChunk.is_type(event.type), event.type
        audio.chunks.append(AudioChunk.from_event(event))
    return audio


async def read_error(client: AsyncClient) -> Error:
    event = await read(client)
    assert Error.is_type(event.type), f"expected an error, got {event.type} {event.data}"
    return Error.from_event(event)


async def still_answers(client: AsyncClient) -> None:
    await client.write_event(Ping(text="still there?").event())
    assert Pong.from_event(await read(client)).text == "still there?"


def run(agent: Agent, conversation) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with AsyncTcpClient("127.0.0.1", agent.port) as client:
            await conversation(client)

    asyncio.run(main())


def test_describe_lists_the_piper_voice_of_every_profile(agent: Agent) -> None:
    async def talk(client: AsyncTcpClient) -> None:
        await client.write_event(Describe().event())
        event = await read(client)
        [program] = Info.from_event(event).tts
        assert program.installed and program.supports_synthesize_streaming
        voices = {voice.name: voice for voice in program.voices}
        piper = voices[PIPER]
        assert piper.languages == ["en_US"] and piper.installed
        assert piper.description == "en_US-joe-medium (piper)"
        kitchen = voices[f"kitchen/{PIPER}"]
        assert kitchen.languages == ["en_US"] and kitchen.description == "kitchen: en_US-joe-medium (piper)"
        own = voices["kitchen/"]  # the profile's own voice, under every language of its voices
        assert "en_US" in own.languages and own.description == "kitchen: its own voice (voice.json)"

    run(agent, talk)


def test_synthesize_returns_speech_in_small_chunks(agent: Agent) -> None:
    async def talk(client: AsyncTcpClient) -> None:
        await client.write_event(Synthesize(text="Hello from the voice agent over Wyoming.").event())
        audio = await read_audio(client)
        assert (audio.start.rate, audio.start.width, audio.start.channels) == (22050, 2, 1)
        assert all((c.rate, c.width, c.channels) == (22050, 2, 1) for c in audio.chunks)
        assert max(c.samples for c in audio.chunks) <= 1024 and len(audio.chunks) > 10
        assert_speech(audio.wav, min_seconds=1.5)

    run(agent, talk)


def test_a_voice_pick_goes_to_its_profile_and_provider(agent: Agent, probe: Probe) -> None:
    async def talk(client: AsyncTcpClient) -> None:
        voice = SynthesizeVoice(name=f"kitchen/{PIPER}", language="en_US")
        await client.write_event(Synthesize(text="Spoken by the kitchen profile.", voice=voice).event())
        assert_speech((await read_audio(client)).wav, min_seconds=1.0)

    mark = probe.mark()
    run(agent, talk)
    finished = probe.event("kitchen", "speak.finished", after=mark)["data"]
    assert (finished["provider"], finished["voice"]) == ("piper", "en_US-joe-medium")
    assert finished["audio_topic"].startswith("wyoming://127.0.0.1:")


def test_a_profile_pick_speaks_with_the_profiles_own_voice(agent: Agent, probe: Probe) -> None:
    async def talk(client: AsyncTcpClient) -> None:
        await client.write_event(Synthesize(text="The kitchen's own voice.", voice=SynthesizeVoice(name="kitchen/")).event())
        assert_speech((await read_audio(client)).wav, min_seconds=1.0)

    mark = probe.mark()
    run(agent, talk)
    finished = probe.event("kitchen", "speak.finished", after=mark)["data"]
    assert finished["provider"] == "piper" and finished["audio_topic"].startswith("wyoming://")


def test_streaming_speaks_each_sentence_as_it_arrives(agent: Agent) -> None:
    pieces = ["The first sentence is here. Then", " comes a second one! And", " is this the third?"]

    async def talk(client: AsyncTcpClient) -> None:
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name=PIPER)).event())
        for piece in pieces[:-1]:
            await client.write_event(SynthesizeChunk(text=piece).event())
        # The first sentence is complete: its audio comes before the rest of the text is sent.
        sentences = [await read_audio(client)]
        await client.write_event(SynthesizeChunk(text=pieces[-1]).event())
        await client.write_event(Synthesize(text="".join(pieces), voice=SynthesizeVoice(name=PIPER)).event())  # compat
        await client.write_event(SynthesizeStop().event())
        while not SynthesizeStopped.is_type((event := await read(client)).type):
            sentences.append(await read_audio(client, event))
        assert len(sentences) == 3, "one audio per sentence, and the compatibility synthesize is not spoken"
        for audio in sentences:
            assert_speech(audio.wav, min_seconds=0.8)
        await still_answers(client)

    run(agent, talk)


def test_unknown_voice_is_an_error_and_the_connection_keeps_working(agent: Agent) -> None:
    async def talk(client: AsyncTcpClient) -> None:
        await client.write_event(Synthesize(text="Hello.", voice=SynthesizeVoice(name="no_such_voice")).event())
        error = await read_error(client)
        assert error.code == "voice_not_found" and "no_such_voice" in error.text
        await client.write_event(Synthesize(text="Hello.", voice=SynthesizeVoice(name="attic/piper:x")).event())
        assert (await read_error(client)).code == "unknown_profile"
        await client.write_event(Event(type="synthesize", data={"voice": {"name": PIPER}}))  # no text
        assert (await read_error(client)).code == "invalid_payload"
        # a stream with an unknown voice: its error, then the end of the stream
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name="piper:no_such_voice")).event())
        await client.write_event(SynthesizeChunk(text="One sentence. And another one.").event())
        await client.write_event(SynthesizeStop().event())
        assert (await read_error(client)).code == "voice_not_found"
        assert SynthesizeStopped.is_type((await read(client)).type)
        # the same connection still speaks
        await client.write_event(Synthesize(text="Still speaking.", voice=SynthesizeVoice(name=PIPER)).event())
        assert_speech((await read_audio(client)).wav, min_seconds=0.5)

    run(agent, talk)


def test_text_over_the_limit_is_refused(agent: Agent) -> None:
    async def talk(client: AsyncTcpClient) -> None:
        await client.write_event(Synthesize(text="Hello there. " * 400).event())  # 5200 characters, limit 5000
        error = await read_error(client)
        assert error.code == "text_too_long" and "5000" in error.text
        # streamed text without a sentence end is not buffered without bound: refused as it grows
        await client.write_event(SynthesizeStart().event())
        for _ in range(60):
            await client.write_event(SynthesizeChunk(text="and then more words " * 5).event())  # 100 each
        assert (await read_error(client)).code == "text_too_long"  # before the stream ends
        await client.write_event(SynthesizeStop().event())
        assert SynthesizeStopped.is_type((await read(client)).type)
        await still_answers(client)

    run(agent, talk)


@pytest.mark.slow
def test_an_address_in_use_stops_the_agent_with_a_clear_error(tmp_path, broker: Mosquitto) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        uri = f"tcp://127.0.0.1:{taken.getsockname()[1]}"
        process = AgentProcess(make_home(tmp_path / "home"), broker.port, {"VOICE_AGENT_WYOMING_URI": uri}).start()
        assert process.process is not None
        assert process.process.wait(timeout=60) == 1
    assert f"cannot start: Wyoming server cannot listen on {uri}: address already in use" in process.log.read_text()


@pytest.mark.slow
def test_a_unix_socket_serves_as_well(tmp_path, broker: Mosquitto) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "wyoming.sock"
    process = AgentProcess(make_home(tmp_path / "home"), broker.port, {"VOICE_AGENT_WYOMING_URI": f"unix://{path}"}).start()
    try:
        process.wait_log("ready", timeout=60)

        async def talk() -> None:
            async with AsyncUnixClient(str(path)) as client:
                await client.write_event(Synthesize(text="Over a Unix socket.").event())
                assert_speech((await read_audio(client)).wav, min_seconds=0.8)

        asyncio.run(talk())
    finally:
        assert process.stop() == 0
    assert not path.exists(), "the socket is removed on a clean stop"


def test_describe_lists_the_catalog_once_with_attribution_and_speakers(agent: Agent) -> None:
    async def talk(client: AsyncTcpClient) -> None:
        await client.write_event(Describe().event())
        [program] = Info.from_event(await read(client)).tts
        voices = {voice.name: voice for voice in program.voices}
        alan = voices["piper:en_GB-alan-low"]  # downloadable: installed for Home Assistant while downloads are on
        assert alan.installed and alan.languages == ["en_GB"] and "download" in (alan.description or "")
        assert alan.attribution.url.endswith("/en/en_GB/alan/low/MODEL_CARD")
        vctk = voices["piper:en_GB-vctk-medium"]
        assert vctk.speakers is not None and len(vctk.speakers) == 109 and vctk.speakers[0].name == "p239"
        assert voices["kokoro:af_heart"].languages == ["en_US"]
        lessac = voices["piper:en_US-lessac-medium"]  # installed: no download in its description
        assert lessac.description == "en_US-lessac-medium (piper)" and lessac.attribution.url.endswith("MODEL_CARD")
        assert "kitchen/piper:en_GB-alan-low" not in voices  # the catalog once, under the default profile
        assert len(program.voices) < 300

    run(agent, talk)


def test_wyoming_piper_names_and_their_old_aliases_speak(agent: Agent, probe: Probe) -> None:
    """A stored wyoming-piper name, and its alias, are the installed voice (a profile that speaks
    Kokoro sends them to Piper too: tests/agent/voices/test_resolve.py; a Kokoro profile here would
    cost the module a Kokoro model load)."""
    async def talk(client: AsyncTcpClient) -> None:
        for name in ("kitchen/en_US-lessac-medium", "kitchen/en-us-lessac-medium"):
            await client.write_event(Synthesize(text="Hi.", voice=SynthesizeVoice(name=name)).event())
            assert len(b"".join(c.audio for c in (await read_audio(client)).chunks)) == 2 * TONE  # duo's first speaker

    mark = probe.mark()
    run(agent, talk)
    finished = probe.event("kitchen", "speak.finished", after=mark)["data"]
    assert (finished["provider"], finished["voice"], finished["fallback"]) == ("piper", "en_US-lessac-medium", False)


def test_a_speaker_picked_by_name_speaks_and_an_unknown_one_is_an_error(agent: Agent) -> None:
    async def talk(client: AsyncTcpClient) -> None:
        lengths = []
        for speaker in ("alto", "bass"):
            voice = SynthesizeVoice(name="piper:duo", speaker=speaker)
            await client.write_event(Synthesize(text="Hi.", voice=voice).event())
            lengths.append(len(b"".join(c.audio for c in (await read_audio(client)).chunks)) // 2)
        assert lengths == [TONE, 2 * TONE]  # speaker id 0 makes one tone, id 1 two
        await client.write_event(Synthesize(text="Hi.", voice=SynthesizeVoice(name="piper:duo", speaker="bas")).event())
        error = await read_error(client)
        assert error.code == "speaker_not_found" and "did you mean bass?" in error.text
        await client.write_event(Synthesize(text="Hi.", voice=SynthesizeVoice(name=PIPER, speaker="alto")).event())
        assert (await read_error(client)).code == "speaker_not_found"  # joe has one speaker

    run(agent, talk)


def test_an_unknown_name_is_an_error_that_names_it(agent: Agent) -> None:
    async def talk(client: AsyncTcpClient) -> None:
        await client.write_event(Synthesize(text="Hi.", voice=SynthesizeVoice(name="en_US-lessac-medum")).event())
        error = await read_error(client)
        assert error.code == "voice_not_found" and "en_US-lessac-medum" in error.text
        await still_answers(client)

    run(agent, talk)
