"""Training jobs run by worker nodes, in one process: the home's job runner whose launch sends
the job to a worker (agent/train/remote.py), a broker stand-in that hands each job to one worker
in turn (as a shared subscription does), and real ``TrainWorker``s that run real job processes
(the stand-in trainer of tests/fake_trainer.py). What lands at home, what a lost worker leaves
(a resume from the last checkpoint held at home), what no worker says, and that nothing
half-received becomes a checkpoint or a voice."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import pytest

from agent.blobs.cache import BlobCache
from agent.blobs.index import BlobIndex, kept_roots
from agent.blobs.offers import Offered, Offers
from agent.errors import ServiceError
from agent.events import EventBus, StateBoard
from agent.gpu.arbiter import GpuArbiter
from agent.gpu.hogs import HogPauser
from agent.layout import Layout
from agent.nodes.placement import ANY_WORKER, Bounds
from agent.nodes.registry import NodeRegistry
from agent.nodes.state import Ability, NodeState
from agent.nodes.train_worker import TrainWorker
from agent.nodes.work import BlobRef, FileData, TrainReply, TrainWork, WorkError
from agent.train import remote as remote_module
from agent.train.jobs import Job, JobStore
from agent.train.registry import trainers
from agent.train.received import held_checkpoint, keep_checkpoint, land_outputs
from agent.train.remote import RemoteTraining
from agent.train.runner import JobRunner, Launch
from agent.train.schedule import IdlePolicy, parse_window
from tests.agent.gpu.test_arbiter import FakeGpus
from tests.agent.nodes.standins import TOKEN, Blobs, Broker
from tests.agent.train.test_runner import Recorder
from tests.conftest import REPO
from tests.fake_trainer import expected_value

EXTRA = {"counting": "tests.fake_trainer:CountingTrainer"}


def document(node: str, worker: bool = True, trains: bool = True) -> bytes:
    return NodeState(node=node, worker=worker, url=f"http://{node}:8080",
                     providers=[Ability(provider="counting", trains=trains)]).to_json()


@contextmanager
def no_gpu(need: int, purpose: Literal["training"], pause: bool) -> Iterator[Literal["cpu", "cuda"]]:
    yield "cpu"


class Household:
    def __init__(self, root: Path, workers: tuple[str, ...], bounds: Bounds) -> None:
        self.layout = Layout(root / "home")
        (self.layout.profiles_root / "default").mkdir(parents=True)
        self.registry = NodeRegistry()
        self.registry.heard("home", NodeState(node="home", url="http://home:8080").to_json())
        for name in workers:
            self.registry.heard(name, document(name))
        self.index = BlobIndex(lambda: kept_roots(self.layout))
        self.broker = Broker("train")
        self.remote = RemoteTraining("home", "http://home:8080", self.registry, self.index, token=lambda: TOKEN,
                                     bounds=bounds)
        self.remote.use(self.broker)
        self.blobs = Blobs(self.index)
        self.workers = {name: self.worker(name, root) for name in workers}
        self.broker.connect(self.remote, self.workers)
        self.recorder = Recorder()
        self.jobs = JobStore(self.layout.jobs_db)
        events, state = EventBus(), StateBoard()
        events.listen(self.recorder)
        state.watch(self.recorder.state)
        arbiter = GpuArbiter(FakeGpus(24000, 1000, available=False), HogPauser([], root / "paused.json"), lambda n, d: None)
        self.run_on: str = ANY_WORKER
        self.runner = JobRunner(self.jobs, self.layout, events, state,
                                IdlePolicy(parse_window("00:00-23:59"), quiet_seconds=60), arbiter, self.prepare,
                                max_restarts=3)

    def worker(self, name: str, root: Path) -> TrainWorker:
        layout = Layout(root / name)
        return TrainWorker(name, layout, self.blobs, lambda: TOKEN,  # type: ignore[arg-type]
                           lambda node: "http://home:8080" if node == "home" else None,
                           lambda: trainers(EXTRA), no_gpu, alive_s=0.1, progress_s=0.0,
                           home_online=self.registry.online)

    def prepare(self, job: Job) -> Launch:
        where = self.remote.place(self.run_on if self.run_on != ANY_WORKER else "auto", job.provider)
        if where.code:
            raise ServiceError(where.code, where.reason)
        return Launch("tests.fake_trainer:CountingTrainer", self.dataset(job.speaker),
                      self.layout.voice_folder(job.profile, "counting-models", job.speaker),
                      self.layout.training_dir(job.profile, job.id), need_vram_mb=0, pause_hogs=False,
                      remote=self.remote.starter(where))

    def dataset(self, speaker: str) -> Path:
        folder = self.layout.voice_folder("default", "counting-datasets", speaker)
        if not folder.is_dir():
            folder.mkdir(parents=True)
            (folder / "s0.wav").write_bytes(b"RIFF" + speaker.encode())
            (folder / "metadata.csv").write_text(f"s0.wav|{speaker}\n")
        return folder

    def job(self, steps: int, step_seconds: float = 0.01, speaker: str = "owner") -> Job:
        job = self.jobs.create("default", "counting", speaker, {"steps": steps, "step_seconds": step_seconds,
                                                                "save_every": 5}, "now")
        self.runner.enqueue(job)
        self.runner.tick()
        return job

    def wait_state(self, job: Job, state: str, timeout: float = 60) -> Job:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.runner.tick()
            found = self.jobs.get(job.id)
            if found is not None and found.state == state and self.runner.running_job is None:
                return found
            time.sleep(0.05)
        raise AssertionError(f"job never {state}: {self.jobs.get(job.id)}; events {[e for e, _ in self.recorder.events]}")

    def result(self, speaker: str = "owner") -> str:
        return (self.layout.voice_folder("default", "counting-models", speaker) / "result.txt").read_text()

    def kill(self, name: str) -> None:
        """The worker vanishes: the broker drops its words and tells its last will."""
        self.broker.dead.add(name)
        self.registry.heard(name, NodeState.offline(name).to_json())

    def stop(self) -> None:
        self.runner.stop()
        for worker in self.workers.values():
            worker.stop(wait_s=10)
        self.jobs.close()


FAST = Bounds(first_reply_s=1.0, silence_s=5.0, tries=3, audio_s=30.0, output="progress")


@pytest.fixture()
def household(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Household]]:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    made: list[Household] = []

    def make(workers: tuple[str, ...] = ("desk",), bounds: Bounds = FAST) -> Household:
        made.append(Household(tmp_path, workers, bounds))
        return made[-1]

    yield make
    for found in made:
        found.stop()


def test_a_job_runs_on_a_worker_and_lands_here_as_a_local_one_would(household: Callable[..., Household]) -> None:
    home = household()
    job = home.job(steps=20)
    home.wait_state(job, "finished")
    assert home.result() == expected_value("owner", 20)
    started = home.recorder.named("training.started")[0]
    assert started["device"] == "remote" and started["pid"] is None
    progress = home.recorder.named("training.progress")
    assert progress and all(p["node"] == "desk" for p in progress) and progress[-1]["step"] == 20
    assert [c["step"] for c in home.recorder.named("training.checkpoint")][:1] == [5]
    finished = home.recorder.wait("training.finished")  # the state is written before the event is told
    assert finished["outputs"] == [str(home.layout.voice_folder("default", "counting-models", "owner") / "result.txt")]
    assert finished["metrics"]["steps"] == 20
    # the dataset, fetched by the hashes of the home's files
    assert sorted(home.blobs.asked) == sorted(str(home.index.hash_of(p)) for p in home.dataset("owner").iterdir())
    assert home.workers["desk"].taken == 1 and home.workers["desk"].running() is None
    log = home.layout.status_files("counting", "owner").log_path.read_text()
    assert "taken by worker desk" in log and "trained files kept: result.txt" in log


def test_a_lost_worker_resumes_on_another_from_the_checkpoint_held_here(household: Callable[..., Household]) -> None:
    home = household(("attic", "desk"))
    home.run_on = "desk"
    job = home.job(steps=60, step_seconds=0.03)
    home.recorder.wait("training.checkpoint", count=2)
    held, step = held_checkpoint(home.layout.training_dir("default", job.id))
    assert held is not None and step >= 10 and json.loads((held / "state.json").read_text())["step"] == step
    home.run_on = ANY_WORKER
    home.kill("desk")
    paused = home.recorder.wait("training.paused")
    assert paused["code"] == "worker_lost" and "desk went offline" in paused["reason"], paused
    home.wait_state(job, "finished")
    assert home.result() == expected_value("owner", 60)  # the steps after the checkpoint, done again on attic
    assert home.workers["attic"].taken == 1
    resumed = [p for p in home.recorder.named("training.progress") if p["node"] == "attic"]
    assert resumed and min(p["step"] for p in resumed) >= step


def test_a_job_no_worker_takes_fails_with_no_worker_at_once(household: Callable[..., Household]) -> None:
    home = household(("desk",))
    home.kill("desk")
    home.run_on = "desk"
    failed = home.wait_state(home.job(steps=5), "failed")
    assert "is offline" in (failed.error or "")
    assert home.recorder.wait("training.failed")["code"] == "no_worker"
    home.registry.heard("desk", document("desk"))  # its document says it is back, but it never answers
    failed = home.wait_state(home.job(steps=5, speaker="silent"), "failed")
    assert "no worker answered within 1 s" in (failed.error or "")
    assert home.recorder.wait("training.failed", count=2)["code"] == "no_worker"


def test_a_worker_without_the_trainer_declines_and_one_that_is_busy_passes_it_on(
        household: Callable[..., Household], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote_module, "BUSY_RETRY_S", 0.2)
    home = household(("attic", "desk"))
    attic = home.workers["attic"]
    home.workers["attic"] = TrainWorker("attic", Layout(home.layout.home.parent / "attic"), home.blobs,  # type: ignore[arg-type]
                                        lambda: TOKEN, lambda node: "http://home:8080", lambda: {}, no_gpu)
    home.broker.workers = home.workers
    attic.stop()
    job = home.job(steps=5)
    home.wait_state(job, "finished")
    assert home.workers["desk"].taken == 1 and home.workers["attic"].taken == 0

    busy = [True]
    home.workers["attic"] = home.worker("attic", home.layout.home.parent)
    home.workers["desk"] = TrainWorker("desk", Layout(home.layout.home.parent / "desk2"), home.blobs,  # type: ignore[arg-type]
                                       lambda: TOKEN, lambda node: "http://home:8080", lambda: trainers(EXTRA), no_gpu,
                                       busy=lambda: busy[0], alive_s=0.1)
    home.workers["attic"]._busy = lambda: busy[0]  # both busy with their own jobs
    home.broker.workers = home.workers
    job = home.job(steps=5, speaker="waits")
    deadline = time.monotonic() + 10
    while "every worker is busy" not in home.layout.status_files("counting", "waits").log_path.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    busy[0] = False
    home.wait_state(job, "finished")
    assert home.result("waits") == expected_value("waits", 5)


def test_a_stop_checkpoints_on_the_worker_and_the_job_waits_here(household: Callable[..., Household]) -> None:
    home = household()
    job = home.job(steps=400, step_seconds=0.02)
    home.recorder.wait("training.checkpoint")
    home.runner.stop()  # the home is stopping: the worker checkpoints and says so
    assert "agent is stopping" in home.recorder.wait("training.paused")["reason"]  # told once the state is written
    found = home.jobs.get(job.id)
    assert found is not None and found.state == "queued" and home.broker.stops == ["desk"]
    held, step = held_checkpoint(home.layout.training_dir("default", job.id))
    assert held is not None and 0 < step < 400
    deadline = time.monotonic() + 10
    while home.workers["desk"].running() is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_unsealed_jobs_and_replies_are_not_taken(household: Callable[..., Household]) -> None:
    home = household()
    said: list[bytes] = []
    work = TrainWork(id="j.1", job="j", home="home", home_url="http://home:8080", profile="default", provider="counting",
                     speaker="owner", dataset=[{"sha256": "ab" * 32, "size": 1, "name": "s0.wav"}])  # type: ignore[list-item]
    home.workers["desk"].take("counting", work.to_json(), said.append)
    home.workers["desk"].take("counting", work.sealed("another").to_json(), said.append)
    assert said == [] and home.workers["desk"].taken == 0
    waiting = home.remote.wait_for("j.1")
    reply = b'{"kind": "alive", "node": "desk", "id": "j.1"}'
    assert home.remote.replied(b"j.1", reply) and waiting.empty()  # its, and not taken: no seal
    assert not home.remote.replied(b"someone-else", reply)  # not a training job's correlation


def test_a_checkpoint_is_kept_whole_or_not_at_all(tmp_path: Path) -> None:
    folder = tmp_path / "job"
    first = keep_checkpoint(folder, [FileData.of("state.json", b'{"step": 5}'), FileData.of("best.npy", b"5")], 5)
    assert held_checkpoint(folder) == (first, 5)
    bad = FileData.of("best.npy", b"10").model_copy(update={"data": base64.b64encode(b"11").decode()})
    with pytest.raises(WorkError, match="not the one named"):
        keep_checkpoint(folder, [FileData.of("state.json", b'{"step": 10}'), bad], 10)
    assert held_checkpoint(folder) == (first, 5) and sorted(p.name for p in folder.iterdir()) == [first.name, "remote.json"]
    second = keep_checkpoint(folder, [FileData.of("state.json", b'{"step": 10}')], 10)
    assert held_checkpoint(folder) == (second, 10) and not first.exists()
    assert [p.name for p in second.iterdir()] == ["state.json"]
    (folder / "remote.json").write_text('{"folder": "..", "step": 3}')  # a pointer that points away
    assert held_checkpoint(folder) == (None, 0)


def test_trained_files_land_only_when_every_one_is_the_one_named(tmp_path: Path) -> None:
    good, bad = FileData.of("joe.npy", b"pack"), FileData.of("joe.pt", b"torch")
    bad = bad.model_copy(update={"size": 4})
    with pytest.raises(WorkError):
        land_outputs(tmp_path, [good, bad])
    assert list(tmp_path.iterdir()) == []
    assert land_outputs(tmp_path, [good]) == [tmp_path / "joe.npy"] and (tmp_path / "joe.npy").read_bytes() == b"pack"
    assert list(tmp_path.iterdir()) == [tmp_path / "joe.npy"]
    with pytest.raises(WorkError, match="^a finished job sent no trained files$"):
        land_outputs(tmp_path, [])


def test_a_dataset_outside_the_lent_folders_does_not_go_out(household: Callable[..., Household], tmp_path: Path) -> None:
    home = household()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "s0.wav").write_bytes(b"RIFF")
    job = home.jobs.create("default", "counting", "owner", {}, "now")
    launch = Launch("x:Y", outside, tmp_path / "out", tmp_path / "ckpt", 0, False)
    with pytest.raises(ServiceError) as refused:
        home.remote.work_for(job, launch)
    assert refused.value.code == "not_lendable" and "s0.wav" in str(refused.value)


def test_a_worker_that_was_killed_clears_its_unfinished_jobs_folders_at_its_start(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "desk")
    left = layout.work_dir / "train" / "0123456789abcdef"
    (left / "checkpoint").mkdir(parents=True)
    (left / "checkpoint" / "state.json").write_text("{}")
    (layout.work_dir / "train" / "logs").mkdir()
    (layout.work_dir / "train" / "logs" / "0123456789abcdef.log").write_text("--- a job\n")
    worker = TrainWorker("desk", layout, Blobs(BlobIndex(lambda: [])), lambda: TOKEN,  # type: ignore[arg-type]
                         lambda node: None, lambda: trainers(EXTRA), no_gpu)
    worker.start()
    assert [p.name for p in (layout.work_dir / "train").iterdir()] == ["logs"]
    assert (layout.work_dir / "train" / "logs" / "0123456789abcdef.log").is_file()
    TrainWorker("attic", Layout(tmp_path / "attic"), Blobs(BlobIndex(lambda: [])), lambda: TOKEN,  # type: ignore[arg-type]
                lambda node: None, lambda: {}, no_gpu).start()  # nothing there yet: nothing to do


class Door:
    """A worker's HTTP door: its blob route, serving what it offers."""

    def __init__(self, offers: Offers) -> None:
        from agent.http.server import HttpEdge
        from agent.settings import AgentSettings
        from tests.agent.http.fake_core import fake_core
        from tests.mosquitto import free_port

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.edge = HttpEdge(fake_core(offers=offers), AgentSettings(http_port=port, http_token=TOKEN))  # type: ignore[arg-type]
        self.edge.start()


