"""The household's web page in a real browser (Debian's Chromium, driven by Playwright) against
the real agent: settings that land in voice.json and are used by the next speech, a test
sentence that plays, a sample deleted, a training job followed to 100 %, a refused value shown
next to its field, the token asked once. Each test has a profile of its own, so any order works."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AgentProcess
from tests.e2e.browser import PageErrors, api, base_url, open_screen, record, web_agent
from tests.mosquitto import Mosquitto
from tests.providers.kokoro.models import install_models, prepared_models

pytestmark = pytest.mark.slow

PROFILES = ("default", "settings", "speak", "samples", "training", "errors", "gpuview", "stream", "backoff")
TOKEN = "hall-cupboard-7f3a9c"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[AgentProcess]:
    process = web_agent(tmp_path_factory.mktemp("web-page"), broker, PROFILES).start()
    process.wait_log("ready")
    yield process
    process.stop()


def voice_json(agent: AgentProcess, profile: str) -> dict[str, Any]:
    return dict(json.loads((agent.home / "profiles" / profile / "etc" / "voice.json").read_text()))


def field(name: str) -> str:
    return f"[data-field='{name}']"


def speak(page: Any, agent: AgentProcess, profile: str, text: str) -> dict[str, str]:
    """Say ``text`` on the Test voice screen; the facts of the answer it shows."""
    open_screen(page, agent, profile, "speak")
    page.fill("#speak-text", text)
    page.click("#speak-go")
    page.wait_for_selector("#speak-summary-card:not([hidden])", timeout=120_000)
    facts = page.eval_on_selector_all("#speak-summary dd", "nodes => nodes.map(n => [n.dataset.fact, n.textContent])")
    return dict(facts)


def test_a_new_provider_and_voice_land_in_voice_json_and_speak_next(
    page: Any, agent: AgentProcess, tmp_path_factory: pytest.TempPathFactory,
) -> None:
    install_models(prepared_models(tmp_path_factory), agent.home)  # Kokoro's prepared model, as a household has it
    open_screen(page, agent, "settings", "settings")
    assert page.is_visible("fieldset[data-provider='piper']") and not page.is_visible("fieldset[data-provider='kokoro']")
    page.select_option(field("tts.provider"), label="kokoro")
    assert page.is_visible("fieldset[data-provider='kokoro']")
    voices = page.eval_on_selector_all(f"{field('tts.kokoro.voice')} option", "nodes => nodes.map(n => n.value)")
    assert "jm_kumo" in voices  # the voice field offers what the agent lists
    page.select_option(field("tts.kokoro.voice"), "jm_kumo")
    page.click("#settings-save")
    page.wait_for_selector("#settings-status:has-text('the agent uses it now')")
    written = voice_json(agent, "settings")
    assert written["tts"]["provider"] == "kokoro" and written["tts"]["kokoro"]["voice"] == "jm_kumo"
    assert page.input_value(field("tts.kokoro.voice")) == "jm_kumo"  # the form shows what is in force

    facts = speak(page, agent, "settings", "こんにちは。")
    assert (facts["provider"], facts["voice"], facts["fallback"]) == ("kokoro", "jm_kumo", "no"), facts


def test_a_test_sentence_streams_into_the_audio_element(page: Any, agent: AgentProcess) -> None:
    facts = speak(page, agent, "speak", "The laundry is done. The oven is preheated. Dinner is in ten minutes.")
    assert (facts["provider"], facts["voice"], facts["from-the-cache"]) == ("piper", "en_US-joe-medium", "no"), facts
    assert facts["sentences"] == "3" and page.locator("#speak-sentences li").count() == 3
    page.wait_for_function("() => { const a = document.getElementById('speak-audio');"
                           " return a.src.startsWith('blob:') && a.duration > 0.3 && a.currentTime > 0; }")
    page.wait_for_function("() => document.getElementById('speak-audio').dataset.sentences === '3'", timeout=30_000)
    assert int(facts["latency"].split()[0]) > 0 and facts["fallback"] == "no"

    again = speak(page, agent, "speak", "The laundry is done. The oven is preheated. Dinner is in ten minutes.")
    assert again["from-the-cache"] == "yes" and again["sentences"] == "1"


def test_a_sample_is_played_and_deleted_after_a_confirm(page: Any, agent: AgentProcess) -> None:
    kept = record(agent, "samples", "Please bring the umbrella because the forecast says it will rain this afternoon.")
    other = record(agent, "samples", "The train to the city leaves from platform two at a quarter past eight.")
    # a recording is cut where the speaker pauses, so one line can be kept as two samples
    before = [s["id"] for s in api(agent, "samples", "samples.list").json()["data"]["samples"]]
    open_screen(page, agent, "samples", "samples")
    rows = page.locator("#samples-rows tr")
    assert rows.count() == len(before) >= 2
    row = page.locator(f"#samples-rows tr[data-sample='{kept['id']}']")
    assert "umbrella" in row.inner_text() and f"{kept['duration']:.1f} s" in row.inner_text()
    assert f"{50 - len(before)} more samples" in page.inner_text("#readiness [data-provider='rvc']")

    row.locator("button.play").click()
    page.wait_for_function("() => { const a = document.getElementById('sample-audio');"
                           " return a.src.startsWith('blob:') && a.duration > 1; }")

    row.locator("input[type=checkbox]").check()
    dialogs: list[str] = []

    def refuse_then_accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss() if len(dialogs) == 1 else dialog.accept()

    page.on("dialog", refuse_then_accept)
    page.click("#samples-delete")
    assert dialogs and "Delete this sample?" in dialogs[0]
    assert rows.count() == len(before)  # dismissed: nothing deleted
    page.click("#samples-delete")
    page.wait_for_selector("#samples-status:has-text('Deleted 1 sample')")
    row.wait_for(state="detached")
    assert rows.count() == len(before) - 1 and page.locator(f"#samples-rows tr[data-sample='{other['id']}']").count() == 1
    listed = api(agent, "samples", "samples.list").json()["data"]["samples"]
    assert [s["id"] for s in listed] == [i for i in before if i != kept["id"]]


def test_a_training_job_is_followed_to_100_percent(page: Any, agent: AgentProcess) -> None:
    open_screen(page, agent, "training", "training")
    page.select_option("#train-provider", "counting")
    page.fill("#train-speaker", "owner")
    page.fill(field("params.steps"), "30")
    page.fill(field("params.step_seconds"), "0.2")
    page.click("#train-start")
    page.wait_for_selector("#train-status:has-text('submitted')")
    job = page.inner_text("#train-status").split()[1]
    page.wait_for_selector("#job-now[data-state='running']")
    running = int(page.get_attribute("#job-now", "data-percent") or 0)
    assert running < 100
    page.wait_for_selector("#job-now[data-state='finished'][data-percent='100']", timeout=90_000)
    assert "100 %" in page.inner_text("#job-now")
    status = api(agent, "training", "train.status", {"job": job}).json()["data"]["job"]
    assert status["state"] == "finished" and status["params"]["steps"] == 30
    row = page.locator(f"#jobs-rows tr[data-job='{job}']")
    row.get_by_role("button", name="Log").click()
    page.wait_for_selector("#job-log:has-text('training 30/30')")


def test_refused_values_are_shown_next_to_their_fields(page: Any, agent: AgentProcess) -> None:
    before = voice_json(agent, "errors")
    open_screen(page, agent, "errors", "settings")
    page.fill(field("tts.piper.speakingRate"), "7")
    page.click("#settings-save")
    error = page.locator("[data-error-for='tts.piper.speakingRate']")
    error.wait_for()
    assert "less than or equal to 2" in error.inner_text()
    assert page.locator(".field.invalid").count() == 1
    assert voice_json(agent, "errors") == before  # refused: the file is as it was

    open_screen(page, agent, "errors", "training")
    page.select_option("#train-provider", "counting")
    page.fill(field("params.steps"), "0")
    page.fill("#train-speaker", "no spaces here")
    page.click("#train-start")
    speaker = page.locator("#train-form [data-error-for='speaker']")
    speaker.wait_for()
    assert "should match pattern" in speaker.inner_text()
    page.fill("#train-speaker", "owner")
    page.click("#train-start")
    page.locator("#train-form [data-error-for='params.steps']:has-text('greater than or equal to 1')").wait_for()
    assert speaker.inner_text() == ""
    assert api(agent, "errors", "train.status").json()["data"]["jobs"] == []


def test_the_event_stream_connects_again_after_busy_answers(page: Any, agent: AgentProcess) -> None:
    """The agent answers 503 busy past its connection cap (429 to a throttled token), and a
    browser's EventSource that gets an answer other than 200 closes for good: the page connects
    again itself, after a growing wait, and then shows the profile's live events."""
    refused: list[str] = []

    def busy_twice(route: Any) -> None:
        if len(refused) < 2:
            refused.append(route.request.url)
            route.fulfill(status=503, content_type="application/json",
                          body=json.dumps({"error": "HTTP connections at the cap: try again", "code": "busy"}))
        else:
            route.continue_()

    page.route("**/api/events?*", busy_twice)
    open_screen(page, agent, "stream", "settings")
    page.wait_for_selector("#live[data-on='true']", timeout=60_000)
    assert len(refused) == 2 and all("profile=stream" in url for url in refused), refused
    path = agent.home / "profiles" / "stream" / "etc" / "voice.json"
    good = path.read_text()
    try:  # an event after the reconnect: voice.json edited with a mistake, told on the settings screen
        path.write_text(good.replace('"speakingRate": 1.0', '"speakingRate": 7'))
        page.wait_for_selector("#settings-error:has-text('voice.json was edited and has a problem')", timeout=60_000)
        assert "speakingRate" in page.inner_text("#settings-error")
    finally:
        path.write_text(good)


