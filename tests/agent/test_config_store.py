from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.config.model import VoiceConfig
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


def test_the_invalid_event_names_the_problem_and_what_is_kept(tmp_path: Path) -> None:
    layout = home_with(tmp_path, {}, json.dumps({"tts": {"piper": {"speakingRate": 0.7}}}))
    events = Events()
    store = ConfigStore(layout, events)  # type: ignore[arg-type]
    store.get("me")
    layout.profile_config("me").write_text(json.dumps({"tts": {"piper": {"speakingRate": 0.1}}}))
    store.reload("me")
    _, name, data = events.seen[-1]
    assert name == "config.invalid" and data["kept"] == "last good configuration"
    [problem] = data["problems"]
    assert problem["field"] == "tts.piper.speakingRate" and "greater than or equal to 0.5" in problem["message"]
    assert problem["file"].endswith("profiles/me/etc/voice.json (over " + str(layout.global_config) + ")")
    fresh = ConfigStore(layout, events)  # type: ignore[arg-type]
    fresh.get("me")
    assert events.seen[-1][2]["kept"] == "global voice.json or defaults"


def test_reloads_say_whether_anything_changed_and_only_when_asked(tmp_path: Path) -> None:
    layout = home_with(tmp_path, {}, json.dumps({"tts": {"provider": "kokoro"}}))
    events = Events()
    store = ConfigStore(layout, events)  # type: ignore[arg-type]
    assert store.reload("me", announce=False) is True and events.seen == []
    store.reload("me")
    assert events.seen[-1] == ("me", "config.reloaded", {"provider": "kokoro", "changed": False})
    layout.profile_config("me").write_text(json.dumps({"tts": {"provider": "piper"}}))
    store.reload("me")
    assert events.seen[-1] == ("me", "config.reloaded", {"provider": "piper", "changed": True})


def test_reload_all_reads_every_profile(tmp_path: Path) -> None:
    layout = home_with(tmp_path, {}, json.dumps({"tts": {"provider": "kokoro"}}))
    (tmp_path / "profiles" / "you" / "etc").mkdir(parents=True)
    events = Events()
    store = ConfigStore(layout, events)  # type: ignore[arg-type]
    store.reload_all()
    assert sorted(profile for profile, _, _ in events.seen) == ["me", "you"]
    assert store.get("me").tts.provider == "kokoro" and store.get("you").tts.provider == "piper"


def test_an_update_merges_into_the_profiles_file(tmp_path: Path) -> None:
    layout = home_with(tmp_path, {"cache": {"maxSizeMB": 50}},
                       json.dumps({"tts": {"provider": "kokoro", "piper": {"speakingRate": 0.8}}}))
    store = ConfigStore(layout, Events())  # type: ignore[arg-type]
    config = store.update("me", {"tts": {"piper": {"speakerId": 2}}})
    assert config.tts.piper.speaker_id == 2 and config.tts.piper.speaking_rate == 0.8
    assert config.tts.provider == "kokoro" and config.cache.max_size_mb == 50  # the household's file under it
    written = json.loads(layout.profile_config("me").read_text())
    assert written == {"tts": {"provider": "kokoro", "piper": {"speakingRate": 0.8, "speakerId": 2}}}
    assert not list(layout.profile_config("me").parent.glob("*.tmp*"))


def test_an_invalid_update_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    import pytest

    from agent.config.model import ConfigError

    layout = home_with(tmp_path, {}, '{"tts": {"provider": "kokoro"}}')
    store = ConfigStore(layout, Events())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="speakingRate"):
        store.update("me", {"tts": {"piper": {"speakingRate": 99}}})
    assert layout.profile_config("me").read_text() == '{"tts": {"provider": "kokoro"}}'


def test_an_update_creates_a_missing_profile_file(tmp_path: Path) -> None:
    layout = home_with(tmp_path, {}, "{}")
    layout.profile_config("me").unlink()
    store = ConfigStore(layout, Events())  # type: ignore[arg-type]
    store.update("me", {"record": {"threshold": 80}})
    assert json.loads(layout.profile_config("me").read_text()) == {"record": {"threshold": 80}}


