"""The web page's screenshots in docs/, taken from the real page against a running agent: a private
Mosquitto and agent home, real recordings of the bundled Piper voice as the owner, and a real
training job (the Kokoro voicepack trainer, 10 steps, on the samples recorded here).

    make screenshots        # or .venv/bin/python docs/screenshots.py, with Debian's chromium installed

Kokoro's model is prepared in the home first (assembled from the kokoro package's parts and folded,
as the agent does on first use) and the speaker encoder is resemblyzer's: both come with the
installed packages, nothing is downloaded. On a loaded 2-core machine this takes long: the job's
steps are few so that the run stays within minutes (README: `make screenshots`).
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from providers.kokoro.config import KokoroSettings  # noqa: E402
from providers.kokoro.engine import KokoroProvider  # noqa: E402
from tests.conftest import AgentProcess  # noqa: E402
from tests.contexts import home_context  # noqa: E402
from tests.e2e.browser import api, base_url, browser_session, open_screen, record, web_agent  # noqa: E402
from tests.e2e.microphone import read_aloud  # noqa: E402
from tests.mosquitto import Mosquitto  # noqa: E402
from tests.speech import OWNER_RATE, owner  # noqa: E402

DOCS = REPO / "docs"
LINES = [
    "The weather today is sunny with a light breeze coming from the west.",
    "Please remember to water the plants on the balcony this evening.",
    "The kitchen light has been switched off, and the front door is locked.",
    "Tomorrow morning the bus leaves at half past seven, so set an alarm.",
    "The washing machine has finished, please hang the clothes outside.",
    "The morning train to the city is running twenty minutes late "
    "because of the heavy snow on the tracks near the bridge.",
]
UPLOAD_LINES = [
    "Good morning, the kettle is on and the bread is in the toaster.",
    "The bus to school leaves at ten past eight from the corner.",
    "I left the spare key with the neighbours across the street.",
]
SPEAKER = "owner"
# A short real job: 10 gradient steps, a check on the real engine every 5, one line said per check;
# the dataset's own minimums lowered to the six sentences recorded here.
KOKORO_PARAMS = {"epochs": "10", "checkEvery": "5", "lines": "1", "minSamples": "3", "minMinutes": "0"}
JOB_TIMEOUT_MS = 40 * 60_000  # the job took 3 min on a loaded 2-core machine (68 s to set up, 11 s a step)


def main() -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="voice-agent-shots-") as scratch:
        root = Path(scratch)
        home = root / "home"
        prepare_kokoro(home)
        broker = Mosquitto(root / "mosquitto").start()
        # no stand-in trainer: the Training screen lists the real ones
        agent = web_agent(home, broker, ("default", "kitchen"), VOICE_AGENT_EXTRA_TRAINERS="{}").start()
        try:
            agent.wait_log("ready", timeout=120)
            for line in LINES:
                record(agent, "default", line)
            exported = api(agent, "default", "samples.export", {"target": "kokoro", "speaker": SPEAKER})
            assert exported.status_code == 200, exported.text
            with browser_session() as browser:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(120_000)
                shoot(page, agent)
                page.close()
                upload = browser.new_page(viewport={"width": 1280, "height": 900})
                upload.set_default_timeout(240_000)
                shoot_uploads(upload, agent)
            shoot_record_card(agent, root)
        except BaseException:
            tell_why(agent)
            raise
        finally:
            agent.stop()
            broker.stop()
    print(f"screenshots took {time.monotonic() - started:.0f} s")


def tell_why(agent: AgentProcess) -> None:
    """A failed run's last agent and job log lines: the scratch home goes with the run."""
    lines = agent.log.read_text(errors="replace").splitlines() if agent.log.exists() else []
    print("--- the agent's log, last lines:", *lines[-30:], sep="\n", file=sys.stderr)
    for log in sorted((agent.home / "profiles").glob("*/out/training/*/*.log")):
        print(f"--- {log.name}:", *log.read_text(errors="replace").splitlines()[-20:], sep="\n", file=sys.stderr)


def prepare_kokoro(home: Path) -> None:
    """Kokoro's model in the home before the agent starts, as tests/providers/kokoro/models.py makes it."""
    began = time.monotonic()
    provider = KokoroProvider()
    provider.runtime(KokoroSettings(voice="af_heart"), home_context(home))
    provider.close()
    print(f"Kokoro prepared in {time.monotonic() - began:.0f} s")


def save(page: Any, name: str) -> None:
    path = DOCS / f"web-{name}.png"
    page.evaluate("window.scrollTo(0, 0)")  # the bar at the top sticks where the page was scrolled to
    page.screenshot(path=str(path), full_page=True)
    print("wrote", path.relative_to(REPO))


def shoot(p: Any, agent: AgentProcess) -> None:
    open_screen(p, agent, "default", "settings")
    save(p, "settings")
    p.fill("[data-field='tts.piper.speakingRate']", "7")
    p.click("#settings-save")
    p.wait_for_selector("[data-error-for='tts.piper.speakingRate']:not(:empty)")
    p.locator(".field.invalid").scroll_into_view_if_needed()
    p.screenshot(path=str(DOCS / "web-settings-refused.png"))
    print("wrote docs/web-settings-refused.png")
    p.click("#settings-revert")
    shoot_voices(p)
    p.reload()  # the provider picked for the picture is not saved

    open_screen(p, agent, "default", "speak")
    p.fill("#speak-text", "Good evening! Dinner is ready in ten minutes. Please set the table.")
    p.click("#speak-go")
    p.wait_for_selector("#speak-summary-card:not([hidden])", timeout=120_000)
    p.wait_for_timeout(800)
    save(p, "speak")

    open_screen(p, agent, "default", "samples")
    p.click("#report-make")
    p.wait_for_selector("#report-img:not([hidden])", timeout=120_000)
    p.locator("#samples-rows input[type=checkbox]").nth(1).check()
    p.wait_for_timeout(500)
    save(p, "samples")

    shoot_training(p, agent)
    print(f"(the page at {base_url(agent)}/)")


