"""Compressed audio on every door, end to end (a real agent, Mosquitto, Piper): an MQTT speak in
mp3 publishes one MP3 per sentence, each decodable alone, and a cache hit in mp3 is one MP3;
``POST /api/tts`` with ``Accept: audio/ogg`` streams Ogg/Opus; the WebSocket in flac sends one FLAC
per sentence. Every answer is decoded (soundfile) and its rate and length checked against the
same words as WAV; every answer says its ``format`` and ``content_type``."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import numpy as np
import pytest
import requests
import soundfile
from websockets.sync.client import connect

from tests.conftest import AgentProcess, Probe
from tests.e2e.test_http import http_agent
from tests.mosquitto import Mosquitto

pytestmark = pytest.mark.slow

BASE = "http-e2e"  # the probe's base topic: the one ``http_agent`` gives its agent
TEXT = "The first sentence is here. A second one follows it."
LENGTH_SLACK = 0.15  # seconds: an MP3 encoder's delay and padding, Opus's pre-skip, per file


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[AgentProcess]:
    process = http_agent(tmp_path_factory.mktemp("formats"), broker).start()
    process.wait_log("ready")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def wav_seconds(agent: AgentProcess) -> float:
    """TEXT's length as the agent says it in WAV (a whole answer: it is cached for the rest)."""
    response = requests.post(f"{agent.http}/api/tts", json={"text": TEXT, "stream": False}, timeout=120)  # type: ignore[attr-defined]
    assert response.status_code == 200 and response.headers["Content-Type"] == "audio/wav", response.text
    samples, rate = decoded(response.content, "WAV")
    assert rate == 22050
    return len(samples) / rate


def decoded(data: bytes, kind: str) -> tuple[np.ndarray, int]:
    assert soundfile.info(io.BytesIO(data)).format == kind
    with soundfile.SoundFile(io.BytesIO(data)) as f:
        return np.concatenate([*f.blocks(blocksize=8192, dtype="int16")]), f.samplerate


def messages(probe: Probe, request_id: str) -> list[bytes]:
    prefix = f"{BASE}/default/audio/{request_id}"
    with probe._lock:
        found = {t: p for t, p, _ in probe.seen if t == prefix or t.startswith(prefix + "/")}
    return [found[t] for t in sorted(found, key=lambda t: int(t.rsplit("/", 1)[1]) if t != prefix else -1)]


def test_mqtt_speak_in_mp3_is_one_mp3_per_sentence_and_a_hit_is_one_mp3(agent: AgentProcess, probe: Probe) -> None:
    text = "Over MQTT this first sentence is spoken. Then the second sentence comes."
    answer = probe.request("default", "speak", {"id": "fmt-mp3", "text": text, "stream": True, "format": "mp3"},
                           timeout=120)
    assert answer["status"] == "ok", answer
    data = answer["data"]
    assert (data["format"], data["content_type"], data["cached"]) == ("mp3", "audio/mpeg", False)
    finished = probe.event("default", "speak.finished", "fmt-mp3")["data"]
    assert (finished["format"], finished["content_type"]) == ("mp3", "audio/mpeg")
    sentences = messages(probe, "fmt-mp3")
    assert len(sentences) == data["chunks"] in (2, 3)  # the first sentence may come in two parts (README "First audio")
    total = 0.0
    for payload in sentences:  # each message a file of its own
        samples, rate = decoded(payload, "MP3")
        assert rate == 22050 and np.sqrt(np.mean((samples / 32768.0) ** 2)) > 0.02
        total += len(samples) / rate
    assert abs(total - data["audio_seconds"]) < 2 * LENGTH_SLACK, (total, data["audio_seconds"])

    hit = probe.request("default", "speak", {"id": "fmt-mp3-hit", "text": text, "stream": True, "format": "mp3"},
                        timeout=60)["data"]
    assert (hit["cached"], hit["format"]) == (True, "mp3")
    (whole,) = messages(probe, "fmt-mp3-hit")
    samples, rate = decoded(whole, "MP3")
    assert rate == 22050 and abs(len(samples) / rate - data["audio_seconds"]) < LENGTH_SLACK
    again = probe.request("default", "speak", {"id": "fmt-mp3-hit2", "text": text, "stream": True, "format": "mp3"},
                          timeout=60)["data"]
    assert again["cached"] and messages(probe, "fmt-mp3-hit2") == [whole]  # the cache's copy, byte for byte

    as_wav = probe.request("default", "speak", {"id": "fmt-wav", "text": text}, timeout=60)["data"]
    assert (as_wav["format"], as_wav["content_type"], as_wav["cached"]) == ("wav", "audio/wav", True)
    reference, rate = decoded(messages(probe, "fmt-wav")[0], "WAV")
    assert rate == 22050 and abs(len(reference) / rate - total) < 2 * LENGTH_SLACK


