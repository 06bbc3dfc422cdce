"""One take on the web page's Record card, in a Chromium whose fake microphone plays the owner
(the bundled Piper voice) saying a line: for the page's tests and its screenshot.

Chromium's fake microphone plays one file per browser, once (``%noloop``), from when the card
opens the microphone: each take gets a browser of its own, and Stop is pressed once the card has
recorded the whole file (its ``data-seconds``), so a take never holds a second playing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import soxr

from tests.conftest import AgentProcess
from tests.e2e.browser import CHROMIUM, PageErrors, api, open_screen
from tests.speech import OWNER_RATE, owner, wav, with_silence

FAKE_RATE = 48000


def speech_file(folder: Path, text: str) -> tuple[Path, float]:
    """The owner saying ``text`` as a 48 kHz WAV for the fake microphone; its length in seconds."""
    audio = soxr.resample(with_silence(owner(text), OWNER_RATE, 0.6), OWNER_RATE, FAKE_RATE)
    path = folder / f"take-{abs(hash(text))}.wav"
    path.write_bytes(wav(audio, FAKE_RATE))
    return path, len(audio) / FAKE_RATE


def read_aloud(agent: AgentProcess, profile: str, folder: Path, text: str | None = None,
               shot: Path | None = None) -> dict[str, Any]:
    """One take on the Record card, the microphone saying ``text`` (else the card's prompt):
    Record, Stop once the file has played, Keep. The prompt shown and the verdict; the card's
    picture in ``shot``, when given."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, _FakeMicrophone(playwright, folder, agent, profile, text, shot) as found:
        return found


class _FakeMicrophone:
    """A browser whose microphone plays the owner saying a line, on the Record card for one take."""
    def __init__(self, playwright: Any, folder: Path, agent: AgentProcess, profile: str, text: str | None,
                 shot: Path | None) -> None:
        self.playwright, self.folder, self.agent, self.profile, self.text = playwright, folder, agent, profile, text
        self.shot = shot

    def __enter__(self) -> dict[str, Any]:
        prompt = api(self.agent, self.profile, "record.prompts", {"count": 1}).json()["data"]["prompts"][0]
        path, seconds = speech_file(self.folder, self.text or prompt)
        self.browser = self.playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={path}%noloop", "--autoplay-policy=no-user-gesture-required"])
        context = self.browser.new_context(permissions=["microphone"], viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(60_000)
        errors = PageErrors(page)
        open_screen(page, self.agent, self.profile, "samples")
        shown = page.inner_text("#record-prompt")
        page.click("#record-start")
        recorded(page, seconds + 0.3)
        page.click("#record-stop")
        assert page.get_attribute("#record-card", "data-state") == "recorded"
        assert page.is_visible("#record-audio")  # listen back
        page.click("#record-keep")
        page.wait_for_selector("#record-verdict:not([hidden])", timeout=120_000)
        page.wait_for_selector("#record-card[data-state='idle']")
        found = {
            "prompt": shown, "verdict": page.inner_text("#record-verdict"),
            "kept": page.get_attribute("#record-verdict", "data-kept"),
            "mismatch": page.get_attribute("#record-verdict", "data-mismatch"),
            "next": page.inner_text("#record-prompt"), "progress": page.inner_text("#record-progress"),
            "kokoro": page.inner_text("#readiness [data-provider='kokoro']"), "errors": errors.errors,
        }
        if self.shot is not None:
            page.locator("#record-card").screenshot(path=str(self.shot))
        return found

    def __exit__(self, *exc: object) -> None:
        self.browser.close()


def recorded(page: Any, seconds: float) -> None:
    """Wait until the take holds ``seconds`` (the page's policy allows no eval: polled from here)."""
    for _ in range(600):
        if float(page.get_attribute("#record-time", "data-seconds") or 0) >= seconds:
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"the take never reached {seconds:.1f} s")
