"""VOICE_AGENT_MAX_AUDIO_SECONDS: the cap on one speak request's audio (issue 18)."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent.settings import SettingsError, load_settings


def test_the_default_is_five_minutes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOICE_AGENT_HOME", str(tmp_path))
    assert load_settings().max_audio_seconds == 300


@pytest.mark.parametrize("value", ["0.5", "86400"])
def test_any_positive_cap_up_to_a_day_is_taken(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str) -> None:
    monkeypatch.setenv("VOICE_AGENT_HOME", str(tmp_path))
    monkeypatch.setenv("VOICE_AGENT_MAX_AUDIO_SECONDS", value)
    assert load_settings().max_audio_seconds == float(value)


@pytest.mark.parametrize("value", ["0", "-1", "86400.5", "inf", "nan"])
def test_a_cap_that_bounds_nothing_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str) -> None:
    monkeypatch.setenv("VOICE_AGENT_HOME", str(tmp_path))
    monkeypatch.setenv("VOICE_AGENT_MAX_AUDIO_SECONDS", value)
    with pytest.raises(SettingsError, match="VOICE_AGENT_MAX_AUDIO_SECONDS"):
        load_settings()
