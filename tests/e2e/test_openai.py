"""The OpenAI-compatible door end to end: a real agent, the official ``openai`` client from PyPI.

Every format is decoded (soundfile; ``pcm`` as raw 24 kHz samples) and its rate and length checked
against the same words as WAV; streaming is read as it comes; refusals are OpenAI's error shape."""

from __future__ import annotations

import base64
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
import requests
import soundfile

from tests.conftest import AgentProcess, Probe, make_home, write_json
from tests.mosquitto import Mosquitto, free_port

pytestmark = pytest.mark.slow

BASE = "openai-e2e"
TOKEN = "openai-door-secret-0123456789"
SENTENCES = "The first sentence is here. Then a second one follows. A third ends the text."


def start_agent(root: Path, broker: Mosquitto, **env: str) -> tuple[AgentProcess, str]:
    home = make_home(root, profiles=("default", "kitchen"))
    # kitchen: alloy is the default voice by name (the table is read)
    write_json(home / "profiles" / "kitchen" / "etc" / "voice.json", {
        **json.loads((home / "profiles" / "kitchen" / "etc" / "voice.json").read_text()),
        "openai": {"voices": {"alloy": "piper:en_US-joe-medium"}}})
    port = free_port()
    agent = AgentProcess(home, broker.port, {"VOICE_AGENT_BASE_TOPIC": BASE, "VOICE_AGENT_HTTP_ENABLED": "true",
                                             "VOICE_AGENT_HTTP_PORT": str(port), **env}).start()
    agent.wait_log("ready")
    return agent, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[str]:
    agent, url = start_agent(tmp_path_factory.mktemp("openai"), broker)
    yield url
    agent.stop()


def client(url: str, key: str = "any-key-on-loopback") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


def decoded(data: bytes, fmt: str) -> tuple[np.ndarray, int]:
    if fmt == "pcm":
        return np.frombuffer(data, dtype="<i2"), 24000
    with soundfile.SoundFile(io.BytesIO(data)) as f:
        return np.concatenate([*f.blocks(blocksize=8192, dtype="int16")]), f.samplerate


def test_every_format_decodes_to_the_same_speech(door: str) -> None:
    text = "Every format says this."
    wav = client(door).audio.speech.create(model="tts-1", voice="alloy", input=text, response_format="wav").content
    reference, rate = decoded(wav, "wav")
    assert rate == 22050 and len(reference) / rate > 0.5
    seconds = len(reference) / rate
    for fmt, wanted_rate in (("mp3", 22050), ("opus", 24000), ("flac", 22050), ("pcm", 24000)):
        body = client(door).audio.speech.create(model="tts-1", voice="alloy", input=text,
                                                response_format=fmt).content  # type: ignore[arg-type]
        samples, got_rate = decoded(body, fmt)
        assert got_rate == wanted_rate, fmt
        # the same words: the length within an MP3 encoder's delay and padding (~0.1 s)
        assert abs(len(samples) / got_rate - seconds) < 0.15, (fmt, len(samples) / got_rate, seconds)
        assert np.sqrt(np.mean((samples / 32768.0) ** 2)) > 0.02, fmt
    default = client(door).audio.speech.create(model="tts-1", voice="alloy", input=text)  # mp3 when none is named
    assert default.response.headers["content-type"] == "audio/mpeg"
    assert default.content[:2] == b"\xff\xf3"  # an MPEG-2 layer III frame


def test_streamed_chunks_come_before_the_speech_is_finished(door: str, probe: Probe) -> None:
    text = f"{SENTENCES} {uuid.uuid4().hex[:6]}."  # never from the cache
    after = probe.mark()
    finished_topic = f"{BASE}/default/event/speak.finished"
    parts: list[bytes] = []
    finished_at_first: bool | None = None
    with client(door).audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=text, response_format="pcm") as response:
        for chunk in response.iter_bytes():
            if finished_at_first is None:  # had the agent said it was done when the first bytes came?
                finished_at_first = any(topic == finished_topic for topic, _, _ in probe.seen[after:])
            parts.append(chunk)
    finished = probe.event("default", "speak.finished", after=after)
    assert finished["data"]["audio_topic"] == "openai" and finished["data"]["chunks"] >= 3
    # the first bytes came before the speech was finished: its event leaves after the last of three
    # sentences is made, the first bytes after the first one
    assert finished_at_first is False and len(parts) > 1
    samples = np.frombuffer(b"".join(parts), dtype="<i2")
    assert len(samples) / 24000 > 2.0


