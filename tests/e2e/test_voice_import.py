"""Importing voices through the running agent: a zip uploaded over HTTP is spoken with at once,
a second upload of the same name is voice_exists until replaced, a zip slip is refused and leaves
nothing (not even the upload); the CLI imports into the household on the disk alone; over MQTT a
path outside the home is forbidden."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.audio_checks import assert_speech
from tests.conftest import AgentProcess, Probe
from tests.e2e.test_http import http_agent, url
from tests.mosquitto import Mosquitto
from providers.piper.engine import bundled_voice

pytestmark = pytest.mark.slow

NAME = "en_US-imported-medium"
BASE = "import-e2e"  # the probe fixture's base topic


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[AgentProcess]:
    process = http_agent(tmp_path_factory.mktemp("imports"), broker, VOICE_AGENT_BASE_TOPIC=BASE).start()
    process.wait_log("ready")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def voice_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled joe voice's real files under another name, in a folder, as a zip."""
    path = tmp_path_factory.mktemp("zips") / "My voice (Piper).zip"
    model = bundled_voice()
    with zipfile.ZipFile(path, "w") as archive:  # stored: the test does not wait for deflate
        archive.write(model, f"piper/{NAME}.onnx")
        archive.write(f"{model}.json", f"piper/{NAME}.onnx.json")
    return path


def upload(agent: AgentProcess, path: Path, profile: str = "kitchen", **fields: str) -> requests.Response:
    with open(path, "rb") as handle:
        return requests.post(url(agent, f"/api/profiles/{profile}/voices/import"),
                             files={"file": (path.name, handle)}, data=fields, timeout=120)


def speak(agent: AgentProcess, voice: str, profile: str) -> requests.Response:
    return requests.post(url(agent, "/api/tts"), json={"text": "The imported voice speaks.", "provider": "piper",
                                                        "voice": voice, "profile": profile}, timeout=120)


def test_an_uploaded_zip_is_spoken_with_at_once(agent: AgentProcess, voice_zip: Path) -> None:
    answer = upload(agent, voice_zip)
    assert answer.status_code == 200, answer.text
    installed = answer.json()["data"]["installed"]
    assert [(v["provider"], v["name"]) for v in installed] == [("piper", NAME)]
    assert Path(installed[0]["files"][0]) == agent.home / "profiles" / "kitchen" / "out" / "voices" / f"{NAME}.onnx"
    spoken = speak(agent, NAME, "kitchen")
    assert spoken.status_code == 200, spoken.text
    assert (spoken.headers["X-Voice"], spoken.headers["X-Fallback"]) == (NAME, "false")
    assert_speech(spoken.content, min_seconds=0.5)
    listed = requests.get(url(agent, "/api/voices?profile=kitchen"), timeout=60).json()["voices"]
    assert any(v["name"] == NAME and v["installed"] for v in listed)

    again = upload(agent, voice_zip)
    assert (again.status_code, again.json()["code"]) == (409, "voice_exists"), again.text
    replaced = upload(agent, voice_zip, replace="true")
    assert replaced.status_code == 200, replaced.text
    assert list((agent.home / "out" / "uploads").iterdir()) == []


def test_a_zip_slip_upload_is_refused_and_leaves_nothing(agent: AgentProcess, tmp_path: Path) -> None:
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../../../../etc/voice.json", b"{}")
        archive.writestr("x.onnx.json", b"{}")
    before = (agent.home / "etc" / "voice.json").read_bytes()
    answer = upload(agent, evil, profile="default", scope="household")
    assert (answer.status_code, answer.json()["code"]) == (400, "archive_unsafe"), answer.text
    assert (agent.home / "etc" / "voice.json").read_bytes() == before
    household = agent.home / "out" / "voices"
    assert not household.exists() or not any(p.name.startswith(".import-") for p in household.iterdir())
    assert list((agent.home / "out" / "uploads").iterdir()) == []


def test_an_upload_without_a_file_or_of_a_renamed_file_is_refused(agent: AgentProcess, tmp_path: Path) -> None:
    answer = requests.post(url(agent, "/api/profiles/kitchen/voices/import"), files={"name": (None, "x")}, timeout=60)
    assert (answer.status_code, answer.json()["code"]) == (400, "invalid_payload"), answer.text
    fake = tmp_path / "af_fake.npy"
    fake.write_bytes(b"<html>Not Found</html>")
    answer = upload(agent, fake)
    assert (answer.status_code, answer.json()["code"]) == (400, "not_a_voice"), answer.text


def test_the_cli_imports_into_the_household_without_the_agent(agent: AgentProcess, voice_zip: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "agent", "voices", "import", str(voice_zip), "--household", "--name", "en_US-cli-medium"],
        env={**agent.env}, cwd=agent.home, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "imported piper voice en_US-cli-medium" in result.stdout
    spoken = speak(agent, "en_US-cli-medium", "default")  # a household voice: every profile has it
    assert (spoken.status_code, spoken.headers.get("X-Voice"), spoken.headers.get("X-Fallback")) == (200, "en_US-cli-medium", "false")
    twice = subprocess.run(
        [sys.executable, "-m", "agent", "voices", "import", str(voice_zip), "--household", "--name", "en_US-cli-medium"],
        env={**agent.env}, cwd=agent.home, capture_output=True, text=True, timeout=120,
    )
    assert twice.returncode == 1 and "(voice_exists)" in twice.stderr


def test_over_mqtt_a_path_outside_the_home_is_forbidden(agent: AgentProcess, probe: Probe, voice_zip: Path) -> None:
    outside = probe.request("default", "voices.import", {"path": str(voice_zip)})
    assert (outside["status"], outside["code"]) == ("error", "forbidden"), outside
    (agent.home / "profiles" / "default" / "incoming.zip").write_bytes(voice_zip.read_bytes())
    answer = probe.request("default", "voices.import", {"path": "incoming.zip", "name": "en_US-mqtt-medium"}, timeout=120)
    assert answer["status"] == "ok", answer
    assert [v["name"] for v in answer["data"]["installed"]] == ["en_US-mqtt-medium"]
    event = probe.event("default", "voices.imported")["data"]
    assert (event["name"], event["scope"]) == ("en_US-mqtt-medium", "profile")
