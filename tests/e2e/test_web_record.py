"""The Record card in a real browser (Debian's Chromium, its fake microphone playing a WAV of the
bundled Piper voice) against the real agent: prompts read are kept with the prompts as their
transcripts, and a take of other words is kept out of the transcript datasets with the reason.

Chromium's fake microphone plays one file per browser, once (``%noloop``), from when the card
opens the microphone: each take gets a browser of its own, and Stop is pressed once the card has
recorded the whole file (its ``data-seconds``), so a take never holds a second playing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import soxr

from tests.conftest import AgentProcess
from tests.e2e.browser import CHROMIUM, PageErrors, api, open_screen, web_agent
from tests.mosquitto import Mosquitto
from tests.speech import OWNER_RATE, owner, wav, with_silence

pytestmark = pytest.mark.slow

PROFILES = ("reader", "chatter")
FAKE_RATE = 48000
OTHER_WORDS = "My phone battery died on the way to work this morning."


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[AgentProcess]:
    process = web_agent(tmp_path_factory.mktemp("web-record"), broker, PROFILES).start()
    process.wait_log("ready")
    yield process
    process.stop()


def speech_file(folder: Path, text: str) -> tuple[Path, float]:
    """The owner saying ``text`` as a 48 kHz WAV for the fake microphone; its length in seconds."""
    audio = soxr.resample(with_silence(owner(text), OWNER_RATE, 0.6), OWNER_RATE, FAKE_RATE)
    path = folder / f"take-{abs(hash(text))}.wav"
    path.write_bytes(wav(audio, FAKE_RATE))
    return path, len(audio) / FAKE_RATE


def read_aloud(agent: AgentProcess, profile: str, folder: Path, text: str | None = None) -> dict[str, Any]:
    """One take on the Record card, the microphone saying ``text`` (else the card's prompt):
    Record, Stop once the file has played, Keep. The prompt shown and the verdict."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, _FakeMicrophone(playwright, folder, agent, profile, text) as found:
        return found


class _FakeMicrophone:
    """A browser whose microphone plays the owner saying a line, on the Record card for one take."""
    def __init__(self, playwright: Any, folder: Path, agent: AgentProcess, profile: str, text: str | None) -> None:
        self.playwright, self.folder, self.agent, self.profile, self.text = playwright, folder, agent, profile, text

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
        page.wait_for_function(f"Number(document.getElementById('record-time').dataset.seconds) >= {seconds + 0.3}")
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
        page.screenshot(path=str(self.folder / f"{self.profile}-card.png"), full_page=False)
        return found

    def __exit__(self, *exc: object) -> None:
        self.browser.close()


def samples(agent: AgentProcess, profile: str) -> list[dict[str, Any]]:
    return list(api(agent, profile, "samples.list", {"order": "created"}).json()["data"]["samples"])


def test_three_prompts_read_are_three_samples_with_the_prompts_as_transcripts(
    agent: AgentProcess, tmp_path: Path,
) -> None:
    first = api(agent, "reader", "record.prompts", {"count": 3}).json()["data"]
    assert first["read"] == 0 and len(first["prompts"]) == 3
    takes = [read_aloud(agent, "reader", tmp_path) for _ in range(3)]
    assert [t["prompt"] for t in takes] == first["prompts"]  # one after another, never one kept
    for number, take in enumerate(takes, 1):
        assert take["errors"] == [] and take["kept"] == "1" and take["mismatch"] == "false", take
        assert take["verdict"].startswith("Kept: score"), take
        assert take["progress"] == f"{number} of {first['total']} sentences read"
    assert takes[-1]["next"] not in first["prompts"]
    assert "27 more samples (have 3" in takes[-1]["kokoro"]  # the readiness bar moved
    kept = samples(agent, "reader")
    assert sorted(s["transcript"] for s in kept) == sorted(first["prompts"])
    assert all(s["transcript_mismatch"] is None and s["source"] == "web" for s in kept)


def test_a_take_of_other_words_is_kept_out_of_the_transcript_datasets_with_the_reason(
    agent: AgentProcess, tmp_path: Path,
) -> None:
    prompt = api(agent, "chatter", "record.prompts", {"count": 1}).json()["data"]["prompts"][0]
    take = read_aloud(agent, "chatter", tmp_path, OTHER_WORDS)
    assert take["errors"] == [] and take["prompt"] == prompt
    assert take["kept"] == "1" and take["mismatch"] == "true", take
    assert "not for Kokoro or GPT-SoVITS" in take["verdict"]
    assert take["next"] == prompt  # its sentence is still to be read
    [sample] = samples(agent, "chatter")
    assert sample["transcript"] == prompt and "the words heard differ" in sample["transcript_mismatch"]
    assert "30 more samples (have 0" in take["kokoro"]  # not one of Kokoro's
    refused = api(agent, "chatter", "samples.export", {"target": "kokoro"})
    assert refused.status_code != 200 and "samples with transcripts" in refused.text
    rvc = api(agent, "chatter", "samples.export", {"target": "rvc"})
    assert rvc.status_code == 200 and len(rvc.json()["data"]["exported"]) == 1  # RVC needs no transcript
