"""Home Assistant MQTT discovery end to end: the real agent publishes each profile as a device
whose entities speak, switch provider and voice, and read the agent's state, through a real
Mosquitto. The templates are rendered with Jinja as Home Assistant renders them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from agent.mqtt.hass.entities import HassTopics
from agent.mqtt.hass.extension import select_options
from agent.mqtt.topics import Topics
from providers import registry
from tests.audio_checks import assert_speech
from tests.conftest import AgentProcess, Probe, make_home, write_json
from tests.fake_sovits import FakeSovits
from tests.mosquitto import Mosquitto
from tests.providers.sovits.conftest import write_reference

pytestmark = pytest.mark.slow

BASE = "hassvoice"  # this module's own topics: nothing retained by other tests leaks in
PREFIX = "hatest"
PROFILES = ("default", "kitchen")
NODE = "hall.box"  # the agent's node (a dot: its discovery id gets a hash)
NODE_OBJECTS = {"online": "binary_sensor", "free_vram": "sensor", "memory_available": "sensor",
                "speak_queue": "sensor", "train_queue": "sensor"}
SOVITS_RATE = 32000  # the fake GPT-SoVITS server's v2 model


class HassProbe(Probe):
    """A probe that also sees everything under the discovery prefix, on the same connection (so
    the order in which the agent published is the order in which it arrives)."""

    def __init__(self, port: int, base: str = BASE, prefix: str = PREFIX) -> None:
        super().__init__(port, base)
        self.prefix = prefix
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(f"{base}/#", 1), (f"{prefix}/#", 1)])
        self._subscribed.clear()
        self.client.subscribe(f"{prefix}/#", qos=1)
        assert self._subscribed.wait(10), "probe could not subscribe to the discovery prefix"

    def wait_for(
        self, predicate: Callable[[str, bytes], bool], timeout: float = 30, after: int = 0
    ) -> tuple[str, bytes]:
        """Only messages after the first ``after`` ones, also those arriving later (Probe's queue
        would hand back an older match that arrived after the call began)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = next(((t, p) for t, p, _ in self.seen[after:] if predicate(t, p)), None)
            if found is not None:
                return found
            assert time.monotonic() < deadline, "timed out waiting for a message"
            time.sleep(0.01)

    def configs(self, after: int = 0, retained_only: bool = False) -> dict[str, dict[str, Any]]:
        """The newest config per discovery topic seen (after the first ``after`` messages)."""
        with self._lock:
            seen = self.seen[after:]
        return {
            t: json.loads(p) for t, p, retained in seen
            if t.startswith(f"{self.prefix}/") and t.endswith("/config") and p and (retained or not retained_only)
        }

    def wait_configs(
        self, expected: set[str], after: int = 0, retained_only: bool = False, timeout: float = 30
    ) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not expected <= self.configs(after, retained_only).keys():
            missing = expected - self.configs(after, retained_only).keys()
            assert time.monotonic() < deadline, f"no config on {sorted(missing)}"
            time.sleep(0.02)
        return self.configs(after, retained_only)

    def state(
        self, profile: str, check: Callable[[dict[str, Any]], bool], after: int = 0, timeout: float = 30
    ) -> dict[str, Any]:
        topic = f"{self.base}/{profile}/state"
        _, payload = self.wait_for(lambda t, p: t == topic and check(json.loads(p)), timeout, after)
        return dict(json.loads(payload))


def retained_configs(
    port: int, expected: set[str], base: str = BASE, prefix: str = PREFIX
) -> dict[str, dict[str, Any]]:
    """The configs a client that subscribes now is handed by the broker: retained ones only. (A
    client already subscribed while the agent publishes sees them without the retain flag.)"""
    for retained_only in (False, True):  # published (however seen), then retained for a newcomer
        probe = HassProbe(port, base, prefix)
        try:
            configs = probe.wait_configs(expected, retained_only=retained_only)
        finally:
            probe.close()
    return configs


def node(profile: str, base: str = BASE) -> str:
    return f"{base}_{profile}"


def expected_objects() -> dict[str, str]:
    """object id -> component: what every profile's device holds, from the registry."""
    objects = {"speak": "notify", "provider": "select", "voice": "select", "samples": "sensor",
               "sample_minutes": "sensor", "training": "sensor", "gpu": "sensor", "speaking": "binary_sensor"}
    objects.update({f"readiness_{s.name}": "sensor" for s in registry.SPECS if s.dataset is not None})
    objects.update({f"train_{s.name}": "button" for s in registry.SPECS if s.trainer is not None})
    return objects