def offering(home: Household, root: Path, name: str, offers: Offers) -> Door:
    """Worker ``name`` with a door of its own that sends every file by hash (none in a reply)."""
    door = Door(offers)
    home.workers[name] = TrainWorker(name, Layout(root / name), home.blobs, lambda: TOKEN,  # type: ignore[arg-type]
                                     lambda node: "http://home:8080" if node == "home" else None,
                                     lambda: trainers(EXTRA), no_gpu, alive_s=0.1, progress_s=0.0,
                                     home_online=home.registry.online, offers=offers, url=door.url, inline_bytes=0)
    home.broker.workers = home.workers
    home.registry.heard(name, NodeState(node=name, worker=True, url=door.url,
                                        providers=[Ability(provider="counting", trains=True)]).to_json())
    home.remote._cache = BlobCache(home.layout.blob_cache, 10 << 20)
    return door


def test_files_a_worker_offers_come_home_by_hash_and_it_lets_them_go(
        household: Callable[..., Household], tmp_path: Path) -> None:
    home = household()
    offers = Offers(tmp_path / "desk-offered")
    door = offering(home, tmp_path, "desk", offers)
    try:
        job = home.job(steps=20)
        home.wait_state(job, "finished")
        assert home.result() == expected_value("owner", 20)
        assert [c["step"] for c in home.recorder.named("training.checkpoint")][:1] == [5]
        log = home.layout.status_files("counting", "owner").log_path.read_text()
        assert "fetched state.json" in log and "fetched result.txt" in log and "trained files kept: result.txt" in log
        assert list(home.layout.blob_cache.iterdir()) == []  # moved out of the cache: the home's own now
        deadline = time.monotonic() + 10
        while offers.held():  # released as each came (and all at the job's end)
            assert time.monotonic() < deadline, offers.held()
            time.sleep(0.02)
    finally:
        door.edge.stop()


