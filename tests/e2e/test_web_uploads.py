"""Recordings uploaded from the Samples tab in a real browser (Debian's Chromium through Playwright)
against the real agent: a minute of the owner as FLAC cut into samples that the page lists piece
by piece and samples.list holds; an MP3 of one sentence dropped on the card and kept with its
transcript; a forged WAV and a FLAC that is not one refused with the reason and nothing stored;
and the phone layout, where every tab stays on the screen at 390 px."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from tests.conftest import AgentProcess
from tests.e2e.browser import api, new_page, open_screen, web_agent
from tests.mosquitto import Mosquitto
from tests.speech import OWNER_RATE, owner, wav

pytestmark = pytest.mark.slow

PROFILES = ("default", "long", "hostile", "phone")
SENTENCES = (
    "Good morning, the kettle is on and the bread is in the toaster.",
    "Please remember to water the tomatoes on the balcony tonight.",
    "The bus to school leaves at ten past eight from the corner.",
    "I left the spare key with the neighbours across the street.",
    "Could somebody take the recycling out before the truck comes?",
    "The library books are due back on Thursday afternoon.",
    "Dinner will be a little late because the oven is still cold.",
    "Let us go for a walk by the river when the rain stops.",
)
STICKING_OUT = """() => [...document.querySelectorAll("*")].filter((n) => n.getBoundingClientRect().right > 390)
    .slice(0, 8).map((n) => `${n.tagName}#${n.id}.${n.className} ${Math.round(n.getBoundingClientRect().right)}`)"""
PAUSE_SECONDS = 2.0
MINUTE = 60.0


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[AgentProcess]:
    process = web_agent(tmp_path_factory.mktemp("web-uploads"), broker, PROFILES).start()
    process.wait_log("ready")
    yield process
    process.stop()


def a_minute_of_the_owner() -> bytes:
    """The owner reading the sentences with a pause after each, as one 60 s FLAC."""
    pause = np.zeros(int(PAUSE_SECONDS * OWNER_RATE), np.float32)
    parts = [np.zeros(int(0.5 * OWNER_RATE), np.float32)]
    for line in SENTENCES:
        parts += [owner(line), pause]
    audio = np.concatenate(parts)
    assert len(audio) < MINUTE * OWNER_RATE, "the sentences no longer fit in a minute"
    audio = np.concatenate([audio, np.zeros(int(MINUTE * OWNER_RATE) - len(audio), np.float32)])
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, OWNER_RATE, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def mp3_of(line: str) -> bytes:
    pad = np.zeros(int(0.4 * OWNER_RATE), np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, np.concatenate([pad, owner(line), pad]), OWNER_RATE, format="MP3", subtype="MPEG_LAYER_III")
    return buffer.getvalue()


def samples(agent: AgentProcess, profile: str) -> list[dict[str, Any]]:
    answer = api(agent, profile, "samples.list")
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"]["samples"])


def pick(page: Any, *files: tuple[str, str, bytes]) -> None:
    page.set_input_files("#upload-files", files=[{"name": n, "mimeType": t, "buffer": b} for n, t, b in files])


def drop(page: Any, name: str, mime: str, data: bytes) -> None:
    """A file dropped on the card, as a desktop's file manager drops one."""
    page.evaluate("""([name, mime, b64]) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, { type: mime }));
        const zone = document.getElementById("upload-drop");
        for (const type of ["dragenter", "dragover", "drop"]) {
            zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }
    }""", [name, mime, base64.b64encode(data).decode()])


def item(page: Any, name: str) -> Any:
    return page.locator(f"#upload-list li[data-file='{name}']")


