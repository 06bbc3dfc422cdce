"""The page's voice field in a real browser (Debian's Chromium, driven by Playwright) against the
real agent: a select of installed and catalog voices grouped by language, "other…" for a blend,
Save saying when a voice will fall back, the Test voice screen saying why it did, a catalog voice
fetched with "Get" (progress from the event stream) and then speaking, a voice file uploaded.
One agent for the module, a profile per test."""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AgentProcess
from tests.e2e.browser import api, open_screen, web_agent
from tests.mosquitto import Mosquitto
from tests.voice_mirror import MIRROR_VOICE, VoiceMirror, joe_files

pytestmark = pytest.mark.slow

PROFILES = ("default", "pick", "blend", "fallback", "fetch", "upload")
PIPER_PICK = "[data-field='tts.piper.model']"
KOKORO_PICK = "[data-field='tts.kokoro.voice']"
OTHER = "\u0000other"


@pytest.fixture(scope="module")
def mirror() -> Iterator[VoiceMirror]:
    with VoiceMirror() as serving:
        yield serving


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto, mirror: VoiceMirror) -> Iterator[AgentProcess]:
    """Voices come from the local mirror, and only when asked for ("Get"): a voice that is not
    installed is answered by the fallback, which says why."""
    process = web_agent(tmp_path_factory.mktemp("web-voices"), broker, PROFILES,
                        VOICE_AGENT_PIPER_VOICES_URL=mirror.piper_url, VOICE_AGENT_KOKORO_VOICES_URL=mirror.kokoro_url,
                        VOICE_AGENT_VOICE_DOWNLOAD_ON_DEMAND="false").start()
    process.wait_log("ready")
    yield process
    process.stop()


def voice_json(agent: AgentProcess, profile: str) -> dict[str, Any]:
    return dict(json.loads((agent.home / "profiles" / profile / "etc" / "voice.json").read_text()))


def options(page: Any, select: str) -> list[dict[str, str]]:
    """The select's options in order: value, text, its group's label, installed."""
    return list(page.eval_on_selector_all(f"{select} option", """nodes => nodes.map(n => ({
        value: n.value, text: n.textContent, group: n.parentElement.label || "", installed: n.dataset.installed || ""}))"""))


def save(page: Any) -> None:
    page.click("#settings-save")
    page.wait_for_selector("#settings-status:has-text('the agent uses it now')")


def speak(page: Any, agent: AgentProcess, profile: str, text: str) -> dict[str, str]:
    """Say ``text`` on the Test voice screen; the facts of the answer it shows."""
    open_screen(page, agent, profile, "speak")
    page.fill("#speak-text", text)
    page.click("#speak-go")
    page.wait_for_selector("#speak-summary-card:not([hidden])", timeout=120_000)
    return dict(page.eval_on_selector_all("#speak-summary dd", "nodes => nodes.map(n => [n.dataset.fact, n.textContent])"))


