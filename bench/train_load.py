"""Speak latency while a CPU training job runs, against idle (goal <= 1.5x).

The job is the tests' counting trainer with no sleep between steps: a pure-CPU stand-in that
keeps one core busy, at nice 19 with one thread, exactly as the runner starts real trainers.
Run by hand: `.venv/bin/python bench/train_load.py`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import AgentProcess, Probe, make_home, write_json  # noqa: E402
from tests.mosquitto import Mosquitto  # noqa: E402

TEXT = "The front door has been open for ten minutes. Shall I remind everyone to close it?"


def latencies(probe: Probe, rounds: int, tag: str) -> list[float]:
    found = []
    for i in range(rounds):
        start = time.perf_counter()
        response = probe.request("default", "speak", {"id": f"{tag}-{i}", "text": f"{TEXT} ({i})"})
        assert response["status"] == "ok", response
        found.append((time.perf_counter() - start) * 1000)
        time.sleep(0.2)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    env = {"VOICE_AGENT_BASE_TOPIC": "bench", "PYTHONPATH": str(REPO),
           "VOICE_AGENT_EXTRA_TRAINERS": json.dumps({"counting": "tests.fake_trainer:CountingTrainer"})}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = Mosquitto(root / "mq").start()
        home = make_home(root / "home")
        write_json(home / "profiles" / "default" / "etc" / "voice.json", {"cache": {"enabled": False}})
        agent = AgentProcess(home, broker.port, env).start()
        try:
            agent.wait_log("ready")
            probe = Probe(broker.port, base="bench")
            latencies(probe, 3, "warm")
            idle = latencies(probe, args.rounds, "idle")
            job = probe.request("default", "train", {"provider": "counting", "when": "now",
                                                     "params": {"steps": 100000, "step_seconds": 0, "save_every": 1000}})
            job_id = job["data"]["job"]["id"]
            probe.event("default", "training.progress")
            busy = latencies(probe, args.rounds, "busy")
            progress = probe.request("default", "train.status", {"job": job_id})["data"]["job"]["progress"]
            probe.request("default", "train.cancel", {"job": job_id})
            probe.close()
        finally:
            agent.stop()
            broker.stop()
    print(json.dumps({
        "speak_idle_ms_median": round(statistics.median(idle), 1),
        "speak_during_training_ms_median": round(statistics.median(busy), 1),
        "speak_during_training_ms_max": round(max(busy), 1),
        "ratio_of_medians": round(statistics.median(busy) / statistics.median(idle), 2),
        "training_steps_done_meanwhile": progress.get("step"),
    }, indent=2))


if __name__ == "__main__":
    main()
