"""The home's side of a training job on a worker (agent/train/remote.py), in process and without a
job process: the broker replaced by a link that keeps what is sent, the worker's replies handed in
by the test. Where a job goes, what a worker is sent (its files by hash, the checkpoint held here),
which replies are taken, and the job process's lines, exit code and ``lost`` the runner gets for
each way a job ends. tests/agent/train/test_remote.py runs real workers and job processes."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agent.blobs.index import sha256_file
from agent.errors import ServiceError
from agent.nodes.placement import ANY_WORKER, Bounds, Place
from agent.nodes.registry import NodeRegistry
from agent.nodes.state import Ability, NodeState
from agent.nodes.work import FileData, StopWork, TrainProgress, TrainReply, read_stop, read_train_job
from agent.train import received
from agent.train import remote as module
from agent.train.jobs import Job
from agent.train.received import held_checkpoint, keep_checkpoint
from agent.train.remote import RemoteJob, RemoteTraining
from agent.train.runner import Launch

TOKEN = "household"
WAIT = 10  # seconds before a test gives up waiting (never reached when it works)
BOUNDS = Bounds(first_reply_s=WAIT, silence_s=WAIT, tries=3, audio_s=WAIT, output="progress")


class Lent:
    """The blob index: a file under ``root`` is lent by its hash, no other."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def hash_of(self, path: Path) -> str | None:
        return sha256_file(path) if self.root in path.parents else None


class Link:
    """The node door as remote training uses it: what it sent, in order."""

    def __init__(self, ready: bool = True) -> None:
        self.is_ready = ready
        self.work: list[tuple[str, str, str | None, bytes, bytes]] = []
        self.stops: list[tuple[str, bytes]] = []
        self._sent = threading.Condition()

    def ready(self) -> bool:
        return self.is_ready

    def send_work(self, kind: str, provider: str, node: str | None, payload: bytes, correlation: bytes) -> None:
        with self._sent:
            self.work.append((kind, provider, node, payload, correlation))
            self._sent.notify_all()

    def send_stop(self, node: str, payload: bytes) -> None:
        with self._sent:
            self.stops.append((node, payload))
            self._sent.notify_all()

    def wait(self, works: int = 0, stops: int = 0) -> None:
        with self._sent:
            assert self._sent.wait_for(lambda: len(self.work) >= works and len(self.stops) >= stops, WAIT)


def worker_doc(node: str, trains: bool = True) -> bytes:
    return NodeState(node=node, worker=True, url=f"http://{node}:8080",
                     providers=[Ability(provider="counting", trains=trains)]).to_json()


class Home:
    def __init__(self, root: Path, bounds: Bounds = BOUNDS, url: str = "http://home:8080", clock: Any = None) -> None:
        self.root = root
        self.registry = NodeRegistry()
        for name in ("desk", "attic"):
            self.registry.heard(name, worker_doc(name))
        self.link = Link()
        self.remote = RemoteTraining("home", url, self.registry, Lent(root / "lent"), token=lambda: TOKEN,  # type: ignore[arg-type]
                                     bounds=bounds, **({} if clock is None else {"clock": clock}))
        self.remote.use(self.link)
        self.dataset = root / "lent" / "dataset"
        self.dataset.mkdir(parents=True)
        (self.dataset / "s0.wav").write_bytes(b"RIFF0")
        (self.dataset / "metadata.csv").write_text("s0.wav|hi\n")
        (self.dataset / ".hidden").write_text("not sent")
        self.launch = Launch("x:Y", self.dataset, root / "lent" / "out", root / "lent" / "ckpt", 0, False)
        self.launch.output_dir.mkdir()
        self.job = Job(id="j1", profile="default", provider="counting", speaker="owner", params={"steps": 10},
                       run_when="now", state="running", created=0.0)
        self.log = io.StringIO()

    def start(self, where: Place = Place(ANY_WORKER, workers=2)) -> RemoteJob:
        started = self.remote.starter(where)(self.job, self.launch, {}, self.log)
        assert isinstance(started, RemoteJob)
        return started

    def say(self, job: RemoteJob, kind: str, node: str = "desk", token: str = TOKEN, **fields: Any) -> None:
        reply = TrainReply.model_validate({"kind": kind, "node": node, "id": job.work.id, **fields})
        assert self.remote.replied(job.work.id.encode(), reply.sealed(token).to_json())

    def end(self, job: RemoteJob) -> tuple[int, list[dict[str, Any]]]:
        code = job.wait(WAIT)
        return code, [json.loads(line) for line in job.stdout]


