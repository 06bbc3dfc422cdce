"""The access rules' edges (agent/access.py) that the main tests do not reach: keys a model does
not know before one it does, lists of paths and models inside Optional, ``access`` set to a
plain value or as a dotted key, and the exact words of each refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from agent.access import AccessConfig, check_config_change, check_paths, request_paths
from agent.config.model import VoiceConfig
from agent.errors import ServiceError
from providers.settings_base import LocalPath


class Inner(BaseModel):
    model: LocalPath = ""


class Outer(BaseModel):
    files: list[LocalPath] = []
    inner: Inner | None = None
    name: str = ""


def refusal(call: Any) -> str:
    with pytest.raises(ServiceError) as caught:
        call()
    assert caught.value.code == "forbidden"
    return str(caught.value)


def test_unknown_keys_are_skipped_not_the_end_and_lists_and_optional_models_are_read() -> None:
    values = {"unknown": "/x", "name": "/n", "files": ["/a", "", 3, "/b"], "inner": {"model": "/m"}}
    assert request_paths(Outer, values) == [("files", "/a"), ("files", "/b"), ("inner.model", "/m")]
    assert request_paths(Outer, {"files": "/one"}, "p") == [("p.files", "/one")]


def test_an_absolute_path_inside_the_home_passes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "p").mkdir(parents=True)
    check_paths(AccessConfig(), home, home / "p", Outer, {"files": [str(home / "voices" / "a.onnx")]}, "")
    message = refusal(lambda: check_paths(AccessConfig(), home, home / "p", Outer, {"files": [str(tmp_path)]}, "x"))
    assert message == f"x.files: {str(tmp_path)!r} is outside the agent's home (voice.json access.paths)"


@pytest.mark.parametrize("changes", [
    {"access": "anywhere"}, {"access.paths": "anywhere"}, {"access": {"paths": "anywhere"}},
    {"access": 1, "tts": {"piper": {"model": "amy"}}},
])
def test_access_is_never_a_requests_to_change(tmp_path: Path, changes: dict[str, Any]) -> None:
    message = refusal(lambda: check_config_change(AccessConfig(), tmp_path, tmp_path, VoiceConfig, changes))
    assert message == "access can only be changed in voice.json itself, not by a request"


def test_the_program_refusal_names_the_field_and_a_path_refusal_its_key(tmp_path: Path) -> None:
    message = refusal(lambda: check_config_change(AccessConfig(), tmp_path, tmp_path, VoiceConfig,
                                                  {"tts": {"sovits": {"python": "/bin/sh"}}}))
    assert message == "tts.sovits.python decides which program the agent runs: change it in voice.json itself"
    message = refusal(lambda: check_config_change(AccessConfig(), tmp_path, tmp_path, VoiceConfig,
                                                  {"tts": {"piper": {"model": "/etc/passwd"}}}))
    assert message == "tts.piper.model: '/etc/passwd' is outside the agent's home (voice.json access.paths)"