def test_the_wait_before_connecting_again_doubles_up_to_30_s(page: Any, agent: AgentProcess) -> None:
    """Under the page's own clock (Playwright's, standing still but when moved by hand): refused
    again and again, the page asks again after 1 s, 2 s, 4 s ... and at most every 30 s, never sooner."""
    asked: list[str] = []

    def busy(route: Any) -> None:
        if "profile=backoff" not in route.request.url:
            route.continue_()
            return
        asked.append(route.request.url)
        route.fulfill(status=429, content_type="application/json",
                      body=json.dumps({"error": "too many wrong tokens from this address", "code": "busy"}))

    page.clock.install(time=1_000_000)
    page.clock.pause_at(1_001_000)
    page.route("**/api/events?*", busy)
    open_screen(page, agent, "backoff", "settings")
    for wait in (1000, 2000, 4000, 8000, 16000, 30000, 30000):
        page.wait_for_function(f"() => window.voiceAgent.retry === {min(wait * 2, 30000)}")  # this refusal was heard
        page.clock.run_for(wait - 1)
        # a new EventSource is CONNECTING (0) from the moment it is made: still the refused one (CLOSED, 2)
        assert page.evaluate("() => window.voiceAgent.stream.readyState") == 2, f"asked again before {wait} ms"
        with page.expect_request("**/api/events?*"):
            page.clock.run_for(1)
    page.wait_for_function("() => window.voiceAgent.retry === 30000")
    assert len(asked) == 8, asked

    # another profile while a try is pending: that one's stream, connected at once, and the wait
    # starts again from 1 s; the pending try for the last profile is dropped
    page.evaluate("() => window.voiceAgent.go('default', 'settings')")
    page.wait_for_selector("#live[data-on='true']")
    assert page.evaluate("() => window.voiceAgent.retry") == 1000
    page.clock.run_for(60_000)
    assert "profile=default" in page.evaluate("() => window.voiceAgent.stream.url") and len(asked) == 8, asked


