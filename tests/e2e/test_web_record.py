"""The Record card in a real browser (Debian's Chromium, its fake microphone playing a WAV of the
bundled Piper voice) against the real agent: prompts read are kept with the prompts as their
transcripts, and a take of other words is kept out of the transcript datasets with the reason.
(Chromium's fake microphone: ``tests/e2e/microphone.py``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AgentProcess
from tests.e2e.browser import api, web_agent
from tests.e2e.microphone import read_aloud
from tests.mosquitto import Mosquitto

pytestmark = pytest.mark.slow

PROFILES = ("reader", "chatter")
OTHER_WORDS = "My phone battery died on the way to work this morning."


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[AgentProcess]:
    process = web_agent(tmp_path_factory.mktemp("web-record"), broker, PROFILES)
    for profile in PROFILES:  # DNSMOS, the slowest component, is not what these tests are about
        config = process.home / "profiles" / profile / "etc" / "voice.json"
        config.write_text(json.dumps({**json.loads(config.read_text()), "record": {"dnsmos": False}}))
    process.start()
    process.wait_log("ready")
    yield process
    process.stop()


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
    assert "27 more samples with transcripts (have 3" in takes[-1]["kokoro"]  # the readiness bar moved
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
    assert "30 more samples with transcripts (have 0" in take["kokoro"]  # not one of Kokoro's
    refused = api(agent, "chatter", "samples.export", {"target": "kokoro"})
    assert refused.status_code != 200 and "samples with transcripts" in refused.text
    rvc = api(agent, "chatter", "samples.export", {"target": "rvc"})
    assert rvc.status_code == 200 and len(rvc.json()["data"]["exported"]) == 1  # RVC needs no transcript
