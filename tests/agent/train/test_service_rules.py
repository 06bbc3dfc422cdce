"""Each rule of the train service (agent/train/service.py), in-process: what a refusal carries,
what a queued job holds, the requests' own thread, the plan, a job's voice, the retraining back-off
to the second, what a job is launched with, and which settings reach the runner and the scheduler.

The stand-in trainer is tests/fake_trainer.py (``counting``); the record path has a stand-in
analyser; the machine's memory is a report the test sets."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import agent.train.service as service_module
from agent.config.store import ConfigStore
from agent.errors import ServiceError
from agent.events import EventBus, StateBoard
from agent.gpu.arbiter import GpuArbiter
from agent.gpu.hogs import HogPauser
from agent.layout import Layout
from agent.record.analysis import Analysis
from agent.record.requests import RecordRequest
from agent.record.service import RecordService
from agent.settings import AgentSettings
from agent.train.jobs import Job
from agent.train.requests import JobRequest, LogsRequest, PlanRequest, TrainRequest
from agent.train.service import TrainService
from providers import registry
from tests.agent.gpu.test_arbiter import FakeGpus
from tests.agent.record.test_service import FakeAnalyser, scored
from tests.agent.train.test_memory_checks import Machine
from tests.agent.train.test_service import fill
from tests.fake_trainer import CountingParams

RVC_OUTPUTS = registry.spec("rvc").trainer.outputs  # type: ignore[union-attr]
COUNTING = {"counting": "tests.fake_trainer:CountingTrainer", "plain": "tests.agent.train.test_service_rules:PlainTrainer",
            "named": "tests.agent.train.test_service_rules:NamedTrainer"}


class PlainTrainer:
    """A plugin trainer that says nothing of its voice, steps or memory."""

    params_model = CountingParams


class NamedParams(CountingParams):
    reference: Path | None = None  # not a JSON type: a job holds it as JSON


class NamedTrainer:
    """A plugin trainer whose voice names the speaker, the outputs and the params it was given."""

    params_model = NamedParams

    @staticmethod
    def voice_settings(outputs: Sequence[Path], speaker: str, params: NamedParams) -> dict[str, Any]:
        return {"speaker": speaker, "outputs": [str(p) for p in outputs], "steps": params.steps}


class Rig:
    def __init__(self, home: Path, **settings: Any) -> None:
        for profile in ("default", "den"):
            (home / "profiles" / profile).mkdir(parents=True, exist_ok=True)
        self.home = home
        self.settings = AgentSettings(home=home, extra_trainers=COUNTING, **settings)
        self.layout = Layout(home)
        self.events, self.state = EventBus(), StateBoard()
        self.configs = ConfigStore(self.layout, self.events)
        self.analyser = FakeAnalyser()
        self.records = RecordService(self.layout, self.configs, self.events, self.state, 4, self.analyser)
        self.gpus = FakeGpus(0, 0, available=False)
        self.hogs = HogPauser([], home / "paused.json")
        self.arbiter = GpuArbiter(self.gpus, self.hogs, lambda n, d: None)
        self.machine = Machine()
        self.service = TrainService(self.settings, self.layout, self.configs, self.records, self.events, self.state,
                                    self.arbiter, memory=self.machine)

    def close(self) -> None:
        self.service.stop()
        self.records.stop()

    def voice_json(self, document: dict[str, Any], profile: str = "default") -> None:
        path = self.layout.profile_config(profile)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document))
        self.configs.reload(profile)

    def keep(self, count: int, profile: str = "default") -> None:
        for _ in range(count):
            self.analyser.results.append(Analysis(2.0, [scored(80.0)], []))
            self.records.submit(profile, RecordRequest(audio=b"RIFF")).result(10)

    def submit(self, provider: str = "counting", speaker: str = "owner", profile: str = "default", **fields: Any) -> dict[str, Any]:
        fields.setdefault("when", "idle")
        return self.service.submit(profile, TrainRequest(provider=provider, speaker=speaker, **fields))

    def refusal(self, provider: str = "counting", speaker: str = "owner", profile: str = "default",
                dataset: Path | None = None, **fields: Any) -> ServiceError:
        with pytest.raises(ServiceError) as refused:
            self.service.submit(profile, TrainRequest(provider=provider, speaker=speaker, **fields), dataset)
        return refused.value

    def job(self, provider: str = "counting", speaker: str = "owner", profile: str = "default",
            params: dict[str, Any] | None = None, **changes: Any) -> Job:
        made = self.service.jobs.create(profile, provider, speaker, params or {}, "idle")
        return self.service.jobs.update(made, **changes) if changes else made

    def drain(self) -> None:
        """Wait for what the service's own thread was given so far."""
        self.service._executor.submit(lambda: None).result(10)


@pytest.fixture()
def rig(tmp_path: Path) -> Iterator[Rig]:
    made = Rig(tmp_path)
    yield made
    made.close()