def test_a_minute_of_flac_is_cut_into_samples_and_an_mp3_keeps_its_transcript(
    page: Any, agent: AgentProcess, tmp_path: Path,
) -> None:
    # the MP3's line has no comma: Piper's pause at one is near the cut's own length, and a file of
    # one sentence cut in two keeps no transcript (the flac's pieces may still fall either way)
    flac, line = a_minute_of_the_owner(), SENTENCES[1]
    open_screen(page, agent, "long", "samples")
    pick(page, ("owner-minute.flac", "audio/flac", flac))
    drop(page, "one-line.mp3", "audio/mpeg", mp3_of(line))
    assert page.inner_text("#upload-go") == "Upload 2 files"
    item(page, "owner-minute.flac").locator("input[type=text]").fill("words for a whole minute, which no piece holds alone")
    item(page, "one-line.mp3").locator("input[type=text]").fill(line)
    page.click("#upload-go")
    page.wait_for_selector("#upload-list li[data-file='one-line.mp3'][data-state='done']", timeout=240_000)

    long, short = item(page, "owner-minute.flac"), item(page, "one-line.mp3")
    assert long.get_attribute("data-state") == "done", long.inner_text()
    kept = long.locator("li.kept").evaluate_all("nodes => nodes.map(n => n.dataset.sample)")
    assert len(kept) >= 6, long.inner_text()  # eight sentences; a piece or two may fall short
    assert "1 min 0 s of audio, cut into" in long.inner_text()
    assert "The transcript was not stored" in long.locator("[data-note=transcript]").inner_text()
    [mp3_sample] = short.locator("li.kept").evaluate_all("nodes => nodes.map(n => n.dataset.sample)")
    assert short.locator("[data-note=transcript]").inner_text() == "Kept with its transcript."

    listed = {s["id"]: s for s in samples(agent, "long")}
    assert set(kept) | {mp3_sample} == set(listed)
    assert listed[mp3_sample]["transcript"] == line
    assert all(listed[k]["transcript"] is None for k in kept)
    assert sorted(listed[k]["duration"] for k in kept)[0] > 2  # sentences, not slivers
    page.wait_for_function(f"() => document.querySelectorAll('#samples-rows tr').length === {len(listed)}")
    assert page.inner_text("#upload-status") == f"{len(listed)} samples kept from these files."
    page.locator("#upload-card").screenshot(path=str(tmp_path / "upload-card.png"))


def test_a_forged_wav_and_a_flac_that_is_not_one_are_refused_and_nothing_is_stored(
    browser: Any, agent: AgentProcess, tmp_path: Path,
) -> None:
    context, page, errors = new_page(browser, 390, 844)  # on a phone, as the household's member holds it
    forged = bytearray(wav(owner(SENTENCES[1]), OWNER_RATE))
    at = forged.index(b"data") + 4
    forged[at:at + 4] = (1_500_000_000).to_bytes(4, "little")  # a header claiming 1.5 GB
    open_screen(page, agent, "hostile", "samples")
    pick(page, ("forged.wav", "audio/wav", bytes(forged)), ("fake.flac", "audio/flac", b"fLaC" + bytes(range(256)) * 40),
         ("notes.txt", "text/plain", b"not audio"))
    assert item(page, "notes.txt").inner_text().count("Not sent: notes.txt is not a WAV, FLAC, OGG or MP3 file.") == 1
    page.click("#upload-go")
    page.wait_for_selector("#upload-list li[data-file='fake.flac'][data-state='refused']", timeout=60_000)

    assert "Refused: the agent cannot read it: the WAV header says it holds 1.5 GB of audio but the file has" \
        in item(page, "forged.wav").inner_text()
    assert "Refused: the agent cannot read it: not a readable FLAC file: File contains data in an unimplemented format." \
        in item(page, "fake.flac").inner_text()
    assert item(page, "forged.wav").get_attribute("data-code") == "invalid_audio"
    assert samples(agent, "hostile") == []
    assert page.inner_text("#upload-status") == "0 samples kept from these files."
    page.locator("#upload-card").screenshot(path=str(tmp_path / "upload-card-phone.png"))
    context.close()
    assert errors.errors == [], errors.errors


def test_every_tab_is_on_a_phone_screen_and_the_cards_fit(browser: Any, agent: AgentProcess, tmp_path: Path) -> None:
    context, page, errors = new_page(browser, 390, 844)
    try:
        for tab in ("settings", "speak", "samples", "training", "gpu"):
            open_screen(page, agent, "phone", tab)
            page.screenshot(path=str(tmp_path / f"phone-{tab}.png"), full_page=True)
            boxes = page.eval_on_selector_all("#tabs a", "links => links.map(a => { const r = a.getBoundingClientRect();"
                                              " return [a.dataset.tab, r.left, r.right, r.top, r.bottom]; })")
            for name, left, right, top, bottom in boxes:
                assert 0 <= left and right <= 390 and 0 <= top and bottom <= 844, (tab, name, left, right, top, bottom)
            assert page.evaluate("() => document.documentElement.scrollWidth") <= 390, (tab, page.evaluate(STICKING_OUT))
        for tab in ("gpu", "training", "settings"):  # each one reached by a tap on its tab
            page.click(f"#tabs a[data-tab='{tab}']")
            page.wait_for_selector(f"#screen-{tab}[data-loaded='phone']")
    finally:
        context.close()
    assert errors.errors == [], errors.errors
