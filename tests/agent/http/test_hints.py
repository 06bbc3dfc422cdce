"""The page's words for refusals name the page's buttons, never a shell command."""

from __future__ import annotations

import json

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
