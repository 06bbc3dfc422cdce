#!/usr/bin/env python3
"""Memory of the agent and all its processes, path by path: how much it takes at its peak and
what it keeps once the work is done (issue 24).

Each phase starts the real agent (tests/conftest.py's AgentProcess, a private Mosquitto) and a
sampler thread that reads the RSS of the agent's whole process tree (the agent, its analysis
process, a training job's process) every 0.1 s: the peak is the largest sum it saw. "Settled"
is the tree's RSS and USS (memory no other process shares: what stopping it would give back)
after the work and a pause. Sums of RSS count libraries shared between the agent and its
children twice: the USS sum is the floor, the RSS sum the ceiling.

    .venv/bin/python bench/memory.py                          # every phase
    .venv/bin/python bench/memory.py --phases piper,record --record-wait 180
    .venv/bin/python bench/memory.py --phases piper,kokoro --env VOICE_AGENT_SPEAK_ARENA=keep

Phases: piper (idle, then 100 speak requests: settled after --settle s and again after
--release-wait s, past the agent's idle release of ONNX Runtime's arena, VOICE_AGENT_SPEAK_ARENA),
kokoro (100 speak requests with Kokoro, settled the same two ways), record (a
burst of recordings, then --record-wait seconds idle), rvc (a standard-size RVC training on CPU,
a few steps, in a job process as the runner starts it), voicepack (a Kokoro voicepack training
of --voicepack-steps steps, the same way). The training phases run the trainer the way the job
runner does (``python -m agent.train.worker`` with its job document on stdin), without an agent.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import AgentProcess, Probe, make_home, write_json  # noqa: E402
from tests.mosquitto import Mosquitto  # noqa: E402

MB = 1024 * 1024
SPEAK_TEXT = "The washing machine has finished, and the laundry is ready to hang up."
RECORD_TEXT = "This is a recording that the agent scores while nothing else happens."


class TreeSampler:
    """The RSS sum of a process and its descendants every ``interval`` s; the largest one seen."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def tree(self) -> list[psutil.Process]:
        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss(self) -> int:
        total = 0
        for process in self.tree():
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def settled(self) -> dict[str, Any]:
        """RSS and USS of the tree now, and of each process (by its command's last word)."""
        rss = uss = 0
        each = []
        for process in self.tree():
            try:
                info = process.memory_full_info()
                name = " ".join(process.cmdline()[-2:])[-40:]
            except psutil.NoSuchProcess:
                continue
            rss, uss = rss + info.rss, uss + info.uss
            each.append(f"{name}: {info.rss / MB:.0f}")
        return {"rss_mb": round(rss / MB), "uss_mb": round(uss / MB), "processes": each}

    def reset_peak(self) -> None:
        self.peak = self.rss()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> "TreeSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def torch_loaded(pid: int) -> bool:
    """Whether torch's library is mapped into the process (the agent's own, not its children)."""
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@contextmanager
def agent(work: Path, env: dict[str, str], setup: Callable[[Path], None] | None = None) -> Iterator[tuple[AgentProcess, Probe]]:
    broker = Mosquitto(work / "mq").start()
    home = make_home(work / "home")
    write_json(home / "profiles" / "default" / "etc" / "voice.json", {"cache": {"enabled": False}})
    if setup is not None:
        setup(home)
    process = AgentProcess(home, broker.port, {"VOICE_AGENT_BASE_TOPIC": "mem", **env}).start()
    probe = None
    try:
        process.wait_log("ready", timeout=120)
        probe = Probe(broker.port, base="mem")
        yield process, probe
    finally:
        if probe is not None:
            probe.close()
        process.stop()
        broker.stop()


def speaks(probe: Probe, count: int, payload: dict[str, Any]) -> None:
    for index in range(count):
        answer = probe.request("default", "speak", {"text": f"{SPEAK_TEXT} Number {index}.", **payload}, timeout=300)
        assert answer["status"] == "ok", answer


def settled_after_speaking(sampler: TreeSampler, pid: int, args: argparse.Namespace, what: str,
                           peak: int) -> list[dict[str, Any]]:
    """The tree --settle s after the last request, and --release-wait s after it (the agent's idle
    release of the voices' buffers, VOICE_AGENT_SPEAK_RELEASE_SECONDS, comes between)."""
    began = time.monotonic()
    time.sleep(args.settle)
    rows = [{"path": f"{what}, {args.settle:.0f} s after", "peak_mb": round(peak / MB), **sampler.settled(),
             "torch_in_agent": torch_loaded(pid)}]
    time.sleep(max(0.0, args.release_wait - (time.monotonic() - began)))
    rows.append({"path": f"{what}, {args.release_wait:.0f} s after", "peak_mb": None, **sampler.settled()})
    return rows