def test_the_voice_field_is_a_select_grouped_by_language_installed_first(page: Any, agent: AgentProcess) -> None:
    open_screen(page, agent, "pick", "settings")
    listed = options(page, PIPER_PICK)
    assert listed[0]["value"] == "en_US-joe-medium" and listed[0]["installed"] == "true"  # what is installed comes first
    assert listed[0]["group"] == "English (United States) · piper"
    assert "⬇" not in listed[0]["text"]
    catalog = [o for o in listed if o["installed"] == "false"]
    assert len(catalog) >= 170  # Piper's whole catalog, offered offline from the snapshot
    lessac = next(o for o in listed if o["value"] == "en_US-lessac-medium")
    assert lessac["group"] == "English (United States) · piper" and "⬇ 63 MB" in lessac["text"], lessac
    groups = [o["group"] for o in listed if o["value"] != OTHER]
    assert groups == sorted(groups, key=groups.index)  # each language's voices together, one group each
    assert "German (Germany) · piper" in groups and listed[-1]["value"] == OTHER
    # the label names the select (a screen reader reads "Model"), and the keyboard moves through it
    assert page.get_attribute(f"label[for='{page.get_attribute(PIPER_PICK, 'id')}']", "for")
    page.focus(PIPER_PICK)
    page.keyboard.press("ArrowDown")
    assert page.input_value(PIPER_PICK) == listed[1]["value"]

    # a downloadable voice: "Get" next to it, and saved, the page says it will fall back until installed
    page.select_option(PIPER_PICK, "en_US-lessac-medium")
    get = page.get_by_role("button", name="Get en_US-lessac-medium (63 MB)")
    assert get.is_visible()
    save(page)
    assert voice_json(agent, "pick")["tts"]["piper"]["model"] == "en_US-lessac-medium"
    note = page.inner_text("#settings-voice-note")
    assert "en_US-lessac-medium is not installed yet" in note and "fallback voice" in note, note
    assert page.input_value(PIPER_PICK) == "en_US-lessac-medium"  # the form shows what is in force

    page.select_option(PIPER_PICK, "en_US-joe-medium")
    assert not get.is_visible()
    save(page)
    assert page.is_hidden("#settings-voice-note")  # installed: nothing to say


def test_other_takes_a_blend_the_list_cannot_hold(page: Any, agent: AgentProcess) -> None:
    open_screen(page, agent, "blend", "settings")
    page.select_option("[data-field='tts.provider']", label="kokoro")
    kokoro = options(page, KOKORO_PICK)
    assert {"af_heart", "jf_alpha", "bm_george"} <= {o["value"] for o in kokoro}
    assert next(o for o in kokoro if o["value"] == "af_heart")["group"] == "English (United States) · kokoro"
    # Kokoro's catalog publishes no sizes: its voices are marked to Get, with no size made up ("0.0 MB")
    george = next(o for o in kokoro if o["value"] == "bm_george")
    assert george["installed"] == "false" and george["text"] == "bm_george · ⬇", george
    page.select_option(KOKORO_PICK, OTHER)
    other = page.locator("fieldset[data-provider='kokoro'] input.other")
    assert other.is_visible() and other.evaluate("n => n === document.activeElement")  # typed into at once
    other.fill("jf_alpha:0.6,jf_nezumi:0.4")
    save(page)
    assert voice_json(agent, "blend")["tts"]["kokoro"]["voice"] == "jf_alpha:0.6,jf_nezumi:0.4"
    # shown again as "other…" with the blend in the box
    assert page.input_value(KOKORO_PICK) == OTHER and other.input_value() == "jf_alpha:0.6,jf_nezumi:0.4"
    assert "not a voice the agent lists" in page.inner_text("#settings-voice-note")


def test_the_test_voice_screen_says_why_it_fell_back(page: Any, agent: AgentProcess) -> None:
    """af_heart is in Kokoro's catalog but not installed here: Piper speaks, and the page says so and why."""
    open_screen(page, agent, "fallback", "settings")
    page.select_option("[data-field='tts.provider']", label="kokoro")
    page.select_option(KOKORO_PICK, "af_heart")
    save(page)
    facts = speak(page, agent, "fallback", "Hello.")
    assert facts["provider"] == "piper" and facts["fallback"].startswith("yes: "), facts
    notice = page.inner_text("#speak-fallback")
    reason = facts["fallback"].removeprefix("yes: ")
    assert notice.startswith("Spoken by the fallback voice (piper en_US-joe-medium), because downloads_off: "), notice
    assert reason in notice and "press “Get”" in notice, notice