def config_topic(profile: str, object_id: str, prefix: str = PREFIX, base: str = BASE) -> str:
    return f"{prefix}/{expected_objects()[object_id]}/{node(profile, base)}/{object_id}/config"


def all_config_topics(profiles: tuple[str, ...] = PROFILES, prefix: str = PREFIX, base: str = BASE) -> set[str]:
    return {config_topic(p, o, prefix, base) for p in profiles for o in expected_objects()}


def node_config_topics(prefix: str = PREFIX, base: str = BASE) -> dict[str, str]:
    """object id -> discovery topic of the node's device."""
    node_id = HassTopics(Topics(base), prefix).agent_node(NODE)
    return {o: f"{prefix}/{component}/{node_id}/{o}/config" for o, component in NODE_OBJECTS.items()}


def render(template: str, document: dict[str, Any]) -> str:
    """A value template as Home Assistant renders it for a JSON payload."""
    return ImmutableSandboxedEnvironment().from_string(template).render(value_json=document).strip()


def sovits_profile(home: Path, profile: str, url: str, speakers: tuple[str, ...] = ("default",)) -> None:
    """Piper speaks; GPT-SoVITS (the fake server) is set up, with a reference per speaker."""
    section = {"serverUrl": url, "textLang": "en", "promptLang": "en"}
    write_json(home / "profiles" / profile / "etc" / "voice.json", {"tts": {"provider": "piper", "sovits": section}})
    for speaker in speakers:
        write_reference(home / "profiles" / profile / "out" / "voices" / "sovits-reference" / speaker)


def hass_env(base: str = BASE, prefix: str = PREFIX, **extra: str) -> dict[str, str]:
    return {"VOICE_AGENT_BASE_TOPIC": base, "VOICE_AGENT_HA_DISCOVERY_PREFIX": prefix, "VOICE_AGENT_NODE": NODE, **extra}


@pytest.fixture(scope="module")
def sovits_server() -> Iterator[FakeSovits]:
    server = FakeSovits().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hass_agent(
    tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto, sovits_server: FakeSovits
) -> Iterator[AgentProcess]:
    home = make_home(tmp_path_factory.mktemp("hass"), profiles=PROFILES)
    sovits_profile(home, "kitchen", sovits_server.url, speakers=("default", "guest"))
    agent = AgentProcess(home, broker.port, hass_env()).start()
    agent.wait_log("ready")
    yield agent
    agent.stop()


@pytest.fixture()
def hprobe(broker: Mosquitto) -> Iterator[HassProbe]:
    client = HassProbe(broker.port)
    yield client
    client.close()


def test_every_config_is_retained_and_has_what_home_assistant_needs(
    hass_agent: AgentProcess, hprobe: HassProbe, broker: Mosquitto
) -> None:
    configs = retained_configs(broker.port, all_config_topics())
    unique_ids = [c["unique_id"] for c in configs.values()]
    assert len(set(unique_ids)) == len(unique_ids)
    for topic, config in configs.items():
        if topic in node_config_topics().values():
            continue  # the node's device: the test below
        component, profile_node, object_id = topic.split("/")[1:4]
        assert config["unique_id"] and config["name"], topic
        device = config["device"]
        assert device["identifiers"] == [f"voice_agent_{profile_node}"], topic  # one device per profile
        assert device["name"] and device["model"] and device["manufacturer"] and device["sw_version"], topic
        assert config["origin"]["name"] == "voice-agent" and config["origin"]["sw_version"], topic
        assert config["availability"] == [  # its node's own state: the household's other nodes share BASE/status
            {"topic": f"{BASE}/node/{NODE}/state", "value_template": "{{ value_json.status }}",
             "payload_available": "online", "payload_not_available": "offline"}
        ], topic
        if component in ("notify", "select", "button"):
            assert config["command_topic"] == f"{BASE}/{profile_node.removeprefix(BASE + '_')}/hass/{object_id}", topic
        if component in ("select", "sensor", "binary_sensor"):
            assert config["state_topic"].startswith(f"{BASE}/") and config["value_template"], topic
        if component == "select":
            assert config["options"], topic
    for profile in PROFILES:
        assert configs[config_topic(profile, "provider")]["options"] == list(registry.NAMES)
    voices = hprobe.request("default", "voices", {"provider": "piper"})["data"]["voices"]
    options = configs[config_topic("default", "voice")]["options"]
    assert options == select_options(voices, "piper", "en_US-joe-medium")  # installed, then English downloads
    assert options[0] == "en_US-joe-medium" and "en_US-lessac-medium" in options and "de_DE-thorsten-medium" not in options


