"""The web page in a real browser: Debian's Chromium driven by Playwright (no browser download:
`make test` installs the chromium package), against the real agent with its HTTP door on."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import REPO, AgentProcess, make_home
from tests.mosquitto import Mosquitto, free_port
from tests.speech import OWNER_RATE, owner, wav, with_silence

CHROMIUM = "/usr/bin/chromium"
TRAINER_ENV = {
    "VOICE_AGENT_EXTRA_TRAINERS": json.dumps({"counting": "tests.fake_trainer:CountingTrainer"}),
    "PYTHONPATH": str(REPO),
}


def web_agent(root: Path, broker: Mosquitto, profiles: tuple[str, ...], **env: str) -> AgentProcess:
    """An agent with the HTTP door on a free port (``agent.http``) and the stand-in trainer."""
    home = make_home(root, profiles=profiles)
    port = free_port()
    agent = AgentProcess(home, broker.port, {"VOICE_AGENT_BASE_TOPIC": f"web-{port}", "VOICE_AGENT_HTTP_ENABLED": "true",
                                             "VOICE_AGENT_HTTP_PORT": str(port), **TRAINER_ENV, **env})
    agent.http = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    return agent


def base_url(agent: AgentProcess) -> str:
    return str(agent.http)  # type: ignore[attr-defined]


def api(agent: AgentProcess, profile: str, command: str, body: dict[str, Any] | None = None, token: str | None = None,
        timeout: float = 120) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{base_url(agent)}/api/profiles/{profile}/commands/{command}", json=body or {},
                         headers=headers, timeout=timeout)


def record(agent: AgentProcess, profile: str, line: str) -> dict[str, Any]:
    """The owner saying ``line`` (real speech), recorded with its transcript; the kept sample."""
    audio = wav(with_silence(owner(line), OWNER_RATE), OWNER_RATE)
    answer = api(agent, profile, "record", {"audio_b64": base64.b64encode(audio).decode(), "transcript": line}, timeout=300)
    assert answer.status_code == 200, answer.text
    kept = answer.json()["data"]["kept"]
    assert kept, answer.json()
    return dict(kept[0])


def launch(playwright: Any) -> Any:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Chromium is not installed: `make test` installs Debian's chromium package")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required"])


@contextmanager
def browser_session() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


class PageErrors:
    """Uncaught errors of the page's scripts: a test fails on any."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))


def open_screen(page: Any, agent: AgentProcess, profile: str, tab: str) -> None:
    """The page at ``#/<profile>/<tab>``, once the screen shows that profile's data."""
    page.goto(f"{base_url(agent)}/#/{profile}/{tab}")
    page.wait_for_selector(f"#screen-{tab}[data-loaded='{profile}']", timeout=60_000)


def new_page(browser: Any, width: int = 1280, height: int = 900) -> tuple[Any, Any, PageErrors]:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(30_000)
    return context, page, PageErrors(page)
