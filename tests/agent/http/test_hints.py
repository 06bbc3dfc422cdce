"""The page's words for refusals name the page's buttons, never a shell command."""

from __future__ import annotations

import json

import pytest

from agent.http.errors import error_response
from agent.http.hints import HINTS, page_hint


def test_not_ready_names_the_samples_tab_and_what_is_missing() -> None:
    hint = page_hint("not_ready", {"provider": "kokoro", "speaker": "owner", "dataset": "/x",
                                   "missing": ["29 more samples with transcripts (have 1, need 30)"]})
    assert hint is not None
    assert "29 more samples with transcripts" in hint and "Record card in the Samples tab" in hint


def test_each_code_has_its_own_words() -> None:
    assert "Cancel" in (page_hint("duplicate", {"job": "j", "provider": "rvc", "speaker": "s", "state": "running"}) or "")
    assert "press Cancel" in (page_hint("busy", {"queued": 5, "limit": 5}) or "")
    assert "Listen" in (page_hint("not_ready", {"job": "j", "state": "running"}) or "")
    assert "Export" in (page_hint("not_ready", {"provider": "rvc", "speaker": "s", "problems_found": ["no WAVs"]}) or "")
    assert page_hint("not_ready", {}) is None and page_hint("voice_not_found", {"x": 1}) is None


def test_no_hint_speaks_of_the_shell() -> None:
    facts = {"provider": "rvc", "speaker": "s", "dataset": "/d", "missing": ["x"], "job": "j", "state": "queued",
             "queued": 1, "limit": 1, "problems_found": ["y"]}
    for code in HINTS:
        hint = page_hint(code, facts) or ""
        assert "voice-agent" not in hint and "--speaker" not in hint and "`" not in hint, (code, hint)


def test_the_http_body_carries_the_hint() -> None:
    body = json.loads(error_response("busy", "full", {"queued": 2, "limit": 2}).text or "{}")
    assert body["code"] == "busy" and body["error"] == "full" and "2 jobs are waiting" in body["hint"]
    assert "hint" not in json.loads(error_response("busy", "full").text or "{}")


# -- each branch's words, whole (issue 23: a dropped fact or a branch taken for another shows) ---------

def test_not_ready_for_a_dataset_lists_what_is_missing() -> None:
    assert page_hint("not_ready", {"provider": "rvc", "missing": ["10 more samples", "a transcript"]}) == (
        "Not enough to train rvc yet: 10 more samples; a transcript. Record more takes with the Record card in the "
        "Samples tab, or upload recordings there; Start turns on when there is enough.")
    assert page_hint("not_ready", {"provider": "rvc", "missing": []}) == (
        "Not enough to train rvc yet: its dataset folder is missing. Record more takes with the Record card in the "
        "Samples tab, or upload recordings there; Start turns on when there is enough.")


def test_not_ready_for_an_exported_dataset_names_its_problems() -> None:
    assert page_hint("not_ready", {"provider": "kokoro", "speaker": "ann", "problems_found": ["no WAVs", "one empty"]}) == (
        "The kokoro dataset for ann that is already exported will not do: no WAVs; one empty. In the Samples tab, "
        "Export a new one for kokoro (it replaces the old one) once there are enough samples.")


def test_not_ready_for_a_job_says_whether_it_runs() -> None:
    assert page_hint("not_ready", {"job": "j7", "state": "running"}) == (
        "Job j7 is running: Listen and Use this voice work once it has finished.")
    assert page_hint("not_ready", {"job": "j7"}) == (
        "This job made nothing the profile can speak with; train Kokoro or RVC for a voice to choose.")


@pytest.mark.parametrize("data", [
    {"missing": ["x"]}, {"provider": "", "missing": ["x"]}, {"problems_found": ["x"]}, {"provider": "rvc"},
    {"state": "running"}, {"job": "", "state": "running"},
])
def test_not_ready_without_its_facts_has_no_words(data: dict[str, object]) -> None:
    assert page_hint("not_ready", data) is None


def test_duplicate_names_the_job_that_trains_already() -> None:
    assert page_hint("duplicate", {"job": "j2", "provider": "rvc", "speaker": "ann", "state": "queued"}) == (
        "Job j2 already trains rvc for ann (queued): wait for it, or press its Cancel button under Jobs first.")
    assert page_hint("duplicate", {"job": "j2"}) is None and page_hint("duplicate", {"provider": "rvc"}) is None


def test_busy_says_how_many_wait_and_nothing_to_export_what_to_do() -> None:
    assert page_hint("busy", {"queued": 3, "limit": 4}) == (
        "3 jobs are waiting already (at most 4): press Cancel on one under Jobs, or wait.")
    assert page_hint("busy", {"limit": 4}) is None and page_hint("busy", None) is None
    assert page_hint("nothing_to_export", None) == (
        "There are no kept samples to export yet: record takes with the Record card above, or upload recordings.")
