"""The worker's side of training for other nodes (agent/nodes/train_worker.py), in process: the job
process replaced by a scripted one (its stdout lines, its exit code, the signals it gets), the blob
cache by the home's files. What a worker takes or declines, what it lays out for the job process,
what it sends home (progress, a checkpoint's files, the trained files, each sealed) and how a job
ends: finished, refused, stopped as asked, failed. tests/agent/train/test_remote.py runs the real
job process against a real home."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal

import pytest

from agent.blobs.index import sha256_file
from agent.blobs.offers import Offers
from agent.layout import Layout
from agent.nodes import train_worker as module
from agent.nodes.train_worker import TrainWorker
from agent.nodes.work import BlobRef, Release, StopWork, TrainReply, TrainWork, read_train_reply
from providers.spec import TrainerSpec
from tests.fake_trainer import CountingParams

TOKEN = "household"
HOME_URL = "http://home:8080"
SPEC = TrainerSpec("tests.fake_trainer:CountingTrainer", CountingParams, "counting-models")
WAIT = 10  # seconds before a test gives up waiting for the job's last word (never reached when it works)

Script = Callable[["Process", dict[str, Any]], Iterator[str]]


class Process:
    """A job process: ``script`` yields its stdout lines (it may wait for a signal); then ``code``."""

    def __init__(self, script: Script, document: dict[str, Any], code: int) -> None:
        self.signals: list[int] = []
        self.killed = threading.Event()
        self.signalled = threading.Event()
        self.code = code
        self.ended = False
        self.stdout = self._lines(script, document)

    def _lines(self, script: Script, document: dict[str, Any]) -> Iterator[str]:
        yield from script(self, document)
        self.ended = True

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)
        self.signalled.set()

    def poll(self) -> int | None:
        return self.code if self.ended else None

    def kill(self) -> None:
        self.killed.set()

    def wait(self) -> int:
        return self.code


class Home:
    """The home's files by hash (the blob cache's ``get``), and the replies its jobs got."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, Path] = {}
        self.fetched: list[tuple[str, str, str, int | None]] = []
        self.replies: list[TrainReply] = []
        self.on_fetch: Callable[[], None] = lambda: None
        self._last = threading.Condition()

    def file(self, name: str, content: bytes) -> BlobRef:
        path = self.root / "home-files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        self.files[sha256_file(path)] = path
        return BlobRef(sha256=sha256_file(path), size=len(content), name=name)

    def get(self, sha256: str, url: str, token: str, size: int | None = None) -> Path:
        self.fetched.append((sha256, url, token, size))
        self.on_fetch()
        return self.files[sha256]

    def reply(self, payload: bytes) -> None:
        reply = read_train_reply(payload)
        assert reply.sealed_by(TOKEN), reply
        with self._last:
            self.replies.append(reply)
            self._last.notify_all()

    def last(self) -> TrainReply:
        """The job's last word (``done`` or ``failed``), waiting for it."""
        with self._last:
            assert self._last.wait_for(lambda: any(r.kind in ("done", "failed") for r in self.replies), WAIT), self.replies
            return self.replies[-1]

    def kinds(self) -> list[str]:
        return [r.kind for r in self.replies if r.kind != "alive"]


@contextmanager
def on_cpu(need: int, purpose: Literal["training"], pause: bool) -> Iterator[Literal["cpu", "cuda"]]:
    assert (need, purpose, pause) == (1200, "training", True)
    yield "cpu"


