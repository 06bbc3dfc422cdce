"""Two agents with their own homes and HTTP ports on one Mosquitto, as two machines of one
household: each sees the other's node state, a node killed with -9 shows offline at the other
(its last will), a clean stop says offline itself; and the blob route between them: no token 401,
a hash not kept 404, a resumed transfer completes, a corrupted one is refused."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path

import pytest

from agent.blobs.cache import BlobCache
from agent.errors import ServiceError
from tests.conftest import Probe
from tests.e2e.household import TOKEN, get, node_agent, wait_nodes
from tests.mosquitto import Mosquitto

pytestmark = pytest.mark.slow


def test_nodes_see_each_other_and_a_killed_one_goes_offline(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "mq").start()
    home, home_url = node_agent(tmp_path / "a", broker, "home-server", ("kitchen",), VOICE_AGENT_HA_DISCOVERY="true")
    gpu, gpu_url = node_agent(tmp_path / "b", broker, "gpu-desktop", ("office",), VOICE_AGENT_WORKER="true",
                              VOICE_AGENT_HA_DISCOVERY="true")
    try:
        home.wait_log("ready")
        gpu.wait_log("ready")
        assert "; node home-server" in home.log.read_text() and "MQTT 3.1.1" not in home.log.read_text()
        probe = Probe(broker.port)
        found = wait_nodes(home_url, lambda n: n.get("gpu-desktop", {}).get("online") and n.get("home-server", {}).get("online"))
        desktop = found["gpu-desktop"]
        assert desktop["worker"] and not found["home-server"]["worker"]
        assert {p["provider"] for p in desktop["providers"]} >= {"piper", "kokoro", "rvc"}
        assert desktop["url"].endswith(str(gpu.env["VOICE_AGENT_HTTP_PORT"])) and "memory" in desktop
        assert desktop["profiles"] == ["office"] and found["home-server"]["profiles"] == ["kitchen"]
        wait_nodes(gpu_url, lambda n: n.get("home-server", {}).get("online"))

        # a profile's requests are its home's: the other node says nothing (not unknown_profile)
        assert probe.request("kitchen", "config", {"id": "k1"})["status"] == "ok"
        probe.publish("voice/attic/request/config", json.dumps({"id": "n1"}))  # nobody's: both say so
        probe.wait_for(lambda t, p: t == "voice/attic/response/config" and len(probe.responses("attic", "config")) == 2)
        # each node answers in order: both answered n1, so an answer of either to k1 has come too
        assert [(r["id"], r["status"]) for r in probe.responses("kitchen", "config")] == [("k1", "ok")]
        assert {r["code"] for r in probe.responses("attic", "config")} == {"unknown_profile"}
        # Home Assistant's commands alike: both nodes hear voice/+/hass/+, the profile's home answers
        probe.publish("voice/kitchen/hass/provider", "piper")
        probe.publish("voice/attic/hass/provider", "piper")  # nobody's: both say so, each after any word on kitchen
        assert probe.event("kitchen", "hass.config.set")["data"]["status"] == "ok"
        probe.wait_for(lambda t, p: t == "voice/attic/event/hass.config.set" and len(probe.documents(t)) == 2)
        assert [e["data"]["status"] for e in probe.documents("voice/kitchen/event/hass.config.set")] == ["ok"]
        assert {e["data"]["code"] for e in probe.documents("voice/attic/event/hass.config.set")} == {"unknown_profile"}

        gpu.stop(signal.SIGKILL)  # no clean stop: the broker tells its last will
        found = wait_nodes(home_url, lambda n: not n["gpu-desktop"]["online"])
        assert found["gpu-desktop"]["status"] == "offline" and found["home-server"]["online"]
        retained = json.loads(probe.wait_for(
            lambda t, p: t == "voice/node/gpu-desktop/state" and json.loads(p)["status"] == "offline")[1])
        assert retained == {**retained, "node": "gpu-desktop", "status": "offline"}
        probe.wait_for(lambda t, p: t == "voice/status" and p == b"offline")  # the main connection's will still told

        mark = probe.mark()
        assert home.stop() == 0  # a clean stop says it too
        probe.wait_for(lambda t, p: t == "voice/node/home-server/state" and json.loads(p)["status"] == "offline",
                       timeout=10, after=mark)
        probe.close()
    finally:
        home.stop()
        gpu.stop()
        broker.stop()


def test_the_blob_route_between_nodes(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "mq").start()
    home, url = node_agent(tmp_path / "a", broker, "home-server")
    model = os.urandom(2_000_000)
    sha = hashlib.sha256(model).hexdigest()
    folder = home.home / "profiles" / "default" / "out" / "voices" / "rvc" / "anna"
    folder.mkdir(parents=True)
    (folder / "anna.pth").write_bytes(model)
    try:
        home.wait_log("ready")
        assert get(f"{url}/api/blobs/{sha}", token=None)[0] == 401
        assert get(f"{url}/api/blobs/{'0' * 64}")[0] == 404
        assert get(f"{url}/api/blobs/not-a-hash")[0] == 400

        cache = BlobCache(tmp_path / "worker-cache", 64 << 20)
        cache.folder.mkdir()
        (cache.folder / f"{sha}.part").write_bytes(b"\xff" * 500_000)  # a half that is not the file's
        with pytest.raises(ServiceError) as refused:
            cache.get(sha, url, TOKEN)
        assert refused.value.code == "blob_corrupt" and list(cache.folder.iterdir()) == []

        (cache.folder / f"{sha}.part").write_bytes(model[:500_000])  # a transfer that broke half-way
        assert cache.get(sha, url, TOKEN).read_bytes() == model
        assert [p.name for p in cache.folder.iterdir()] == [sha]
    finally:
        home.stop()
        broker.stop()