def phase_piper(work: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    with agent(work, args.agent_env) as (process, probe):
        assert process.process is not None
        pid = process.process.pid
        with TreeSampler(pid) as sampler:
            time.sleep(args.settle)
            rows.append({"path": "idle with Piper (after start)", "peak_mb": round(sampler.peak / MB), **sampler.settled(),
                         "torch_in_agent": torch_loaded(pid)})
            sampler.reset_peak()
            speaks(probe, args.speaks, {})
            rows += settled_after_speaking(sampler, pid, args, f"after {args.speaks} speak requests (Piper)", sampler.peak)
    return rows


def phase_kokoro(work: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    from tests.providers.kokoro.models import install_models, prepared_models

    class Factory:  # prepared_models wants pytest's; only its base folder is used
        @staticmethod
        def getbasetemp() -> Path:
            return Path(tempfile.gettempdir()) / "bench-memory"

    models = prepared_models(Factory())  # type: ignore[arg-type]
    with agent(work, args.agent_env, lambda home: install_models(models, home)) as (process, probe):
        assert process.process is not None
        pid = process.process.pid
        with TreeSampler(pid) as sampler:
            speaks(probe, args.speaks, {"provider": "kokoro"})
            return settled_after_speaking(sampler, pid, args, f"after {args.speaks} speak requests (Kokoro)", sampler.peak)


def phase_record(work: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    from tests.speech import OWNER_RATE, owner, wav, with_silence

    recording = wav(with_silence(owner(RECORD_TEXT), OWNER_RATE), OWNER_RATE)
    rows = []
    env = {**args.agent_env, **({} if args.analysis_idle is None else {"VOICE_AGENT_ANALYSIS_IDLE_SECONDS": str(args.analysis_idle)})}
    with agent(work, env) as (process, probe):
        assert process.process is not None
        pid = process.process.pid
        with TreeSampler(pid) as sampler:
            time.sleep(args.settle)
            sampler.reset_peak()
            began = time.monotonic()
            for index in range(args.recordings):
                probe.publish("mem/default/request/record", recording)
            deadline = time.monotonic() + 600
            while len(probe.responses("default", "record")) < args.recordings and time.monotonic() < deadline:
                time.sleep(0.2)
            answers = probe.responses("default", "record")
            ok = sum(1 for a in answers if a["status"] == "ok")
            warmups = [a["data"].get("warmup_seconds") for a in answers if a["status"] == "ok"]
            rows.append({"path": f"scoring a burst of {args.recordings} recordings ({ok} scored, "
                                 f"{time.monotonic() - began:.0f} s)", "peak_mb": round(sampler.peak / MB),
                         **sampler.settled(), "warmup_seconds": [w for w in warmups if w is not None]})
            time.sleep(args.record_wait)
            rows.append({"path": f"{args.record_wait:.0f} s after the burst", "peak_mb": None, **sampler.settled()})
    return rows


def run_job(work: Path, trainer: str, dataset: Path, params: dict[str, Any], home: Path, stop_after: int) -> dict[str, Any]:
    """The trainer in a job process as the runner starts one (at nice 0 here: the figure is memory,
    not pace), stopped as the runner pauses one (SIGTERM, a checkpoint) after ``stop_after``
    training steps; its tree's peak RSS before the first step ended (setup: models, the dataset
    prepared) and in all, and its own ru_maxrss (from wait4)."""
    from agent.layout import Layout
    from agent.train.worker import context_document

    layout = Layout(home)
    document = {"trainer": trainer, "profile": "default", "speaker": "owner", "params": params,
                "dataset_dir": str(dataset), "output_dir": str(work / "out"), "checkpoint_dir": str(work / "checkpoint"),
                "device": "cpu", "ctx": context_document(layout.provider_context("default")), "nice": 0}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "VOICE_AGENT_HOME": str(home)}
    began = time.monotonic()
    job = subprocess.Popen([sys.executable, "-m", "agent.train.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=open(work / "job.log", "w"), text=True, env=env)
    assert job.stdin is not None and job.stdout is not None
    job.stdin.write(json.dumps(document))
    job.stdin.close()
    steps, setup_peak = 0, None
    with TreeSampler(job.pid) as sampler:
        for line in job.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("type") == "progress" and message.get("stage") == "training":
                steps = max(steps, int(message.get("step", 0)))
                if setup_peak is None and steps >= 1:
                    setup_peak = sampler.peak
                if steps >= stop_after and job.poll() is None:
                    job.send_signal(signal.SIGTERM)
        _, status, usage = os.wait4(job.pid, 0)
    return {"peak_mb": round(sampler.peak / MB), "setup_peak_mb": None if setup_peak is None else round(setup_peak / MB),
            "ru_maxrss_mb": round(usage.ru_maxrss / 1024), "steps": steps,
            "seconds": round(time.monotonic() - began), "exit": os.waitstatus_to_exitcode(status)}


def phase_rvc(work: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    import wave

    import numpy as np

    from tests.providers.rvc.fakes import write_fairseq_hubert
    from tests.speech import owner

    home = make_home(work / "home")
    models = home / "profiles" / "default" / "out" / "voices" / "rvc-models"
    models.mkdir(parents=True)
    write_fairseq_hubert(models / "hubert_base.pt")
    dataset = work / "dataset"
    dataset.mkdir()
    for index, text in enumerate(["The kettle has boiled, so the tea is ready.", "Please water the tomatoes before it gets dark.",
                                  "I will be home a little later than usual tonight.", "The library closes early on holidays."]):
        with wave.open(str(dataset / f"{index:03d}.wav"), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(22050)
            out.writeframes((owner(text) * 32767).astype(np.int16).tobytes())
    params = {"totalEpochs": 100, "saveEveryEpoch": 200, "batchSize": args.rvc_batch, "f0Method": "dio", "size": "standard",
              "minMinutes": 0}
    found = run_job(work, "providers.rvc.trainer:RvcTrainer", dataset, params, home, args.rvc_steps)
    return [{"path": f"RVC training on CPU (standard size, batch {args.rvc_batch}, {found['steps']} epochs of 4 clips)",
             **found}]


def phase_voicepack(work: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    import csv

    import soundfile

    from tests.providers.kokoro.models import install_models, prepared_models
    from tests.speech import OWNER_RATE, owner

    class Factory:
        @staticmethod
        def getbasetemp() -> Path:
            return Path(tempfile.gettempdir()) / "bench-memory"

    home = make_home(work / "home")
    install_models(prepared_models(Factory()), home)  # type: ignore[arg-type]
    dataset = work / "dataset"
    dataset.mkdir()
    lines = ["Please turn off the lights in the living room.", "The meeting has been moved to three o'clock this afternoon.",
             "I left my keys on the kitchen table again."]
    rows = []
    for index, text in enumerate(lines):
        soundfile.write(dataset / f"s{index}.wav", owner(text), OWNER_RATE)
        rows.append([f"s{index}.wav", text])
    with (dataset / "metadata.csv").open("w", newline="") as handle:
        csv.writer(handle, delimiter="|").writerows(rows)
    params = {"epochs": args.voicepack_steps, "checkEvery": args.voicepack_steps, "lines": 1, "maxSamples": 3,
              "minSamples": 3, "minMinutes": 0, "baseVoice": "jm_kumo"}
    found = run_job(work, "providers.kokoro.voicepack_trainer:KokoroVoicepackTrainer", dataset, params, home,
                    args.voicepack_steps)
    return [{"path": f"Kokoro voicepack training ({found['steps']} steps, sentences of 2-4 s)", **found}]


PHASES = {"piper": phase_piper, "kokoro": phase_kokoro, "record": phase_record, "rvc": phase_rvc, "voicepack": phase_voicepack}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated: " + ", ".join(PHASES))
    parser.add_argument("--speaks", type=int, default=100)
    parser.add_argument("--recordings", type=int, default=10)
    parser.add_argument("--record-wait", type=float, default=600.0, help="seconds idle after the burst (default 600)")
    parser.add_argument("--analysis-idle", type=float, default=None, help="VOICE_AGENT_ANALYSIS_IDLE_SECONDS for the agent")
    parser.add_argument("--voicepack-steps", type=int, default=3)
    parser.add_argument("--rvc-batch", type=int, default=8, help="RVC chunks per step (default 8, the trainer's)")
    parser.add_argument("--rvc-steps", type=int, default=3, help="RVC epochs before the job is stopped (default 3)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before a settled figure")
    parser.add_argument("--release-wait", type=float, default=45.0,
                        help="seconds after the last speak request for the second settled figure (default 45: the "
                             "agent's idle release comes 30 s after)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="for the agent (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    args.agent_env = dict(item.split("=", 1) for item in args.env)
    rows: list[dict[str, Any]] = []
    for name in args.phases.split(","):
        with tempfile.TemporaryDirectory() as folder:
            found = PHASES[name](Path(folder), args)
        for row in found:
            print(json.dumps(row), flush=True)
        rows.extend(found)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    print("\n| path | peak (MB, RSS of the tree) | settled RSS (MB) | settled USS (MB) |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['path']} | {row.get('peak_mb') or '—'} | {row.get('rss_mb', '—')} | {row.get('uss_mb', '—')} |")
    print("\n(training rows: setup_peak_mb is the peak before the first step ended; ru_maxrss_mb the job process's own)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