def test_http_with_accept_ogg_streams_opus(agent: AgentProcess, wav_seconds: float) -> None:
    text = "Streamed as Opus, this sentence comes first. The second follows it."
    with requests.post(f"{agent.http}/api/tts", json={"text": text}, headers={"Accept": "audio/ogg"},  # type: ignore[attr-defined]
                       stream=True, timeout=120) as response:
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "audio/ogg" and "Content-Length" not in response.headers
        body = b"".join(response.iter_content(chunk_size=None))
    samples, rate = decoded(body, "OGG")
    assert rate == 24000 and len(samples) / rate > 1.0
    cached = requests.post(f"{agent.http}/api/tts", json={"text": TEXT}, headers={"Accept": "audio/ogg"},  # type: ignore[attr-defined]
                           timeout=60)
    assert cached.headers["X-Cached"] == "true" and cached.headers["Content-Type"] == "audio/ogg"
    samples, rate = decoded(cached.content, "OGG")
    assert rate == 24000 and abs(len(samples) / rate - wav_seconds) < LENGTH_SLACK
    refused = requests.post(f"{agent.http}/api/tts", json={"text": TEXT}, headers={"Accept": "audio/aac"},  # type: ignore[attr-defined]
                            timeout=30)
    assert (refused.status_code, refused.json()["code"]) == (400, "unsupported_format")


def test_the_websocket_in_flac_sends_one_flac_per_sentence(agent: AgentProcess) -> None:
    port = agent.http.rsplit(":", 1)[1]  # type: ignore[attr-defined]
    text = TEXT.replace("first", "very first")  # new words: spoken now, not the cache's
    with connect(f"ws://127.0.0.1:{port}/api/tts-stream", open_timeout=10) as ws:
        ws.send(json.dumps({"id": "ws-flac", "text": text, "format": "flac"}))
        frames: list[bytes] = []
        while isinstance(frame := ws.recv(timeout=120), bytes):
            frames.append(frame)
        done = json.loads(frame)
        ws.send(json.dumps({"id": "ws-bad", "text": TEXT, "format": "aac"}))
        refused = json.loads(ws.recv(timeout=30))
    assert (done["done"], done["format"], done["content_type"], done["chunks"], done["cached"]) == (
        True, "flac", "audio/flac", len(frames), False)
    assert len(frames) in (2, 3)  # the first sentence may come in two parts (README "First audio")
    parts = []
    for frame in frames:
        samples, rate = decoded(frame, "FLAC")
        assert rate == 22050
        parts.append(samples)
    heard = np.concatenate(parts)
    assert len(heard) / 22050 == pytest.approx(done["audio_seconds"], abs=0.01)
    # Piper's durations vary from one synthesis to the next; the cache keeps this one's WAV
    as_wav = requests.post(f"{agent.http}/api/tts", json={"text": text, "stream": False}, timeout=60)  # type: ignore[attr-defined]
    assert as_wav.headers["X-Cached"] == "true"
    reference, _ = decoded(as_wav.content, "WAV")
    assert np.array_equal(heard, reference)  # FLAC is lossless: the same samples, sentence after sentence
    assert (refused["done"], refused["code"]) == (True, "invalid_payload") and "format" in refused["error"]
