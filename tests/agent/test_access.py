"""voice.json's access: what a request may do, whoever could send it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from agent.access import GUARDED, AccessConfig, check_command, check_config_change, check_paths, request_paths
from agent.commands import command_table
from agent.config.model import VoiceConfig
from agent.errors import ServiceError
from providers import registry
from providers.settings_base import is_local_path

OUTSIDE = ("/etc/passwd", "/nonexistent/voice.onnx")
# Every string a request may set in voice.json or in a trainer's or action's parameters that is
# not a file: a new string field is a LocalPath, or is added here knowingly.
NOT_PATHS = {
    "tts.provider", "tts.kokoro.voice", "tts.piper.speaker", "openai.voices", "tts.sovits.speakerId", "tts.sovits.textLang", "tts.sovits.promptLang",
    "tts.sovits.textSplitMethod", "tts.sovits.pathMap", "tts.sovits.serverArgs", "tts.rvc.speakerId",
    "train.autoRetrain.provider", "train.autoRetrain.speaker", "access.commands", "kokoro.train.baseVoice",
    "runOn.speak", "runOn.train",  # node names (a safe topic level), never a file
}


def refused(call: object) -> str:
    with pytest.raises(ServiceError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.code == "forbidden"
    return str(caught.value)


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    """``<tmp>/agent`` with the profile ``p``."""
    (tmp_path / "agent" / "profiles" / "p").mkdir(parents=True)
    return tmp_path / "agent"


def piper_model(home: Path, value: str, access: AccessConfig | None = None) -> None:
    changes = {"tts": {"piper": {"model": value}}}
    check_paths(access or AccessConfig(), home, home / "profiles" / "p", VoiceConfig, changes, "")


def holds(annotation: Any, kind: type) -> list[type]:
    """The subclasses of ``kind`` that a field's type is or holds (in Optional, list, dict, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, kind):
        return [annotation]
    return [found for arg in get_args(annotation) for found in holds(arg, kind)]


def string_fields(model: type[BaseModel], prefix: str) -> dict[str, bool]:
    """key path -> whether it is a LocalPath, for each field of ``model`` (nested ones too) that holds strings."""
    found: dict[str, bool] = {}
    for name, field in model.model_fields.items():
        key = f"{prefix}.{field.alias or name}" if prefix else field.alias or name
        nested = holds(field.annotation, BaseModel)
        if nested:
            found.update(string_fields(nested[0], key))
        elif holds(field.annotation, str):
            found[key] = is_local_path(field)
    return found


def test_the_destructive_commands_are_on_unless_switched_off() -> None:
    check_command(AccessConfig(), "samples.delete")
    off = AccessConfig.model_validate({"commands": {"samples.delete": False, "sovits.*": False}})
    assert "voice.json access.commands" in refused(lambda: check_command(off, "samples.delete"))
    refused(lambda: check_command(off, "sovits.restart"))
    check_command(off, "speaker.enroll")
    check_command(off, "speak")


def test_every_path_field_of_every_providers_settings_is_kept_in_the_home(home: Path) -> None:
    profile, checked = home / "profiles" / "p", {}
    for spec in registry.SPECS:
        keys = [field.alias or name for name, field in spec.settings.model_fields.items() if is_local_path(field)]
        checked[spec.name] = keys
        for key in keys:
            for outside in OUTSIDE:
                message = refused(lambda: check_paths(AccessConfig(), home, profile, VoiceConfig,
                                                      {"tts": {spec.name: {key: outside}}}, ""))
                assert f"tts.{spec.name}.{key}: {outside!r} is outside the agent's home" in message
            inside = {"tts": {spec.name: {key: str(home / "out" / "x")}}}
            check_paths(AccessConfig(), home, profile, VoiceConfig, inside, "")
    assert all(checked.values()), checked  # every provider reads some file
    assert "baseVoice" in checked["rvc"] and "model" in checked["piper"]  # named for what they are, not "path"


