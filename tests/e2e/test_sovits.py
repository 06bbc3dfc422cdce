"""GPT-SoVITS end to end: the real agent starts the (fake) GPT-SoVITS server as its child,
speaks through it over MQTT, restarts it when it dies, falls back to Piper when it is down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.audio_checks import assert_speech
from tests.conftest import AgentProcess, Probe, make_home, write_json
from tests.fake_sovits import FakeOptions, FakeSovits
from tests.mosquitto import Mosquitto, free_port
from tests.providers.sovits.conftest import write_reference

pytestmark = pytest.mark.slow

BASE = "sovits"
TESTS = Path(__file__).resolve().parents[1]


def sovits_settings(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "serverUrl": f"http://127.0.0.1:{port}",
        "installDir": str(TESTS),
        "python": sys.executable,
        "serverArgs": ["fake_sovits.py", "-a", "{host}", "-p", "{port}", "-c", "GPT_SoVITS/configs/tts_infer.yaml"],
        "autoStart": True,
        "textLang": "en",
        "promptLang": "en",
        **extra,
    }


def sovits_home(root: Path, port: int, slow_url: str = "http://127.0.0.1:9") -> Path:
    home = make_home(root, profiles=("default", "kitchen", "slow"))
    write_json(home / "profiles" / "default" / "etc" / "voice.json", {"tts": {"provider": "sovits", "sovits": sovits_settings(port)}})
    write_json(
        home / "profiles" / "kitchen" / "etc" / "voice.json",
        {"tts": {"provider": "sovits", "sovits": sovits_settings(port, speakerId="nobody", autoFallbackToPiper=False)}},
    )
    write_json(home / "profiles" / "slow" / "etc" / "voice.json", {"tts": {"provider": "sovits", "sovits": {"serverUrl": slow_url}}})
    for profile in ("default", "slow"):
        write_reference(home / "profiles" / profile / "out" / "voices" / "sovits-reference" / "default")
    return home


def wait_until(what: str, check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.1)


def alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text().lower()


@pytest.fixture(scope="module")
def slow_server() -> Iterator[FakeSovits]:
    """Another GPT-SoVITS, outside the agent's care, that takes its time."""
    server = FakeSovits(FakeOptions(delay=3.0)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto, slow_server: FakeSovits) -> Iterator[AgentProcess]:
    port = free_port()
    home = sovits_home(tmp_path_factory.mktemp("sovits-home"), port, slow_server.url)
    process = AgentProcess(home, broker.port, {"VOICE_AGENT_BASE_TOPIC": BASE}).start()
    process.wait_log("ready")
    yield process
    process.stop()


def server(probe: Probe, profile: str = "default") -> dict[str, Any]:
    response = probe.request(profile, "sovits.status", {})
    assert response["status"] == "ok", response
    return response["data"]["server"]  # type: ignore[no-any-return]


def test_selected_provider_starts_the_server(agent: AgentProcess, probe: Probe) -> None:
    wait_until("the server runs", lambda: server(probe)["state"] == "running")
    status = server(probe)
    assert status["pid"] and alive(status["pid"])
    assert status["log"] == str(agent.home / "logs" / "run" / "sovits-server.log")


def test_speak_plain_and_streamed(agent: AgentProcess, probe: Probe) -> None:
    wait_until("the server runs", lambda: server(probe)["state"] == "running")
    plain = probe.request("default", "speak", {"id": "sv-plain", "text": "Hello from my own voice."})
    assert plain["status"] == "ok", plain
    assert (plain["data"]["provider"], plain["data"]["voice"], plain["data"]["fallback"]) == ("sovits", "default", False)
    seconds = assert_speech(probe.wait_topic(f"{BASE}/default/audio/sv-plain"), min_seconds=1.0, rate=32000)
    assert plain["data"]["audio_seconds"] == pytest.approx(seconds, abs=0.01)

    text = "The first sentence is here. Then comes a second one! And is this the third?"
    streamed = probe.request("default", "speak", {"id": "sv-stream", "text": text, "stream": True})
    assert streamed["status"] == "ok", streamed
    assert streamed["data"]["chunks"] == 3
    total = sum(assert_speech(probe.wait_topic(f"{BASE}/default/audio/sv-stream/{seq}"), rate=32000) for seq in range(3))
    assert total == pytest.approx(streamed["data"]["audio_seconds"], abs=0.01)


def test_cache_follows_the_reference(agent: AgentProcess, probe: Probe) -> None:
    wait_until("the server runs", lambda: server(probe)["state"] == "running")
    text = "Cache me if you can."
    assert probe.request("default", "speak", {"text": text})["data"]["cached"] is False
    assert probe.request("default", "speak", {"text": text})["data"]["cached"] is True
    transcript = next((agent.home / "profiles" / "default" / "out" / "voices" / "sovits-reference" / "default").glob("*.txt"))
    transcript.write_text("A different transcript of the same sample.", encoding="utf-8")
    assert probe.request("default", "speak", {"text": text})["data"]["cached"] is False