def test_tools_outside_the_agent_get_the_best_config_there_is(tmp_path: Path) -> None:
    layout = home_with(tmp_path, {"tts": {"provider": "kokoro"}}, '{"tts": {"provider": "rvc"}}')
    assert ConfigStore.load_quietly(layout, "me").tts.provider == "rvc"
    layout.profile_config("me").write_text("{broken")
    assert ConfigStore.load_quietly(layout, "me").tts.provider == "kokoro"
    layout.global_config.write_text("{broken")
    assert ConfigStore.load_quietly(layout, "me") == VoiceConfig()


def test_the_invalid_event_is_the_profiles(tmp_path: Path) -> None:
    layout = home_with(tmp_path, {}, "{broken")
    events = Events()
    ConfigStore(layout, events).reload("me")  # type: ignore[arg-type]
    assert [(profile, name) for profile, name, _ in events.seen] == [("me", "config.invalid")]


def test_reload_all_can_stay_quiet(tmp_path: Path) -> None:
    layout = home_with(tmp_path, {}, "{}")
    events = Events()
    ConfigStore(layout, events).reload_all(announce=False)  # type: ignore[arg-type]
    assert events.seen == []


def test_tools_see_the_household_file_under_the_profiles(tmp_path: Path) -> None:
    layout = home_with(tmp_path, {"tts": {"provider": "kokoro"}}, '{"record": {"threshold": 80}}')
    config = ConfigStore.load_quietly(layout, "me")
    assert config.tts.provider == "kokoro" and config.record.threshold == 80


def test_a_refused_update_names_the_profiles_file(tmp_path: Path) -> None:
    import pytest

    from agent.config.model import ConfigError

    layout = home_with(tmp_path, {}, "{}")
    with pytest.raises(ConfigError) as refused:
        ConfigStore(layout, Events()).update("me", {"record": {"threshold": 101}})  # type: ignore[arg-type]
    assert refused.value.problems[0].file == f"{layout.profile_config('me')} (over {layout.global_config})"


def test_the_written_file_is_readable_and_keeps_its_letters(tmp_path: Path) -> None:
    layout = home_with(tmp_path, {}, "{}")
    ConfigStore(layout, Events()).update("me", {"cache": {"directory": "out/cache/stimme-müller"}})  # type: ignore[arg-type]
    written = layout.profile_config("me").read_text(encoding="utf-8")
    assert written == '{\n  "cache": {\n    "directory": "out/cache/stimme-müller"\n  }\n}\n'


def test_a_check_that_fails_is_a_config_error_on_reload_and_on_write(tmp_path: Path) -> None:
    """Issue 19: an unknown voice (agent/voices/names.py is the check) keeps the last good config."""
    from agent.config.model import ConfigError, ConfigProblem

    def check(profile: str, config: VoiceConfig) -> list[ConfigProblem]:
        bad = config.tts.piper.model == "typo"
        return [ConfigProblem("", "tts.piper.model", "did you mean x?", "voice_not_found")] if bad else []

    layout = home_with(tmp_path, {}, json.dumps({"tts": {"piper": {"model": "fine"}}}))
    store = ConfigStore(layout, Events(), check)  # type: ignore[arg-type]
    assert store.get("me").tts.piper.model == "fine" and store.errors() == {}
    path = layout.profile_config("me")
    path.write_text(json.dumps({"tts": {"piper": {"model": "typo"}}}))
    assert store.reload("me") is False and store.get("me").tts.piper.model == "fine"
    assert "(voice_not_found)" in store.errors()["me"] and str(path) in store.errors()["me"]
    before = path.read_text()
    try:
        store.update("me", {"tts": {"piper": {"model": "typo", "speakingRate": 1.2}}})
    except ConfigError as exc:
        assert exc.code == "voice_not_found" and exc.problems[0].field == "tts.piper.model"
    else:
        raise AssertionError("the write was not refused")
    assert path.read_text() == before
    path.write_text(json.dumps({"tts": {"piper": {"model": "fine"}}}))
    assert store.reload("me") is True and store.errors() == {}
