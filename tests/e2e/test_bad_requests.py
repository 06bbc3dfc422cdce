"""Every malformed request gets exactly one clear error response, and the agent keeps serving."""

from __future__ import annotations

import json
import re

import pytest

from agent.requests import REQUEST_ID_PATTERN
from tests.audio_checks import assert_speech
from tests.conftest import AgentProcess, Probe


@pytest.mark.parametrize(
    ("profile", "command", "payload", "code", "words"),
    [
        ("default", "speak", b"{not json", "invalid_json", "not valid JSON"),
        ("default", "speak", b"[1, 2]", "invalid_payload", "JSON object"),
        ("default", "speak", b'{"id": "m1"}', "invalid_payload", "text: Field required"),
        ("default", "speak", b'{"id": "m2", "text": "hi", "speed": 9}', "invalid_payload", "speed"),
        ("default", "speak", b'{"id": "m3", "text": "hi", "volume": 3}', "invalid_payload", "volume"),
        ("default", "speak", b'{"id": "m4", "text": "hi", "provider": "espeak"}', "invalid_payload", "provider"),
        ("default", "speak", b'{"id": "m5", "text": "hi", "voice": "../../etc/passwd"}', "invalid_payload", "voice"),
        ("default", "speak", b'{"id": "m6", "text": "   "}', "invalid_payload", "something to say"),
        ("default", "speak", b'{"id": "../x", "text": "hi"}', "invalid_payload", "id"),
        ("default", "dance", b"{}", "unknown_command", "speak"),
        ("nobody", "speak", b'{"id": "m7", "text": "hi"}', "unknown_profile", "nobody"),
        ("..", "speak", b'{"id": "m8", "text": "hi"}', "invalid_profile", "plain identifier"),
        ("default", "speak", b"\xff\xfe\x00garbage", "invalid_json", "not valid JSON"),
        ("default", "speak", b'{"id": "m9", "text": "\xff"}', "invalid_json", "not valid JSON"),  # bad UTF-8 inside JSON
    ],
)
def test_bad_request_gets_one_error_response(
    running_agent: AgentProcess, probe: Probe, profile: str, command: str, payload: bytes, code: str, words: str
) -> None:
    response = probe.request(profile, command, payload)

    assert response["status"] == "error"
    assert response["code"] == code, response
    assert words in response["error"]
    document = None
    try:
        document = json.loads(payload)
    except ValueError:
        pass
    if isinstance(document, dict) and isinstance(document.get("id"), str):
        if re.match(REQUEST_ID_PATTERN, document["id"]):
            assert response["id"] == document["id"]
        else:  # an id unfit for a topic is not echoed back
            assert "id" not in response


def test_oversized_payload_is_refused(running_agent: AgentProcess, probe: Probe) -> None:
    payload = json.dumps({"id": "big-1", "text": "a" * 200_000})
    response = probe.request("default", "speak", payload)
    assert response["code"] == "payload_too_large"
    assert "limit" in response["error"]


def test_text_over_the_limit_is_refused(running_agent: AgentProcess, probe: Probe) -> None:
    response = probe.request("default", "speak", {"text": "word " * 2000})
    assert response["code"] == "text_too_long" and "5000" in response["error"]


def test_agent_still_speaks_after_bad_input(running_agent: AgentProcess, probe: Probe) -> None:
    for junk in (b"", b"null", b"{", b"\x00" * 1000):
        probe.publish("voice/default/request/speak", junk)
    response = probe.request("default", "speak", {"id": "after-junk", "text": "Still here."})
    assert response["status"] == "ok"
    assert_speech(probe.wait_topic("voice/default/audio/after-junk"))
    assert running_agent.process is not None and running_agent.process.poll() is None


def test_overrides_meet_the_same_rules_as_voice_json(running_agent: AgentProcess, probe: Probe) -> None:
    response = probe.request("default", "speak", {"text": "Hi.", "provider": "sovits", "voice": "a.b,c"})
    assert response["code"] == "invalid_payload" and "speakerId" in response["error"]