def test_templates_read_the_agents_state_documents(hass_agent: AgentProcess, hprobe: HassProbe) -> None:
    configs = hprobe.wait_configs(all_config_topics(("default",)))
    state = hprobe.state("default", lambda s: "readiness" in s and "provider" in s)
    gpu = json.loads(hprobe.wait_topic(f"{BASE}/gpu/state"))
    node_state = json.loads(hprobe.wait_topic(f"{BASE}/node/{NODE}/state"))

    def value(object_id: str, document: dict[str, Any] = state) -> str:
        return render(configs[config_topic("default", object_id)]["value_template"], document)

    assert (value("provider"), value("voice")) == (state["provider"], state["voice"]) == ("piper", "en_US-joe-medium")
    assert float(value("samples")) == state["samples"] and float(value("sample_minutes")) == state["sample_minutes"]
    for name in (s.name for s in registry.SPECS if s.dataset is not None):
        assert value(f"readiness_{name}") == ("ready" if state["readiness"][name]["ready"] else "not_ready")
        attributes = configs[config_topic("default", f"readiness_{name}")]["json_attributes_template"]
        assert json.loads(render(attributes, state)) == state["readiness"][name]
    assert value("gpu", node_state) == ("available" if gpu["available"] else "no_gpu") == "no_gpu"  # none here
    assert json.loads(render(configs[config_topic("default", "gpu")]["json_attributes_template"], node_state)) == {
        "gpus": [], "reason": gpu["reason"]}
    assert value("speaking", {**state, "queue_depth": 0}) == "OFF"
    assert value("speaking", {**state, "queue_depth": 2}) == "ON"
    training = {"job": "j", "provider": "kokoro", "state": "running", "step": 30, "total": 120}
    assert float(value("training", {**state, "training": training})) == 25.0
    assert float(value("training", {k: v for k, v in state.items() if k != "training"})) == 0.0
    for config in configs.values():  # every template copes with the documents the agent publishes now
        for key in ("value_template", "json_attributes_template"):
            if key in config:
                render(config[key], node_state if config["state_topic"].endswith(f"/node/{NODE}/state") else state)


def test_the_agents_node_is_a_device_that_its_profiles_are_reached_through(
    hass_agent: AgentProcess, hprobe: HassProbe, broker: Mosquitto
) -> None:
    topics = node_config_topics()
    configs = retained_configs(broker.port, set(topics.values()) | all_config_topics())
    document = json.loads(hprobe.wait_topic(f"{BASE}/node/{NODE}/state"))
    assert document["status"] == "online"

    def value(object_id: str, key: str = "value_template") -> str:
        return render(configs[topics[object_id]][key], document)

    assert value("online") == "ON"
    assert value("memory_available") == str(document["memory"]["available_mb"]) and document["memory"]["available_mb"] > 0
    assert value("free_vram") == "0" and document["gpus"] == []  # no GPU here
    assert (value("speak_queue"), value("train_queue")) == (str(document["queues"]["speak"]), str(document["queues"]["train"]))
    node_device = {i for t in topics.values() for i in configs[t]["device"]["identifiers"]}
    assert len(node_device) == 1 and NODE in configs[topics["online"]]["device"]["name"]
    for topic in all_config_topics():
        assert [configs[topic]["device"]["via_device"]] == list(node_device), topic


def test_configs_are_published_again_when_home_assistant_comes_online(
    hass_agent: AgentProcess, hprobe: HassProbe
) -> None:
    hprobe.wait_configs(all_config_topics())
    mark = hprobe.mark()
    hprobe.publish(f"{PREFIX}/status", "online")  # Home Assistant restarted: it forgot what it was told
    hprobe.wait_configs(all_config_topics(), after=mark)


def test_a_notify_message_is_spoken_on_the_audio_topic(hass_agent: AgentProcess, hprobe: HassProbe) -> None:
    config = hprobe.wait_configs({config_topic("default", "speak")})[config_topic("default", "speak")]
    mark = hprobe.mark()
    hprobe.publish(config["command_topic"], "Hello from Home Assistant.")

    answer = hprobe.event("default", "hass.speak", after=mark)["data"]
    assert answer["status"] == "ok", answer
    data = answer["data"]
    assert data["provider"] == "piper" and data["audio_topic"] == f"{BASE}/default/audio/{answer['id']}"
    seconds = assert_speech(hprobe.wait_topic(data["audio_topic"]), min_seconds=1.0)
    assert data["audio_seconds"] == pytest.approx(seconds, abs=0.01)

    hprobe.publish(config["command_topic"], "")  # nothing to say: refused with the speak path's code
    refused = hprobe.wait_for(
        lambda t, p: t == f"{BASE}/default/event/hass.speak" and json.loads(p)["data"]["status"] == "error", after=mark
    )
    assert json.loads(refused[1])["data"]["code"] == "invalid_payload"


