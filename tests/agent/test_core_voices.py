"""A Kokoro profile that names no voice fetches nothing and is healthy until a text needs a voice
(the language's own is picked per text); a profile whose voice was missing is healthy again as
soon as its download finishes, not at its next request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent.core import Core
from agent.settings import AgentSettings
from providers.base import VoiceNotFoundError


class Engine:
    """Kokoro as preload sees it: the voices in ``have`` load, any other is not found."""

    def __init__(self) -> None:
        self.have: set[str] = set()

    def preload(self, settings: Any, ctx: Any) -> None:
        if settings.voice_name not in self.have:
            raise VoiceNotFoundError(f"Kokoro voice {settings.voice_name!r} not found")

    def voices(self, ctx: Any) -> list[Any]:
        return [SimpleNamespace(name="en_US-joe-medium")]  # the bundled Piper voice voice.json's check looks for


@pytest.fixture()
def core(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Core, Engine, list[str]]]:
    made = Core(AgentSettings(home=tmp_path))
    engine, wanted = Engine(), []
    monkeypatch.setattr(made.engines, "get", lambda name: engine)
    monkeypatch.setattr(made.downloads, "want", lambda profile, provider, voice: wanted.append(voice) or [])
    yield made, engine, wanted
    made.streams.stop()
    made.records.stop()


def configure(core: Core, profile: str, kokoro: dict[str, Any]) -> None:
    path = core.layout.profile_config(profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"tts": {"provider": "kokoro", "kokoro": kokoro}}))
    core._config_changed(profile)


def test_no_voice_named_fetches_nothing_and_is_no_error(core: tuple[Core, Engine, list[str]]) -> None:
    made, _, wanted = core
    configure(made, "home", {})
    configure(made, "tokyo", {"langCode": "j"})
    assert wanted == [] and made.speak.voice_errors() == {}
    configure(made, "home", {"voice": "af_bella"})  # a voice picked is fetched, and missing until it is
    assert wanted == ["af_bella"] and made.speak.voice_errors()["home"]["code"] == "voice_not_found"


def test_a_finished_download_clears_the_profiles_voice_error(core: tuple[Core, Engine, list[str]]) -> None:
    made, engine, _ = core
    configure(made, "home", {"voice": "af_heart:0.5,af_bella:0.5"})
    configure(made, "hall", {"voice": "am_adam"})
    assert set(made.speak.voice_errors()) == {"home", "hall"}
    engine.have.add("af_heart:0.5,af_bella:0.5")
    made.events.emit("kitchen", "voices.download.finished", {"provider": "kokoro", "name": "af_bella", "seconds": 1})
    assert set(made.speak.voice_errors()) == {"hall"}  # whoever asked for it: each profile it was missing for