def test_a_job_sent_to_a_worker_names_its_files_by_hash_and_what_it_sends_back_becomes_the_job_processes_lines(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "agent.train.remote")
    home = Home(tmp_path)
    job = home.start()
    home.link.wait(works=1)
    ((kind, provider, node, payload, correlation),) = home.link.work
    work = read_train_job(payload)
    assert (kind, provider, node, correlation) == ("train", "counting", None, work.id.encode())
    assert work.sealed_by(TOKEN) and work.id.startswith("j1.") and len(work.id) == len("j1.") + 6
    assert (work.job, work.home, work.home_url, work.profile, work.speaker, work.params, work.step) == (
        "j1", "home", "http://home:8080", "default", "owner", {"steps": 10}, 0)
    assert [(r.name, r.sha256, r.size) for r in work.dataset] == [
        (p.name, sha256_file(p), p.stat().st_size) for p in (home.dataset / "metadata.csv", home.dataset / "s0.wav")]
    assert work.checkpoint == []
    home.say(job, "accepted")
    home.say(job, "alive")
    home.say(job, "progress", progress=TrainProgress(step=3, total=10, loss=0.5))
    home.say(job, "progress", progress=TrainProgress(step=5, total=10, checkpoint=True),
             files=[FileData.of("state.json", b'{"step": 5}')])
    home.say(job, "done", status="finished", files=[FileData.of("result.txt", b"trained"), FileData.of("a.txt", b"1")],
             metrics={"steps": 10.0})
    code, lines = home.end(job)
    assert code == 0 and job.lost is None and job.worker == "desk" and job.pid is None
    assert lines[0] == {"type": "progress", "stage": "", "step": 3, "total": 10, "best": None, "loss": 0.5, "message": "",
                        "checkpoint": False, "node": "desk"}
    assert (lines[1]["step"], lines[1]["checkpoint"]) == (5, True)
    assert lines[2] == {"type": "result", "status": "finished", "metrics": {"steps": 10.0},
                        "outputs": [str(home.launch.output_dir / "result.txt"), str(home.launch.output_dir / "a.txt")]}
    assert (home.launch.output_dir / "result.txt").read_bytes() == b"trained"
    held, step = held_checkpoint(home.launch.checkpoint_dir)
    assert held is not None and step == 5 and (held / "state.json").read_bytes() == b'{"step": 5}'
    said = home.log.getvalue()
    for words in ("remote: published for any worker", "taken by worker desk", "checkpoint of step 5 kept (received-",
                  "trained files kept: result.txt, a.txt"):
        assert words in said
    assert not home.remote.replied(job.work.id.encode(), b"{}")  # done with: no longer waited for
    assert "training job j1: taken by worker desk" in caplog.messages


def test_a_resumed_job_names_the_held_checkpoint_and_a_named_node_gets_it_on_its_own_topic(tmp_path: Path) -> None:
    home = Home(tmp_path)
    held = keep_checkpoint(home.root / "lent" / "ckpt", [FileData.of("state.json", b'{"step": 7}')], 7)
    job = home.start(Place("attic"))
    home.link.wait(works=1)
    (_, _, node, payload, _) = home.link.work[0]
    work = read_train_job(payload)
    assert node == "attic" and work.step == 7
    assert [(r.name, r.sha256) for r in work.checkpoint] == [("state.json", sha256_file(held / "state.json"))]
    assert "published for attic, resuming from the checkpoint of step 7" in home.log.getvalue()
    job.kill()
    assert home.end(job)[0] == -9


