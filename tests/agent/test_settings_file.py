"""The settings file's line check: what passes (as python-dotenv reads it), what stops the agent, and
which line it names."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.settings import SettingsError, load_settings
from agent.settings_file import SettingsFileError, check_settings_file


def env_file(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "agent.env"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize("text", [
    "",
    "\n\n",
    "# only a comment\n",
    "VOICE_AGENT_MQTT_PORT=1999\n",
    "VOICE_AGENT_MQTT_PORT=1999",  # no newline at the end
    "export VOICE_AGENT_MQTT_PORT=1999\n",
    "VOICE_AGENT_MQTT_PASSWORD='two words'\n",
    'VOICE_AGENT_MQTT_PASSWORD="a # not a comment"\n',
    "VOICE_AGENT_MQTT_PORT=1999  # a comment after the value\n",
    "VOICE_AGENT_HTTP_TOKEN=\n",  # empty is a value (the settings decide whether it may be)
    "  VOICE_AGENT_MQTT_PORT=1999\n\n# end\n",
])
def test_lines_that_pass(tmp_path: Path, text: str) -> None:
    check_settings_file(env_file(tmp_path, text))


@pytest.mark.parametrize(("text", "line"), [
    ("VOICE_AGENT_MQTT_HOST\n", 1),
    ("VOICE_AGENT_MQTT_PORT=1999\nVOICE_AGENT_MQTT_HOST\n", 2),
    ("# broker\n\n\nVOICE_AGENT_MQTT_HOST\n", 4),  # blank lines before it are counted
    ("VOICE_AGENT_MQTT_PORT=1999\n\n\nVOICE_AGENT_MQTT_HOST", 4),  # and after a setting, and without a newline
    ("export VOICE_AGENT_MQTT_HOST\n", 1),
])
def test_a_bare_name_names_its_line(tmp_path: Path, text: str, line: int) -> None:
    path = env_file(tmp_path, text)
    with pytest.raises(SettingsFileError) as caught:
        check_settings_file(path)
    assert str(caught.value).startswith(f"{path}:{line}: VOICE_AGENT_MQTT_HOST has no '='")


@pytest.mark.parametrize(("text", "line"), [
    ("=secret\n", 1),
    ("VOICE_AGENT_MQTT_PORT=1\n\n'unclosed=secret\n", 3),
    ("VOICE_AGENT_MQTT_PORT=1\nVOICE AGENT=secret\n", 2),
])
def test_a_line_that_is_not_name_value_names_its_line_and_no_value(tmp_path: Path, text: str, line: int) -> None:
    path = env_file(tmp_path, text)
    with pytest.raises(SettingsFileError) as caught:
        check_settings_file(path)
    assert str(caught.value).startswith(f"{path}:{line}: not NAME=value")
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(("text", "shown"), [
    ("VOICE AGENT=pass=word\n", "'VOICE AGENT=...'"),  # up to the first '=', whatever follows
    ("VOICE AGENT\n", "'VOICE AGENT'"),  # no '=': nothing is left out
    ("x" * 70 + " y=secret\n", repr("x" * 60 + "=...")),  # at most 60 characters of it
])
def test_a_bad_line_shows_its_name_only(tmp_path: Path, text: str, shown: str) -> None:
    path = env_file(tmp_path, text)
    with pytest.raises(SettingsFileError) as caught:
        check_settings_file(path)
    assert str(caught.value) == f"{path}:1: not NAME=value: {shown}"


def test_an_unreadable_file_is_told_in_words(tmp_path: Path) -> None:
    with pytest.raises(SettingsFileError) as caught:
        check_settings_file(tmp_path)  # a directory
    assert str(caught.value) == f"{tmp_path}: cannot read it: Is a directory"


def test_not_utf8_and_unreadable(tmp_path: Path) -> None:
    with pytest.raises(SettingsFileError, match="not UTF-8"):
        check_settings_file(env_file(tmp_path, b"VOICE_AGENT_MQTT_HOST=\xff\n"))
    with pytest.raises(SettingsFileError, match="cannot read"):
        check_settings_file(tmp_path)  # a directory


def test_load_settings_stops_at_the_bad_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    path = tmp_path / "etc" / "agent.env"
    path.write_text("VOICE_AGENT_MQTT_PORT=1999\nVOICE_AGENT_QUEUE_DEPTH\n")
    monkeypatch.setenv("VOICE_AGENT_HOME", str(tmp_path))
    with pytest.raises(SettingsError, match=f"^{path}:2: VOICE_AGENT_QUEUE_DEPTH has no '='"):
        load_settings()
    path.write_text("VOICE_AGENT_MQTT_PORT=1999\nexport VOICE_AGENT_QUEUE_DEPTH=3\n")
    settings = load_settings()
    assert (settings.mqtt_port, settings.queue_depth) == (1999, 3)
