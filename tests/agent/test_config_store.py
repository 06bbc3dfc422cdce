from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.config.store import ConfigStore
from agent.layout import Layout


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, Any]]] = []

    def emit(self, profile: str, name: str, data: dict[str, Any]) -> None:
        self.seen.append((profile, name, data))


def home_with(tmp_path: Path, global_doc: dict[str, Any], profile_doc: str) -> Layout:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "voice.json").write_text(json.dumps(global_doc))
    (tmp_path / "profiles" / "me" / "etc").mkdir(parents=True)
    (tmp_path / "profiles" / "me" / "etc" / "voice.json").write_text(profile_doc)
    return Layout(tmp_path)


def test_broken_profile_at_start_uses_the_global_file(tmp_path: Path) -> None:
    layout = home_with(tmp_path, {"tts": {"piper": {"speakingRate": 1.3}}}, "{broken")
    events = Events()
    store = ConfigStore(layout, events)  # type: ignore[arg-type]
    assert store.get("me").tts.piper.speaking_rate == 1.3
    assert store.error("me") and "not valid JSON" in store.error("me")  # type: ignore[operator]
    assert [name for _, name, _ in events.seen] == ["config.invalid"]


def test_last_good_is_kept_and_error_clears_on_fix(tmp_path: Path) -> None:
    layout = home_with(tmp_path, {}, json.dumps({"tts": {"piper": {"speakingRate": 0.7}}}))
    events = Events()
    store = ConfigStore(layout, events)  # type: ignore[arg-type]
    assert store.get("me").tts.piper.speaking_rate == 0.7
    layout.profile_config("me").write_text(json.dumps({"tts": {"piper": {"speakingRate": 0.1}}}))
    assert store.reload("me") is False
    assert store.get("me").tts.piper.speaking_rate == 0.7
    layout.profile_config("me").write_text(json.dumps({"tts": {"piper": {"speakingRate": 0.9}}}))
    assert store.reload("me") is True
    assert store.get("me").tts.piper.speaking_rate == 0.9 and store.error("me") is None
    assert [name for _, name, _ in events.seen] == ["config.invalid", "config.reloaded"]
