"""The web page's screenshots in docs/, taken from the real page against a running agent (a private
Mosquitto and agent home, real recordings of the Piper voice as the owner, the stand-in trainer).

    make screenshots        # or .venv/bin/python docs/screenshots.py, with Debian's chromium installed
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import AgentProcess  # noqa: E402
from tests.e2e.browser import api, base_url, browser_session, open_screen, record, web_agent  # noqa: E402
from tests.e2e.microphone import read_aloud  # noqa: E402
from tests.mosquitto import Mosquitto  # noqa: E402

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


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="voice-agent-shots-") as scratch:
        root = Path(scratch)
        broker = Mosquitto(root / "mosquitto").start()
        agent = web_agent(root / "home", broker, ("default", "kitchen")).start()
        try:
            agent.wait_log("ready", timeout=60)
            for line in LINES:
                record(agent, "default", line)
            params = {"steps": 20, "step_seconds": 0.05}
            job = {"provider": "counting", "speaker": "owner", "when": "now", "params": params}
            answer = api(agent, "default", "train", job)
            first = answer.json()["data"]["job"]["id"]
            while api(agent, "default", "train.status", {"job": first}).json()["data"]["job"]["state"] != "finished":
                time.sleep(0.2)
            with browser_session() as browser:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                shoot(page, agent)
            shoot_record_card(agent, root)
        finally:
            agent.stop()
            broker.stop()


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

    job = api(agent, "default", "train", {"provider": "counting", "speaker": "kitchen-voice", "when": "now",
                                          "params": {"steps": 300, "step_seconds": 0.1}}).json()["data"]["job"]["id"]
    open_screen(p, agent, "default", "training")
    p.wait_for_function("() => Number(document.getElementById('job-now').dataset.percent) >= 30", timeout=120_000)
    p.locator(f"#jobs-rows tr[data-job='{job}'] button", has_text="Log").click()
    p.wait_for_selector("#job-log-box:not([hidden])")
    p.wait_for_timeout(1200)
    save(p, "training")

    open_screen(p, agent, "default", "gpu")
    p.wait_for_selector(f"#gpu-users [data-job='{job}']")
    save(p, "gpu")
    api(agent, "default", "train.cancel", {"job": job})
    print(f"(the page at {base_url(agent)}/)")


def shoot_record_card(agent: AgentProcess, scratch: Path) -> None:
    """The Record card after a take (Chromium's fake microphone plays the Piper voice reading the
    card's sentence): its verdict, score and components, the next sentence to read."""
    path = DOCS / "web-record.png"
    read_aloud(agent, "kitchen", scratch, shot=path)
    print("wrote", path.relative_to(REPO))


if __name__ == "__main__":
    main()