def test_a_catalog_voice_is_fetched_with_progress_and_speaks_next(page: Any, agent: AgentProcess, mirror: VoiceMirror) -> None:
    """The mirror's catalog names en_US-mirror-medium (real, verifiable voice files, 63 MB). Its
    first download breaks at 20 MB: the page says why; "Get" again resumes from there, the bar
    follows the events, and the voice, saved, speaks the next test sentence."""
    assert api(agent, "fetch", "voices.catalog", {"update": True}).status_code == 200  # the mirror's newer catalog
    mirror.faults.break_after[f"{MIRROR_VOICE}.onnx"] = 20_000_000
    open_screen(page, agent, "fetch", "settings")
    offered = next(o for o in options(page, PIPER_PICK) if o["value"] == MIRROR_VOICE)
    assert offered["installed"] == "false" and "⬇ 63 MB" in offered["text"], offered
    page.select_option(PIPER_PICK, MIRROR_VOICE)
    picker = "fieldset[data-provider='piper'] .voice-picker"
    get = page.get_by_role("button", name=f"Get {MIRROR_VOICE} (63 MB)")
    get.click()
    page.wait_for_selector(f"{picker}[data-download='failed']")
    note = page.inner_text(f"{picker} .hint[data-kind='error']")
    assert f"{MIRROR_VOICE} was not downloaded" in note and "connection broke" in note and "(voice_download_failed)" in note, note

    page.evaluate("""picker => { window.seen = [];
        new MutationObserver(() => { const label = document.querySelector(picker + ' .download .label');
            if (label) window.seen.push(label.textContent); })
          .observe(document.querySelector(picker), { subtree: true, childList: true }); }""", picker)
    get.click()
    page.wait_for_selector(f"{picker}[data-download='finished']", timeout=120_000)
    seen = page.evaluate("() => window.seen")
    shown = [int(m.group(1)) for text in seen if (m := re.fullmatch(rf"{MIRROR_VOICE}: (\d+) MB of 63 MB", text))]
    assert shown and 20 <= shown[0] < 63 and shown == sorted(shown), seen  # resumed at 20 MB, then onwards
    assert seen[-1] == f"{MIRROR_VOICE}: installed", seen
    assert (f"en/en_US/mirror/medium/{MIRROR_VOICE}.onnx", "bytes=20000000-") in mirror.requests
    now = next(o for o in options(page, PIPER_PICK) if o["value"] == MIRROR_VOICE)
    assert now["installed"] == "true" and "⬇" not in now["text"] and page.input_value(PIPER_PICK) == MIRROR_VOICE
    assert page.is_hidden(f"{picker} button.get")

    save(page)
    assert voice_json(agent, "fetch")["tts"]["piper"]["model"] == MIRROR_VOICE and page.is_hidden("#settings-voice-note")
    facts = speak(page, agent, "fetch", "The mirror voice speaks now.")
    assert (facts["provider"], facts["voice"], facts["fallback"]) == ("piper", MIRROR_VOICE, "no"), facts


def test_an_uploaded_piper_voice_becomes_a_voice(page: Any, agent: AgentProcess, tmp_path: Path) -> None:
    """A zip of a Piper pair (joe's real files under another name), uploaded for the household:
    offered as installed at once; a file that is no voice is refused with the agent's code."""
    model, config = joe_files()
    bundle = tmp_path / "en_US-upload-medium.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.write(model, "voice/en_US-upload-medium.onnx")
        archive.write(config, "voice/en_US-upload-medium.onnx.json")
    open_screen(page, agent, "upload", "settings")
    page.set_input_files("#import-file", str(bundle))
    page.select_option("#import-scope", "household")
    page.click("#import-go")
    page.wait_for_selector("#import-status:has-text('Installed: piper en_US-upload-medium')", timeout=120_000)
    uploaded = next(o for o in options(page, PIPER_PICK) if o["value"] == "en_US-upload-medium")
    assert uploaded["installed"] == "true" and uploaded["group"] == "English (United States) · piper", uploaded

    bad = tmp_path / "not-a-voice.onnx"
    bad.write_bytes(b"hello, I am no voice")
    page.set_input_files("#import-file", str(bad))
    page.click("#import-go")
    page.wait_for_selector("#import-error:not([hidden])")
    error = page.inner_text("#import-error")
    assert error.startswith("Not installed: ") and re.search(r"\(\w+\)$", error), error
    assert "not-a-voice" not in {o["value"] for o in options(page, PIPER_PICK)}
