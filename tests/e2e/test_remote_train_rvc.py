"""An RVC training job of node A (home-server) run by worker B (gpu-desktop), through the real
agents and one Mosquitto: A keeps the profile and its dataset (``runOn.train`` names B), B has the
content encoder, fetches the dataset by hash and trains a real, small RVC model (the tiny network,
two epochs: tests/providers/rvc/quick_trainer.py). B sends no file inside a reply
(``VOICE_AGENT_TRAIN_REPLY_FILES_MB=0``), so every checkpoint and both trained files travel the
other way by hash: B offers them on its blob route, A fetches each with the token, checks it, and
only then keeps the checkpoint or lands the model and index in its voices; B lets them go."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, AgentProcess, Probe, make_home, write_json
from tests.e2e.test_nodes import TOKEN, node_agent, wait_nodes
from tests.mosquitto import Mosquitto, free_port
from tests.providers.rvc.fakes import write_fairseq_hubert
from tests.speech import OWNER_RATE, owner, wav

pytestmark = pytest.mark.slow

ENV = {"VOICE_AGENT_EXTRA_TRAINERS": json.dumps({"rvc": "tests.providers.rvc.quick_trainer:QuickRvcTrainer"}),
       "PYTHONPATH": str(REPO)}
PARAMS = {"totalEpochs": 2, "saveEveryEpoch": 1, "batchSize": 4, "f0Method": "dio", "size": "tiny", "minMinutes": 0}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def home_with_a_dataset(tmp_path: Path, broker: Mosquitto, worker: str, **env: str) -> tuple[AgentProcess, int]:
    """Node A (home-server) whose default profile trains on ``worker`` and holds one WAV of joe's
    RVC dataset, started with its HTTP door on a free port (the port is the second value)."""
    home = make_home(tmp_path / "a", ("default",))
    profile = home / "profiles" / "default"
    write_json(profile / "etc" / "voice.json", {"runOn": {"train": worker}})
    dataset = profile / "out" / "voices" / "rvc-reference" / "joe"
    dataset.mkdir(parents=True)
    (dataset / "s0.wav").write_bytes(wav(owner("Please water the tomatoes before it gets dark."), OWNER_RATE))
    port = free_port()
    agent = AgentProcess(home, broker.port, {
        "VOICE_AGENT_NODE": "home-server", "VOICE_AGENT_HTTP_ENABLED": "true", "VOICE_AGENT_HTTP_PORT": str(port),
        "VOICE_AGENT_HTTP_TOKEN": TOKEN, "VOICE_AGENT_HA_DISCOVERY": "false", **ENV, **env}).start()
    return agent, port


def test_an_rvc_model_trained_on_the_worker_comes_home_by_hash(tmp_path: Path) -> None:
    from providers.rvc.modelfile import read_model
    from providers.rvc.runtime import load_voice

    broker = Mosquitto(tmp_path / "mq").start()
    agent, port = home_with_a_dataset(tmp_path, broker, "gpu-desktop")
    home = agent.home
    profile = home / "profiles" / "default"
    dataset = profile / "out" / "voices" / "rvc-reference" / "joe"
    desk, _ = node_agent(tmp_path / "b", broker, "gpu-desktop", ("office",), VOICE_AGENT_WORKER="true",
                         VOICE_AGENT_TRAIN_REPLY_FILES_MB="0", **ENV)
    (desk.home / "out" / "voices" / "rvc-models").mkdir(parents=True, exist_ok=True)
    write_fairseq_hubert(desk.home / "out" / "voices" / "rvc-models" / "hubert_base.pt")  # B's own, not A's
    probe = Probe(broker.port)
    try:
        agent.wait_log("ready")
        desk.wait_log("ready")
        wait_nodes(f"http://127.0.0.1:{port}", lambda n: n.get("gpu-desktop", {}).get("online"))
        response = probe.request("default", "train", {"provider": "rvc", "speaker": "joe", "when": "now",
                                                      "params": PARAMS})
        assert response["status"] == "ok", response
        job = response["data"]["job"]["id"]

        def event(name: str, timeout: float) -> dict[str, Any]:
            def match(topic: str, payload: bytes) -> bool:
                return topic == f"voice/default/event/{name}" and json.loads(payload)["data"]["job"] == job

            return json.loads(probe.wait_for(match, timeout)[1])["data"]  # type: ignore[no-any-return]

        assert event("training.started", 30)["device"] == "remote"
        assert event("training.checkpoint", 120)["step"] >= 1  # kept here once its files came by hash
        finished = event("training.finished", 120)
        models = profile / "out" / "voices" / "rvc-models" / "joe"
        assert [Path(p) for p in finished["outputs"]] == [models / "joe.pth", models / "joe.index"]

        # what B said it made, by hash, is what landed here: every file came by the blob route
        def done(topic: str, payload: bytes) -> bool:
            return topic == "voice/node/home-server/reply" and json.loads(payload).get("kind") == "done"

        reply = json.loads(probe.wait_for(done, 10)[1])
        assert reply["status"] == "finished" and "files" not in reply and reply["url"].startswith("http://127.0.0.1:")
        assert {ref["name"]: ref["sha256"] for ref in reply["fetch"]} == {"joe.pth": sha256(models / "joe.pth"),
                                                                         "joe.index": sha256(models / "joe.index")}
        model = read_model(models / "joe.pth")
        assert (model.version, model.sample_rate, model.info) == ("v2", 40000, "2epoch")
        assert load_voice(models / "joe.pth", models / "joe.index", "cpu").index is not None
        voice = probe.request("default", "train.status", {"job": job})["data"]["job"]["voice"]
        assert voice == {"tts": {"provider": "rvc", "rvc": {"speakerId": "joe"}}}, voice  # the profile's voice to choose

        log = (home / "logs" / "run" / "rvc-training-joe.log").read_text()
        assert "taken by worker gpu-desktop" in log and "trained files kept: joe.pth, joe.index" in log
        assert "fetched joe.pth" in log and "fetched latest.pth" in log, log
        assert not (home / "out" / "voices" / "rvc-models" / "hubert_base.pt").exists()  # trained on B's encoder
        half = [p for p in (profile / "out").rglob("*") if p.name.startswith(".") or p.suffix in (".part", ".tmp")]
        assert half == []
        # B: the dataset came by hash; what it offered went once A had it
        assert sorted(p.name for p in (desk.home / "out" / "blobs").iterdir()) == [sha256(dataset / "s0.wav")]
        offered = desk.home / "out" / "work" / "offered"
        deadline = time.monotonic() + 10
        while offered.exists() and [p for p in offered.rglob("*") if p.is_file()]:
            assert time.monotonic() < deadline, sorted(offered.rglob("*"))
            time.sleep(0.05)
    finally:
        probe.close()
        agent.stop()
        desk.stop()
        broker.stop()


class Mallory:
    """A worker that says it trained the model and serves other bytes under its hash: a transfer
    gone bad. It holds the household's token (it seals its replies), so only the hash stops it."""

    MODEL = b"the model it says it made" * 1000

    def __init__(self, port: int) -> None:
        import http.server
        import threading

        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        class Blobs(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self.send_error(401)
                    return
                body = b"X" * len(Mallory.MODEL)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.asked: list[str] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Blobs)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="mallory", protocol=mqtt.MQTTv5)
        self.client.on_message = self._job
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def start(self) -> None:
        from agent.nodes.state import Ability, NodeState

        self.client.subscribe("voice/node/mallory/work/train/rvc", qos=1)
        state = NodeState(node="mallory", worker=True, url=self.url, providers=[Ability(provider="rvc", trains=True)])
        self.client.publish("voice/node/mallory/state", state.to_json(), qos=1, retain=True).wait_for_publish(5)

    def _job(self, client: Any, userdata: Any, message: Any) -> None:
        from agent.mqtt.transport import request_properties
        from agent.nodes.work import BlobRef, TrainReply, read_train_job

        job = read_train_job(message.payload)
        self.asked.append(job.id)
        ref = BlobRef(sha256=hashlib.sha256(self.MODEL).hexdigest(), size=len(self.MODEL), name="joe.pth")
        for reply in (TrainReply(kind="accepted", node="mallory", id=job.id),
                      TrainReply(kind="done", node="mallory", id=job.id, status="finished", fetch=[ref], url=self.url)):
            client.publish(message.properties.ResponseTopic, reply.sealed(TOKEN).to_json(), qos=1,
                           properties=request_properties(None, message.properties.CorrelationData))

    def stop(self) -> None:
        self.client.publish("voice/node/mallory/state", b"", qos=1, retain=True).wait_for_publish(5)
        self.client.loop_stop()
        self.client.disconnect()
        self.server.shutdown()


