"""First audio before the last sentence, end to end (a real agent, Mosquitto, Piper): MQTT
streaming publishes the first sentence's WAV before ``speak.finished``, and ``POST /api/tts``
delivers its first bytes (an open-length WAV) before the agent says the request has finished."""

from __future__ import annotations

import json
import struct
import wave
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import AgentProcess, Probe
from tests.e2e.test_http import http_agent
from tests.mosquitto import Mosquitto

pytestmark = pytest.mark.slow

BASE = "http-e2e"  # the probe's base topic: the one ``http_agent`` gives its agent


def long_text(door: str) -> str:
    """Five sentences, different for each test: tests run in random order, and one test's audio
    must not be the other's cache hit."""
    return " ".join(f"This is sentence number {n} of a long {door} answer, and it goes on for a while." for n in range(5))


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[AgentProcess]:
    process = http_agent(tmp_path_factory.mktemp("first-audio"), broker).start()
    process.wait_log("ready")
    yield process
    process.stop()


def order_of(probe: Probe, topic: str, request_id: str | None = None) -> int:
    with probe._lock:
        for index, (seen, payload, _) in enumerate(probe.seen):
            if seen == topic and (request_id is None or json.loads(payload)["data"]["id"] == request_id):
                return index
    raise AssertionError(f"nothing on {topic}")


def test_mqtt_streaming_publishes_the_first_sentence_before_the_request_finishes(agent: AgentProcess, probe: Probe) -> None:
    answer = probe.request("default", "speak", {"id": "first-mqtt", "text": long_text("MQTT"), "stream": True})
    # six pieces (the first sentence cut at its comma, tests/agent/speak/test_text.py), a chunk each at
    # least: Piper's chunked decode adds one for a piece whose first run is cut (providers/piper/chunked.py)
    assert answer["status"] == "ok" and answer["data"]["chunks"] >= 6, answer
    probe.event("default", "speak.finished", "first-mqtt")
    first = order_of(probe, f"{BASE}/default/audio/first-mqtt/0")
    finished = order_of(probe, f"{BASE}/default/event/speak.finished", "first-mqtt")
    assert first < finished


def test_http_delivers_its_first_bytes_before_the_request_finishes(agent: AgentProcess, probe: Probe) -> None:
    with requests.post(f"{agent.http}/api/tts", json={"id": "first-http", "text": long_text("HTTP")},  # type: ignore[attr-defined]
                       stream=True, timeout=120) as response:
        assert response.status_code == 200, response.text
        chunks = response.iter_content(chunk_size=None)
        head = next(chunks)
        with probe._lock:
            finished_yet = any(t == f"{BASE}/default/event/speak.finished" and b"first-http" in p for t, p, _ in probe.seen)
        body = head + b"".join(chunks)
    assert not finished_yet, "the first bytes came only after the agent had finished the request"
    assert response.headers["X-Provider"] == "piper" and "Content-Length" not in response.headers
    assert body[:4] == b"RIFF" and struct.unpack("<I", body[40:44])[0] == 0xFFFFFFFF
    pcm = body[44:]
    event = probe.event("default", "speak.finished", "first-http")
    assert len(pcm) / 2 / 22050 == pytest.approx(event["data"]["audio_seconds"], abs=0.01)
    with wave.open(io.BytesIO(body)) as wav:  # an ordinary WAV reader takes it (its length read to the end)
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (22050, 1, 2)