class Setup:
    def __init__(self, root: Path, script: Script, code: int = 0, **options: Any) -> None:
        self.home = Home(root)
        self.layout = Layout(root / "desk")
        self.documents: list[dict[str, Any]] = []
        self.processes: list[Process] = []
        self.script, self.code = script, code
        options = {"alive_s": 60.0, "progress_s": 0.0, **options}
        self.worker = TrainWorker("desk", self.layout, self.home, lambda: TOKEN,  # type: ignore[arg-type]
                                  lambda node: HOME_URL if node == "home" else None, lambda: {"counting": SPEC}, on_cpu,
                                  need_vram_mb=1200, pause_hogs=True, start=self.start, **options)

    def start(self, document: dict[str, Any], log_file: IO[str]) -> Process:
        self.documents.append(document)
        self.processes.append(Process(self.script, document, self.code))
        return self.processes[-1]

    def job(self, **changes: Any) -> TrainWork:
        fields: dict[str, Any] = {
            "id": "j1.abc123", "job": "j1", "home": "home", "home_url": HOME_URL, "profile": "default",
            "provider": "counting", "speaker": "owner", "params": {"steps": 10},
            "dataset": [self.home.file("s0.wav", b"RIFF0"), self.home.file("metadata.csv", b"s0.wav|hi\n")], **changes}
        return TrainWork.model_validate(fields).sealed(TOKEN)

    def take(self, job: TrainWork, provider: str = "counting", answers: bool = True) -> None:
        self.worker.take(provider, job.to_json(), self.home.reply, lambda home: answers and home == job.home)


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def progress(step: int, total: int = 10, checkpoint: bool = False) -> str:
    return json.dumps({"type": "progress", "stage": "training", "step": step, "total": total, "loss": 0.5,
                       "checkpoint": checkpoint}) + "\n"


def result(status: str, **fields: Any) -> str:
    return json.dumps({"type": "result", "status": status, **fields}) + "\n"


def finishing(process: Process, document: dict[str, Any]) -> Iterator[str]:
    """A trainer that sees its files, checkpoints at step 7 and leaves ``result.txt``."""
    dataset, checkpoint, output = (Path(document[k]) for k in ("dataset_dir", "checkpoint_dir", "output_dir"))
    assert {p.name: p.read_bytes() for p in dataset.iterdir()} == {"s0.wav": b"RIFF0", "metadata.csv": b"s0.wav|hi\n"}
    assert {p.name: p.read_bytes() for p in checkpoint.iterdir()} == {"state.json": b'{"step": 5}'}
    assert list(output.iterdir()) == []
    yield progress(6)
    yield "a line that is not JSON\n"
    yield "[1, 2]\n"
    yield json.dumps({"type": "log", "step": 99}) + "\n"
    (checkpoint / "state.json").write_bytes(b'{"step": 7}')
    (checkpoint / ".partial").write_bytes(b"half")
    yield progress(7, checkpoint=True)
    (output / "result.txt").write_bytes(b"trained")
    yield result("finished", outputs=[str(output / "result.txt")], metrics={"steps": 10, "name": "x", "loss": 0.25})


def test_a_job_runs_on_its_fetched_files_and_its_progress_checkpoint_and_trained_files_go_home(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "agent.nodes.train_worker")
    setup = Setup(tmp_path, finishing)
    held = setup.home.file("state.json", b'{"step": 5}')
    job = setup.job(checkpoint=[held], step=5)
    setup.take(job)
    last = setup.home.last()
    assert setup.home.kinds() == ["accepted", "progress", "progress", "done"]
    assert all((r.node, r.id) == ("desk", "j1.abc123") for r in setup.home.replies)
    first, checkpoint = setup.home.replies[1:3]
    assert first.progress is not None and (first.progress.step, first.progress.total, first.progress.loss) == (6, 10, 0.5)
    assert first.files == [] and checkpoint.progress is not None and checkpoint.progress.checkpoint
    assert [(f.name, f.content()) for f in checkpoint.files] == [("state.json", b'{"step": 7}')]  # no hidden file
    assert (last.status, [(f.name, f.content()) for f in last.files]) == ("finished", [("result.txt", b"trained")])
    assert last.metrics == {"steps": 10.0, "loss": 0.25}
    # fetched from the home's own door with the token, by hash and size
    assert sorted(setup.home.fetched) == sorted((ref.sha256, HOME_URL, TOKEN, ref.size) for ref in [*job.dataset, held])
    (document,) = setup.documents
    folder = Path(document["dataset_dir"]).parent
    assert folder.parent == setup.layout.work_dir / "train" and len(folder.name) == 16
    assert document["trainer"] == SPEC.target and (document["profile"], document["speaker"]) == ("default", "owner")
    assert document["params"] == CountingParams(steps=10).model_dump(mode="json")  # checked, defaults filled in
    assert (document["device"], document["nice"]) == ("cpu", 19)
    assert document["output_dir"] == str(folder / "output") and document["checkpoint_dir"] == str(folder / "checkpoint")
    assert document["ctx"] == {"profile": "default", "profile_dir": str(folder), "data_dir": str(setup.layout.models_dir),
                               "voices_dirs": [str(folder), str(setup.layout.household_voices)],
                               "run_dir": str(setup.layout.run_dir), "home": str(setup.layout.home),
                               "samples_dir": str(folder / "samples")}
    assert not folder.exists()  # its home holds what matters
    log_text = (setup.layout.work_dir / "train" / "logs" / f"{folder.name}.log").read_text()
    assert "job j1 of home (j1.abc123) on cpu" in log_text
    assert setup.worker.running() is None and setup.worker.taken == 1
    assert "training job j1.abc123 of node home taken (counting/owner, 2 files, resuming from step 5)" in caplog.messages


