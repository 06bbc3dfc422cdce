"""Two nodes of one household under the broker settings README "Several machines" gives, read from
the README itself: the conf lines (listener, password_file, acl_file) and an ACL of the Broker
ACLs' roles plus a block per node. Each node logs in with its own name. A profile of the home
server speaks through the worker's RVC; the worker's login cannot write another node's state, the
home's status or work, and reads nothing of the home's profile nor the replies that go to it; the
home server's login cannot overwrite the worker's state nor write to its replies."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audio_checks import wav_info
from tests.conftest import REPO, Probe, write_json
from tests.e2e.household import Household, online, running, wait_nodes
from tests.e2e.test_acl import readme_acl
from tests.e2e.test_remote_speak import TIMEOUT, voice
from tests.mosquitto import Mosquitto
from tests.providers.rvc.fakes import install_rvc_assets

pytestmark = pytest.mark.slow

USERS = {"home-server": "home-pw", "gpu-desktop": "desk-pw", "speaker": "speaker-pw", "admin": "admin-pw"}


def readme_block(first_line: str) -> str:
    """The README code block that starts with ``first_line``, as a user would copy it."""
    text = (REPO / "README.md").read_text()
    found = re.search(r"```\n(" + re.escape(first_line) + r"\n.*?)```", text, re.S)
    assert found, f"README lost its block {first_line!r}"
    return found.group(1)


def node_acl() -> str:
    return readme_block("# several machines: added to /etc/mosquitto/voice-agent.acl, one block per node, the login its node name")


class ReadmeMosquitto(Mosquitto):
    """Mosquitto started with README's conf lines, its /etc/mosquitto/ paths moved into the test's
    folder and its listener to a free loopback port."""

    def _write_config(self) -> Path:
        config = super()._write_config()  # the password file, the ACL file, and the test's own lines
        ours = [line for line in config.read_text().splitlines()
                if line.split(" ")[0] in ("persistence", "user", "set_tcp_nodelay")]
        readme = readme_block("# /etc/mosquitto/conf.d/voice.conf")
        assert "listener 1883\n" in readme and "acl_file /etc/mosquitto/voice-agent.acl\n" in readme
        readme = readme.replace("listener 1883\n", f"listener {self.port} 127.0.0.1\n")
        readme = readme.replace("/etc/mosquitto/passwd", str(self.workdir / "passwd"))
        readme = readme.replace("/etc/mosquitto/voice-agent.acl", str(self.workdir / "acl"))
        config.write_text("\n".join(ours) + "\n" + readme)
        return config


def login(user: str) -> dict[str, str]:
    return {"VOICE_AGENT_MQTT_USERNAME": user, "VOICE_AGENT_MQTT_PASSWORD": USERS[user]}


class AclHousehold(Household):
    """A and B under README's broker settings, each node with its own login; requests come from the
    speaker's login (``probe``), checks from the admin's."""

    def __init__(self, root: Path) -> None:
        acl = readme_acl().replace("user voice-agent\n", "user unused-single-agent\n") + "\n" + node_acl()
        super().__init__(root, ReadmeMosquitto(root / "mq", users=USERS, acl=acl).start(),
                         probe={"username": "speaker", "password": USERS["speaker"]},
                         home_env=login("home-server"), desk_env=login("gpu-desktop"))
        self.admin = Probe(self.broker.port, username="admin", password=USERS["admin"])

    def furnish(self, home: Path) -> None:
        install_rvc_assets(home / "out" / "voices")
        write_json(home / "profiles" / "default" / "etc" / "voice.json", voice("gpu-desktop"))

    @property
    def speaker(self) -> Probe:
        return self.probe

    def ready(self) -> None:
        super().ready()
        wait_nodes(self.desk_url, online("home-server"))

    def stop(self) -> None:
        self.admin.close()
        super().stop()


@pytest.fixture(scope="module")
def household(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclHousehold]:
    with running(AclHousehold(tmp_path_factory.mktemp("node-acl"))) as found:
        yield found


def client(household: AclHousehold, user: str) -> Probe:
    """A client with ``user``'s login, subscribed to ``voice/#``: it sees what that login may read."""
    return Probe(household.broker.port, username=user, password=USERS[user])


def worker_login(household: AclHousehold) -> Probe:
    return client(household, "gpu-desktop")


def test_a_homes_profile_speaks_through_the_worker_each_with_its_own_login(household: AclHousehold) -> None:
    response = household.speaker.request("default", "speak", {"id": "acl-remote-1", "text": "The door is locked."},
                                         timeout=TIMEOUT)
    assert response["status"] == "ok", response
    data = response["data"]
    assert (data["provider"], data["node"], data["fallback"]) == ("rvc", "gpu-desktop", False), data
    rate, seconds, rms = wav_info(household.speaker.wait_topic("voice/default/audio/acl-remote-1"))
    assert rate == 40000 and seconds > 0.5 and rms > 0
    assert "the broker stopped delivering to us" not in household.desk.log.read_text()  # its echo comes back


