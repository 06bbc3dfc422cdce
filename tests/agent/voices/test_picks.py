"""agent/voices/picks.py: OpenAI's voice and model names as a speak request's profile, provider
and voice (the door's mapping, in process)."""

from __future__ import annotations

import pytest

from agent.errors import ServiceError
from agent.voices.picks import VoicePick, openai_pick, profile_of, with_model

TABLE = {"alloy": "kokoro:af_alloy", "echo": "", "mine": "en_US-lessac-medium"}


@pytest.mark.parametrize(
    ("voice", "pick"),
    [
        ("alloy", VoicePick("default", "kokoro", "af_alloy")),  # the table's voice
        ("echo", VoicePick("default")),  # empty in the table: the profile's own voice
        ("shimmer", VoicePick("default")),  # an OpenAI name the table leaves out: the same
        ("mine", VoicePick("default", None, "en_US-lessac-medium")),  # a name of the household's own
        ("kitchen/alloy", VoicePick("kitchen", "kokoro", "af_alloy")),  # the profile's table (the caller read it)
        ("piper:en_US-joe-medium", VoicePick("default", "piper", "en_US-joe-medium")),  # an agent name as Wyoming takes it
        ("kitchen/", VoicePick("kitchen")),
        ("en_US-joe-medium", VoicePick("default", None, "en_US-joe-medium")),
        ("af_bella:0.6,af_sky:0.4", VoicePick("default", None, "af_bella:0.6,af_sky:0.4")),  # a blend, no provider
    ],
)
def test_openai_pick(voice: str, pick: VoicePick) -> None:
    assert openai_pick(voice, TABLE) == pick


def test_profile_of() -> None:
    assert (profile_of("kitchen/alloy"), profile_of("alloy"), profile_of("piper:x")) == ("kitchen", "default", "default")


@pytest.mark.parametrize(
    ("model", "pick", "wanted"),
    [
        ("tts-1", VoicePick("default"), VoicePick("default")),
        ("gpt-4o-mini-tts-2025-03-20", VoicePick("default", None, "x"), VoicePick("default", None, "x")),
        ("kokoro", VoicePick("kitchen"), VoicePick("kitchen", "kokoro")),
        ("piper", VoicePick("default", None, "en_US-joe-medium"), VoicePick("default", "piper", "en_US-joe-medium")),
        ("kokoro", VoicePick("default", "kokoro", "af_alloy"), VoicePick("default", "kokoro", "af_alloy")),
    ],
)
def test_with_model(model: str, pick: VoicePick, wanted: VoicePick) -> None:
    assert with_model(pick, model) == wanted


@pytest.mark.parametrize(("model", "pick", "code"), [
    ("whisper-1", VoicePick("default"), "unknown_model"),
    ("piper", VoicePick("default", "kokoro", "af_alloy"), "invalid_params"),
])
def test_with_model_refuses(model: str, pick: VoicePick, code: str) -> None:
    with pytest.raises(ServiceError) as refused:
        with_model(pick, model)
    assert refused.value.code == code and refused.value.data == {"param": "model"}