def test_progress_goes_home_at_most_every_progress_s_but_the_last_step_and_each_checkpoint_always(tmp_path: Path) -> None:
    def steps(process: Process, document: dict[str, Any]) -> Iterator[str]:
        yield from (progress(1), progress(2), progress(3, checkpoint=True), progress(4), progress(10))
        yield result("refused", error="x" * 3000)

    setup = Setup(tmp_path, steps, progress_s=3600.0)
    setup.take(setup.job())
    last = setup.home.last()
    sent = [r.progress.step for r in setup.home.replies if r.kind == "progress" and r.progress is not None]
    assert sent == [1, 3, 10]  # the first (none sent before), the checkpoint, the last step
    assert (last.kind, last.status, last.message) == ("done", "refused", "x" * 2000)


@pytest.mark.parametrize(("code", "lines", "words"), [
    (3, [], "the job process on desk ended (exit code 3) without a result"),
    (-9, [], "the job process on desk ended (signal 9) without a result"),
    (1, [result("finished", outputs=[])], "the job process on desk ended (exit code 1) without a result"),
    (0, [result("refused", error="too short")], None),
    (0, [], "the job process on desk ended (exit code 0) without a result"),
    (1, [result("refused", error="too short")], "the job process on desk ended (exit code 1) without a result"),
])
def test_a_job_process_that_ends_without_a_result_fails_with_how_it_ended(
        tmp_path: Path, code: int, lines: list[str], words: str | None) -> None:
    setup = Setup(tmp_path, lambda process, document: iter(lines), code=code)
    setup.take(setup.job())
    last = setup.home.last()
    if words is None:
        assert (last.kind, last.status, last.message) == ("done", "refused", "too short")
    else:
        assert (last.kind, last.code, last.message) == ("failed", "trainer_died", words)