def test_a_profile_added_while_the_agent_runs_gets_its_device(hass_agent: AgentProcess, hprobe: HassProbe) -> None:
    profile = "den"
    topics = all_config_topics((profile,))
    assert not topics & hprobe.configs().keys()
    target = hass_agent.home / "profiles" / profile / "etc" / "voice.json"
    target.parent.mkdir(parents=True)
    target.write_text((hass_agent.home / "profiles" / "default" / "etc" / "voice.json").read_text())
    assert hprobe.request(profile, "speak", {"text": "A new room."})["status"] == "ok"  # its first state
    configs = hprobe.wait_configs(topics)
    assert configs[config_topic(profile, "speak")]["command_topic"] == f"{BASE}/{profile}/hass/speak"
    assert configs[config_topic(profile, "voice")]["options"][0] == "en_US-joe-medium"


def test_a_train_button_asks_for_a_job_and_the_answer_is_an_event(hass_agent: AgentProcess, hprobe: HassProbe) -> None:
    for name in (s.name for s in registry.SPECS if s.trainer is not None):
        topic = config_topic("default", f"train_{name}")
        config = hprobe.wait_configs({topic})[topic]
        mark = hprobe.mark()
        hprobe.publish(config["command_topic"], config["payload_press"])
        answer = hprobe.event("default", "hass.train", after=mark)["data"]
        # no samples in this home: the train path refuses, and says what is missing
        assert (answer["status"], answer["code"]) == ("error", "not_ready"), answer
        assert f"not enough samples to train {name}" in answer["error"], answer
        assert answer["data"]["speaker"] == "default" and answer["data"]["missing"], answer  # the facts, for any door's words
    assert hprobe.request("default", "train.status", {})["data"]["jobs"] == []


def test_the_voice_select_follows_the_provider_and_writes_voice_json(
    hass_agent: AgentProcess, hprobe: HassProbe
) -> None:
    provider_config = hprobe.wait_configs({config_topic("kitchen", "provider")})[config_topic("kitchen", "provider")]
    voice_topic = config_topic("kitchen", "voice")
    assert "guest" not in hprobe.wait_configs({voice_topic})[voice_topic]["options"]
    voice_json = hass_agent.home / "profiles" / "kitchen" / "etc" / "voice.json"
    try:
        mark = hprobe.mark()
        hprobe.publish(provider_config["command_topic"], "sovits")
        assert hprobe.state("kitchen", lambda s: s["provider"] == "sovits", after=mark)["voice"] == "default"
        voice_config = hprobe.wait_configs({voice_topic}, after=mark)[voice_topic]
        assert voice_config["options"] == ["default", "guest"]  # GPT-SoVITS' speakers: its references

        mark = hprobe.mark()
        hprobe.publish(voice_config["command_topic"], "guest")
        assert hprobe.state("kitchen", lambda s: s["voice"] == "guest", after=mark)["provider"] == "sovits"
        assert json.loads(voice_json.read_text())["tts"]["sovits"]["speakerId"] == "guest"
        answer = hprobe.event("kitchen", "hass.config.set", after=mark)["data"]
        assert answer["status"] == "ok" and answer["data"]["config"]["tts"]["sovits"]["speakerId"] == "guest"

        spoken = hprobe.request("kitchen", "speak", {"text": "The guest voice speaks now."})
        data = spoken["data"]
        assert (data["provider"], data["voice"], data["fallback"]) == ("sovits", "guest", False)

        mark = hprobe.mark()
        hprobe.publish(voice_config["command_topic"], "nobody here")  # not a speaker name: refused, file kept
        refused = hprobe.event("kitchen", "hass.config.set", after=mark)["data"]
        assert refused["status"] == "error" and refused["code"] == "invalid_config"
        assert json.loads(voice_json.read_text())["tts"]["sovits"]["speakerId"] == "guest"
    finally:
        mark = hprobe.mark()
        hprobe.publish(provider_config["command_topic"], "piper")
    assert hprobe.state("kitchen", lambda s: s["provider"] == "piper", after=mark)["voice"] == "en_US-joe-medium"
    assert hprobe.wait_configs({voice_topic}, after=mark)[voice_topic]["options"][0] == "en_US-joe-medium"