def test_the_gpu_screen_says_who_runs_where(page: Any, agent: AgentProcess) -> None:
    answer = api(agent, "gpuview", "train", {"provider": "counting", "speaker": "gpu", "when": "now",
                                             "params": {"steps": 3000, "step_seconds": 0.05}})
    job = answer.json()["data"]["job"]["id"]
    try:
        open_screen(page, agent, "gpuview", "gpu")
        assert "No GPU" in page.inner_text("#gpu-cards")
        page.wait_for_selector(f"#gpu-users [data-job='{job}']", timeout=30_000)
        assert "runs on the CPU" in page.inner_text(f"#gpu-users [data-job='{job}']")
    finally:
        api(agent, "gpuview", "train.cancel", {"job": job})


def test_a_machine_with_a_gpu_gets_its_cards_and_holders_drawn(page: Any, agent: AgentProcess) -> None:
    """No GPU here: gpu.status answers as on a machine with one (its shape, from agent/gpu/status.py),
    every time the screen asks (its first look and each live refresh), and the page draws it."""
    status = {
        "gpu": {"available": True, "reason": "", "gpus": [{"index": 0, "name": "NVIDIA RTX 4060", "total_mb": 8192,
                "used_mb": 6144, "free_mb": 2048, "processes": [{"pid": 4242, "name": "python", "used_mb": 4000},
                                                               {"pid": 77, "name": "ollama", "used_mb": 2000}]}]},
        "holders": [{"purpose": "training", "need_mb": 6000, "since": time.time()}],
        "training": {"job": "20260101000000-abcdef", "profile": "kitchen", "provider": "kokoro", "speaker": "owner",
                     "device": "cuda", "pid": 4242},
        "providers_loaded": ["piper"],
    }
    page.route("**/commands/gpu.status", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps({"status": "ok", "data": status})))
    open_screen(page, agent, "gpuview", "gpu")
    cards = page.inner_text("#gpu-cards")
    assert "GPU 0: NVIDIA RTX 4060" in cards and "6.0 GB of 8.0 GB used" in cards and "2.0 GB free" in cards
    assert page.get_attribute("#gpu-cards [role=progressbar]", "aria-valuenow") == "75"
    rows = page.locator("#gpu-cards tbody tr")
    assert "training kokoro" in rows.nth(0).inner_text() and "training" not in rows.nth(1).inner_text()
    users = page.inner_text("#gpu-users")
    assert "needs 5.9 GB" in users and "runs on the GPU" in users