def test_a_checkpoint_this_node_does_not_lend_is_not_sent_and_the_job_starts_afresh(tmp_path: Path) -> None:
    home = Home(tmp_path)
    home.launch = Launch("x:Y", home.dataset, home.launch.output_dir, tmp_path / "elsewhere", 0, False)
    keep_checkpoint(tmp_path / "elsewhere", [FileData.of("state.json", b"{}")], 4)
    work = home.remote.work_for(home.job, home.launch)
    assert (work.checkpoint, work.step) == ([], 0)


@pytest.mark.parametrize(("change", "code", "words"), [
    ("empty", "not_ready", "no dataset files in"),
    ("missing", "not_ready", "no dataset files in"),
    ("badname", "not_lendable", "cannot be named to a worker"),
    ("outside", "not_lendable", "is not among the files this node lends"),
    ("speaker", "not_lendable", "cannot go to a worker"),
])
def test_a_job_that_cannot_be_named_to_a_worker_is_refused(tmp_path: Path, change: str, code: str, words: str) -> None:
    home = Home(tmp_path)
    job, launch = home.job, home.launch
    if change == "empty":
        for path in home.dataset.iterdir():
            path.unlink()
        (home.dataset / ".hidden").write_text("hidden files are not sent")
        (home.dataset / "sub").mkdir()
    elif change == "missing":
        launch = Launch("x:Y", tmp_path / "none", launch.output_dir, launch.checkpoint_dir, 0, False)
    elif change == "badname":
        (home.dataset / "a b.wav").write_bytes(b"x")
    elif change == "outside":
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "s0.wav").write_bytes(b"x")
        launch = Launch("x:Y", tmp_path / "other", launch.output_dir, launch.checkpoint_dir, 0, False)
    else:
        job = Job(id="j1", profile="default", provider="counting", speaker="../x", params={}, run_when="now",
                  state="running", created=0.0)
    with pytest.raises(ServiceError) as refused:
        home.remote.work_for(job, launch)
    assert refused.value.code == code and words in str(refused.value)