def test_a_corrupted_transfer_never_becomes_a_model(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "mq").start()
    agent, port = home_with_a_dataset(tmp_path, broker, "mallory", VOICE_AGENT_MAX_TRAIN_RESTARTS="0")
    home = agent.home
    profile = home / "profiles" / "default"
    mallory = Mallory(broker.port)
    probe = Probe(broker.port)
    try:
        agent.wait_log("ready")
        mallory.start()
        wait_nodes(f"http://127.0.0.1:{port}", lambda n: n.get("mallory", {}).get("online"))
        response = probe.request("default", "train", {"provider": "rvc", "speaker": "joe", "when": "now",
                                                      "params": PARAMS})
        assert response["status"] == "ok", response
        job = response["data"]["job"]["id"]

        def failed(topic: str, payload: bytes) -> bool:
            return topic == "voice/default/event/training.failed" and json.loads(payload)["data"]["job"] == job

        error = json.loads(probe.wait_for(failed, 60)[1])["data"]["error"]
        assert len(mallory.asked) == 1 and "died" in error, error  # a failed try, and no more tries allowed
        log = (home / "logs" / "run" / "rvc-training-joe.log").read_text()
        assert f"has SHA-256 {hashlib.sha256(b'X' * len(Mallory.MODEL)).hexdigest()}, not the one asked for" in log
        assert "worker mallory failed (blob_corrupt)" in log and "trained files kept" not in log
        assert not (profile / "out" / "voices" / "rvc-models").exists()  # nothing landed, not even half
        assert [p for p in profile.rglob("*") if p.name.startswith(".") or p.suffix in (".part", ".tmp")] == []
        blobs = home / "out" / "blobs"
        assert not blobs.exists() or list(blobs.iterdir()) == []  # and no half of it kept to resume
    finally:
        probe.close()
        mallory.stop()
        agent.stop()
        broker.stop()