class Damaging(Offers):
    """Offers whose trained files are damaged after they were hashed (a disk, a transfer gone bad)."""

    def offer(self, job: str, kind: str, files: list[Path], move: bool = False) -> list[Offered]:
        got = super().offer(job, kind, files, move)
        for item in got if kind == "trained" else []:
            found = self.find(item.sha256)
            assert found is not None
            found.write_bytes(b"X" * item.size)
        return got


def test_a_corrupted_transfer_never_becomes_a_model_or_a_checkpoint(
        household: Callable[..., Household], tmp_path: Path) -> None:
    home = household()
    door = offering(home, tmp_path, "desk", Damaging(tmp_path / "desk-offered"))
    try:
        job = home.job(steps=6)
        failed = home.wait_state(job, "failed")
        assert "died 4 times" in (failed.error or "")  # each try's trained files refused; then no more tries
        paused = home.recorder.named("training.paused")
        assert paused and all(p["code"] == "worker_failed" and "blob_corrupt" in p["reason"] for p in paused), paused
        models = home.layout.voice_folder("default", "counting-models", "owner")
        assert not models.exists() or list(models.iterdir()) == []
        out = home.layout.profiles_root / "default"
        assert [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix in (".part", ".tmp")] == []
        assert [p for p in home.layout.blob_cache.iterdir()] == []  # no half of it kept either
    finally:
        door.edge.stop()