def test_replies_taken_are_sealed_of_the_waited_job_and_others_are_not_ours(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    home = Home(tmp_path)
    waiting = home.remote.wait_for("j1.aaaaaa")
    good = TrainReply(kind="alive", node="desk", id="j1.aaaaaa")
    assert not home.remote.replied(b"j9.bbbbbb", good.sealed(TOKEN).to_json())  # a speak job's, say
    assert home.remote.replied(b"j1.aaaaaa", b"{not a reply")
    assert home.remote.replied(b"j1.aaaaaa", good.sealed("another").to_json())
    assert home.remote.replied(b"j1.aaaaaa", good.model_copy(update={"id": "j2.cccccc"}).sealed(TOKEN).to_json())
    assert waiting.empty() and caplog.messages[0].startswith("ignored a reply to training job j1.aaaaaa: not a training reply: ")
    assert [m.split(":")[0] for m in caplog.messages] == [
        "ignored a reply to training job j1.aaaaaa", "ignored a reply to training job j1.aaaaaa from desk",
        "ignored a reply of job j2.cccccc under job j1.aaaaaa's correlation"]
    assert home.remote.replied(b"j1.aaaaaa", good.sealed(TOKEN).to_json())
    assert waiting.get_nowait() == good.sealed(TOKEN)
    home.remote.done_with("j1.aaaaaa")
    assert not home.remote.replied(b"j1.aaaaaa", good.sealed(TOKEN).to_json())


def test_where_a_job_goes_depends_on_the_link_and_the_url(tmp_path: Path) -> None:
    home = Home(tmp_path)
    assert home.remote.place("auto", "counting") == Place(ANY_WORKER, workers=2)
    assert home.remote.place("desk", "counting") == Place("desk")
    home.registry.heard("desk", NodeState.offline("desk").to_json())
    assert home.remote.place("desk", "counting").code == "no_worker"
    home.link.is_ready = False
    assert home.remote.place("auto", "counting") == Place(None)
    assert Home(tmp_path / "2", url="").remote.place("auto", "counting") == Place(None)  # no HTTP door: no files to lend
    unlinked = Home(tmp_path / "3")
    unlinked.remote = RemoteTraining("home", "http://home:8080", unlinked.registry, Lent(tmp_path), token=lambda: TOKEN)  # type: ignore[arg-type]
    assert unlinked.remote.place("auto", "counting") == Place(None)  # no door gave it a link (a broker without MQTT 5)
    assert read_stop(home.remote.seal(StopWork(id="j1.aaaaaa", home="home")).to_json()).sealed_by(TOKEN)


def test_a_job_named_for_this_node_or_an_unknown_or_unable_one_stays_here_and_says_why(tmp_path: Path) -> None:
    home = Home(tmp_path)
    assert home.remote.place("home", "counting") == Place(None)  # runOn names this node itself
    assert home.remote.place("cellar", "counting") == Place(None, "no_worker", "node 'cellar' has not been heard of")
    home.registry.heard("desk", worker_doc("desk", trains=False))
    assert home.remote.place("desk", "counting") == Place(
        None, "no_worker", "node 'desk' takes no counting training (VOICE_AGENT_WORKER, its providers)")
    home.registry.heard("desk", NodeState.offline("desk").to_json())
    assert home.remote.place("desk", "counting") == Place(None, "no_worker", "node 'desk' is offline")


def test_a_checkpoint_needs_its_files_each_once_and_one_that_fails_to_land_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for files in ([], [FileData.of("a.bin", b"1"), FileData.of("a.bin", b"2")]):
        with pytest.raises(module.WorkError, match="^a checkpoint needs its files, each once$"):
            keep_checkpoint(tmp_path / "job", files, 3)
    assert not (tmp_path / "job").exists()
    deep = keep_checkpoint(tmp_path / "a" / "b", [FileData.of("a.bin", b"1")], 3)  # its parents made
    assert held_checkpoint(tmp_path / "a" / "b") == (deep, 3)

    def fails(source: Path, target: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(received.os, "rename", fails)
    with pytest.raises(OSError, match="disk full"):
        keep_checkpoint(tmp_path / "a" / "b", [FileData.of("a.bin", b"2")], 4)
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == [deep.name, "remote.json"]
    assert held_checkpoint(tmp_path / "a" / "b") == (deep, 3)


def test_a_stop_is_asked_of_the_worker_that_took_it_and_its_stopped_word_ends_the_job(tmp_path: Path) -> None:
    home = Home(tmp_path)
    job = home.start()
    home.link.wait(works=1)
    home.say(job, "accepted", node="attic")
    home.say(job, "accepted", node="desk")  # lost the race: ignored from now on
    job.send_signal(15)
    home.link.wait(stops=1)
    ((node, payload),) = home.link.stops
    stop = read_stop(payload)
    assert node == "attic" and (stop.id, stop.home) == (job.work.id, "home") and stop.sealed_by(TOKEN)
    home.say(job, "done", node="desk", status="finished", files=[FileData.of("result.txt", b"not this")])
    home.say(job, "done", node="attic", status="stopped", message="its home home asked")
    code, lines = home.end(job)
    assert (code, lines, job.lost, job.worker) == (0, [], None, "attic")
    assert list(home.launch.output_dir.iterdir()) == [] and "asked worker attic to checkpoint and stop" in home.log.getvalue()


def test_a_stop_before_any_worker_took_it_ends_it_at_the_first_reply_bound(tmp_path: Path) -> None:
    home = Home(tmp_path, Bounds(first_reply_s=0.05, silence_s=WAIT, tries=1, audio_s=WAIT, output="progress"))
    job = home.start()
    job.send_signal(15)
    assert home.end(job) == (0, []) and home.link.stops == []


def test_a_worker_that_stops_of_its_own_accord_is_lost_and_the_job_resumes(tmp_path: Path) -> None:
    home = Home(tmp_path)
    job = home.start()
    home.link.wait(works=1)
    home.say(job, "accepted")
    home.say(job, "done", status="stopped")
    assert home.end(job) == (1, [])
    assert job.lost == ("worker_lost", "worker desk stopped the job (its agent is stopping)")


def test_a_worker_that_says_no_last_word_after_the_stop_ends_the_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "STOP_WAIT_S", 0.05)
    home = Home(tmp_path)
    job = home.start()
    home.link.wait(works=1)
    home.say(job, "accepted")
    job.send_signal(15)
    assert home.end(job) == (1, []) and "worker desk said no last word within 0.05 s of the stop" in home.log.getvalue()


def test_a_worker_that_goes_offline_or_fails_is_lost_and_one_that_is_never_heard_is_no_worker(tmp_path: Path) -> None:
    home = Home(tmp_path)
    job = home.start()
    home.link.wait(works=1)
    home.say(job, "accepted")
    home.registry.heard("desk", NodeState.offline("desk").to_json())
    assert home.end(job) == (1, []) and job.lost is not None and job.lost[0] == "worker_lost"
    assert "desk" in job.lost[1]

    home = Home(tmp_path / "2")
    job = home.start()
    home.link.wait(works=1)
    home.say(job, "accepted")
    home.say(job, "failed", code="blob_fetch_failed", message="no blob")
    assert home.end(job) == (1, []) and job.lost == ("worker_failed", "worker desk failed (blob_fetch_failed): no blob")

    home = Home(tmp_path / "3", Bounds(first_reply_s=0.05, silence_s=WAIT, tries=1, audio_s=WAIT, output="progress"))
    job = home.start(Place("desk"))
    code, lines = home.end(job)
    assert (code, job.lost, [line["status"] for line in lines]) == (0, None, ["failed"])
    assert lines[0]["code"] == "no_worker" and lines[0]["error"].startswith("no worker took the job: ")


def test_declines_go_to_the_next_worker_and_busy_ones_are_asked_again_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "BUSY_RETRY_S", 0.01)
    home = Home(tmp_path)
    job = home.start(Place(ANY_WORKER, workers=2))
    home.link.wait(works=1)
    home.say(job, "declined", code="busy")  # no words: its code says it
    home.link.wait(works=2)  # published again for another worker
    home.say(job, "declined", node="attic", code="busy", message="attic too")
    home.link.wait(works=3)  # every worker busy: asked again after BUSY_RETRY_S
    assert "every worker is busy (desk: busy; attic: attic too); trying again in 0.01 s" in home.log.getvalue()
    home.say(job, "accepted", node="attic")
    home.say(job, "done", node="attic", status="refused", message="too short")
    code, lines = home.end(job)
    assert (code, lines) == (0, [{"type": "result", "status": "refused", "error": "too short"}])

    home = Home(tmp_path / "2")
    job = home.start(Place("desk"))
    home.link.wait(works=1)
    home.say(job, "declined", code="trainer_unavailable", message="desk has no counting trainer")
    code, lines = home.end(job)
    assert code == 0 and lines[0]["code"] == "no_worker" and len(home.link.work) == 1
    assert lines[0]["error"] == "no worker took the job: every try was declined (desk: desk has no counting trainer)"
    assert "declined by desk (trainer_unavailable): desk has no counting trainer" in home.log.getvalue()