def test_every_path_parameter_of_every_trainer_is_kept_in_the_home(home: Path) -> None:
    profile = home / "profiles" / "p"
    for spec in registry.SPECS:
        if spec.trainer is None:
            continue
        fields = {name: field for name, field in spec.trainer.params.model_fields.items() if is_local_path(field)}
        assert fields, f"{spec.name}'s trainer reads no file?"
        for name, field in fields.items():
            for key in {name, field.alias or name}:  # the parameters take both spellings
                params = {key: "/etc/shadow", "epochs": 3}
                message = refused(lambda: check_paths(AccessConfig(), home, profile, spec.trainer.params,  # type: ignore[union-attr]
                                                      params, "params"))
                assert f"params.{key}:" in message


def test_every_string_a_request_may_set_is_a_path_or_known_not_to_be_one() -> None:
    fields = string_fields(VoiceConfig, "")
    for spec in registry.SPECS:
        if spec.trainer is not None:
            fields.update(string_fields(spec.trainer.params, f"{spec.name}.train"))
        for action in spec.actions:
            fields.update(string_fields(action.params, f"{spec.name}.{action.name}"))
    assert {key for key, is_path in fields.items() if not is_path} == NOT_PATHS
    assert {"tts.piper.model", "tts.rvc.baseVoice", "cache.directory", "tts.sovits.installDir",
            "rvc.train.pretrainedGenerator"} <= {key for key, is_path in fields.items() if is_path}


def test_no_request_model_has_a_path_of_its_own() -> None:
    """Paths reach the agent as voice.json changes and trainer parameters, which the guard checks
    (agent/commands.py); a request field that named a file would need a check there too: only
    voices.import has one (its ``path``), guarded, and checked there."""
    table = command_table(SimpleNamespace(records=None, samples=None))  # type: ignore[arg-type]  # calls no service
    for name, command in table.items():
        if name == "voices.import":
            assert name in GUARDED
            continue
        assert not any(is_local_path(field) for field in command.model.model_fields.values()), name


def test_a_sibling_folder_with_a_similar_name_is_outside(home: Path) -> None:
    evil = home.parent / f"{home.name}-evil"
    evil.mkdir()
    (evil / "voice.onnx").write_bytes(b"")
    refused(lambda: piper_model(home, str(evil / "voice.onnx")))
    refused(lambda: piper_model(home, str(home) + "-evil/voice.onnx"))
    piper_model(home, str(home / "voice.onnx"))
    piper_model(home, str(home))


def test_relative_paths_are_read_from_the_profile_and_from_the_home(home: Path) -> None:
    piper_model(home, "out/voices/amy/amy.onnx")
    piper_model(home, "en_US-joe-medium")  # a name: the agent finds it, bundled voices included
    refused(lambda: piper_model(home, "../../../x.onnx"))
    refused(lambda: piper_model(home, "../../x.onnx"))  # in the home from the profile, not from the home
    piper_model(home, "out/../x.onnx")


def test_a_symlink_out_of_the_home_is_outside(home: Path) -> None:
    outside = home.parent / "outside"
    outside.mkdir()
    (outside / "v.onnx").write_bytes(b"")
    (home / "profiles" / "p" / "out").mkdir()
    (home / "profiles" / "p" / "out" / "link").symlink_to(outside)
    (home / "inner").mkdir()
    (home / "profiles" / "p" / "out" / "inner").symlink_to(home / "inner")
    refused(lambda: piper_model(home, "out/link/v.onnx"))
    refused(lambda: piper_model(home, str(home / "profiles" / "p" / "out" / "link" / "v.onnx")))
    piper_model(home, "out/inner/v.onnx")


def test_an_existing_and_a_missing_file_outside_get_the_same_answer(home: Path) -> None:
    (home.parent / "there.onnx").write_bytes(b"")
    answers = [refused(lambda: piper_model(home, str(home.parent / name))).replace(name, "NAME")
               for name in ("there.onnx", "missing.onnx")]
    assert answers[0] == answers[1]


