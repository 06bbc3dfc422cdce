"""The HTTP and WebSocket door end to end: a real agent, real clients (requests, websockets)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from websockets.sync.client import connect

from tests.audio_checks import FIRST_PART_SECONDS, assert_speech, wav_info
from tests.conftest import AgentProcess, garbled_voicepack, make_home
from tests.mosquitto import Mosquitto, free_port

pytestmark = pytest.mark.slow

TOKEN = "kitchen-secret"


def http_agent(root: Path, broker: Mosquitto, **env: str) -> AgentProcess:
    home = make_home(root, profiles=("default", "kitchen"))
    port = free_port()
    agent = AgentProcess(home, broker.port, {"VOICE_AGENT_BASE_TOPIC": "http-e2e", "VOICE_AGENT_HTTP_ENABLED": "true",
                                             "VOICE_AGENT_HTTP_PORT": str(port), **env})
    agent.http = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    return agent


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[AgentProcess]:
    process = http_agent(tmp_path_factory.mktemp("http"), broker, VOICE_AGENT_QUEUE_DEPTH="1").start()
    process.wait_log("ready")
    yield process
    process.stop()


def url(agent: AgentProcess, path: str) -> str:
    return f"{agent.http}{path}"  # type: ignore[attr-defined]


def test_text_in_wav_out_then_from_the_cache(agent: AgentProcess) -> None:
    body = {"text": "Hello over HTTP.", "profile": "kitchen", "stream": False}  # whole: the summary in its headers
    first = requests.post(url(agent, "/api/tts"), json=body, timeout=60)
    assert first.status_code == 200, first.text
    assert first.headers["Content-Type"] == "audio/wav"
    seconds = assert_speech(first.content, min_seconds=0.5)
    assert (first.headers["X-Provider"], first.headers["X-Voice"], first.headers["X-Cached"]) == ("piper", "en_US-joe-medium", "false")
    assert float(first.headers["X-Audio-Seconds"]) == pytest.approx(seconds, abs=0.01)
    second = requests.post(url(agent, "/api/tts"), json=body, timeout=60)
    assert second.headers["X-Cached"] == "true" and second.content == first.content
    slower = requests.post(url(agent, "/api/tts"), json={**body, "speed": 0.5}, timeout=60)
    assert 1.6 < wav_info(slower.content)[1] / seconds < 2.4


def test_a_failing_provider_falls_back_and_says_so(agent: AgentProcess) -> None:
    garbled_voicepack(agent.home, "default", "garbled_http")  # there by name, but Kokoro cannot read it
    answer = requests.post(url(agent, "/api/tts"), json={"text": "Fall back.", "provider": "kokoro", "voice": "garbled_http"},
                           timeout=60)
    assert answer.status_code == 200 and answer.headers["X-Provider"] == "piper" and answer.headers["X-Fallback"] == "true"
    assert answer.headers["X-Fallback-Reason"] == "provider_error"
    assert_speech(answer.content)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"[1]", 400, "invalid_payload"),
        (json.dumps({"text": "hi", "speed": 9}).encode(), 400, "invalid_payload"),
        (json.dumps({"text": "word " * 1001}).encode(), 400, "text_too_long"),
        (json.dumps({"text": "hi", "profile": "nobody"}).encode(), 404, "unknown_profile"),
        (json.dumps({"text": "hi", "profile": "../etc"}).encode(), 400, "invalid_profile"),
        (json.dumps({"text": "hi", "voice": "no_such_voice"}).encode(), 404, "voice_not_found"),
        (json.dumps({"text": "a" * 70000}).encode(), 413, "payload_too_large"),
    ],
)
def test_errors_are_json_with_the_agents_codes(agent: AgentProcess, body: bytes, status: int, code: str) -> None:
    answer = requests.post(url(agent, "/api/tts"), data=body, headers={"Content-Type": "application/json"}, timeout=60)
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code and answer.json()["error"]


def test_a_flood_is_told_to_wait(agent: AgentProcess) -> None:
    """One request spoken, one waiting (VOICE_AGENT_QUEUE_DEPTH=1): more are answered 429 busy."""
    text = "This sentence keeps the speaker busy for a little while, so that the others have to wait their turn."
    answers: list[requests.Response] = []

    def ask(n: int) -> None:
        answers.append(requests.post(url(agent, "/api/tts"), json={"text": f"{text} {n}"}, timeout=120))

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(a.status_code for a in answers)
    assert 200 in codes and 429 in codes, codes
    assert all(a.json()["code"] == "busy" for a in answers if a.status_code == 429)


def test_voices_and_health(agent: AgentProcess) -> None:
    voices = requests.get(url(agent, "/api/voices"), params={"profile": "kitchen"}, timeout=60).json()
    assert "en_US-joe-medium" in [v["name"] for v in voices["voices"]]
    health = requests.get(url(agent, "/api/health"), timeout=30).json()
    assert health["status"] == "online" and health["profiles"] == ["default", "kitchen"] and health["problems"] == []
    assert "piper" in health["providers_loaded"]
    assert set(health["readiness"]["default"]) == {"kokoro", "sovits", "rvc"}
    assert health["gpu"]["available"] is False


def test_the_stream_sends_one_wav_per_sentence_then_the_summary(agent: AgentProcess) -> None:
    with connect(url(agent, "/api/tts-stream").replace("http", "ws"), open_timeout=10) as ws:
        ws.send(json.dumps({"id": "ws-1", "text": "First sentence. Second sentence! Third one?"}))
        sentences = []
        while True:
            frame = ws.recv(timeout=60)
            if isinstance(frame, bytes):
                sentences.append(assert_speech(frame))
                continue
            done = json.loads(frame)
            break
        assert done["done"] is True and done["id"] == "ws-1" and done["chunks"] == len(sentences)
        assert len(sentences) == 3 or (len(sentences) == 4 and sentences[0] == pytest.approx(FIRST_PART_SECONDS, abs=0.01))
        assert sum(sentences) == pytest.approx(done["audio_seconds"], abs=0.01)
        assert done["audio_topic"] == "websocket" and done["first_audio_ms"] <= done["latency_ms"]
        # a bad request gets its error, and the connection stays usable
        ws.send("{nope")
        assert json.loads(ws.recv(timeout=10))["code"] == "invalid_json"
        ws.send(json.dumps({"text": "hi", "voice": "no_such_voice"}))
        assert json.loads(ws.recv(timeout=30))["code"] == "voice_not_found"
        ws.send(json.dumps({"text": "Still here.", "profile": "kitchen"}))
        parts = []
        while isinstance(frame := ws.recv(timeout=60), bytes):  # the one sentence, in one part or two
            parts.append(wav_info(frame)[1])
        last = json.loads(frame)
        assert last["done"] is True and last["chunks"] == len(parts) and len(parts) in (1, 2)
        assert sum(parts) == pytest.approx(last["audio_seconds"], abs=0.01) and sum(parts) > 0.5


def test_every_command_of_the_table_is_reachable(agent: AgentProcess) -> None:
    base = url(agent, "/api/profiles/kitchen/commands")
    on_disk = (agent.home / "profiles" / "kitchen" / "etc" / "voice.json").read_bytes()
    config = requests.post(f"{base}/config", json={}, timeout=30).json()["data"]["config"]
    assert config["tts"]["provider"] == "piper"
    refused = requests.post(f"{base}/config.set", json={"changes": {"tts": {"piper": {"speakingRate": 7}}}}, timeout=30)
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_config"
    assert refused.json()["data"]["problems"][0]["field"] == "tts.piper.speakingRate"
    assert (agent.home / "profiles" / "kitchen" / "etc" / "voice.json").read_bytes() == on_disk  # a bad change never lands
    assert requests.post(f"{base}/dance", json={}, timeout=30).json()["code"] == "unknown_command"
    assert requests.post(f"{base}/speak", json={"text": "hi"}, timeout=30).status_code == 400


def test_a_token_guards_every_route(tmp_path: Path, broker: Mosquitto) -> None:
    agent = http_agent(tmp_path, broker, VOICE_AGENT_HTTP_TOKEN=TOKEN).start()
    try:
        agent.wait_log("ready")
        assert requests.get(url(agent, "/api/health"), timeout=30).status_code == 401
        wrong = requests.get(url(agent, "/api/health"), headers={"Authorization": "Bearer guess"}, timeout=30)
        assert wrong.status_code == 401 and wrong.json()["code"] == "unauthorized"
        ok = requests.post(url(agent, "/api/tts"), json={"text": "Authorized."}, timeout=60,
                           headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        with connect(url(agent, f"/api/tts-stream?access_token={TOKEN}").replace("http", "ws"), open_timeout=10) as ws:
            ws.send(json.dumps({"text": "Through the socket."}))
            assert_speech(ws.recv(timeout=60))  # type: ignore[arg-type]
    finally:
        agent.stop()


def test_listening_beyond_loopback_needs_a_token(tmp_path: Path, broker: Mosquitto) -> None:
    home = make_home(tmp_path)
    env = {**AgentProcess(home, broker.port).env, "VOICE_AGENT_HTTP_ENABLED": "true", "VOICE_AGENT_HTTP_HOST": "0.0.0.0"}
    done = subprocess.run([sys.executable, "-m", "agent", "run"], env=env, cwd=home, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "VOICE_AGENT_HTTP_TOKEN" in done.stderr


def test_a_taken_port_is_a_clear_error(tmp_path: Path, broker: Mosquitto) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        agent = AgentProcess(make_home(tmp_path), broker.port,
                             {"VOICE_AGENT_HTTP_ENABLED": "true", "VOICE_AGENT_HTTP_PORT": str(port)}).start()
        assert agent.process is not None
        assert agent.process.wait(timeout=60) == 1
    log = agent.log.read_text()
    assert f"the HTTP API cannot listen on 127.0.0.1:{port}" in log and "VOICE_AGENT_HTTP_PORT" in log