def test_the_gpu_screen_lists_the_households_nodes(page: Any, agent: AgentProcess) -> None:
    """This agent hears itself (its own node state, retained on the broker); a switched-off GPU
    desktop and a small box are drawn as GET /api/nodes says them."""
    open_screen(page, agent, "gpuview", "gpu")
    page.wait_for_selector("#gpu-nodes tr[data-node] >> text=(this one)", timeout=30_000)
    own = page.inner_text("#gpu-nodes tbody")
    assert "online" in own and "none" in own  # no GPU on this machine
    nodes = {"node": "pi", "nodes": [
        {"node": "desktop", "online": False, "stale": False, "status": "offline", "worker": True, "free_vram_mb": 10240,
         "gpus": [{"index": 0, "name": "RTX 3060", "total_mb": 12288, "free_mb": 10240}]},
        {"node": "pi", "online": True, "stale": False, "status": "online", "worker": False, "free_vram_mb": 0, "gpus": []},
    ]}
    page.route("**/api/nodes", lambda route: route.fulfill(status=200, content_type="application/json",
                                                           body=json.dumps(nodes)))
    page.click("#gpu-refresh")
    page.wait_for_selector("#gpu-nodes tr[data-node='desktop']")
    desktop = page.inner_text("#gpu-nodes tr[data-node='desktop']")
    assert "offline" in desktop and "RTX 3060" in desktop and "10.0 GB" in desktop and "worker" in desktop
    assert "(this one)" in page.inner_text("#gpu-nodes tr[data-node='pi']")


def test_the_token_is_asked_once_and_kept(browser: Any, tmp_path: Path, broker: Mosquitto) -> None:
    guarded = web_agent(tmp_path, broker, ("default",), VOICE_AGENT_HTTP_TOKEN=TOKEN).start()
    context = browser.new_context()
    try:
        guarded.wait_log("ready")
        page = context.new_page()
        errors = PageErrors(page)
        page.goto(f"{base_url(guarded)}/#/default/settings")
        page.fill("#token-input", "a-wrong-guess")
        page.click("#token-form button")
        page.wait_for_selector("#token-error:not([hidden])")  # refused: asked again, saying so
        page.fill("#token-input", TOKEN)
        page.click("#token-form button")
        page.wait_for_selector("#screen-settings[data-loaded='default']")
        page.wait_for_selector("#live[data-on='true']")  # the event stream took the token too
        page.reload()
        page.wait_for_selector("#screen-settings[data-loaded='default']")  # kept: not asked again
        assert not page.is_visible("#token-dialog") and errors.errors == []
    finally:
        context.close()
        guarded.stop()
