"""The real Kokoro voicepack trainer on a worker: node A (home-server) keeps the profile and its
dataset (two transcribed sentences) and has no Kokoro model; worker B (gpu-desktop) has the
models, fetches the dataset by hash and trains a few epochs; the voicepack lands in A's voices
(each file checked against its hash on arrival) and is the profile's voice to choose."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import AgentProcess, Probe, make_home, write_json
from tests.e2e.test_nodes import TOKEN, node_agent, wait_nodes
from tests.mosquitto import Mosquitto, free_port
from tests.providers.kokoro.models import install_models, prepared_models

pytestmark = pytest.mark.slow


def test_a_kokoro_voicepack_trained_on_the_worker_lands_in_the_homes_voices(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    import soundfile

    from tests.speech import OWNER_RATE, owner

    broker = Mosquitto(tmp_path / "mq").start()
    home = make_home(tmp_path / "a", ("default",))
    write_json(home / "profiles" / "default" / "etc" / "voice.json", {"runOn": {"train": "gpu-desktop"}})
    dataset = home / "profiles" / "default" / "out" / "voices" / "kokoro-datasets" / "joe"
    dataset.mkdir(parents=True)
    with (dataset / "metadata.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="|")
        for index, text in enumerate(["Turn the heating down a little.", "The parcel arrived this morning."]):
            soundfile.write(dataset / f"s{index}.wav", owner(text), OWNER_RATE)
            writer.writerow([f"s{index}.wav", text])
    port = free_port()
    agent = AgentProcess(home, broker.port, {
        "VOICE_AGENT_NODE": "home-server", "VOICE_AGENT_HTTP_ENABLED": "true", "VOICE_AGENT_HTTP_PORT": str(port),
        "VOICE_AGENT_HTTP_TOKEN": TOKEN, "VOICE_AGENT_HA_DISCOVERY": "false"}).start()
    desk_home = make_home(tmp_path / "b", ("office",))
    install_models(prepared_models(tmp_path_factory), desk_home)
    # its need (about 5 GB for sentences up to 64 phonemes) may be more than a busy test machine has free:
    # these two short sentences need less (tests/e2e/test_train.py does the same)
    desk, _ = node_agent(tmp_path / "b", broker, "gpu-desktop", ("office",), VOICE_AGENT_WORKER="true",
                         VOICE_AGENT_TRAIN_MEMORY_CHECK="false")
    probe = Probe(broker.port)
    try:
        agent.wait_log("ready")
        desk.wait_log("ready")
        wait_nodes(f"http://127.0.0.1:{port}", lambda n: n.get("gpu-desktop", {}).get("online"))
        response = probe.request("default", "train", {
            "provider": "kokoro", "speaker": "joe", "when": "now",
            "params": {"epochs": 2, "baseVoice": "jm_kumo", "minMinutes": 0, "minSamples": 2, "lines": 1}})
        assert response["status"] == "ok", response
        job = response["data"]["job"]["id"]

        def event(name: str, timeout: float) -> dict[str, object]:
            def match(topic: str, payload: bytes) -> bool:
                return topic == f"voice/default/event/{name}" and json.loads(payload)["data"]["job"] == job

            return json.loads(probe.wait_for(match, timeout)[1])["data"]  # type: ignore[no-any-return]

        progress = event("training.progress", 120)
        assert progress["node"] == "gpu-desktop" and progress["total"] == 2
        finished = event("training.finished", 240)
        packs = home / "profiles" / "default" / "out" / "voices" / "kokoro-voicepacks" / "joe"
        outputs = [Path(str(p)) for p in finished["outputs"]]  # type: ignore[attr-defined]
        assert sorted(p.name for p in outputs) == ["joe.npy", "joe.pt"] and all(p.parent == packs for p in outputs)
        pack = np.load(packs / "joe.npy")
        assert pack.dtype == np.float32 and pack.shape[-1] == 256 and np.isfinite(pack).all()
        log = (home / "logs" / "run" / "kokoro-training-joe.log").read_text()
        assert "taken by worker gpu-desktop" in log and "trained files kept: joe.npy, joe.pt" in log
        assert not (home / "out" / "models" / "kokoro").exists()  # trained where the models are, not here
        # the dataset went by hash: B's cache holds exactly A's files
        blobs = sorted(p.name for p in (desk.home / "out" / "blobs").iterdir())
        assert blobs == sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in dataset.iterdir())
        voice = probe.request("default", "train.status", {"job": job})["data"]["job"]["voice"]
        assert voice and voice["tts"]["provider"] == "kokoro", voice
    finally:
        probe.close()
        agent.stop()
        desk.stop()
        broker.stop()
