"""MQTT streaming gets the core's sentence-first cut: the first sentence's audio is published
while the engine is still making the rest, even with an engine that makes each text it is given
in one call (the first chunk would otherwise wait for the whole paragraph)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.commands import Command
from agent.config.store import ConfigStore
from agent.events import EventBus, StateBoard
from agent.layout import Layout
from agent.mqtt.edge import TopicAudio
from agent.mqtt.router import Router
from agent.mqtt.schema import Response
from agent.mqtt.topics import Topics
from agent.speak.engines import ProviderPool
from agent.speak.requests import SpeakRequest
from agent.speak.service import SpeakService
from providers.base import AudioChunk, ProviderContext, VoiceInfo
from providers.settings_base import ProviderSettings
from tests.agent.mqtt import fakes

WAIT = 10  # seconds before the test gives up (never reached when it works)
TEXT = "The first sentence is short. The second one is made only when the test allows it. And a third."


class WholeTextEngine:
    """Makes each text it is handed in one call, as one chunk; a text that holds the second
    sentence waits until the test lets it go."""

    name = "piper"

    def __init__(self) -> None:
        self.go_on = threading.Event()
        self.texts: list[str] = []

    def synthesize(self, text: str, settings: ProviderSettings, ctx: ProviderContext) -> Iterator[AudioChunk]:
        self.texts.append(text)
        if "second" in text:
            assert self.go_on.wait(WAIT), "the test never let the second sentence be made"
        yield AudioChunk(b"\x01\x00" * 100 * len(text), 16000)

    def voices(self, ctx: ProviderContext) -> list[VoiceInfo]:
        return []

    def asset_tag(self, settings: ProviderSettings, ctx: ProviderContext) -> str:
        return "v1"

    def preload(self, settings: ProviderSettings, ctx: ProviderContext) -> None:
        pass

    def close(self) -> None:
        pass


class Transport(fakes.Transport):
    """What the door publishes, in order; the first audio chunk is signalled."""

    def __init__(self) -> None:
        super().__init__()
        self.first_audio = threading.Event()

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False, properties: Any = None) -> None:
        super().publish(topic, payload, qos, retain, properties)
        if "/audio/" in topic:
            self.first_audio.set()


def test_the_first_sentence_is_published_before_the_second_is_made(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "voice.json").write_text(json.dumps({"cache": {"enabled": False}}))
    (tmp_path / "profiles" / "default" / "etc").mkdir(parents=True)
    (tmp_path / "profiles" / "default" / "etc" / "voice.json").write_text("{}")
    layout, events, engine, transport = Layout(tmp_path), EventBus(), WholeTextEngine(), Transport()
    speak = SpeakService(layout, ConfigStore(layout, events), ProviderPool(factory=lambda name: engine), events,
                         StateBoard(), 4, 5000, 300)
    responses: list[Response] = []
    topics = Topics("voice")
    router = Router({"speak": Command(SpeakRequest, lambda p, r, out: speak.submit(p, r, out))},
                    lambda profile, command, response: responses.append(response),
                    lambda profile: TopicAudio(transport, topics, profile),  # type: ignore[arg-type]
                    layout.exists, max_request_bytes=10_000, max_audio_bytes=10_000)
    try:
        router.dispatch("default", "speak", json.dumps({"id": "cut", "text": TEXT, "stream": True}).encode())
        assert transport.first_audio.wait(WAIT), "no audio was published while the second sentence waited"
        assert [topic for topic, _ in transport.published if "/audio/" in topic] == ["voice/default/audio/cut/0"]
        assert engine.texts[0] == "The first sentence is short."  # the second call may have begun: it waits
        engine.go_on.set()
        speak.stop()  # waits for the worker: the request is answered by then
    finally:
        engine.go_on.set()
    assert [r.status for r in responses] == ["ok"] and responses[0].data["chunks"] == 2  # type: ignore[index]
    audio = [topic for topic, _ in transport.published if "/audio/" in topic]
    assert audio == ["voice/default/audio/cut/0", "voice/default/audio/cut/1"]
