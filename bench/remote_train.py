#!/usr/bin/env python3
"""Training on a worker node (issue 22): what sending a job to a worker adds to it.

Real agents on one Mosquitto: a home node with two profiles, ``here`` (``runOn.train: local``)
and ``there`` (``runOn.train: "worker"``), and a worker node. Both run the tests' stand-in trainer
(tests/fake_trainer.py: ``--steps`` steps of ``--step-seconds``, a checkpoint every 10) on a
one-WAV dataset, alternately; each figure is the time from the ``train`` request to the job's
``training.finished`` event at home. The difference is the hop: publishing the job, the worker's
dataset fetch by hash (the first job only: a cache hit later), its job process, the checkpoints
and the result coming back and landing.

Run by hand: ``.venv/bin/python bench/remote_train.py --repeat 5``."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import REPO, AgentProcess, Probe, make_home, write_json  # noqa: E402
from tests.mosquitto import Mosquitto, free_port  # noqa: E402

TOKEN = "bench-token-" + "t" * 24
ENV = {"VOICE_AGENT_EXTRA_TRAINERS": json.dumps({"counting": "tests.fake_trainer:CountingTrainer"}),
       "PYTHONPATH": str(REPO), "VOICE_AGENT_HTTP_ENABLED": "true", "VOICE_AGENT_HTTP_TOKEN": TOKEN,
       "VOICE_AGENT_HA_DISCOVERY": "false"}


def run_job(probe: Probe, profile: str, speaker: str, steps: int, step_seconds: float) -> float:
    began = time.perf_counter()
    response = probe.request(profile, "train", {"provider": "counting", "speaker": speaker, "when": "now", "params": {
        "steps": steps, "step_seconds": step_seconds, "save_every": 10}})
    assert response["status"] == "ok", response
    job = response["data"]["job"]["id"]

    def finished(topic: str, payload: bytes) -> bool:
        if not topic.startswith(f"voice/{profile}/event/training."):
            return False
        data = json.loads(payload)["data"]
        if data.get("job") == job and topic.endswith(("failed", "cancelled")):
            raise AssertionError(f"job {job}: {data}")
        return bool(data.get("job") == job and topic.endswith("finished"))

    probe.wait_for(finished, timeout=300)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--step-seconds", type=float, default=0.05)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        broker = Mosquitto(work / "mq").start()
        home_dir = make_home(work / "home", ("here", "there"))
        write_json(home_dir / "profiles" / "there" / "etc" / "voice.json", {"runOn": {"train": "worker"}})
        for profile in ("here", "there"):
            for n in range(args.repeat):
                folder = home_dir / "profiles" / profile / "out" / "voices" / "counting-datasets" / f"s{n}"
                folder.mkdir(parents=True)
                (folder / "s0.wav").write_bytes(b"RIFF" + b"\0" * 88_200)  # 2 s at 22.05 kHz: the trainer reads none
                (folder / "metadata.csv").write_text("s0.wav|A sentence.\n")
        port = free_port()
        home = AgentProcess(home_dir, broker.port, {**ENV, "VOICE_AGENT_NODE": "home", "VOICE_AGENT_HTTP_PORT": str(port)})
        worker = AgentProcess(make_home(work / "worker", ("own",)), broker.port, {
            **ENV, "VOICE_AGENT_NODE": "worker", "VOICE_AGENT_WORKER": "true", "VOICE_AGENT_HTTP_PORT": str(free_port())})
        home.start()
        worker.start()
        probe = Probe(broker.port)
        try:
            home.wait_log("ready", 60)
            worker.wait_log("ready", 60)
            time.sleep(3)  # the nodes' documents heard by each other
            here, there = [], []
            for n in range(args.repeat):
                here.append(run_job(probe, "here", f"s{n}", args.steps, args.step_seconds))
                there.append(run_job(probe, "there", f"s{n}", args.steps, args.step_seconds))
            steps_s = args.steps * args.step_seconds
            print(json.dumps({"repeat": args.repeat, "steps": args.steps, "step_seconds": args.step_seconds,
                              "steps_alone_s": round(steps_s, 2),
                              "local_median_s": round(statistics.median(here), 2), "local_min_s": round(min(here), 2),
                              "remote_median_s": round(statistics.median(there), 2), "remote_min_s": round(min(there), 2),
                              "remote_first_s": round(there[0], 2),
                              "added_median_s": round(statistics.median(there) - statistics.median(here), 2)}))
        finally:
            probe.close()
            home.stop()
            worker.stop()
            broker.stop()


if __name__ == "__main__":
    main()