@pytest.fixture()
def make(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def build(**settings: Any) -> Rig:
        made.append(Rig(tmp_path / f"home{len(made)}", **settings))
        return made[-1]

    yield build
    for one in made:
        one.close()


def counting_dataset(rig: Rig, speaker: str = "owner", profile: str = "default") -> Path:
    return rig.layout.voice_folder(profile, "counting-datasets", speaker)


# -- refusals, and what each carries ----------------------------------------------------------

def test_an_unknown_trainer_is_refused_naming_those_there_are(rig: Rig) -> None:
    refused = rig.refusal("piper")
    assert (refused.code, str(refused), refused.data) == (
        "unknown_trainer", "no trainer for 'piper'; known: counting, kokoro, named, plain, rvc", None)


def test_bad_params_are_refused_with_each_problem_under_params(rig: Rig) -> None:
    refused = rig.refusal(params={"steps": 0, "nosuch": 1})
    assert refused.code == "invalid_params"
    assert "steps" in str(refused) and "nosuch" in str(refused)
    assert refused.data is not None
    assert sorted(p["field"] for p in refused.data["problems"]) == ["params.nosuch", "params.steps"]


def test_a_queued_job_holds_its_params_with_the_defaults_filled_in(rig: Rig) -> None:
    job = rig.submit(params={"steps": 7})["job"]
    assert job["params"] == {"steps": 7, "step_seconds": 0.05, "save_every": 5, "refuse": "", "voice": False,
                             "memory_mb": 0, "ignore_stop": False}
    assert (job["profile"], job["provider"], job["speaker"], job["run_when"], job["state"], job["dataset"]) == (
        "default", "counting", "owner", "idle", "queued", None)
    stored = rig.service.jobs.get(job["id"])
    assert stored is not None and stored.params == job["params"]


def test_a_queued_jobs_params_are_json(rig: Rig) -> None:
    job = rig.submit("named", params={"reference": "/home/ann/ref.wav"})["job"]
    assert job["params"]["reference"] == "/home/ann/ref.wav"
    stored = rig.service.jobs.get(job["id"])
    assert stored is not None and stored.params["reference"] == "/home/ann/ref.wav"


def test_a_trainer_that_says_nothing_of_its_memory_is_not_checked(rig: Rig) -> None:
    assert rig.submit("plain", check=True)["memory"] is None
    assert rig.submit("plain")["job"]["state"] == "queued"


def test_each_problem_the_trainer_finds_is_told(rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    kokoro = registry.spec("kokoro").trainer
    assert kokoro is not None
    spec = dataclasses.replace(kokoro, check=lambda folder, params: ["too few", "too short"])
    monkeypatch.setattr(service_module, "trainer_for", lambda provider, extra: spec)
    refused = rig.refusal("kokoro", dataset=tmp_path)
    assert str(refused) == "too few; too short"
    assert refused.data is not None and refused.data["problems_found"] == ["too few", "too short"]


def test_the_id_of_the_request_comes_back(rig: Rig) -> None:
    assert rig.submit(id="r1")["id"] == "r1"
    assert rig.submit(id="r2", speaker="other", check=True)["id"] == "r2"


def test_a_dataset_given_that_is_not_a_folder_is_refused(rig: Rig, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    refused = rig.refusal(dataset=missing)
    assert (refused.code, str(refused)) == ("not_ready", f"no dataset at {missing}")
    assert refused.data == {"provider": "counting", "speaker": "owner", "dataset": str(missing), "missing": []}
    (tmp_path / "a-file").write_text("x")
    assert rig.refusal(dataset=tmp_path / "a-file").code == "not_ready"


def test_a_dataset_given_is_trained_on_as_it_is_and_the_job_names_it(rig: Rig, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()  # no WAV at all: the counting trainer checks nothing; a registry one would
    job = rig.service.submit("default", TrainRequest(provider="counting", speaker="owner"), folder)["job"]
    assert job["dataset"] == str(folder)
    refused = rig.refusal("kokoro", dataset=folder)  # its own check, though samples are not ready
    assert refused.code == "not_ready" and "0 WAV files" in str(refused)
    assert refused.data is not None and refused.data["dataset"] == str(folder)
    assert str(refused) == "; ".join(refused.data["problems_found"]) and refused.data["problems_found"]


def test_a_dataset_folder_filled_by_the_user_is_checked_by_the_trainer(rig: Rig) -> None:
    folder = rig.layout.voice_folder("default", "kokoro-datasets", "owner")
    fill(folder, 3)
    refused = rig.refusal("kokoro")
    assert refused.code == "not_ready"
    assert refused.data is not None and "missing" not in refused.data
    assert refused.data == {"provider": "kokoro", "speaker": "owner", "dataset": str(folder),
                            "problems_found": refused.data["problems_found"]}
    assert str(refused) == "; ".join(refused.data["problems_found"]) and refused.data["problems_found"]


def test_without_a_folder_the_samples_must_be_ready_and_the_refusal_says_what_is_missing(rig: Rig) -> None:
    rig.keep(2)
    refused = rig.refusal("rvc")
    assert str(refused).startswith("not enough samples to train rvc: 48 more samples (have 2, need 50)")
    folder = rig.layout.voice_folder("default", "rvc-reference", "owner")
    assert refused.data == {"provider": "rvc", "speaker": "owner", "dataset": str(folder),
                            "missing": refused.data["missing"] if refused.data else None}
    assert str(refused) == "not enough samples to train rvc: " + "; ".join(refused.data["missing"])


def test_a_plugin_trainer_without_a_folder_judges_its_dataset_itself(rig: Rig) -> None:
    job = rig.submit()["job"]  # no samples, no folder: queued (its trainer checks when it starts)
    assert job["state"] == "queued"


def test_the_samples_readiness_uses_the_profiles_threshold(rig: Rig) -> None:
    rig.keep(2)  # scored 80
    rig.voice_json({"record": {"threshold": 90}})
    assert "average quality 80 below 90" in str(rig.refusal("rvc"))
    rig.voice_json({"record": {"threshold": 80}})
    assert "average quality" not in str(rig.refusal("rvc"))


def test_a_duplicate_is_the_same_trainer_and_speaker_in_the_same_profile_while_active(rig: Rig) -> None:
    first = rig.submit()["job"]
    refused = rig.refusal()
    assert refused.code == "duplicate"
    assert str(refused) == f"job {first['id']} already trains counting/owner (queued)"
    assert refused.data == {"job": first["id"], "state": "queued", "provider": "counting", "speaker": "owner",
                            "dataset": str(counting_dataset(rig))}
    rig.submit(speaker="other")  # another speaker
    rig.submit(profile="den")  # another profile
    stored = rig.service.jobs.get(first["id"])
    assert stored is not None
    rig.service.jobs.update(stored, state="running")
    assert "(running)" in str(rig.refusal())
    rig.service.jobs.update(stored, state="paused")
    assert rig.refusal().code == "duplicate"
    rig.service.jobs.update(stored, state="finished")
    assert rig.submit()["job"]["state"] == "queued"  # an ended job is no duplicate


def test_the_homes_queue_limit_is_the_setting(make: Callable[..., Rig]) -> None:
    rig = make(max_queued_jobs=2)
    rig.submit(speaker="a")
    rig.submit(speaker="b", profile="den")
    refused = rig.refusal(speaker="c")
    assert (refused.code, refused.data) == ("busy", {"queued": 2, "limit": 2})
    assert str(refused) == "2 training jobs are already queued (at most 2); cancel one or wait for them"
    assert rig.refusal(speaker="c", check=True).code == "busy"


def test_a_check_refuses_as_the_request_would_and_queues_nothing(rig: Rig) -> None:
    answer = rig.submit(check=True, params={"steps": 30})
    assert answer["check"] == "ok" and answer["memory"] is None  # the stand-in needs no memory
    assert answer["estimate"] == rig.service.plan("default", PlanRequest(provider="counting", params={"steps": 30}))["estimate"]
    assert set(answer) == {"id", "check", "estimate", "memory"}
    assert rig.service.jobs.list() == []
    rig.submit()
    assert rig.refusal(check=True).code == "duplicate"


def test_the_memory_a_job_needs_is_told_with_the_machines(rig: Rig) -> None:
    answer = rig.submit(check=True, params={"memory_mb": 1000})
    assert answer["memory"] == {"need_mb": 1000, "fits_now": True, "words": answer["memory"]["words"],
                                "agent_mb": 300, "available_mb": 1500, "total_mb": 4096, "limit_mb": 2048,
                                "limit_from": "memory.max", "process_mb": 0}
    assert answer["memory"]["words"]
    assert rig.submit(check=True, params={"memory_mb": 1600})["memory"]["fits_now"] is False
    refused = rig.refusal(params={"memory_mb": 1800})
    assert str(refused).startswith("cannot train counting here: ")
    assert refused.data is not None and refused.data["provider"] == "counting" and refused.data["fits_now"] is False
    assert refused.data["need_mb"] == 1800 and refused.data["dataset"] == str(counting_dataset(rig))


def test_a_queued_job_carries_the_estimate_in_whole_seconds(rig: Rig) -> None:
    assert "estimate_seconds" not in rig.submit(speaker="first", params={"steps": 7})["job"]["progress"]  # no pace known
    rig.job(speaker="earlier", timing={"device": "cpu", "setup_seconds": 2.3, "step_seconds": 0.7, "steps": 5})
    job = rig.submit(params={"steps": 7})["job"]
    seconds = job["progress"]["estimate_seconds"]
    assert isinstance(seconds, int) and seconds > 0
    planned = rig.service.plan("default", PlanRequest(provider="counting", speaker="owner", params={"steps": 7}))
    assert seconds == round(planned["estimate"]["seconds"])


def test_a_job_for_now_is_looked_at_at_once_one_for_idle_waits(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    ticks: list[str] = []
    monkeypatch.setattr(rig.service.runner, "tick", lambda: ticks.append("tick"))
    rig.submit(speaker="later")
    rig.drain()
    assert ticks == []  # the scheduler's tick (every 2 s) looks at it
    rig.submit(when="now")
    rig.drain()
    assert ticks == ["tick"]  # on the service's own thread, at once


# -- the runner asks: may this job start, as far as memory goes? -------------------------------

def test_admit_says_wait_or_never_for_a_job_that_needs_memory(rig: Rig) -> None:
    def admit(memory_mb: int, provider: str = "counting") -> Any:
        return rig.service._admit(rig.job(provider, params={"memory_mb": memory_mb}))

    assert admit(1000) is None  # fits
    assert admit(0) is None  # needs nothing said
    verdict, why = admit(1600)
    assert verdict == "wait" and not why.startswith("not started")
    verdict, why = admit(1800)
    assert verdict == "never" and why.startswith("not started: ") and len(why) > len("not started: ")
    assert admit(1800, "rvc") is None  # a trainer that does not say its need
    assert admit(1800, "gone") is None  # a trainer no longer there: its start says so
    assert rig.service._admit(rig.job(params={"memory_mb": "lots"})) is None  # params of an older version


def test_admit_asks_nothing_when_the_check_is_off(make: Callable[..., Rig]) -> None:
    rig = make(train_memory_check=False)
    job = rig.job(params={"memory_mb": 1800})
    assert rig.service._admit(job) is None
    assert rig.submit(speaker="other", check=True, params={"memory_mb": 1800})["memory"] is None


# -- jobs of a profile ------------------------------------------------------------------------

def test_a_job_of_another_profile_or_none_is_unknown(rig: Rig) -> None:
    job = rig.submit(profile="den")["job"]
    for call in (rig.service.cancel, rig.service.status):
        with pytest.raises(ServiceError) as refused:
            call("default", JobRequest(job=job["id"]))
        assert (refused.value.code, str(refused.value)) == ("unknown_job", f"no job {job['id']!r} in profile 'default'")
    with pytest.raises(ServiceError) as refused:
        rig.service.logs("default", LogsRequest(job=job["id"]))
    assert refused.value.code == "unknown_job"
    with pytest.raises(ServiceError) as refused:
        rig.service.voice_of("default", "")
    assert (refused.value.code, str(refused.value)) == ("unknown_job", "no job '' in profile 'default'")
    with pytest.raises(ServiceError):
        rig.service.voice_of("default", "20260101000000-abcdef")


def test_cancel_and_status_of_ones_own_job(rig: Rig) -> None:
    job = rig.submit(id="q")["job"]
    status = rig.service.status("default", JobRequest(id="s", job=job["id"]))
    assert status == {"id": "s", "job": {**job, "voice": {}}}
    cancelled = rig.service.cancel("default", JobRequest(id="c", job=job["id"]))
    assert cancelled["id"] == "c" and cancelled["job"]["id"] == job["id"] and cancelled["job"]["state"] == "cancelled"


def test_status_lists_the_profiles_last_20_jobs_and_the_trainers(rig: Rig) -> None:
    for n in range(21):
        rig.job(speaker=f"s{n}")
    rig.job(profile="den")
    listed = rig.service.status("default", JobRequest(id="s"))
    assert listed["id"] == "s" and len(listed["jobs"]) == 20
    assert {j["profile"] for j in listed["jobs"]} == {"default"} and all("voice" in j for j in listed["jobs"])
    assert listed["trainers"] == ["counting", "kokoro", "named", "plain", "rvc"]


def test_the_trainers_params_are_json_schema_with_their_aliases(rig: Rig) -> None:
    answer = rig.service.trainers("default", JobRequest(id="t"))
    assert answer["id"] == "t" and list(answer["trainers"]) == ["counting", "kokoro", "named", "plain", "rvc"]
    counting = answer["trainers"]["counting"]
    assert counting["outputs"] == "counting-models"
    assert counting["params"]["properties"]["steps"]["default"] == 40
    assert "minSamples" in answer["trainers"]["kokoro"]["params"]["properties"]  # by alias


def test_logs_are_read_from_the_speakers_log_of_that_job(rig: Rig) -> None:
    job = rig.submit(id="q")["job"]
    path = rig.layout.status_files("counting", "owner").log_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"--- then job {job['id']} attempt 1 on cpu\n" + "".join(f"line {n}\n" for n in range(5)))
    answer = rig.service.logs("default", LogsRequest(id="l", job=job["id"], lines=2))
    assert (answer["id"], answer["job"], answer["log"]) == ("l", job["id"], str(path))
    assert answer["lines"] == ["line 3", "line 4"]


# -- a finished job's voice -------------------------------------------------------------------

def test_a_finished_jobs_voice_is_what_its_trainer_says(rig: Rig) -> None:
    model = rig.home / "voice.onnx"
    job = rig.job(params={"voice": True})
    with pytest.raises(ServiceError) as refused:
        rig.service.voice_of("default", job.id)
    assert (refused.value.code, str(refused.value), refused.value.data) == (
        "not_ready", f"job {job.id} has not finished (queued)", {"job": job.id, "state": "queued"})
    finished = rig.service.jobs.update(job, state="finished", outputs=[str(rig.home / "result.txt"), str(model)])
    voice = {"tts": {"provider": "piper", "piper": {"model": str(model)}}}
    assert rig.service.voice_of("default", job.id) == voice
    assert rig.service.status("default", JobRequest(job=job.id))["job"]["voice"] == voice
    rig.service.jobs.update(finished, outputs=[])
    with pytest.raises(ServiceError) as refused:
        rig.service.voice_of("default", job.id)
    assert (refused.value.code, str(refused.value), refused.value.data) == (
        "not_ready", f"job {job.id} made no voice the profile can speak with", {"job": job.id})


def test_a_job_whose_params_no_longer_fit_its_trainer_shows_no_voice(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    job = rig.job(state="finished", outputs=[str(rig.home / "voice.onnx")], params={"gone": 1})
    with caplog.at_level(logging.INFO, logger="agent.train.service"):
        assert rig.service.status("default", JobRequest(job=job.id))["job"]["voice"] == {}
    [line] = logged(caplog)
    assert line.startswith(f"job {job.id}: no voice to choose (") and "gone" in line
    other = rig.job("gone", state="finished", outputs=[str(rig.home / "voice.onnx")])
    assert rig.service.status("default", JobRequest(job=other.id))["job"]["voice"] == {}
    rvc = rig.job("rvc", state="finished", outputs=[str(rig.home / "voice.onnx")])
    assert rig.service.status("default", JobRequest(job=rvc.id))["job"]["voice"] != {}  # rvc says its voice


def test_a_voice_is_only_that_of_a_finished_job_with_outputs_of_a_trainer_that_says_it(rig: Rig) -> None:
    outputs = [str(rig.home / "voice.onnx")]
    named = rig.job("named", speaker="ann", params={"steps": 3}, state="finished", outputs=outputs)
    assert rig.service.voice_of("default", named.id) == {"speaker": "ann", "outputs": outputs, "steps": 3}
    for state in ("running", "failed", "cancelled"):
        job = rig.job("named", speaker=f"x{state}", state=state, outputs=outputs)
        assert rig.service.status("default", JobRequest(job=job.id))["job"]["voice"] == {}
    plain = rig.job("plain", state="finished", outputs=outputs)
    assert rig.service.status("default", JobRequest(job=plain.id))["job"]["voice"] == {}
    with pytest.raises(ServiceError) as refused:
        rig.service.voice_of("default", plain.id)
    assert str(refused.value) == f"job {plain.id} made no voice the profile can speak with"


# -- the plan ---------------------------------------------------------------------------------

def test_the_plan_names_each_trainers_readiness_and_the_estimate(rig: Rig) -> None:
    rig.keep(2)
    fill(counting_dataset(rig), 2, transcripts=False)
    fill(rig.layout.voice_folder("default", "kokoro-datasets", "someone"), 4)  # another speaker's folder
    plan = rig.service.plan("default", PlanRequest(id="p", provider="counting", speaker="owner", params={"steps": 9}))
    assert (plan["id"], plan["provider"], plan["speaker"]) == ("p", "counting", "owner")
    assert plan["dataset"] == {"samples": 2, "minutes": 0.07, "with_transcripts": 0, "minutes_with_transcripts": 0.0}
    trainers = plan["trainers"]
    assert list(trainers) == ["counting", "kokoro", "named", "plain", "rvc"]
    assert trainers["counting"]["dataset_wavs"] == 2 and trainers["counting"]["ready"] is True
    assert trainers["kokoro"]["dataset_wavs"] == 0 and trainers["kokoro"]["ready"] is False
    assert trainers["rvc"]["missing"][0] == "48 more samples (have 2, need 50)"
    assert plan["estimate"]["steps"] == 9
    rig.voice_json({"record": {"threshold": 90}})
    plan = rig.service.plan("default", PlanRequest(provider="rvc", speaker="owner"))
    assert plan["trainers"]["rvc"]["missing"][0] == "average quality 80 below 90"


def test_the_plan_refuses_an_unknown_trainer_and_bad_params(rig: Rig) -> None:
    with pytest.raises(ServiceError) as refused:
        rig.service.plan("default", PlanRequest(provider="piper"))
    assert (refused.value.code, str(refused.value)) == ("unknown_trainer", "no trainer for 'piper'; known: counting, kokoro, named, plain, rvc")
    with pytest.raises(ServiceError) as refused:
        rig.service.plan("default", PlanRequest(provider="counting", params={"steps": -1}))
    assert refused.value.code == "invalid_params" and "steps" in str(refused.value)
    assert refused.value.data is not None and refused.value.data["problems"][0]["field"] == "params.steps"


# -- the requests' own thread -----------------------------------------------------------------

def test_each_request_runs_on_the_services_thread_with_what_the_direct_call_gives(rig: Rig) -> None:
    job = rig.service.submit_later("default", TrainRequest(provider="counting", speaker="owner")).result(10)
    job_id = job["job"]["id"]
    assert rig.service.status_later("default", JobRequest(job=job_id)).result(10)["job"]["id"] == job_id
    assert rig.service.trainers_later("default", JobRequest()).result(10) == rig.service.trainers("default", JobRequest())
    assert rig.service.plan_later("default", PlanRequest(provider="counting")).result(10)["provider"] == "counting"
    assert rig.service.logs_later("default", LogsRequest(job=job_id)).result(10)["job"] == job_id
    assert rig.service.cancel_later("default", JobRequest(job=job_id)).result(10)["job"]["state"] == "cancelled"


def test_the_services_thread_takes_the_settings_depth_of_requests(make: Callable[..., Rig]) -> None:
    import threading

    rig = make(command_queue_depth=3)
    gate = threading.Event()
    running = rig.service._executor.submit(gate.wait, 10)
    try:
        waiting = [rig.service.trainers_later("default", JobRequest()) for _ in range(2)]  # three in all
        with pytest.raises(ServiceError) as refused:
            rig.service.trainers_later("default", JobRequest())
        assert (refused.value.code, str(refused.value)) == ("busy", "3 train requests are already waiting; try again later")
        rig.service._soon(lambda: None)  # its own work, not a request: dropped when full, no error
    finally:
        gate.set()
    running.result(10)
    assert all(w.result(10)["trainers"] for w in waiting)


# -- automatic retraining ---------------------------------------------------------------------

def logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "agent.train.service"]


class Wall:
    """The module's `time` (only `time` is read): the test's wall clock, in whole seconds."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture()
def quiet(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> Rig:
    """Kept samples do not make the service check on its own thread: the test checks itself."""
    monkeypatch.setattr(rig.service, "_soon", lambda work, *args: None)
    return rig


def auto(rig: Rig, new_samples: int = 2, enabled: bool = True, provider: str = "counting", profile: str = "default") -> None:
    rig.voice_json({"train": {"autoRetrain": {"enabled": enabled, "provider": provider, "speaker": "owner",
                                              "newSamples": new_samples}}}, profile)


def test_retraining_queues_an_idle_job_once_enough_new_samples_arrived(quiet: Rig) -> None:
    rig = quiet
    auto(rig, new_samples=3)
    rig.keep(2)
    assert rig.service.check_auto_retrain() == []
    rig.keep(1)
    [job] = rig.service.check_auto_retrain(["default"])
    assert (job.profile, job.provider, job.speaker, job.run_when, job.state) == ("default", "counting", "owner", "idle", "queued")
    assert rig.service.check_auto_retrain() == []  # one is active already


def test_retraining_looks_at_every_profile_that_wants_it(quiet: Rig) -> None:
    rig = quiet
    auto(rig, new_samples=1, profile="den")
    auto(rig, new_samples=1, enabled=False)
    rig.keep(1, "den")
    rig.keep(1)
    assert [j.profile for j in rig.service.check_auto_retrain()] == ["den"]


def test_a_profile_with_too_few_new_samples_does_not_hold_back_the_next(quiet: Rig) -> None:
    rig = quiet
    auto(rig, new_samples=2)  # default: checked first, one sample of two
    auto(rig, new_samples=1, profile="den")
    rig.keep(1)
    rig.keep(1, "den")
    assert [j.profile for j in rig.service.check_auto_retrain()] == ["den"]


def test_a_profile_that_waits_after_a_failure_does_not_hold_back_the_next(quiet: Rig) -> None:
    rig = quiet
    auto(rig, new_samples=1)
    auto(rig, new_samples=1, profile="den")
    rig.job(state="failed", finished=time.time())  # default's: checked first, it waits
    rig.keep(1)
    rig.keep(1, "den")
    assert [j.profile for j in rig.service.check_auto_retrain()] == ["den"]


def test_a_failure_behind_50_jobs_of_other_trainers_still_holds_retraining_back(quiet: Rig) -> None:
    rig = quiet
    auto(rig, new_samples=1)
    rig.job(state="failed", finished=time.time())
    for n in range(50):
        rig.job("rvc", speaker=f"s{n}", state="finished", finished=time.time())
    rig.keep(1)
    assert rig.service.check_auto_retrain() == []  # the failure was just now: an hour's wait


def test_a_job_active_in_one_profile_holds_back_that_profile_only(quiet: Rig) -> None:
    rig = quiet
    auto(rig, new_samples=1)
    auto(rig, new_samples=1, profile="den")
    rig.keep(1)
    rig.keep(1, "den")
    rig.job(state="running")  # default's: checked first
    assert [j.profile for j in rig.service.check_auto_retrain()] == ["den"]


def test_retraining_counts_the_samples_since_the_last_finished_job_of_that_trainer(quiet: Rig) -> None:
    rig = quiet
    auto(rig, new_samples=2)
    rig.keep(2)
    rig.job("rvc", state="finished", finished=time.time() + 60)  # another trainer's: does not count
    rig.job(state="finished", finished=time.time() - 3600)
    assert len(rig.service.check_auto_retrain()) == 1
    rig.service.jobs.update(rig.service.jobs.list(states=("queued",))[0], state="finished", finished=time.time())
    assert rig.service.check_auto_retrain() == []  # none since
    rig.keep(2)
    assert len(rig.service.check_auto_retrain()) == 1


def test_retraining_waits_an_hour_after_a_failure_doubling_up_to_a_day(quiet: Rig, monkeypatch: pytest.MonkeyPatch,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    rig = quiet
    auto(rig, new_samples=1)
    failed_at = float(int(time.time()) - 5)
    wall = Wall(failed_at + 3599)
    monkeypatch.setattr(service_module, "time", wall)
    failures = [rig.job(state="failed", finished=failed_at)]
    rig.keep(1)
    with caplog.at_level(logging.INFO, logger="agent.train.service"):
        assert rig.service.check_auto_retrain() == []
    assert logged(caplog) == ["automatic retraining of default/counting waits 1 s more after 1 failed job(s)"]
    wall.now = failed_at + 3600  # an hour, to the second
    [job] = rig.service.check_auto_retrain()
    rig.service.jobs.update(job, state="failed", finished=failed_at)
    failures.append(job)
    wall.now = failed_at + 7190  # two failures in a row: two hours
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="agent.train.service"):
        assert rig.service.check_auto_retrain() == []
    assert logged(caplog) == ["automatic retraining of default/counting waits 10 s more after 2 failed job(s)"]
    wall.now = failed_at + 7199
    assert rig.service.check_auto_retrain() == []
    wall.now = failed_at + 7200
    [job] = rig.service.check_auto_retrain()
    rig.service.jobs.update(job, state="cancelled")
    for _ in range(4):  # six in a row: 32 hours, but a day at most
        rig.job(state="failed", finished=failed_at)
    wall.now = failed_at + 86399
    assert rig.service.check_auto_retrain() == []
    wall.now = failed_at + 86400
    assert len(rig.service.check_auto_retrain()) == 1


def test_after_a_failure_only_samples_newer_than_it_count(quiet: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = quiet
    auto(rig, new_samples=2)
    rig.keep(1)
    failed = rig.job(state="failed", finished=time.time() + 0.01)
    monkeypatch.setattr(service_module, "time", Wall(failed.finished + 3600))  # type: ignore[operator]
    time.sleep(0.02)
    rig.keep(1)
    assert rig.service.check_auto_retrain() == []  # of the two new samples, one came before the failure
    rig.keep(1)
    assert len(rig.service.check_auto_retrain()) == 1


def test_failures_before_the_last_finished_job_do_not_hold_retraining_back(quiet: Rig) -> None:
    rig = quiet
    auto(rig, new_samples=1)
    now = time.time()
    rig.job(state="failed", finished=now - 20)
    rig.job(state="finished", finished=now - 20)  # as late as the failure: that failure is before it
    rig.keep(1)
    assert len(rig.service.check_auto_retrain()) == 1


def test_a_retraining_that_would_be_refused_is_not_queued(quiet: Rig, caplog: pytest.LogCaptureFixture) -> None:
    rig = quiet
    auto(rig, new_samples=1, provider="rvc")
    rig.keep(1)  # new enough, but rvc needs 50
    auto(rig, new_samples=1, profile="den")  # checked after it
    rig.keep(1, "den")
    with caplog.at_level(logging.INFO, logger="agent.train.service"):
        assert [j.profile for j in rig.service.check_auto_retrain()] == ["den"]
    [line] = logged(caplog)
    assert line.startswith("automatic retraining of default/rvc not queued: not enough samples to train rvc: ")


def test_a_profile_whose_samples_cannot_be_opened_is_told_and_skipped(quiet: Rig, caplog: pytest.LogCaptureFixture) -> None:
    rig = quiet
    (rig.home / "profiles" / "attic").mkdir()  # checked first
    auto(rig, new_samples=1, profile="attic")
    rig.layout.samples_db("attic").mkdir(parents=True)  # its record path is down
    auto(rig, new_samples=1)
    rig.keep(1)
    with caplog.at_level(logging.INFO, logger="agent.train.service"):
        assert [j.profile for j in rig.service.check_auto_retrain()] == ["default"]
    [line] = logged(caplog)
    with pytest.raises(ServiceError) as down:
        rig.records.store("attic")
    assert line == f"automatic retraining of attic/counting not checked: {down.value}"


def test_a_kept_sample_makes_the_check_of_its_profile_run_on_the_services_thread(rig: Rig) -> None:
    rig.keep(1, "den")
    auto(rig, new_samples=1, profile="den")  # ready, but nothing new was kept there since
    auto(rig, new_samples=1)
    rig.keep(1)
    rig.drain()
    assert [(j.profile, j.provider) for j in rig.service.jobs.list()] == [("default", "counting")]
    auto(rig, new_samples=1, enabled=False)
    rig.keep(1)  # a profile that does not retrain: not checked
    rig.service.jobs.update(rig.service.jobs.list()[0], state="finished", finished=time.time() - 10)
    rig.drain()
    assert len(rig.service.jobs.list()) == 1


# -- what a job is launched with --------------------------------------------------------------

def test_a_job_is_launched_with_the_settings_and_the_profiles_keep(make: Callable[..., Rig]) -> None:
    rig = make(train_vram_mb=1234, pause_gpu_hogs_for_training=True)
    rig.voice_json({"train": {"keep": {"failedRuns": 7, "logMaxMB": 0.5}}})
    job = rig.job(speaker="owner")
    launch = rig.service._prepare(job)
    assert launch.trainer == "tests.fake_trainer:CountingTrainer"
    assert launch.dataset_dir == counting_dataset(rig)
    assert launch.output_dir == rig.layout.voice_folder("default", "counting-models", "owner")
    assert launch.checkpoint_dir == rig.layout.training_dir("default", job.id)
    assert (launch.need_vram_mb, launch.pause_hogs, launch.keep_failed, launch.log_max_bytes) == (1234, True, 7, 524288)
    other = make(pause_gpu_hogs_for_training=False)
    assert other.service._prepare(other.job()).pause_hogs is False


def test_a_job_given_a_dataset_is_launched_on_it(rig: Rig, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    job = rig.service.jobs.create("default", "rvc", "owner", {}, "idle", str(folder))
    launch = rig.service._prepare(job)
    assert launch.dataset_dir == folder and list(folder.iterdir()) == []  # nothing exported into it


def test_a_registry_trainers_samples_are_exported_when_its_folder_is_empty(rig: Rig) -> None:
    rig.keep(3)
    job = rig.job("rvc")
    launch = rig.service._prepare(job)
    folder = rig.layout.voice_folder("default", "rvc-reference", "owner")
    assert launch.dataset_dir == folder and len(list(folder.glob("*.wav"))) >= 1
    assert launch.output_dir == rig.layout.voice_folder("default", RVC_OUTPUTS, "owner")


def test_a_folder_with_wavs_is_not_exported_over(rig: Rig) -> None:
    rig.keep(3)
    folder = rig.layout.voice_folder("default", "rvc-reference", "owner")
    fill(folder, 1, transcripts=False)
    rig.service._prepare(rig.job("rvc"))
    assert [p.name for p in folder.glob("*.wav")] == ["s0.wav"]


# -- wiring: settings, events, the scheduler --------------------------------------------------

def test_the_settings_reach_the_idle_policy_and_the_runner(make: Callable[..., Rig]) -> None:
    rig = make(idle_minutes=2.5, idle_window="02:00-03:30", max_train_restarts=5, train_preempt_on_speech=False)
    assert rig.service.policy.quiet_seconds == 150
    assert [str(t) for t in rig.service.policy.window] == ["02:00:00", "03:30:00"]
    runner = rig.service.runner
    assert (runner._max_restarts, runner._preempt, runner._admit) == (5, False, rig.service._admit)
    assert runner._prepare == rig.service._prepare and runner._jobs is rig.service.jobs
    assert runner._policy is rig.service.policy
    assert rig.service.hogs is rig.hogs


def test_speech_and_recordings_are_activity_for_the_idle_policy_and_speech_reaches_the_runner(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    before = rig.service.policy.quiet_for()
    rig.events.emit("default", "speak.started", {})
    assert rig.service.policy.quiet_for() < before
    told: list[str] = []
    monkeypatch.setattr(rig.service.runner, "on_speech", lambda: told.append("speech"))
    rig.events.emit("default", "speak.started", {})
    rig.events.emit("default", "speak.finished", {})
    assert told == ["speech"]


def test_start_schedules_the_tick_the_gpu_state_and_the_retraining_check(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logging.getLogger("apscheduler"), "level", logging.NOTSET)  # as before any start
    monkeypatch.setattr(logging.getLogger(), "level", logging.getLogger().level)
    rig.service.start()
    jobs = {job.id: job for job in rig.service._scheduler.get_jobs()}
    assert {name: job.trigger.interval.total_seconds() for name, job in jobs.items()} == {
        "train-tick": 2, "gpu-state": 60, "auto-retrain": 600}
    assert jobs["train-tick"].func == rig.service.runner.tick
    assert jobs["gpu-state"].func == rig.service.publish_gpu_state
    assert jobs["auto-retrain"].func == rig.service.check_auto_retrain
    assert all(job.coalesce and job.max_instances == 1 for job in jobs.values())
    assert logging.getLogger("apscheduler").level == logging.WARNING
    assert rig.state.get("gpu")["memory"]["agent_mb"] == 300  # published at once
    scheduler = rig.service._scheduler
    rig.service.stop()
    assert not scheduler.running and rig.service._scheduler is None  # the fixture's stop finds nothing to shut down


def test_the_gpu_state_carries_the_gpus_and_the_memory(rig: Rig) -> None:
    rig.service.publish_gpu_state()
    document = rig.state.get("gpu")
    assert document == {**rig.arbiter.info.report().as_dict(), "memory": rig.machine().as_dict()}


def test_requests_run_one_at_a_time_on_one_thread(rig: Rig) -> None:
    import threading

    gate = threading.Event()
    names: list[str] = []

    def held() -> None:
        names.append(threading.current_thread().name)
        gate.wait(10)

    first = rig.service._executor.submit(held)
    second = rig.service._executor.submit(lambda: names.append(threading.current_thread().name))
    gate.set()
    first.result(10), second.result(10)
    assert names == ["train_0", "train_0"]  # the second waited for the first's thread