@pytest.mark.parametrize("value", ["/tmp/x\x00.onnx", "~no-such-user-here/x.onnx", "a" * 5000])
def test_what_cannot_be_resolved_is_refused_not_a_crash(home: Path, value: str) -> None:
    if value.startswith("a"):
        piper_model(home, value)  # a long name is inside, like any other
    else:
        refused(lambda: piper_model(home, value))


def test_anywhere_lets_every_path_through(home: Path) -> None:
    for outside in OUTSIDE:
        piper_model(home, outside, AccessConfig(paths="anywhere"))


def test_the_defaults_as_a_request_pass(home: Path) -> None:
    """What the agent finds by itself (the bundled Piper voice) is a name, not a request's path."""
    defaults = VoiceConfig().model_dump(mode="json", by_alias=True)
    assert ("tts.piper.model", "en_US-joe-medium") in request_paths(VoiceConfig, defaults)
    check_paths(AccessConfig(), home, home / "profiles" / "p", VoiceConfig, defaults, "")


def test_request_paths_takes_what_the_model_marks_and_leaves_the_rest() -> None:
    changes: dict[str, Any] = {"tts": {"provider": "/x", "piper": {"model": "", "speakingRate": 1},
                                       "rvc": {"baseVoice": "/a", "rmvpePath": 3}, "nope": {"model": "/b"}},
                               "cache": {"directory": "/c"}}
    assert request_paths(VoiceConfig, changes) == [("tts.rvc.baseVoice", "/a"), ("cache.directory", "/c")]


def test_a_request_cannot_change_access_nor_the_program_run(tmp_path: Path) -> None:
    access = AccessConfig()

    def change(changes: dict[str, Any]) -> None:
        check_config_change(access, tmp_path, tmp_path, VoiceConfig, changes)

    refused(lambda: change({"access": {"paths": "anywhere"}}))
    refused(lambda: change({"tts": {"sovits": {"python": "/bin/sh"}}}))
    refused(lambda: change({"tts": {"sovits": {"serverArgs": ["-c", "id"]}}}))
    refused(lambda: change({"tts": {"sovits": {"installDir": "/opt/elsewhere"}}}))
    refused(lambda: change({"cache": {"directory": "/var/tmp"}}))
    refused(lambda: change({"tts": {"piper": {"model": "/etc/passwd"}}}))
    change({"tts": {"provider": "kokoro", "kokoro": {"voicepackPath": "owner.npy"}}})


def test_voices_import_keeps_its_path_inside_the_home(home: Path) -> None:
    """The one request with a path of its own: checked by the guard, as voice.json's paths are."""
    from agent.layout import Layout
    from agent.voices.requests import ImportRequest

    imported: list[str] = []
    access = {"now": AccessConfig()}
    core = SimpleNamespace(records=None, samples=None, layout=Layout(home),
                           configs=SimpleNamespace(get=lambda profile: SimpleNamespace(access=access["now"])),
                           import_voices=lambda profile, request: imported.append(request.path) or {"id": None})
    command = command_table(core)["voices.import"]  # type: ignore[arg-type]
    for path in (*OUTSIDE, "../../../outside.zip", "../../.."):
        assert "path:" in refused(lambda: command.run("p", ImportRequest(path=path), None))  # type: ignore[arg-type]
    command.run("p", ImportRequest(path="incoming/alice.zip"), None)  # type: ignore[arg-type]
    command.run("p", ImportRequest(path=str(home / "out" / "uploads" / "x" / "a.zip")), None)  # type: ignore[arg-type]
    assert imported == ["incoming/alice.zip", str(home / "out" / "uploads" / "x" / "a.zip")]
    access["now"] = AccessConfig(commands={"voices.import": False})
    assert "switched off" in refused(lambda: command.run("p", ImportRequest(path="incoming/alice.zip"), None))  # type: ignore[arg-type]
    access["now"] = AccessConfig(paths="anywhere")
    command.run("p", ImportRequest(path="/etc/passwd"), None)  # type: ignore[arg-type]
    assert imported[-1] == "/etc/passwd"