def test_busy_workers_are_waited_for_at_most_busy_wait_s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "BUSY_RETRY_S", 0.01)
    monkeypatch.setattr(module, "BUSY_WAIT_S", 0.0)
    home = Home(tmp_path)
    job = home.start(Place("desk"))
    home.link.wait(works=1)
    home.say(job, "declined", code="busy", message="desk runs a training job already")
    code, lines = home.end(job)
    assert code == 0 and lines[0]["code"] == "no_worker" and len(home.link.work) == 1


def test_files_that_are_not_the_ones_named_are_not_kept(tmp_path: Path) -> None:
    home = Home(tmp_path)
    job = home.start()
    home.link.wait(works=1)
    bad = FileData.of("state.json", b"1").model_copy(update={"size": 2})
    home.say(job, "accepted")
    home.say(job, "progress", progress=TrainProgress(step=5, total=10, checkpoint=True), files=[bad])
    home.say(job, "progress")  # no report: an empty one
    home.say(job, "done", status="finished", files=[bad])
    code, lines = home.end(job)
    assert code == 1 and job.lost is not None and job.lost[0] == "worker_failed"
    assert job.lost[1].startswith("worker desk failed (blob_corrupt): its trained files were not kept: file state.json")
    assert [(line["step"], line["checkpoint"]) for line in lines] == [(5, False), (0, False)]
    assert held_checkpoint(home.launch.checkpoint_dir) == (None, 0) and list(home.launch.output_dir.iterdir()) == []
    said = home.log.getvalue()
    assert "the checkpoint of step 5 from desk was not kept" in said and "the trained files from desk were not kept" in said


