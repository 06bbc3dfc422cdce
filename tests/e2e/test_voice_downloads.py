"""Catalog voices downloaded by the running agent from a local mirror (tests/voice_mirror.py):
download -> verify -> speak; truncated and corrupt files refused with nothing left; a broken
download resumed; on demand from a Wyoming synthesize; downloads off said so; the CLI with
progress, through the agent and in the foreground."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from wyoming.audio import AudioStart
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize, SynthesizeVoice

from tests.audio_checks import assert_speech
from tests.conftest import AgentProcess, Probe, make_home
from tests.e2e.test_wyoming import read_audio
from tests.mosquitto import Mosquitto, free_port
from tests.voice_mirror import KOKORO_VOICE, MIRROR_VOICES, VoiceMirror

BASE = "voice"
WAIT = "1"  # seconds a speak request waits for its voice's download


@dataclass
class Rig:
    agent: AgentProcess
    mirror: VoiceMirror
    wyoming: int

    @property
    def voices(self) -> Path:
        return self.agent.home / "out" / "voices"

    def leftovers(self, name: str) -> list[str]:
        return sorted(p.name for p in self.voices.rglob(f"{name}*"))


def mirror_env(mirror: VoiceMirror) -> dict[str, str]:
    return {"VOICE_AGENT_PIPER_VOICES_URL": mirror.piper_url, "VOICE_AGENT_KOKORO_VOICES_URL": mirror.kokoro_url}


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[Rig]:
    with VoiceMirror() as mirror:
        home = make_home(tmp_path_factory.mktemp("home"))
        catalog = home / "out" / "voices" / "catalog" / "piper.json"  # as `voices catalog --update` leaves it
        catalog.parent.mkdir(parents=True)
        catalog.write_bytes(mirror.files["voices.json"])  # type: ignore[arg-type]
        port = free_port()
        agent = AgentProcess(home, broker.port, {**mirror_env(mirror), "VOICE_AGENT_VOICE_DOWNLOAD_WAIT": WAIT,
                                                 "VOICE_AGENT_WYOMING_URI": f"tcp://127.0.0.1:{port}"}).start()
        agent.wait_log("ready", timeout=60)
        yield Rig(agent, mirror, port)
        agent.stop()


@pytest.fixture(autouse=True)
def no_faults(rig: Rig) -> Iterator[None]:
    rig.mirror.faults.clear()
    yield
    rig.mirror.faults.clear()


def test_download_then_verify_then_speak(rig: Rig, probe: Probe) -> None:
    name = MIRROR_VOICES[0]
    mark = probe.mark()
    answer = probe.request("default", "voices.download", {"names": [name]}, timeout=120)
    assert answer["status"] == "ok", answer
    (installed,) = answer["data"]["installed"]
    assert installed["provider"] == "piper" and sorted(Path(f).name for f in installed["files"]) == [
        f"{name}.onnx", f"{name}.onnx.json"]
    assert probe.event("default", "voices.download.started", after=mark)["data"]["total"] > 60_000_000
    progress = probe.event("default", "voices.download.progress", after=mark)["data"]
    assert progress["name"] == name and progress["total"] > 60_000_000
    assert probe.event("default", "voices.download.finished", after=mark)["data"]["name"] == name
    spoken = probe.request("default", "speak", {"text": "Hello.", "voice": name})
    assert spoken["status"] == "ok" and spoken["data"]["voice"] == name and not spoken["data"]["fallback"]
    listed = probe.request("default", "voices", {"provider": "piper", "language": "en_US"})["data"]["voices"]
    assert {v["name"]: v["installed"] for v in listed}[name] is True
    assert rig.leftovers(name) == [f"{name}.onnx", f"{name}.onnx.json"]


@pytest.mark.parametrize("fault", ["truncate", "corrupt"])
def test_a_truncated_or_corrupt_file_is_refused_and_nothing_is_left(rig: Rig, probe: Probe, fault: str) -> None:
    name = MIRROR_VOICES[4]  # never installed by another test
    getattr(rig.mirror.faults, fault).add(f"{name}.onnx")
    answer = probe.request("default", "voices.download", {"names": [name]}, timeout=120)
    assert answer["status"] == "error" and answer["code"] == "voice_download_failed"
    assert rig.mirror.piper_url in answer["error"] and ("truncated" if fault == "truncate" else "MD5") in answer["error"]
    assert rig.leftovers(name) == []


def test_a_broken_download_is_resumed(rig: Rig, probe: Probe) -> None:
    name = MIRROR_VOICES[2]
    rig.mirror.faults.break_after[f"{name}.onnx"] = 20_000_000
    broke = probe.request("default", "voices.download", {"names": [name]}, timeout=120)
    assert broke["code"] == "voice_download_failed" and "resumes" in broke["error"], broke
    assert [p.name for p in rig.voices.rglob(f"{name}*")] == [f"{name}.onnx.part"]
    rig.mirror.requests.clear()
    resumed = probe.request("default", "voices.download", {"names": [name]}, timeout=120)
    assert resumed["status"] == "ok", resumed
    ranges = [r for p, r in rig.mirror.requests if p.endswith(f"{name}.onnx")]
    assert len(ranges) == 1 and ranges[0].startswith("bytes=") and ranges[0] != "bytes=0-"
    assert rig.leftovers(name) == [f"{name}.onnx", f"{name}.onnx.json"]


def test_a_wyoming_synthesize_fetches_its_voice_on_demand(rig: Rig, probe: Probe) -> None:
    name = MIRROR_VOICES[1]
    mark = probe.mark()

    async def synthesize() -> bytes:
        async with AsyncTcpClient("127.0.0.1", rig.wyoming) as client:
            await client.write_event(Synthesize(text="Hello there.", voice=SynthesizeVoice(name=f"piper:{name}")).event())
            return (await read_audio(client)).wav

    first = asyncio.run(synthesize())  # spoken by the new voice, or (downloading) by the fallback: speech either way
    assert_speech(first, min_seconds=0.3)
    assert probe.event("default", "voices.download.finished", after=mark, timeout=120)["data"]["name"] == name
    mark = probe.mark()
    assert_speech(asyncio.run(synthesize()), min_seconds=0.3)
    finished = probe.event("default", "speak.finished", after=mark)["data"]
    assert finished["voice"] == name and not finished["fallback"]
    assert AudioStart  # the wyoming client's audio types are what read_audio checked


def test_a_request_that_outwaits_its_download_is_answered_by_piper_saying_why(rig: Rig, probe: Probe) -> None:
    rig.mirror.faults.stall[f"{KOKORO_VOICE}.pt"] = 3.0  # longer than the agent waits (WAIT)
    mark = probe.mark()
    spoken = probe.request("default", "speak", {"text": "Hi.", "provider": "kokoro", "voice": KOKORO_VOICE})
    assert spoken["status"] == "ok" and spoken["data"]["provider"] == "piper"
    assert spoken["data"]["fallback_code"] == "voice_downloading", spoken
    assert probe.event("default", "voices.download.finished", after=mark, timeout=60)["data"]["name"] == KOKORO_VOICE
    assert (rig.voices / "kokoro" / f"{KOKORO_VOICE}.npy").is_file()


def test_with_downloads_off_the_answer_says_so(tmp_path: Path, broker: Mosquitto, rig: Rig) -> None:
    home = make_home(tmp_path / "home")
    agent = AgentProcess(home, broker.port, {**mirror_env(rig.mirror), "VOICE_AGENT_VOICE_DOWNLOAD_ON_DEMAND": "false",
                                            "VOICE_AGENT_BASE_TOPIC": "offline"}).start()
    try:
        agent.wait_log("ready", timeout=60)
        client = Probe(broker.port, base="offline")
        try:
            spoken = client.request("default", "speak", {"text": "Hi.", "voice": "en_US-lessac-medium"})
        finally:
            client.close()
    finally:
        agent.stop()
    assert spoken["status"] == "ok" and spoken["data"]["fallback_code"] == "downloads_off", spoken
    assert "voice-agent voices download en_US-lessac-medium" in spoken["data"]["fallback_reason"]
    assert not (home / "out" / "voices" / "en_US-lessac-medium.onnx").exists()


def cli(home: Path, port: int, mirror: VoiceMirror, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VOICE_AGENT_HOME": str(home), "VOICE_AGENT_MQTT_PORT": str(port), **mirror_env(mirror)}
    return subprocess.run([sys.executable, "-m", "agent", *args], env=env, capture_output=True, text=True, timeout=120)


def test_the_cli_downloads_through_the_agent_with_progress(rig: Rig) -> None:
    name = MIRROR_VOICES[3]
    result = cli(rig.agent.home, rig.agent.port, rig.mirror, "voices", "download", name)
    assert result.returncode == 0, result.stderr
    assert f"installed piper/{name}" in result.stdout and "100%" in result.stderr
    listed = cli(rig.agent.home, rig.agent.port, rig.mirror, "voices", "--catalog", "--lang", "en", "--provider", "piper")
    lines = {line.split()[1]: line for line in listed.stdout.splitlines()}
    assert "installed" in lines[name] and "MB" in lines["en_US-lessac-medium"]


def test_the_cli_downloads_in_the_foreground_without_an_agent(tmp_path: Path, rig: Rig) -> None:
    home = make_home(tmp_path / "home")
    result = cli(home, 1, rig.mirror, "voices", "download", KOKORO_VOICE)
    assert result.returncode == 0, result.stderr
    assert f"installed kokoro/{KOKORO_VOICE}" in result.stdout and "100%" in result.stderr
    assert (home / "out" / "voices" / "kokoro" / f"{KOKORO_VOICE}.npy").is_file()
    missing = cli(home, 1, rig.mirror, "voices", "download", "en_US-lessac-medum")
    assert missing.returncode == 1 and "did you mean en_US-lessac-medium" in missing.stderr