def test_trained_files_outside_the_output_folder_or_too_large_for_a_reply_fail(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def elsewhere(process: Process, document: dict[str, Any]) -> Iterator[str]:
        (Path(document["output_dir"]) / "a.txt").write_bytes(b"1234")
        yield result("finished", outputs=[str(Path(document["output_dir"]) / "a.txt"), "/etc/passwd"])

    setup = Setup(tmp_path, elsewhere)
    setup.take(setup.job())
    last = setup.home.last()
    assert (last.kind, last.code, last.message) == (
        "failed", "worker_error", "the trainer named 'passwd' as a trained file outside its output folder")

    def missing(process: Process, document: dict[str, Any]) -> Iterator[str]:
        yield result("finished", outputs=[str(Path(document["output_dir"]) / "gone.txt")])

    setup = Setup(tmp_path / "2", missing)
    setup.take(setup.job())
    assert setup.home.last().code == "worker_error"

    def large(process: Process, document: dict[str, Any]) -> Iterator[str]:
        for name in ("a.txt", "b.txt"):
            (Path(document["output_dir"]) / name).write_bytes(b"12")
        yield result("finished", outputs=[str(Path(document["output_dir"]) / n) for n in ("a.txt", "b.txt")])

    setup = Setup(tmp_path / "3", large, inline_bytes=4)
    setup.take(setup.job())
    assert setup.home.last().kind == "done"  # 4 bytes: just fits
    setup = Setup(tmp_path / "4", large, inline_bytes=3)
    setup.take(setup.job())
    last = setup.home.last()
    assert (last.kind, last.code) == ("failed", "too_large") and last.message.startswith("the trained files take more than")

    def huge(process: Process, document: dict[str, Any]) -> Iterator[str]:
        (Path(document["output_dir"]) / "a.bin").write_bytes(b"1" * (1 << 20) + b"1")
        yield result("finished", outputs=[str(Path(document["output_dir"]) / "a.bin")])

    setup = Setup(tmp_path / "5", huge, inline_bytes=1 << 20)
    setup.take(setup.job())
    assert setup.home.last().message == ("the trained files take more than 1 MB: too much for a reply, and this worker "
                                         "offers no files (its HTTP door and token are off)")


def test_a_job_whose_home_url_is_not_its_homes_or_whose_params_are_wrong_fetches_nothing_and_fails(tmp_path: Path) -> None:
    setup = Setup(tmp_path, finishing)
    setup.take(setup.job(home_url="http://attacker:8080"))
    last = setup.home.last()
    assert (last.kind, last.code) == ("failed", "untrusted_home") and "http://attacker:8080" in last.message
    setup = Setup(tmp_path / "long", finishing)
    setup.take(setup.job(home_url="http://" + "a" * 2100))
    last = setup.home.last()
    assert (last.kind, last.code, len(last.message)) == ("failed", "untrusted_home", 2000)  # cut to what a reply holds
    setup = Setup(tmp_path / "2", finishing)
    setup.take(setup.job(params={"steps": 0}))
    last = setup.home.last()
    assert (last.kind, last.code) == ("failed", "invalid_params") and last.message.startswith("the job's params: ")
    assert setup.home.fetched == [] and setup.documents == []


def test_a_bug_fails_the_job_and_not_the_worker(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def broken(process: Process, document: dict[str, Any]) -> Iterator[str]:
        raise RuntimeError("boom")
        yield ""

    setup = Setup(tmp_path, broken)
    setup.take(setup.job())
    last = setup.home.last()
    assert (last.kind, last.code, last.message) == ("failed", "worker_error", "RuntimeError: boom")
    assert "training job j1.abc123 of home failed" in caplog.messages
    setup.script = finishing  # the next job runs
    setup.take(setup.job(id="j2.abc123", checkpoint=[setup.home.file("state.json", b'{"step": 5}')]))
    with setup.home._last:
        assert setup.home._last.wait_for(lambda: setup.home.replies[-1].status == "finished", WAIT)


def test_what_a_worker_declines_and_what_it_ignores(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gate = threading.Event()

    def waits(process: Process, document: dict[str, Any]) -> Iterator[str]:
        gate.wait(WAIT)
        yield result("refused", error="done waiting")

    busy = [False]
    setup = Setup(tmp_path, waits, busy=lambda: busy[0])
    job = setup.job()
    setup.worker.take("counting", b"{not json", setup.home.reply)
    setup.worker.take("counting", job.model_copy(update={"mac": ""}).to_json(), setup.home.reply)
    setup.worker.take("counting", job.sealed("another").to_json(), setup.home.reply)
    setup.take(job, answers=False)  # its response topic is not its home's
    assert setup.home.replies == [] and setup.worker.taken == 0
    assert any("not sealed with this household's token" in m for m in caplog.messages)
    assert any("its response topic is not that node's" in m for m in caplog.messages)
    setup.take(job, provider="rvc")  # on another provider's topic
    setup.take(setup.job(provider="rvc"), provider="rvc")  # no such trainer here
    busy[0] = True
    setup.take(job)  # its own runner runs a job
    assert [(r.kind, r.code, r.message) for r in setup.home.replies] == [
        ("declined", "trainer_unavailable", "desk has no counting trainer"),
        ("declined", "trainer_unavailable", "desk has no rvc trainer"),
        ("declined", "busy", "desk runs a training job already")]
    busy[0] = False
    setup.take(job)
    assert setup.home.replies[-1].kind == "accepted" and setup.worker.running() == job.id and setup.worker.taken == 1
    setup.take(setup.job(id="j2.abc123"))
    assert (setup.home.replies[-1].kind, setup.home.replies[-1].code) == ("declined", "busy")
    gate.set()
    assert setup.home.last().status == "refused"
    replies = len(setup.home.replies)
    setup.take(job)  # the same job again (published once more): taken already
    assert len(setup.home.replies) == replies and setup.worker.taken == 1 and setup.worker.running() is None


def test_the_ids_of_taken_jobs_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "TAKEN_IDS", 2)
    setup = Setup(tmp_path, lambda process, document: iter([result("refused", error="no")]))
    for n in range(3):
        setup.take(setup.job(id=f"j{n}.abc123"))
        with setup.home._last:
            assert setup.home._last.wait_for(lambda: len([r for r in setup.home.replies if r.kind == "done"]) == n + 1, WAIT)
    assert list(setup.worker._taken_ids) == ["j1.abc123", "j2.abc123"]
    setup.take(setup.job(id="j0.abc123"))  # forgotten: taken again
    assert setup.worker.taken == 4


def stops_when_asked(process: Process, document: dict[str, Any]) -> Iterator[str]:
    yield progress(1)
    assert process.signalled.wait(WAIT)


def test_a_stop_from_the_jobs_own_home_stops_it_and_stopped_goes_home(tmp_path: Path) -> None:
    setup = Setup(tmp_path, stops_when_asked, code=-15)
    job = setup.job()
    setup.take(job)
    with setup.home._last:
        assert setup.home._last.wait_for(lambda: setup.home.kinds()[-1:] == ["progress"], WAIT)
    setup.worker.stop_asked(b"not a stop")
    setup.worker.stop_asked(StopWork(id=job.id, home="home").sealed("another").to_json())
    setup.worker.stop_asked(StopWork(id="j9.abc123", home="home").sealed(TOKEN).to_json())
    setup.worker.stop_asked(StopWork(id=job.id, home="attic").sealed(TOKEN).to_json())
    assert setup.processes[0].signals == []
    setup.worker.stop_asked(StopWork(id=job.id, home="home").sealed(TOKEN).to_json())
    last = setup.home.last()
    assert setup.processes[0].signals == [signal.SIGTERM]
    assert (last.kind, last.status, last.message) == ("done", "stopped", "its home home asked")
    setup.worker.stop_asked(StopWork(id=job.id, home="home").sealed(TOKEN).to_json())  # nothing runs now
    assert setup.processes[0].signals == [signal.SIGTERM]


def test_the_agent_stopping_stops_the_job_and_waits_for_its_last_word(tmp_path: Path) -> None:
    setup = Setup(tmp_path, stops_when_asked, code=-15)
    setup.worker.stop()  # nothing runs: nothing to wait for
    setup.take(setup.job())
    with setup.home._last:
        assert setup.home._last.wait_for(lambda: setup.home.kinds()[-1:] == ["progress"], WAIT)
    setup.worker.stop(wait_s=WAIT)
    last = setup.home.replies[-1]  # said before stop returned
    assert (last.kind, last.status, last.message) == ("done", "stopped", "its worker's agent is stopping")


def test_a_stop_while_the_files_come_starts_no_process(tmp_path: Path) -> None:
    setup = Setup(tmp_path, finishing)
    job = setup.job()
    setup.home.on_fetch = lambda: setup.worker.stop_asked(StopWork(id=job.id, home="home").sealed(TOKEN).to_json())
    setup.take(job)
    last = setup.home.last()
    assert (last.kind, last.status, last.message) == ("done", "stopped", "its home home asked") and setup.documents == []


def test_a_job_whose_home_goes_offline_is_stopped_and_alive_is_said_meanwhile(tmp_path: Path) -> None:
    online = [True]
    setup = Setup(tmp_path, stops_when_asked, code=-15, alive_s=0.01, home_online=lambda node: online[0] or node != "home")
    setup.take(setup.job())
    with setup.home._last:
        assert setup.home._last.wait_for(lambda: [r.kind for r in setup.home.replies].count("alive") >= 2, WAIT)
    assert setup.processes[0].signals == []
    online[0] = False
    last = setup.home.last()
    assert (last.status, last.message) == ("stopped", "its home home went offline")


def test_a_trainer_that_ignores_its_sigterm_is_killed_after_the_grace(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(module, "STOP_GRACE_S", 0.0)

    def stubborn(process: Process, document: dict[str, Any]) -> Iterator[str]:
        yield progress(1)
        assert process.killed.wait(WAIT)

    setup = Setup(tmp_path, stubborn, code=-9)
    job = setup.job()
    setup.take(job)
    with setup.home._last:
        assert setup.home._last.wait_for(lambda: setup.home.kinds()[-1:] == ["progress"], WAIT)
    setup.worker.stop_asked(StopWork(id=job.id, home="home").sealed(TOKEN).to_json())
    assert setup.home.last().status == "stopped" and setup.processes[0].killed.is_set()
    assert "a training job for another node did not stop within 0 s of its SIGTERM: killed" in caplog.messages


def test_a_checkpoint_too_large_for_a_reply_goes_without_its_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def big(process: Process, document: dict[str, Any]) -> Iterator[str]:
        (Path(document["checkpoint_dir"]) / "a.bin").write_bytes(b"1234")
        yield progress(5, checkpoint=True)
        (Path(document["checkpoint_dir"]) / "b.bin").write_bytes(b"5")
        yield progress(6, checkpoint=True)
        yield result("refused", error="no")

    setup = Setup(tmp_path, big, inline_bytes=4)
    setup.take(setup.job())
    setup.home.last()
    sent = [r for r in setup.home.replies if r.kind == "progress"]
    assert [[f.name for f in r.files] for r in sent] == [["a.bin"], []] and all(not r.fetch for r in sent)
    assert "a checkpoint of more than 4 bytes does not fit a reply, and this worker offers no files: not sent" \
        in caplog.messages


def test_only_the_last_job_logs_are_kept_and_an_earlier_runs_folders_go_at_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "agent.nodes.train_worker")
    monkeypatch.setattr(module, "KEEP_LOGS", 2)
    setup = Setup(tmp_path, lambda process, document: iter([result("refused", error="no")]))
    logs = setup.layout.work_dir / "train" / "logs"
    logs.mkdir(parents=True)
    for n in range(3):
        (logs / f"old{n}.log").write_text("x")
        os.utime(logs / f"old{n}.log", (1000 - n, 1000 - n))  # old2 is the oldest: by time, not by name
    (setup.layout.work_dir / "train" / "left").mkdir()
    (setup.layout.work_dir / "train" / "a-file").write_text("kept")
    setup.worker.start()
    assert sorted(p.name for p in (setup.layout.work_dir / "train").iterdir()) == ["a-file", "logs"]
    left = setup.layout.work_dir / "train" / "left"
    assert f"removing {left}: a job for another node that an earlier run did not finish" in caplog.messages
    setup.take(setup.job())
    setup.home.last()
    (new,) = [p.name for p in logs.iterdir() if not p.name.startswith("old")]
    assert sorted(p.name for p in logs.iterdir()) == sorted([new, "old0.log", "old1.log"])  # pruned before it opened
    assert sorted(setup.worker.providers()) == ["counting"]


def test_the_agent_stopping_waits_for_the_last_word_only_so_long_and_a_stubborn_trainer_never_holds_it(
        tmp_path: Path) -> None:
    gate = threading.Event()

    def stubborn(process: Process, document: dict[str, Any]) -> Iterator[str]:
        yield progress(1)
        assert gate.wait(WAIT)

    setup = Setup(tmp_path, stubborn, code=-9)
    setup.take(setup.job())
    with setup.home._last:
        assert setup.home._last.wait_for(lambda: setup.home.kinds()[-1:] == ["progress"], WAIT)
    setup.worker.stop(wait_s=0.01)  # returns though the job has not ended
    assert setup.processes[0].signals == [signal.SIGTERM] and setup.home.kinds()[-1] == "progress"
    grace = [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
    assert grace and all(t.daemon for t in grace)  # its kill after the grace never keeps the agent from exiting
    for timer in grace:
        timer.cancel()
    gate.set()
    assert setup.home.last().status == "stopped"


def test_a_stop_that_is_not_one_or_not_for_the_running_job_says_why_it_is_ignored(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "agent.nodes.train_worker")
    setup = Setup(tmp_path, finishing)
    setup.worker.stop_asked(b"[]")
    setup.worker.stop_asked(StopWork(id="j9.abc123", home="home").sealed(TOKEN).to_json())
    assert caplog.messages[0].startswith("ignored a stop: not a stop: ")
    assert caplog.messages[1] == "ignored a stop of job j9.abc123 from home: not the job running here, or not sealed"


def test_the_job_processes_lines_are_read_to_their_end_after_its_result(tmp_path: Path) -> None:
    def late(process: Process, document: dict[str, Any]) -> Iterator[str]:
        yield result("refused", error="no")
        yield progress(10)  # its pipe is drained: a process never blocks on a full one

    setup = Setup(tmp_path, late)
    setup.take(setup.job())
    assert setup.home.last().status == "refused" and setup.home.kinds() == ["accepted", "progress", "done"]


def test_a_fetched_file_is_copied_where_it_cannot_be_linked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def cannot(source: Path, target: Path) -> None:
        raise OSError("another file system")

    monkeypatch.setattr(module.os, "link", cannot)
    setup = Setup(tmp_path, finishing)
    setup.take(setup.job(checkpoint=[setup.home.file("state.json", b'{"step": 5}')], step=5))
    assert setup.home.last().status == "finished"  # ``finishing`` saw every file in place


def test_a_refusal_without_words_says_none(tmp_path: Path) -> None:
    setup = Setup(tmp_path, lambda process, document: iter([result("refused")]))
    setup.take(setup.job())
    last = setup.home.last()
    assert (last.status, last.message) == ("refused", "")


def test_a_trainer_gone_between_the_take_and_the_run_fails_the_job(tmp_path: Path) -> None:
    setup = Setup(tmp_path, finishing)
    calls = iter([{"counting": SPEC}])
    setup.worker._trainers = lambda: next(calls, {})  # the take sees it, the job's thread does not
    setup.take(setup.job())
    last = setup.home.last()
    assert (last.kind, last.code, last.message) == ("failed", "trainer_unavailable", "desk has no counting trainer")


def test_files_too_large_for_a_reply_are_offered_by_hash_until_their_home_releases_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    offers = Offers(tmp_path / "offered")
    setup = Setup(tmp_path, finishing, offers=offers, url="http://desk:8080", inline_bytes=0)
    job = setup.job(checkpoint=[setup.home.file("state.json", b'{"step": 5}')], step=5)
    setup.take(job)
    last = setup.home.last()
    checkpoint = setup.home.replies[2]
    assert checkpoint.files == [] and checkpoint.url == "http://desk:8080"
    assert [(r.name, r.size, r.sha256) for r in checkpoint.fetch] == [("state.json", 11, sha(b'{"step": 7}'))]
    assert (last.status, last.files, last.url) == ("finished", [], "http://desk:8080")
    assert [(r.name, r.sha256) for r in last.fetch] == [("result.txt", sha(b"trained"))]
    # the job's folder is gone; what its home has not fetched yet waits, and only that
    assert offers.held() == sorted([sha(b'{"step": 7}'), sha(b"trained")])
    found = offers.find(sha(b"trained"))
    assert found is not None and found.read_bytes() == b"trained"
    setup.worker.stop_asked(Release(id=job.id, home="home", files=[sha(b"trained")]).sealed("another").to_json())
    setup.worker.stop_asked(Release(id="j9.abc123", home="home").sealed(TOKEN).to_json())  # another job's
    assert len(offers.held()) == 2
    setup.worker.stop_asked(Release(id=job.id, home="home", files=[sha(b"trained")]).sealed(TOKEN).to_json())
    assert offers.held() == [sha(b'{"step": 7}')]
    setup.worker.stop_asked(Release(id=job.id, home="home").sealed(TOKEN).to_json())  # the job is over at home
    assert offers.held() == []

    # not released: the next job's start, or the bound after the job's end, lets them go
    def keyed(process: Process, document: dict[str, Any]) -> Iterator[str]:
        """Files of the job's own (its folder's name is its key)."""
        key = Path(document["output_dir"]).parent.name.encode()
        (Path(document["checkpoint_dir"]) / "state.json").write_bytes(key)
        yield progress(5, checkpoint=True)
        (Path(document["output_dir"]) / "result.txt").write_bytes(key + b" trained")
        yield result("finished", outputs=[str(Path(document["output_dir"]) / "result.txt")])

    setup = Setup(tmp_path / "2", keyed, offers=offers, url="http://desk:8080", inline_bytes=0)
    setup.take(setup.job(id="j2.abc123"))
    assert setup.home.last().status == "finished"
    first = sorted(ref.sha256 for reply in setup.home.replies for ref in reply.fetch)
    assert offers.held() == first and len(first) == 2
    setup.home.replies.clear()
    setup.take(setup.job(id="j3.abc123", params={"steps": 0}))  # taken, and fails before it makes anything
    assert setup.home.last().code == "invalid_params"
    assert offers.held() == []  # taken: the job before's files went
    setup.home.replies.clear()
    monkeypatch.setattr(module, "OFFER_KEEP_S", 0.01)
    setup.take(setup.job(id="j4.abc123"))
    setup.home.last()
    deadline = time.monotonic() + WAIT
    while offers.held():  # nobody fetches them: they go a while after the job's end
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_an_offered_checkpoint_is_one_that_held_still_and_without_a_door_nothing_is_offered(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def restless(process: Process, document: dict[str, Any]) -> Iterator[str]:
        folder = Path(document["checkpoint_dir"])
        (folder / "a.bin").write_bytes(b"1")
        yield progress(5, checkpoint=True)
        yield result("refused", error="no")

    offers = Offers(tmp_path / "offered")
    setup = Setup(tmp_path, restless, offers=offers, url="http://desk:8080", inline_bytes=0)
    offer = offers.offer
    calls = []

    def moving(job: str, kind: str, files: list[Path], move: bool = False) -> list[Any]:
        calls.append(kind)
        got = offer(job, kind, files, move)
        if len(calls) == 1:
            (files[0].parent / "b.bin").write_bytes(b"the next checkpoint")  # written after the listing
        return got

    offers.offer = moving  # type: ignore[method-assign]
    setup.take(setup.job())
    setup.home.last()
    (sent,) = [r for r in setup.home.replies if r.kind == "progress"]
    assert [r.name for r in sent.fetch] == ["a.bin", "b.bin"] and len(calls) == 2  # the second read held still

    calls.clear()
    setup = Setup(tmp_path / "2", restless, offers=offers, url="http://desk:8080", inline_bytes=0)
    offers.offer = lambda *a, **k: (_ for _ in ()).throw(module.ChangedWhileRead("x"))  # type: ignore[method-assign]
    setup.take(setup.job())
    setup.home.last()
    (sent,) = [r for r in setup.home.replies if r.kind == "progress"]
    assert (sent.files, sent.fetch) == ([], []) and any("changed at every read" in m for m in caplog.messages)
    setup = Setup(tmp_path / "2b", restless, offers=offers, url="http://desk:8080", inline_bytes=0)
    offers.offer = lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left"))  # type: ignore[method-assign]
    setup.take(setup.job())
    assert setup.home.last().status == "refused"  # the job goes on without that checkpoint
    (sent,) = [r for r in setup.home.replies if r.kind == "progress"]
    assert (sent.files, sent.fetch) == ([], []) and any("No space left" in m for m in caplog.messages)

    quiet = Offers(tmp_path / "quiet")
    setup = Setup(tmp_path / "3", finishing, offers=quiet, url="", inline_bytes=0)  # no door: no offers
    setup.take(setup.job(checkpoint=[setup.home.file("state.json", b'{"step": 5}')], step=5))
    assert setup.home.last().code == "too_large" and quiet.held() == []