def test_server_sent_events(door: str) -> None:
    answer = requests.post(f"{door}/v1/audio/speech", headers={"Authorization": "Bearer x"}, stream=True, timeout=60,
                           json={"model": "tts-1", "voice": "echo", "input": SENTENCES, "response_format": "pcm",
                                 "stream_format": "sse"})
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in answer.iter_lines(decode_unicode=True) if str(line).startswith("data: ")]
    assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1) and len(events) > 2
    assert events[-1] == {"type": "speech.audio.done",
                          "usage": {"input_tokens": len(SENTENCES), "output_tokens": 0, "total_tokens": len(SENTENCES)}}
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert len(pcm) / 2 / 24000 > 2.0


def test_models_and_voices(door: str) -> None:
    models = [m.id for m in client(door).models.list()]
    assert {"tts-1", "tts-1-hd", "gpt-4o-mini-tts", "piper", "kokoro"} <= set(models)
    voices = requests.get(f"{door}/v1/audio/voices?profile=kitchen", timeout=30).json()["voices"]
    ids = [v["id"] for v in voices]
    assert "kitchen/alloy" in ids and "kitchen/shimmer" in ids and "kitchen/piper:en_US-joe-medium" in ids
    assert {v["id"]: v["name"] for v in voices}["kitchen/alloy"] == "alloy: piper:en_US-joe-medium"


def test_voice_names_map_through_the_profile_table(door: str, probe: Probe) -> None:
    after = probe.mark()
    client(door).audio.speech.create(model="piper", voice="kitchen/alloy", input="The kitchen speaks.",
                                     response_format="wav")
    spoke = probe.event("kitchen", "speak.finished", after=after)["data"]
    assert (spoke["provider"], spoke["voice"]) == ("piper", "en_US-joe-medium")
    with pytest.raises(openai.NotFoundError) as missing:  # a voice nobody has, by the agent's own name
        client(door).audio.speech.create(model="tts-1", voice="kitchen/piper:nobody_here", input="Nobody.")
    assert missing.value.body["code"] == "voice_not_found"  # type: ignore[index]
    # and the table cannot be given one: config.set says which entry, with the closest name
    refused = probe.request("kitchen", "config.set", {"changes": {"openai": {"voices": {"nova": "piper:en_US-joe-medum"}}}})
    assert refused["status"] == "error" and refused["code"] == "voice_not_found", refused
    assert "openai.voices.nova" in json.dumps(refused) and "en_US-joe-medium" in refused["error"]


@pytest.mark.parametrize(
    ("fields", "status", "code", "param"),
    [
        ({"voice": "piper:no_such_voice"}, 404, "voice_not_found", None),
        ({"input": "word " * 900}, 400, "invalid_payload", "input"),
        ({"response_format": "aac"}, 400, "unsupported_format", None),
        ({"response_format": "ogg"}, 400, "unsupported_format", None),
        ({"model": "whisper-1"}, 400, "unknown_model", "model"),
        ({"speed": 3.0}, 400, "invalid_payload", "speed"),
        ({"voice": "nobody/alloy"}, 404, "unknown_profile", None),
    ],
)
def test_refusals_in_openai_shape(door: str, fields: dict[str, Any], status: int, code: str, param: str | None) -> None:
    body = {"model": "tts-1", "voice": "alloy", "input": "Refused.", **fields}
    answer = requests.post(f"{door}/v1/audio/speech", json=body, headers={"Authorization": "Bearer x"}, timeout=60)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["param"], error["type"]) == (code, param, "invalid_request_error" if status == 400 else "not_found_error")
    assert error["message"]


def test_a_token_is_required_when_set(tmp_path: Path, broker: Mosquitto) -> None:
    agent, url = start_agent(tmp_path, broker, VOICE_AGENT_HTTP_TOKEN=TOKEN)
    try:
        with pytest.raises(openai.AuthenticationError) as refused:
            client(url, "wrong-key").audio.speech.create(model="tts-1", voice="alloy", input="No.")
        assert refused.value.status_code == 401 and refused.value.body["code"] == "unauthorized"  # type: ignore[index]
        spoken = client(url, TOKEN).audio.speech.create(model="tts-1", voice="alloy", input="Yes.", response_format="wav")
        assert decoded(spoken.content, "wav")[1] == 22050
    finally:
        agent.stop()
