"""Training from the page in a real browser (Debian's Chromium through Playwright) against the real
agent: what the samples hold and what each trainer lacks, Start off while the dataset is not ready
(saying so with the page's buttons), the estimate before Start and where it comes from, the time
left while a job runs, and a finished job's voice heard and chosen. One agent for the module."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import AgentProcess
from tests.e2e.browser import api, open_screen, record, web_agent
from tests.mosquitto import Mosquitto

pytestmark = pytest.mark.slow

PROFILES = ("fresh", "voice")


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[AgentProcess]:
    # two names for the stand-in: tests run in random order, and the job the time-left test runs
    # ("pacing") must not be the measured one the estimate test expects to be the first of its trainer
    trainers = {"counting": "tests.fake_trainer:CountingTrainer", "pacing": "tests.fake_trainer:CountingTrainer"}
    process = web_agent(tmp_path_factory.mktemp("web-training"), broker, PROFILES,
                        VOICE_AGENT_EXTRA_TRAINERS=json.dumps(trainers)).start()
    process.wait_log("ready")
    yield process
    process.stop()


def field(name: str) -> str:
    return f"[data-field='{name}']"


def voice_json(agent: AgentProcess, profile: str) -> dict[str, Any]:
    return dict(json.loads((agent.home / "profiles" / profile / "etc" / "voice.json").read_text()))


def test_start_is_off_with_the_reason_while_the_samples_are_too_few(page: Any, agent: AgentProcess) -> None:
    open_screen(page, agent, "fresh", "training")
    page.select_option("#train-provider", "kokoro")
    blocked = page.locator("#train-blocked[data-code='not_ready']")
    blocked.wait_for()
    assert page.is_disabled("#train-start")
    words = blocked.inner_text()
    assert "30 more samples with transcripts (have 0, need 30)" in words and "Record card in the Samples tab" in words
    assert "voice-agent" not in words and "--speaker" not in words
    assert "0 kept, 0.0 minutes; 0 with transcripts" in page.inner_text("#plan-dataset")
    kokoro = page.locator("#plan-trainers li[data-trainer='kokoro']")
    assert "not yet" in kokoro.inner_text() and "30 more samples with transcripts" in kokoro.inner_text()
    # no Kokoro job ran here: the bench's figure, said to be rough
    page.wait_for_selector("#train-plan[data-source='rough']")
    assert re.search(r"about \d+ min \(rough: .* × 60 steps .*not yet measured here", page.inner_text("#plan-estimate"))
    page.fill(field("params.epochs"), "120")
    page.wait_for_function("() => /× 120 steps/.test(document.getElementById('plan-estimate').textContent)")


def test_a_job_is_estimated_timed_heard_and_chosen(page: Any, agent: AgentProcess) -> None:
    line = "The kitchen light has been switched off, and the front door is locked."
    record(agent, "voice", line)
    open_screen(page, agent, "voice", "training")
    page.select_option("#train-provider", "counting")
    page.fill("#train-speaker", "owner")
    page.wait_for_selector("#train-plan[data-source='none']")  # nothing measured yet, and no figure from elsewhere
    assert "no job of this trainer has run on this machine" in page.inner_text("#plan-estimate")
    assert "1 kept" in page.inner_text("#plan-dataset") and "1 with transcripts" in page.inner_text("#plan-dataset")
    page.fill(field("params.steps"), "20")
    page.fill(field("params.step_seconds"), "0.05")
    page.check(field("params.voice"))
    page.click("#train-start")
    page.wait_for_selector("#train-status:has-text('submitted')")
    job = page.inner_text("#train-status").split()[1]
    page.wait_for_selector("#job-now[data-state='finished']", timeout=60_000)

    # the next job's estimate rests on this one's measured pace
    page.wait_for_selector("#train-plan[data-source='measured']")
    estimate = page.inner_text("#plan-estimate")
    assert re.search(rf"measured: 0\.0\d+ s a step × 20 steps on this machine's CPU.*from job {job}", estimate), estimate
    assert float(page.get_attribute("#train-plan", "data-seconds") or 0) > 0

    before = voice_json(agent, "voice")
    # Listen: the job's voice says the test sentence, then the owner's kept sample plays
    page.locator(f"#jobs-rows tr[data-job='{job}'] button[data-listen]").click()
    page.wait_for_selector(f"#listen-box[data-job='{job}']:not([hidden])")
    page.click("#listen-new")
    page.wait_for_function("() => { const a = document.getElementById('listen-audio');"
                           " return a.dataset.playing === 'new' && a.src.startsWith('blob:') && a.played.length > 0"
                           " && a.currentTime > 0; }", timeout=60_000)
    assert "The new voice (piper)" in page.inner_text("#listen-status") and "fell back" not in page.inner_text("#listen-status")
    page.click("#listen-owner")
    page.wait_for_function("() => { const a = document.getElementById('listen-audio');"
                           " return a.dataset.playing === 'owner' && a.played.length > 0 && a.currentTime > 0; }")
    assert line in page.inner_text("#listen-status")
    assert voice_json(agent, "voice") == before  # listening changed nothing

    # Use this voice: voice.json now names the job's output, set through config.set
    page.click("#listen-use")
    page.wait_for_selector(f"#listen-box[data-used='{job}']")
    outputs = api(agent, "voice", "train.status", {"job": job}).json()["data"]["job"]["outputs"]
    model = next(p for p in outputs if p.endswith(".onnx"))
    chosen = voice_json(agent, "voice")["tts"]
    assert (chosen["provider"], chosen["piper"]["model"]) == ("piper", model)


def test_time_left_is_shown_while_a_job_runs_and_start_says_why_it_is_off(page: Any, agent: AgentProcess) -> None:
    open_screen(page, agent, "voice", "training")
    page.select_option("#train-provider", "pacing")
    page.fill("#train-speaker", "longer")
    page.fill(field("params.steps"), "400")
    page.fill(field("params.step_seconds"), "0.1")
    page.click("#train-start")
    page.wait_for_selector("#train-status:has-text('submitted')")
    job = page.inner_text("#train-status").split()[1]
    try:
        page.wait_for_selector("#job-now[data-state='running']:not([data-eta=''])")
        left = page.locator("#job-now .fact", has_text="Time left").inner_text()
        assert re.search(r"about .+ \((measured on \d+ steps of this job|the estimate made before it started)\)", left), left
        # the same job again is refused before Start is pressed, in the page's words
        blocked = page.locator("#train-blocked[data-code='duplicate']")
        blocked.wait_for()
        assert page.is_disabled("#train-start") and "press its Cancel button under Jobs" in blocked.inner_text()
    finally:
        api(agent, "voice", "train.cancel", {"job": job})
