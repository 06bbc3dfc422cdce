from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.settings import load_settings


def test_environment_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOICE_AGENT_HOME", str(tmp_path))
    monkeypatch.setenv("VOICE_AGENT_MQTT_HOST", "broker.lan")
    monkeypatch.setenv("VOICE_AGENT_MQTT_PORT", "8883")
    monkeypatch.setenv("VOICE_AGENT_MQTT_USERNAME", "va")
    monkeypatch.setenv("VOICE_AGENT_MQTT_PASSWORD", "pw")
    monkeypatch.setenv("VOICE_AGENT_BASE_TOPIC", "house/voice/")
    settings = load_settings()
    assert settings.home == tmp_path and settings.mqtt_host == "broker.lan" and settings.mqtt_port == 8883
    assert settings.mqtt_username == "va" and settings.mqtt_password is not None
    assert settings.mqtt_password.get_secret_value() == "pw" and "pw" not in repr(settings)
    assert settings.base_topic == "house/voice"


def test_settings_file_fills_what_the_environment_leaves(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "agent.env").write_text("VOICE_AGENT_MQTT_PORT=1999\nVOICE_AGENT_QUEUE_DEPTH=3\n")
    monkeypatch.setenv("VOICE_AGENT_HOME", str(tmp_path))
    monkeypatch.setenv("VOICE_AGENT_QUEUE_DEPTH", "5")
    settings = load_settings()
    assert settings.mqtt_port == 1999 and settings.queue_depth == 5


@pytest.mark.parametrize(("name", "value"), [("VOICE_AGENT_MQTT_PORT", "70000"), ("VOICE_AGENT_BASE_TOPIC", "a/#")])
def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.removeprefix("VOICE_AGENT_").lower()):
        load_settings()