def test_the_workers_login_writes_no_other_nodes_state_nor_the_homes_status_nor_work(household: AclHousehold) -> None:
    spy = worker_login(household)
    admin = household.admin
    try:
        mark = admin.mark()
        forged = json.dumps({"node": "home-server", "status": "offline"})
        spy.client.publish("voice/node/home-server/state", forged, qos=1, retain=True).wait_for_publish(5)
        spy.publish("voice/status", "offline")
        spy.publish("voice/work/speak/rvc", "{}")
        spy.publish("voice/work/train/kokoro", "{}")
        spy.publish("voice/node/home-server/work/speak/rvc", "{}")
        spy.publish("voice/default/request/speak", json.dumps({"id": "from-the-worker", "text": "Open the door."}))
        spy.publish("voice/node/home-server/reply", "{}")  # allowed: a reply (unsealed, so the home ignores it)
        marker = f"voice/node/gpu-desktop/state/echo/{uuid.uuid4().hex}"
        spy.publish(marker, "after")  # its own: the broker passes it on, after what it passed before
        admin.wait_for(lambda t, _: t == marker, after=mark)
        after = [(t, p) for t, p, _ in admin.seen[mark:]]
        topics = [t for t, _ in after]
        assert "voice/node/home-server/reply" in topics  # the one it may write, seen before the marker
        for denied in ("voice/node/home-server/state", "voice/status", "voice/work/speak/rvc", "voice/work/train/kokoro",
                       "voice/node/home-server/work/speak/rvc", "voice/default/request/speak"):
            assert denied not in topics, after
        assert not any(t == "voice/default/response/speak" for t in topics)
        wait_nodes(household.home_url, lambda n: n["home-server"]["online"] and n["gpu-desktop"]["online"])
    finally:
        spy.close()


def test_the_homes_login_overwrites_no_other_nodes_state_nor_writes_its_replies(household: AclHousehold) -> None:
    """The broker drops a publish a login may not make without a word (QoS 0, and QoS 1 from an MQTT
    3.1.1 client): what shows it refused is the worker's retained state, still its own for a client
    that subscribes afterwards, and no forged reply passed on before the home's own marker."""
    forger = client(household, "home-server")
    admin = household.admin
    try:
        mark = admin.mark()
        forged = json.dumps({"node": "gpu-desktop", "status": "offline"})
        forger.client.publish("voice/node/gpu-desktop/state", forged, qos=1, retain=True).wait_for_publish(5)
        forger.client.publish("voice/node/gpu-desktop/state", forged, qos=0, retain=True)
        forger.publish("voice/node/gpu-desktop/reply", "{}")
        marker = f"voice/node/home-server/state/echo/{uuid.uuid4().hex}"
        forger.publish(marker, "after")  # its own: the broker passes it on, after what it passed before
        admin.wait_for(lambda t, _: t == marker, after=mark)
        after = [(t, p) for t, p, _ in admin.seen[mark:]]
        assert ("voice/node/gpu-desktop/state", forged.encode()) not in after, after
        assert "voice/node/gpu-desktop/reply" not in [t for t, _ in after], after
        later = client(household, "admin")  # subscribes now: the broker's retained state comes first
        try:
            retained = json.loads(later.wait_topic("voice/node/gpu-desktop/state"))
        finally:
            later.close()
        assert (retained["node"], retained["status"]) == ("gpu-desktop", "online"), retained
        wait_nodes(household.home_url, online("home-server", "gpu-desktop"))
    finally:
        forger.close()


def test_the_workers_login_reads_nothing_of_the_homes_profile_nor_its_replies(household: AclHousehold) -> None:
    spy = worker_login(household)
    try:
        response = household.speaker.request("default", "speak", {"id": "acl-remote-2", "text": "Lights off."},
                                             timeout=TIMEOUT)
        assert response["status"] == "ok" and response["data"]["node"] == "gpu-desktop", response
        household.speaker.wait_topic("voice/default/audio/acl-remote-2")
        marker = f"voice/node/gpu-desktop/state/echo/{uuid.uuid4().hex}"
        household.admin.publish(marker, "after")  # after the answer reached the speaker: any copy for the spy came first
        spy.wait_for(lambda t, _: t == marker)
        topics = {t for t, _, _ in spy.seen}
        assert "voice/node/home-server/state" in topics and "voice/node/gpu-desktop/state" in topics  # it reads
        assert not [t for t in topics if t.startswith("voice/default/")], topics
        assert "voice/node/home-server/reply" not in topics  # the worker's own answers, not for it to read back
        assert "voice/office/state" in topics  # its own profile's retained state
    finally:
        spy.close()


def test_the_workers_login_gets_back_what_its_connections_send_themselves(household: AclHousehold) -> None:
    """Each connection's keepalive check (agent/mqtt/transport.py) is a message to itself: without it
    coming back, the worker would reconnect every keepalive interval."""
    spy = worker_login(household)
    try:
        for topic in (f"voice/status/echo/{uuid.uuid4().hex[:12]}", f"voice/node/gpu-desktop/state/echo/{uuid.uuid4().hex[:12]}"):
            spy.publish(topic, "ping")
            assert spy.wait_topic(topic) == b"ping"
    finally:
        spy.close()


def test_the_workers_login_reads_the_households_speak_and_train_work_and_its_stop(household: AclHousehold) -> None:
    spy = worker_login(household)
    try:
        work = ("voice/work/speak/rvc", "voice/work/train/kokoro", "voice/node/gpu-desktop/work/train/kokoro",
                "voice/node/gpu-desktop/work/stop")
        for topic in work:
            household.admin.publish(topic, "{}")  # unsealed: the worker's agent ignores each
        marker = f"voice/node/gpu-desktop/state/echo/{uuid.uuid4().hex}"
        household.admin.publish(marker, "after")
        spy.wait_for(lambda t, _: t == marker)
        topics = {t for t, _, _ in spy.seen}
        assert set(work) <= topics, topics
        assert "voice/node/home-server/work/stop" not in topics
    finally:
        spy.close()