def shoot_voices(p: Any) -> None:
    """The voice field of Kokoro's section: its list of voices by language, opened (a native
    drop-down is not in a screenshot, so the list is shown as a box of 16 rows)."""
    p.select_option("[data-field='tts.provider']", label="kokoro")
    pick = p.locator("[data-field='tts.kokoro.voice']")
    pick.wait_for()
    pick.evaluate("(node) => { node.size = 16; node.scrollTop = 0; }")
    field = pick.locator("xpath=ancestor::*[contains(concat(' ', @class, ' '), ' field ')][1]")
    field.scroll_into_view_if_needed()
    box = field.bounding_box()
    p.screenshot(path=str(DOCS / "web-voices.png"), clip={"x": box["x"] - 16, "y": box["y"],
                                                            "width": box["width"] + 32, "height": box["height"]})
    print("wrote docs/web-voices.png")


def shoot_training(p: Any, agent: AgentProcess) -> None:
    """A real Kokoro voicepack job started from the page: before Start (the samples, each trainer's
    readiness, the estimate), while it runs (stage, step, best similarity, loss, time left) and
    after it (Listen: the new voice said the test sentence)."""
    open_screen(p, agent, "default", "training")
    p.select_option("#train-provider", "kokoro")
    p.fill("#train-speaker", SPEAKER)
    for name, value in KOKORO_PARAMS.items():
        p.fill(f"[data-field='params.{name}']", value)
    p.wait_for_function("() => /× 10 steps/.test(document.getElementById('plan-estimate').textContent)")
    p.wait_for_selector("#train-start:not([disabled])")
    p.evaluate("document.activeElement.blur()")  # no focus ring on the last field filled
    save(p, "training-plan")

    p.click("#train-start")
    p.wait_for_selector("#train-status:has-text('submitted')")
    job = p.inner_text("#train-status").split()[1]
    # time left from the job's own pace once it has done steps, best similarity after the first check
    p.wait_for_function("() => { const now = document.getElementById('job-now');"
                        " return now.dataset.state === 'running' && now.dataset.eta !== ''"
                        " && Number(now.dataset.percent) >= 50; }", timeout=JOB_TIMEOUT_MS)
    p.locator(f"#jobs-rows tr[data-job='{job}'] button", has_text="Log").click()
    p.wait_for_selector("#job-log-box:not([hidden])")
    p.wait_for_timeout(1500)
    save(p, "training")

    open_screen(p, agent, "default", "gpu")
    p.wait_for_selector(f"#gpu-users [data-job='{job}']")
    save(p, "gpu")

    open_screen(p, agent, "default", "training")
    p.wait_for_selector("#job-now[data-state='finished']", timeout=JOB_TIMEOUT_MS)
    listen = p.locator(f"#jobs-rows tr[data-job='{job}'] button[data-listen]")
    listen.wait_for()
    listen.click()
    p.wait_for_selector(f"#listen-box[data-job='{job}']:not([hidden])")
    p.click("#listen-new")
    p.wait_for_function("() => { const a = document.getElementById('listen-audio');"
                        " return a.dataset.playing === 'new' && a.played.length > 0 && a.currentTime > 0; }",
                        timeout=300_000)
    p.wait_for_timeout(500)
    save(p, "training-done")
    finished = api(agent, "default", "train.status", {"job": job}).json()["data"]["job"]
    print(f"job {job}: {finished['state']}, {finished.get('progress')}")


def shoot_uploads(p: Any, agent: AgentProcess) -> None:
    """The Upload recordings card after two files: a recording with pauses, cut into samples, and
    one sentence as MP3 kept with its transcript."""
    pause = np.zeros(int(1.5 * OWNER_RATE), np.float32)
    audio = np.concatenate([pause] + [part for line in UPLOAD_LINES for part in (owner(line), pause)])
    flac, mp3 = io.BytesIO(), io.BytesIO()
    soundfile.write(flac, audio, OWNER_RATE, format="FLAC", subtype="PCM_16")
    line = "Could somebody take the recycling out before the truck comes?"
    soundfile.write(mp3, np.concatenate([pause[:6000], owner(line), pause[:6000]]), OWNER_RATE,
                    format="MP3", subtype="MPEG_LAYER_III")
    open_screen(p, agent, "kitchen", "samples")
    p.set_input_files("#upload-files", files=[
        {"name": "voice-memo.flac", "mimeType": "audio/flac", "buffer": flac.getvalue()},
        {"name": "recycling.mp3", "mimeType": "audio/mpeg", "buffer": mp3.getvalue()}])
    p.locator("#upload-list li[data-file='recycling.mp3'] input[type=text]").fill(line)
    p.click("#upload-go")
    p.wait_for_selector("#upload-list li[data-file='recycling.mp3'][data-state='done']")
    p.wait_for_timeout(500)
    card = p.locator("#upload-card")
    card.evaluate("(node) => node.scrollIntoView({ block: 'center' })")  # clear of the bar at the top, which sticks
    card.screenshot(path=str(DOCS / "web-uploads.png"))
    print("wrote docs/web-uploads.png")


def shoot_record_card(agent: AgentProcess, scratch: Path) -> None:
    """The Record card after a take (Chromium's fake microphone plays the Piper voice reading the
    card's sentence): its verdict, score and components, the next sentence to read."""
    path = DOCS / "web-record.png"
    read_aloud(agent, "kitchen", scratch, shot=path)
    print("wrote", path.relative_to(REPO))


if __name__ == "__main__":
    main()
