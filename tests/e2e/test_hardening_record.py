"""The record and train paths' bounds against the running agent and a private Mosquitto (issue 18,
items 6-8): recordings wait in bounded bytes, stream frames too, a `train` flood queues a bounded
number of jobs, and a corrupt `voice-agent.db` takes down neither the agent nor another profile.
bench/record_bounds_bench.py measures the same at full size for bench/RESULTS.md."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.conftest import REPO, AgentProcess, Probe, make_home
from tests.hostile import PeakRss
from tests.mosquitto import Mosquitto, free_port
from tests.speech import OWNER_RATE, owner, wav, with_silence

pytestmark = pytest.mark.slow

MB = 1024 * 1024
BASE = "bounds"
SPEECH = "The weather today is sunny with a light breeze coming from the west."


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[AgentProcess]:
    """An agent as shipped (every bound at its default), with the stand-in trainer."""
    process = AgentProcess(make_home(tmp_path_factory.mktemp("bounds")), broker.port, {
        "VOICE_AGENT_BASE_TOPIC": BASE, "PYTHONPATH": str(REPO), "VOICE_AGENT_IDLE_MINUTES": "100000",  # jobs wait
        "VOICE_AGENT_EXTRA_TRAINERS": json.dumps({"counting": "tests.fake_trainer:CountingTrainer"}),
    }).start()
    process.wait_log("ready")
    yield process
    process.stop()


def answers(probe: Probe, command: str, already: int, count: int, timeout: float = 300) -> list[dict]:
    deadline = time.monotonic() + timeout
    while len(probe.responses("default", command)) - already < count:
        assert time.monotonic() < deadline, probe.responses("default", command)[already:]
        time.sleep(0.05)
    return probe.responses("default", command)[already:]


def test_recordings_wait_in_bounded_bytes(agent: AgentProcess, probe: Probe) -> None:
    """16 recordings of 20 MB at once: all could wait (the count bound), 320 MB in the agent; the
    64 MiB byte bound holds three, the rest are `busy` at once. The first recording starts the
    analysis process, so the others arrive while it loads its models."""
    big = wav(np.random.default_rng(7).normal(0, 0.01, 20000 * 500).astype(np.float32), 20000)  # 500 s, 20 MB
    speech = wav(with_silence(owner(SPEECH), OWNER_RATE), OWNER_RATE)
    assert agent.process is not None
    already = len(probe.responses("default", "record"))
    with PeakRss(agent.process.pid, children=False) as rss:
        before = rss.peak
        probe.client.publish(f"{BASE}/default/request/record", speech, qos=1)
        for _ in range(16):
            probe.client.publish(f"{BASE}/default/request/record", big, qos=1)
        answered = answers(probe, "record", already, 17)
    # was: every one of them waited (+396 MB); now at most 64 MiB waits, plus what is on its way in (+173 MB)
    assert rss.peak - before < 240 * MB, (before / MB, rss.peak / MB)
    busy = [a for a in answered if a.get("code") == "busy"]
    assert len(busy) >= 12, [a.get("code") or a["status"] for a in answered]
    assert "bytes of recordings are waiting to be scored (at most 67108864)" in busy[0]["error"], busy[0]
    kept = probe.request("default", "record", speech, timeout=120)
    assert kept["status"] == "ok" and kept["data"]["kept"], kept  # the bytes of the refused and scored went back


def test_stream_frames_wait_in_bounded_bytes(agent: AgentProcess, probe: Probe) -> None:
    """800 frames of 256 KiB (200 MB) faster than the stream thread cuts them: 2000 could wait
    (500 MB); 16 MiB do, and the rest are dropped with a `stream.error` each."""
    frame = bytes(256 * 1024)  # silence: the stream thread cuts nothing from it, the inbox is all there is
    topic = f"{BASE}/default/stream/flood"
    probe.publish(f"{topic}/start", json.dumps({"sample_rate": 16000}))
    probe.event("default", "stream.started")
    mark = probe.mark()
    assert agent.process is not None
    with PeakRss(agent.process.pid, children=False) as rss:
        before = rss.peak
        for _ in range(800):
            probe.client.publish(f"{topic}/frame", frame, qos=1)
        probe.publish(f"{topic}/stop", b"")
        stopped = probe.event("default", "stream.stopped", after=mark, timeout=120)["data"]
    with probe._lock:
        dropped = [json.loads(p)["data"]["error"] for t, p, _ in probe.seen[mark:] if t.endswith("/event/stream.error")]
    assert rss.peak - before < 80 * MB, (before / MB, rss.peak / MB)  # was: +156 MB; now +21 MB
    assert dropped and all("stream input is backed up" in e for e in dropped), dropped[:3]
    assert "bytes waiting, at most 16777216); frames dropped" in dropped[0], dropped[0]
    assert stopped["seconds"] == pytest.approx((800 - len(dropped)) * 8.192, abs=0.01)  # the rest was heard


def test_a_train_flood_queues_at_most_eight_jobs(agent: AgentProcess, probe: Probe) -> None:
    answered = [probe.request("default", "train", {"provider": "counting", "speaker": f"flood{n}", "when": "idle"})
                for n in range(10)]
    assert [a["status"] for a in answered] == ["ok"] * 8 + ["error"] * 2  # was: 76 of a flood queued
    assert answered[-1]["code"] == "busy"
    assert answered[-1]["error"] == "8 training jobs are already queued (at most 8); cancel one or wait for them"
    cancelled = probe.request("default", "train.cancel", {"job": answered[0]["data"]["job"]["id"]})
    assert cancelled["data"]["job"]["state"] == "cancelled"
    again = probe.request("default", "train", {"provider": "counting", "speaker": "flood9", "when": "idle"})
    assert again["status"] == "ok", again  # a cancelled job makes room
    for job in [a["data"]["job"]["id"] for a in answered[1:8]] + [again["data"]["job"]["id"]]:
        assert probe.request("default", "train.cancel", {"job": job})["status"] == "ok"


def test_a_corrupt_database_takes_down_only_its_profiles_record_path(tmp_path: Path, broker: Mosquitto) -> None:
    """Was: exit 1 at start-up, every profile down (and under systemd a restart loop)."""
    home = make_home(tmp_path / "home", profiles=("default", "kitchen"))
    out = home / "profiles" / "kitchen" / "out"
    (out / "voices" / "samples").mkdir(parents=True)
    audio = wav(with_silence(owner(SPEECH), OWNER_RATE), OWNER_RATE)
    (out / "voices" / "samples" / "20260101-120000-abcdef.wav").write_bytes(audio)
    (out / "voice-agent.db").write_bytes(b"not a database at all\n" * 1000)
    port = free_port()
    probe = Probe(broker.port, base="corrupt")  # before the agent: it hears every state the agent publishes
    agent = AgentProcess(home, broker.port, {"VOICE_AGENT_BASE_TOPIC": "corrupt", "VOICE_AGENT_HTTP_ENABLED": "true",
                                             "VOICE_AGENT_HTTP_PORT": str(port)}).start()
    try:
        agent.wait_log("ready")
        health = requests.get(f"http://127.0.0.1:{port}/api/health", timeout=10).json()
        [aside] = out.glob("voice-agent.db.corrupt-*")
        assert aside.read_bytes() == b"not a database at all\n" * 1000  # kept as it was, for whoever looks into it
        why = (f"voice-agent.db was damaged (file is not a database) and is kept as {aside.name}; 1 sample(s) are "
               "scored again from their WAVs (their transcripts and the enrolled voice were in it)")
        assert health["problems"] == [f"profile 'kitchen': {why}"], health  # still rebuilding: its analysis loads
        state = json.loads(probe.wait_for(lambda t, p: t == "corrupt/kitchen/state" and b"record_problem" in p)[1])
        assert state["record_problem"] == why
        # the other profile records and speaks, the corrupt one speaks
        assert probe.request("default", "record", audio, timeout=120)["data"]["kept"]
        assert probe.request("default", "speak", {"text": "Other profile."}, timeout=60)["status"] == "ok"
        assert probe.request("kitchen", "speak", {"text": "Kitchen."}, timeout=60)["status"] == "ok"
        # and is rebuilt from its WAVs: whole again, in its state and /api/health
        reimported = probe.event("kitchen", "sample.reimported", timeout=240)["data"]
        assert reimported["file"] == "20260101-120000-abcdef.wav" and len(reimported["kept"]) == 1, reimported
        listed = probe.request("kitchen", "samples.list", {})["data"]["samples"]
        assert [s["id"] for s in listed] == reimported["kept"]
        assert requests.get(f"http://127.0.0.1:{port}/api/health", timeout=10).json()["problems"] == []
        assert json.loads(probe.wait_for(lambda t, p: t == "corrupt/kitchen/state"
                                         and json.loads(p).get("record_problem", 0) is None)[1])["samples"] == 1
    finally:
        probe.close()
        assert agent.stop() == 0
