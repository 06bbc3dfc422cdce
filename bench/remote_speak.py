#!/usr/bin/env python3
"""Speech on a worker node (issue 22).

``--part hop``: what the remote hop itself adds. Two nodes in this process, each with its own
MQTT connection (``mqtt/node.py``) to a real Mosquitto: the home's ``RemoteSpeech`` sends a job,
the worker's ``SpeakWorker`` takes it and its engine (a stand-in that returns a fixed sentence of
PCM at once: the work is nothing, so what is measured is the hop) sends the audio back. Against
the same engine called here. The files are in the worker's cache already (fetching them once is
bench/blob_move.py).

``--part burst``: 20 RVC conversions (the tests' small model of the real format, harvest pitch)
asked of a home node whose profiles say ``runOn: auto``, with 1 then 2 worker agents, real agents
on one Mosquitto; the burst comes from 4 profiles at once (a profile speaks one request at a time).

Run by hand: ``.venv/bin/python bench/remote_speak.py --part hop --repeat 30`` and ``--part burst``."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.blobs.index import BlobIndex  # noqa: E402
from agent.layout import Layout  # noqa: E402
from agent.mqtt.node import NodeDoor  # noqa: E402
from agent.nodes.service import NodeService, NodeSources  # noqa: E402
from agent.nodes.state import Ability, Queues  # noqa: E402
from agent.nodes.worker import SpeakWorker  # noqa: E402
from agent.settings import AgentSettings  # noqa: E402
from agent.speak.engines import ProviderPool  # noqa: E402
from agent.speak.remote import RemoteSpeech  # noqa: E402
from agent.train.remote import RemoteTraining  # noqa: E402
from providers.base import AudioChunk  # noqa: E402
from providers.rvc.config import RvcSettings  # noqa: E402
from tests.conftest import AgentProcess, Probe, make_home, write_json  # noqa: E402
from tests.contexts import loose_context  # noqa: E402
from tests.mosquitto import Mosquitto, free_port  # noqa: E402

TOKEN = "bench-token-" + "b" * 24
SENTENCE = b"\x01\x02" * 40000 * 4  # 4 s at 40 kHz, 16-bit: 320 kB


class Instant:
    name = "rvc"

    def synthesize(self, text: str, settings: Any, ctx: Any) -> Any:
        yield AudioChunk(SENTENCE, 40000, text)


def node(work: Path, broker: Mosquitto, name: str, worker: bool, url: str, index: BlobIndex) -> SimpleNamespace:
    settings = AgentSettings(home=work / name, node=name, mqtt_port=broker.port, worker=worker,
                             mqtt_client_id=f"bench-{name}")
    nodes = NodeService(name, "bench", worker, url, NodeSources(
        profiles=lambda: [], abilities=lambda: [Ability(provider="rvc")], gpu=lambda: {}, queues=lambda: Queues()))
    layout = Layout(work / name)
    pool = ProviderPool(factory=lambda _: Instant())  # type: ignore[arg-type,return-value]
    cache = SimpleNamespace(get=lambda sha, *args, **kw: index.find(sha))  # the files are here already
    core = SimpleNamespace(nodes=nodes, remote=RemoteSpeech(name, url, nodes.registry, index, token=lambda: TOKEN),
                           worker=SpeakWorker(name, layout, pool, cache, lambda: TOKEN,  # type: ignore[arg-type]
                                              lambda home: "http://home:1") if worker else None,
                           remote_train=RemoteTraining(name, url, nodes.registry, index, token=lambda: TOKEN),
                           train_worker=None, train=SimpleNamespace(stop_remote=lambda: None))
    door = NodeDoor(core, settings)  # type: ignore[arg-type]
    door.start()
    return SimpleNamespace(core=core, door=door)


def hop(repeat: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        voices = work / "voices"
        (voices / "rvc-models" / "anna").mkdir(parents=True)
        (voices / "rvc-models" / "anna" / "anna.pth").write_bytes(b"model" * 1000)
        (voices / "rvc-models" / "hubert_base.pt").write_bytes(b"encoder")
        index = BlobIndex(lambda: [voices])
        broker = Mosquitto(work / "mq").start()
        home = node(work, broker, "home", False, "http://home:1", index)
        desk = node(work, broker, "desk", True, "", index)
        try:
            deadline = time.monotonic() + 20
            while not (home.door.ready() and home.core.nodes.registry.online("desk")):
                assert time.monotonic() < deadline, "the nodes never met"
                time.sleep(0.05)
            ctx = loose_context(work / "home-profile", (voices,))
            settings = RvcSettings.model_validate({"speakerId": "anna"})
            where = home.core.remote.place("desk", "rvc")
            local, remote = [], []
            for round_ in range(repeat + 3):
                began = time.perf_counter()
                got = list(Instant().synthesize("Hello there.", settings, ctx))
                here = time.perf_counter() - began
                began = time.perf_counter()
                moved = list(home.core.remote.run("rvc", where, "Hello there.", settings, ctx, lambda n: None))
                there = time.perf_counter() - began
                assert [c.pcm for c in moved] == [c.pcm for c in got]
                if round_ >= 3:  # the first rounds warm the connections and the hash
                    local.append(here)
                    remote.append(there)
            print(json.dumps({"repeat": repeat, "sentence_bytes": len(SENTENCE),
                              "local_median_ms": round(statistics.median(local) * 1000, 2),
                              "remote_median_ms": round(statistics.median(remote) * 1000, 1),
                              "remote_p90_ms": round(sorted(remote)[int(len(remote) * 0.9)] * 1000, 1),
                              "remote_min_ms": round(min(remote) * 1000, 1)}))
        finally:
            desk.door.stop()
            home.door.stop()
            broker.stop()


def burst(count: int, keep: str | None = None) -> None:
    from tests.providers.rvc.fakes import install_rvc_assets

    profiles = ("p1", "p2", "p3", "p4")
    with tempfile.TemporaryDirectory(dir=keep) as scratch:
        work = Path(scratch)
        broker = Mosquitto(work / "mq").start()
        home_dir = make_home(work / "a", profiles)
        install_rvc_assets(home_dir / "out" / "voices")
        for profile in profiles:
            write_json(home_dir / "profiles" / profile / "etc" / "voice.json", {
                "tts": {"provider": "rvc", "rvc": {"f0Method": "harvest"}}, "runOn": {"speak": {"rvc": "auto"}},
                "cache": {"enabled": False}})
        port = free_port()
        env = {"VOICE_AGENT_HTTP_ENABLED": "true", "VOICE_AGENT_HTTP_TOKEN": TOKEN, "VOICE_AGENT_HA_DISCOVERY": "false"}
        home = AgentProcess(home_dir, broker.port, {**env, "VOICE_AGENT_NODE": "home", "VOICE_AGENT_HTTP_PORT": str(port)}).start()
        workers = [AgentProcess(make_home(work / name, (f"{name}-own",)), broker.port, {
            **env, "VOICE_AGENT_NODE": name, "VOICE_AGENT_WORKER": "true", "VOICE_AGENT_HTTP_PORT": str(free_port())})
            for name in ("w1", "w2")]
        probe = Probe(broker.port)
        try:
            home.wait_log("ready")
            for runs in (1, 2):
                workers[runs - 1].start().wait_log("ready", timeout=60)
                time.sleep(3)  # the home hears the new worker's document
                for warm in range(4):  # every worker loads torch and the model before the clock runs
                    probe.request(profiles[warm], "speak", {"text": "Warming up."}, timeout=300)
                answers: list[dict[str, Any]] = []
                began = time.perf_counter()

                def ask(profile: str, share: int) -> None:
                    for n in range(share):
                        answers.append(probe.request(profile, "speak", {"text": f"Number {n} for {profile}, please."},
                                                     timeout=300)["data"])

                threads = [threading.Thread(target=ask, args=(p, count // len(profiles))) for p in profiles]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                took = time.perf_counter() - began
                nodes: dict[str, int] = {}
                for answer in answers:
                    nodes[str(answer.get("node"))] = nodes.get(str(answer.get("node")), 0) + 1
                print(json.dumps({"workers": runs, "conversions": len(answers), "seconds": round(took, 1),
                                  "per_second": round(len(answers) / took, 2), "by_node": nodes,
                                  "fallbacks": sum(1 for a in answers if a.get("fallback"))}))
        finally:
            probe.close()
            for agent in [home, *workers]:
                if agent.process is not None:
                    agent.stop()
            broker.stop()
            if keep:
                import shutil

                shutil.copytree(work, Path(keep) / "last", dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.pt*", "*.index", "blobs"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=("hop", "burst"), default="hop")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--keep", help="a folder for the agents' homes (their logs), kept after the run")
    args = parser.parse_args()
    hop(args.repeat) if args.part == "hop" else burst(args.count, args.keep)


if __name__ == "__main__":
    main()
