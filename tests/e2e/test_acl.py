"""The agent under the broker ACL the README gives, as a household would run it: a speaker may
make it talk and nothing else, an admin may do everything."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audio_checks import assert_speech
from tests.conftest import REPO, AgentProcess, Probe, make_home
from tests.mosquitto import Mosquitto

pytestmark = pytest.mark.slow

USERS = {"voice-agent": "agent-pw", "speaker": "speaker-pw", "recorder": "recorder-pw", "admin": "admin-pw"}


def readme_acl() -> str:
    """The acl_file of README "Broker ACLs", as a user would copy it."""
    text = (REPO / "README.md").read_text()
    found = re.search(r"```\n(# /etc/mosquitto/voice-agent\.acl.*?)```", text, re.S)
    assert found, "README lost its ACL example"
    return found.group(1)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path_factory.mktemp("acl-broker"), users=USERS, acl=readme_acl()).start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, secured: Mosquitto) -> Iterator[AgentProcess]:
    home = make_home(tmp_path_factory.mktemp("acl-home"))
    process = AgentProcess(home, secured.port, {
        "VOICE_AGENT_MQTT_USERNAME": "voice-agent", "VOICE_AGENT_MQTT_PASSWORD": USERS["voice-agent"],
    }).start()
    process.wait_log("ready")
    yield process
    process.stop()


def client(broker: Mosquitto, user: str) -> Probe:
    return Probe(broker.port, username=user, password=USERS[user])


def test_a_speaker_makes_the_agent_talk(agent: AgentProcess, secured: Mosquitto) -> None:
    speaker = client(secured, "speaker")
    try:
        response = speaker.request("default", "speak", {"id": "acl-1", "text": "Allowed to talk."})
        assert response["status"] == "ok"
        assert_speech(speaker.wait_topic("voice/default/audio/acl-1"))
    finally:
        speaker.close()


def test_a_speaker_cannot_delete_samples_nor_see_other_answers(agent: AgentProcess, secured: Mosquitto) -> None:
    speaker, admin = client(secured, "speaker"), client(secured, "admin")
    try:
        listed = admin.request("default", "samples.list", {"id": "before"})
        assert listed["status"] == "ok"
        mark = admin.mark()
        speaker.publish("voice/default/request/samples.delete", json.dumps({"id": "nope", "below": 100}))
        speaker.publish("voice/default/request/train", json.dumps({"id": "nope2", "provider": "rvc"}))
        # the broker dropped both: the agent never answered them, while the admin's next request is answered
        answer = admin.request("default", "samples.readiness", {"id": "after"})
        assert answer["status"] == "ok"
        with pytest.raises(AssertionError, match="timed out"):
            admin.wait_for(lambda t, p: "response/samples.delete" in t or "response/train" in t, timeout=2, after=mark)
        assert not any("response/samples" in t for t, _, _ in speaker.seen)  # not its answers to read
    finally:
        speaker.close()
        admin.close()


def test_the_agents_state_is_readable_by_the_roles_that_need_it(agent: AgentProcess, secured: Mosquitto) -> None:
    speaker = client(secured, "speaker")
    try:
        assert speaker.wait_topic("voice/status") == b"online"
        assert not any(t == "voice/default/state" for t, _, _ in speaker.seen)  # not the speaker's business
    finally:
        speaker.close()


def test_the_agent_with_a_wrong_password_says_so(tmp_path: Path, secured: Mosquitto) -> None:
    home = make_home(tmp_path)
    process = AgentProcess(home, secured.port, {"VOICE_AGENT_MQTT_USERNAME": "voice-agent",
                                                "VOICE_AGENT_MQTT_PASSWORD": "wrong"}).start()
    try:
        process.wait_log("broker refused the connection")
        assert "starting the embedded one" not in process.log.read_text()  # a login means the household's broker
    finally:
        process.stop()