def test_a_provider_chosen_in_home_assistant_is_spoken_with_and_survives_a_restart(
    tmp_path: Path, broker: Mosquitto, sovits_server: FakeSovits
) -> None:
    base, prefix = "hassvoice-restart", "hatest-restart"  # an agent of its own beside the module's
    home = make_home(tmp_path / "home")
    sovits_profile(home, "default", sovits_server.url)
    voice_json = home / "profiles" / "default" / "etc" / "voice.json"
    agent = AgentProcess(home, broker.port, hass_env(base, prefix)).start()
    probe = HassProbe(broker.port, base, prefix)
    try:
        agent.wait_log("ready")
        topic = config_topic("default", "provider", prefix, base)
        config = probe.wait_configs({topic})[topic]
        before = probe.request("default", "speak", {"text": "Piper speaks first."})["data"]
        assert before["provider"] == "piper"

        mark = probe.mark()
        probe.publish(config["command_topic"], "sovits")
        assert probe.state("default", lambda s: s["provider"] == "sovits", after=mark)
        assert json.loads(voice_json.read_text())["tts"]["provider"] == "sovits"  # on disk, through config.set
        spoken = probe.request("default", "speak", {"id": "after-select", "text": "GPT-SoVITS speaks now."})["data"]
        assert (spoken["provider"], spoken["fallback"]) == ("sovits", False)
        assert_speech(probe.wait_topic(f"{base}/default/audio/after-select"), min_seconds=1.0, rate=SOVITS_RATE)

        agent.stop()
        mark = probe.mark()
        agent.start()  # the log still holds the first "ready": wait for the new agent's "online"
        probe.wait_for(lambda t, p: t == f"{base}/status" and p == b"online", after=mark)
        again = probe.request("default", "speak", {"id": "after-restart", "text": "Still GPT-SoVITS."})["data"]
        assert (again["provider"], again["fallback"]) == ("sovits", False)
        assert_speech(probe.wait_topic(f"{base}/default/audio/after-restart"), min_seconds=1.0, rate=SOVITS_RATE)
        assert json.loads(voice_json.read_text())["tts"]["provider"] == "sovits"
    finally:
        probe.close()
        agent.stop()


def test_discovery_is_published_again_after_a_reconnect(tmp_path: Path) -> None:
    server = Mosquitto(tmp_path / "mq").start()  # a broker of its own, to restart
    agent = AgentProcess(make_home(tmp_path / "home"), server.port, hass_env()).start()
    try:
        agent.wait_log("ready")
        retained_configs(server.port, all_config_topics(("default",)))

        server.stop()
        agent.wait_log("disconnected from MQTT broker")
        server.start()  # same port; nothing retained survives (persistence is off)

        node = node_config_topics()
        configs = retained_configs(server.port, all_config_topics(("default",)) | set(node.values()))
        agent.stop()  # and the node's device says so: "Online" off, its sensors unavailable
        probe = Probe(server.port, BASE)
        try:
            gone = json.loads(probe.wait_topic(f"{BASE}/node/{NODE}/state"))
        finally:
            probe.close()
        assert gone["status"] == "offline"
        assert render(configs[node["online"]]["value_template"], gone) == "OFF"
        (available,) = configs[node["memory_available"]]["availability"]
        assert render(available["value_template"], gone) == available["payload_not_available"]
    finally:
        agent.stop()
        server.stop()


def test_the_off_switch_publishes_nothing_and_listens_to_nothing(tmp_path: Path, broker: Mosquitto) -> None:
    base, prefix = "hassvoice-off", "hatest-off"
    probe = HassProbe(broker.port, base, prefix)  # subscribed before the agent starts: it sees everything
    env = hass_env(base, prefix, VOICE_AGENT_HA_DISCOVERY="false")
    agent = AgentProcess(make_home(tmp_path / "home"), broker.port, env)
    try:
        agent.start()
        agent.wait_log("ready")
        probe.state("default", lambda s: "provider" in s)
        probe.publish(f"{prefix}/status", "online")
        probe.publish(f"{base}/default/hass/speak", "Nobody listens here.")
        response = probe.request("default", "speak", {"id": "plain-after", "text": "Only this is spoken."})
        assert response["status"] == "ok"
        probe.wait_topic(f"{base}/default/audio/plain-after")  # spoken after the notify message would have been
        seen = [t for t, _, _ in probe.seen]
        assert [t for t in seen if t.startswith(f"{prefix}/")] == [f"{prefix}/status"]  # only our own message
        assert [t for t in seen if "/audio/" in t] == [f"{base}/default/audio/plain-after"]
        assert not [t for t in seen if "/event/hass." in t]
    finally:
        agent.stop()
        probe.close()
