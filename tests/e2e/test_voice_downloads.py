"""Catalog voices downloaded by the running agent from a local mirror (tests/voice_mirror.py):
download -> verify -> speak; truncated and corrupt files refused with nothing left; a broken
download resumed; on demand from a Wyoming synthesize; downloads off said so; the CLI with
progress, through the agent and in the foreground."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
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
from tests.providers.kokoro.models import install_models, prepared_models
from tests.voice_mirror import KOKORO_VOICE, MIRROR_VOICES, VoiceMirror, kokoro_pt

BASE = "voice"
WAIT = "1"  # seconds a speak request waits for its voice's download
BUNDLED = "en_US-joe-medium"  # the profile's own voice (Piper's bundled one): what a fallback speaks with
ALIAS = "en-us-mirror6-medium"  # a catalog alias of MIRROR_VOICES[5], as wyoming-piper's older names are
BLEND = "af_bella:0.6,af_sky:0.4"  # two catalog Kokoro voices that no other test installs


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
        mirror.catalog[MIRROR_VOICES[5]]["aliases"] = [ALIAS]
        mirror.files["voices.json"] = json.dumps(mirror.catalog).encode()
        for name in ("af_bella", "af_sky"):
            mirror.files[f"kokoro/voices/{name}.pt"] = kokoro_pt("jf_gongitsune")
        home = make_home(tmp_path_factory.mktemp("home"), profiles=("default", "kitchen"))
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
    """The first synthesize outwaits the download (the mirror stalls): the profile's own voice says
    it, and the log says why; once the voice is in, a synthesize is said by it."""
    name = MIRROR_VOICES[1]
    rig.mirror.faults.stall[f"{name}.onnx"] = 3.0  # longer than the agent waits (WAIT)
    mark = probe.mark()

    async def synthesize() -> bytes:
        async with AsyncTcpClient("127.0.0.1", rig.wyoming) as client:
            await client.write_event(Synthesize(text="Hello there.", voice=SynthesizeVoice(name=f"piper:{name}")).event())
            return (await read_audio(client)).wav

    assert_speech(asyncio.run(synthesize()), min_seconds=0.3)
    first = probe.event("default", "speak.finished", after=mark)["data"]
    assert (first["provider"], first["voice"], first["fallback"], first["fallback_code"]) == (
        "piper", BUNDLED, True, "voice_downloading"), first
    rig.agent.wait_log(f"spoken by piper/{BUNDLED} instead (voice_downloading): piper voice {name!r} is being downloaded")
    assert probe.event("default", "voices.download.finished", after=mark, timeout=120)["data"]["name"] == name
    mark = probe.mark()
    assert_speech(asyncio.run(synthesize()), min_seconds=0.3)
    finished = probe.event("default", "speak.finished", after=mark)["data"]
    assert finished["voice"] == name and not finished["fallback"]
    rig.agent.wait_log(f"loaded Piper voice {name}.onnx")  # the downloaded file, not joe's under another name
    assert AudioStart  # the wyoming client's audio types are what read_audio checked


def test_a_request_that_outwaits_its_download_is_answered_by_piper_saying_why(rig: Rig, probe: Probe) -> None:
    rig.mirror.faults.stall[f"{KOKORO_VOICE}.pt"] = 3.0  # longer than the agent waits (WAIT)
    mark = probe.mark()
    spoken = probe.request("default", "speak", {"text": "Hi.", "provider": "kokoro", "voice": KOKORO_VOICE})
    assert spoken["status"] == "ok" and spoken["data"]["provider"] == "piper"
    assert spoken["data"]["fallback_code"] == "voice_downloading", spoken
    assert probe.event("default", "voices.download.finished", after=mark, timeout=60)["data"]["name"] == KOKORO_VOICE
    assert (rig.voices / "kokoro" / f"{KOKORO_VOICE}.npy").is_file()


def set_voice(probe: Probe, profile: str, tts: dict[str, object]) -> None:
    """``config.set`` (as the page and Home Assistant do), applied."""
    mark = probe.mark()
    answer = probe.request(profile, "config.set", {"changes": {"tts": tts}})
    assert answer["status"] == "ok", answer
    probe.event(profile, "config.reloaded", after=mark, timeout=10)


def test_a_catalog_alias_set_in_voice_json_speaks_after_its_download(rig: Rig, probe: Probe) -> None:
    name = MIRROR_VOICES[5]
    mark = probe.mark()
    set_voice(probe, "kitchen", {"provider": "piper", "piper": {"model": ALIAS}})  # the file keeps the alias
    assert probe.event("kitchen", "voices.download.finished", after=mark, timeout=120)["data"]["name"] == name
    spoken = probe.request("kitchen", "speak", {"text": "Hi."})["data"]
    assert (spoken["provider"], spoken["voice"], spoken["fallback"]) == ("piper", name, False), spoken


def finished_download(profile: str, name: str) -> Callable[[str, bytes], bool]:
    def match(topic: str, payload: bytes) -> bool:
        return topic == f"{BASE}/{profile}/event/voices.download.finished" and json.loads(payload)["data"]["name"] == name

    return match


@pytest.mark.slow
def test_a_catalog_blend_set_in_voice_json_speaks_after_its_downloads(tmp_path_factory: pytest.TempPathFactory,
                                                                      rig: Rig, probe: Probe) -> None:
    install_models(prepared_models(tmp_path_factory), rig.agent.home)  # Kokoro's model (made once per session)
    mark = probe.mark()
    set_voice(probe, "kitchen", {"provider": "kokoro", "kokoro": {"voice": BLEND}})
    for voice in ("af_bella", "af_sky"):  # each part of the blend, in either order
        probe.wait_for(finished_download("kitchen", voice), timeout=60, after=mark)
    spoken = probe.request("kitchen", "speak", {"text": "Hi there."}, timeout=120)["data"]
    assert (spoken["provider"], spoken["voice"], spoken["fallback"]) == ("kokoro", BLEND, False), spoken


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
