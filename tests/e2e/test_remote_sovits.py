"""GPT-SoVITS speech made by a worker for a profile that lives on another node, through the real
agents and one Mosquitto: node A (home-server) keeps the profile, its reference and transcript;
worker B (gpu-desktop) fetches them by hash and speaks through ITS OWN GPT-SoVITS server
(VOICE_AGENT_SOVITS_URL), never A's. Each server is a FakeSovits that sees only its machine's
files. The audio B makes is the one A makes with its own server; a worker without a server of
its own does not list sovits; B killed (-9): A speaks at once itself, saying why."""

from __future__ import annotations

import io
import signal
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_json
from tests.e2e.household import Household, node_agent, running, wait_nodes
from tests.fake_sovits import FakeOptions, FakeSovits
from tests.providers.sovits.conftest import REFERENCE_TEXT, write_reference

pytestmark = pytest.mark.slow

TIMEOUT = 60
TEXT = "The front door is locked. The lights are off."


def voice(run_on: str, server: str) -> dict[str, Any]:
    return {"tts": {"provider": "sovits", "sovits": {"serverUrl": server, "textLang": "en", "promptLang": "en"}},
            "runOn": {"speak": {"sovits": run_on}}, "cache": {"enabled": False}}


def frames(wav: bytes) -> tuple[int, bytes]:
    with wave.open(io.BytesIO(wav), "rb") as reader:
        return reader.getframerate(), reader.readframes(reader.getnframes())


class SovitsHousehold(Household):
    """A, B and worker C (attic), A and B each with a GPT-SoVITS server of its own, C with none."""

    def __init__(self, root: Path) -> None:
        self.home_server = FakeSovits(FakeOptions(visible_root=root / "a")).start()  # A's own, on A's machine
        self.desk_server = FakeSovits(FakeOptions(visible_root=root / "b")).start()  # B's own
        super().__init__(root, desk_env={"VOICE_AGENT_SOVITS_URL": self.desk_server.url})
        self.attic, _ = node_agent(root / "c", self.broker, "attic", ("attic",), VOICE_AGENT_WORKER="true")
        self.agents.append(self.attic)

    def furnish(self, home: Path) -> None:
        self.reference = write_reference(home / "profiles" / "default" / "out" / "voices" / "sovits-reference" / "default")
        write_json(home / "profiles" / "default" / "etc" / "voice.json", voice("gpu-desktop", self.home_server.url))

    def speak(self, request_id: str) -> tuple[dict[str, Any], bytes]:
        response = self.probe.request("default", "speak", {"id": request_id, "text": TEXT}, timeout=TIMEOUT)
        assert response["status"] == "ok", response
        return response["data"], self.probe.wait_topic(f"voice/default/audio/{request_id}")

    def run_on(self, where: str) -> None:
        self.configure({"default": voice(where, self.home_server.url)})

    def stop(self) -> None:
        super().stop()
        self.home_server.stop()
        self.desk_server.stop()


@pytest.fixture(scope="module")
def household(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SovitsHousehold]:
    with running(SovitsHousehold(tmp_path_factory.mktemp("remote-sovits"))) as found:
        yield found


def test_a_worker_speaks_through_its_own_server_from_the_homes_reference(household: SovitsHousehold) -> None:
    nodes = wait_nodes(household.home_url, lambda n: n["gpu-desktop"]["online"])
    listed = {name: {p["provider"] for p in nodes[name]["providers"]} for name in ("gpu-desktop", "attic")}
    assert "sovits" in listed["gpu-desktop"] and "sovits" not in listed["attic"], listed  # no server of its own
    assert "rvc" in listed["attic"]

    home_asked, desk_asked = len(household.home_server.requests), len(household.desk_server.requests)
    remote, audio = household.speak("remote-1")
    assert (remote["provider"], remote["node"], remote["fallback"]) == ("sovits", "gpu-desktop", False), remote
    assert len(household.home_server.requests) == home_asked  # the home's server was not asked
    sent = household.desk_server.requests[desk_asked:]
    assert sent and all(r["prompt_text"] == REFERENCE_TEXT for r in sent), sent  # the transcript came by hash
    desk_home = household.root / "b"
    assert all(Path(r["ref_audio_path"]).is_relative_to(desk_home) for r in sent), sent  # the worker's copy
    assert Path(sent[0]["ref_audio_path"]).read_bytes() == household.reference.read_bytes()

    household.run_on("local")
    try:
        local, local_audio = household.speak("local-1")
        assert (local["node"], local["fallback"]) == (None, False), local
        assert len(household.home_server.requests) == home_asked + len(sent)  # now the home's own server made it
        rate, pcm = frames(audio)
        assert (rate, pcm) == frames(local_audio) and len(pcm) > rate  # the same voice, the same words
    finally:
        household.run_on("gpu-desktop")


def test_a_killed_worker_falls_back_to_the_homes_own_server_at_once(household: SovitsHousehold) -> None:
    household.desk.stop(signal.SIGKILL)
    try:
        asked = len(household.home_server.requests)
        lost, audio = household.speak("after-kill")
        assert (lost["provider"], lost["node"], lost["fallback"]) == ("sovits", None, True), lost
        assert lost["fallback_code"] in ("no_worker", "worker_lost") and lost["fallback_reason"], lost
        assert len(household.home_server.requests) > asked and frames(audio)[1]
        assert "speaks here" in household.home.log.read_text()
    finally:  # the household as the other test expects it, whatever the order
        household.restart(household.desk)