def test_dead_server_is_restarted(agent: AgentProcess, probe: Probe) -> None:
    wait_until("the server runs", lambda: server(probe)["state"] == "running")
    before = server(probe)
    mark = probe.mark()  # the "running" event of the test before may still be on its way
    os.kill(before["pid"], signal.SIGKILL)

    topic = f"{BASE}/default/event/sovits.server"
    restarting = json.loads(probe.wait_for(
        lambda t, p: t == topic and json.loads(p)["data"]["state"] != "running", timeout=30, after=mark)[1])["data"]
    assert restarting["state"] == "restarting" and "exited with code -9" in restarting["error"]
    wait_until("the server runs again", lambda: server(probe)["state"] == "running")
    after = server(probe)
    assert after["restarts"] == before["restarts"] + 1 and after["pid"] != before["pid"]
    response = probe.request("default", "speak", {"text": "I am back."})
    assert response["data"]["provider"] == "sovits" and response["data"]["fallback"] is False


def test_server_down_falls_back_to_piper(agent: AgentProcess, probe: Probe) -> None:
    wait_until("the server runs", lambda: server(probe)["state"] == "running")
    stopped = probe.request("default", "sovits.stop", {})
    assert stopped["status"] == "ok" and stopped["data"]["server"]["state"] == "stopped"

    response = probe.request("default", "speak", {"id": "sv-down", "text": "Piper speaks for me now."})
    assert response["status"] == "ok", response
    assert response["data"]["provider"] == "piper" and response["data"]["fallback"] is True
    reason = probe.event("default", "provider.fallback", "sv-down")["data"]
    assert reason["from"] == "sovits" and "was stopped (voice-agent sovits stop)" in reason["reason"]
    assert_speech(probe.wait_topic(f"{BASE}/default/audio/sv-down"))

    logs = probe.request("default", "sovits.logs", {"lines": 200})
    assert any("Uvicorn running on" in line for line in logs["data"]["lines"])
    assert any("Shutting down" in line for line in logs["data"]["lines"])

    started = probe.request("default", "sovits.start", {})
    assert started["status"] == "ok" and started["data"]["server"]["state"] == "running"
    assert probe.request("default", "speak", {"text": "Myself again."})["data"]["provider"] == "sovits"


def test_a_slow_server_does_not_hold_up_other_profiles(agent: AgentProcess, probe: Probe, slow_server: FakeSovits) -> None:
    probe.publish(f"{BASE}/slow/request/speak", json.dumps({"id": "sv-slow", "text": "I take my time."}))
    quick = probe.request("default", "speak", {"id": "sv-quick", "text": "Meanwhile, in the kitchen.", "provider": "piper"})
    assert quick["status"] == "ok"
    assert not probe.responses("slow", "speak"), "the slow profile answered first"
    slow = json.loads(probe.wait_for(lambda t, p: t == f"{BASE}/slow/response/speak", timeout=30)[1])
    assert slow["status"] == "ok" and slow["data"]["provider"] == "sovits"
    assert slow_server.requests[-1]["text"] == "I take my time."


def test_no_reference_is_a_clear_error(agent: AgentProcess, probe: Probe) -> None:
    response = probe.request("kitchen", "speak", {"id": "sv-noref", "text": "Who am I?"})

    assert response["status"] == "error" and response["code"] == "voice_not_found"
    folder = agent.home / "profiles" / "kitchen" / "out" / "voices" / "sovits-reference" / "nobody"
    assert "no reference audio for GPT-SoVITS speaker 'nobody'" in response["error"] and str(folder) in response["error"]
    failed = probe.event("kitchen", "speak.failed", "sv-noref")["data"]
    assert failed["provider"] == "sovits" and failed["code"] == "voice_not_found"


def test_cli_talks_to_the_agent(agent: AgentProcess) -> None:
    env = {**agent.env, "VOICE_AGENT_MQTT_CLIENT_ID": "sovits-cli"}
    status = subprocess.run([sys.executable, "-m", "agent", "sovits", "status"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("running: http://127.0.0.1:") and "pid" in status.stdout

    logs = subprocess.run([sys.executable, "-m", "agent", "sovits", "logs", "-n", "500"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert logs.returncode == 0 and "Uvicorn running on" in logs.stdout


def test_agent_stop_stops_the_server(tmp_path: Path, broker: Mosquitto) -> None:
    home = sovits_home(tmp_path, free_port())
    process = AgentProcess(home, broker.port, {"VOICE_AGENT_BASE_TOPIC": "sovits-stop"}).start()
    try:
        process.wait_log("ready")
        client = Probe(broker.port, base="sovits-stop")
        try:
            response = client.request("default", "sovits.start", {})
        finally:
            client.close()
        assert response["status"] == "ok", response
        pid = response["data"]["server"]["pid"]
        assert alive(pid)
    finally:
        assert process.stop() == 0
    wait_until("the server is gone", lambda: not alive(pid), timeout=15)