def test_a_job_without_a_link_fails_and_the_runner_never_waits_for_ever(tmp_path: Path) -> None:
    home = Home(tmp_path)
    home.remote.link = None
    job = home.start()
    assert home.end(job) == (1, [])
    assert job.lost is not None and job.lost[0] == "worker_lost" and "no connection for work" in job.lost[1]
    home = Home(tmp_path / "2")
    home.log.close()  # the log closed under it: the agent's own log has it
    job = home.start()
    home.link.wait(works=1)
    with pytest.raises(subprocess.TimeoutExpired) as waited:
        job.wait(0.01)
    assert (waited.value.cmd, waited.value.timeout) == ("training job j1 on None", 0.01)
    job.kill()
    assert job.wait(WAIT) == -9


class Clock:
    """The home's clock, moved by the test; ``settle`` waits until the job has taken every reply."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def settle(job: RemoteJob) -> None:
    deadline = time.monotonic() + WAIT
    while not job._replies.empty():
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.parametrize("word", ["alive", "progress"])
def test_each_word_of_the_worker_that_took_it_moves_its_bounds(tmp_path: Path, word: str) -> None:
    clock = Clock()
    home = Home(tmp_path, Bounds(first_reply_s=WAIT, silence_s=10.0, tries=1, audio_s=10.0 if word == "progress" else 1e9,
                                 output="progress"), clock=clock)
    job = home.start()
    home.link.wait(works=1)
    home.say(job, "accepted")
    settle(job)
    clock.now = 9.0
    home.say(job, word, progress=TrainProgress(step=1, total=9) if word == "progress" else None)
    home.say(job, "alive", node="attic")  # not the worker that took it: no word of this job
    settle(job)
    clock.now = 15.0  # 10 s after its accept, 6 s after its word
    with pytest.raises(subprocess.TimeoutExpired):
        job.wait(1.0)  # a few turns of its loop at 15 s: still waiting (a job whose bounds did not move ends)
    home.say(job, "done", status="refused", message="no")
    code, lines = home.end(job)
    assert (code, job.lost, lines[-1]["status"]) == (0, None, "refused")


def test_a_correlation_that_is_not_text_is_no_training_jobs(tmp_path: Path) -> None:
    home = Home(tmp_path)
    assert not home.remote.replied(b"\xff\xfe", b"{}")


def test_a_pointer_to_no_checkpoint_or_of_no_step_holds_none(tmp_path: Path) -> None:
    held = keep_checkpoint(tmp_path, [FileData.of("a.bin", b"1")], 3)
    for pointer in ({"folder": "received-gone", "step": 3}, {"folder": held.name, "step": "3"},
                    {"folder": f"{held.name}/..", "step": 3}, {"step": 3}, [held.name]):
        (tmp_path / "remote.json").write_text(json.dumps(pointer))
        assert held_checkpoint(tmp_path) == (None, 0), pointer