def test_a_worker_whose_offers_are_not_at_its_own_door_gets_no_token_and_a_broken_fetch_resumes(tmp_path: Path) -> None:
    registry = NodeRegistry()
    registry.heard("desk", NodeState(node="desk", worker=True, url="http://desk:8080").to_json())
    asked: list[tuple[str, str, str]] = []
    broken = [2]

    class Cache:
        def take(self, sha256: str, url: str, token: str, target: Path, size: int | None = None) -> Path:
            asked.append((sha256, url, token))
            if broken[0]:
                broken[0] -= 1
                raise ServiceError("blob_fetch_failed", "the connection broke")
            target.write_bytes(b"x")
            return target

    remote = RemoteTraining("home", "http://home:8080", registry, BlobIndex(lambda: []), token=lambda: TOKEN,
                            cache=Cache())  # type: ignore[arg-type]
    ref = BlobRef(sha256="ab" * 32, size=1, name="joe.pth")
    reply = TrainReply(kind="done", node="desk", id="j.1", fetch=[ref], url="http://desk:8080")
    assert remote.fetcher(reply.model_copy(update={"fetch": []})) is None
    for elsewhere in ("http://mallory:8080", ""):
        with pytest.raises(WorkError, match="nothing fetched"):
            remote.fetcher(reply.model_copy(update={"url": elsewhere}))
    with pytest.raises(WorkError, match="nothing fetched"):
        remote.fetcher(reply.model_copy(update={"node": "attic"}))  # a node with no document
    fetch = remote.fetcher(reply)
    assert fetch is not None and asked == []
    fetch(ref, tmp_path / "joe.pth")  # two broken tries, the third completes
    assert asked == [("ab" * 32, "http://desk:8080", TOKEN)] * 3 and (tmp_path / "joe.pth").read_bytes() == b"x"
    broken[0] = 3
    with pytest.raises(ServiceError, match="broke"):
        fetch(ref, tmp_path / "again.pth")
    assert len(asked) == 3 + remote_module.FETCH_TRIES


def test_what_a_reply_brings_is_received_whole_or_not_at_all(tmp_path: Path) -> None:
    ref = BlobRef(sha256="ab" * 32, size=1, name="joe.pth")

    def fails(ref: BlobRef, target: Path) -> None:
        target.write_bytes(b"half")
        raise ServiceError("blob_corrupt", "not the one named")

    with pytest.raises(ServiceError):
        land_outputs(tmp_path / "voices", [FileData.of("joe.index", b"i")], [ref], fails, staging=tmp_path / "job")
    assert not (tmp_path / "voices").exists() and list((tmp_path / "job").iterdir()) == []
    with pytest.raises(ServiceError):
        keep_checkpoint(tmp_path / "job", [FileData.of("a.json", b"{}")], 3, [ref], fails)
    assert list((tmp_path / "job").iterdir()) == [] and held_checkpoint(tmp_path / "job") == (None, 0)
    with pytest.raises(WorkError, match="offers none"):
        keep_checkpoint(tmp_path / "job", [], 3, [ref], None)
    with pytest.raises(WorkError, match="twice"):
        land_outputs(tmp_path / "voices", [FileData.of("joe.pth", b"i")], [ref], fails)

    def fetched(ref: BlobRef, target: Path) -> None:
        target.write_bytes(b"model")

    landed = land_outputs(tmp_path / "voices", [FileData.of("joe.index", b"i")], [ref], fetched, staging=tmp_path / "job")
    assert landed == [tmp_path / "voices" / "joe.index", tmp_path / "voices" / "joe.pth"]
    assert (tmp_path / "voices" / "joe.pth").read_bytes() == b"model" and list((tmp_path / "job").iterdir()) == []
    kept = keep_checkpoint(tmp_path / "job", [], 4, [ref], fetched)
    assert held_checkpoint(tmp_path / "job") == (kept, 4) and (kept / "joe.pth").read_bytes() == b"model"
