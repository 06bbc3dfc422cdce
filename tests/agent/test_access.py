"""voice.json's access: what a request may do, whoever could send it."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.access import AccessConfig, check_command, check_config_change, check_paths
from agent.errors import ServiceError


def refused(call: object) -> str:
    with pytest.raises(ServiceError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.code == "forbidden"
    return str(caught.value)


def test_the_destructive_commands_are_on_unless_switched_off() -> None:
    check_command(AccessConfig(), "samples.delete")
    off = AccessConfig.model_validate({"commands": {"samples.delete": False, "sovits.*": False}})
    assert "voice.json access.commands" in refused(lambda: check_command(off, "samples.delete"))
    refused(lambda: check_command(off, "sovits.restart"))
    check_command(off, "speaker.enroll")
    check_command(off, "speak")


def test_paths_stay_in_the_home(tmp_path: Path) -> None:
    home, profile = tmp_path / "home", tmp_path / "home" / "profiles" / "p"
    profile.mkdir(parents=True)
    access = AccessConfig()
    check_paths(access, home, profile, {"contentEncoderPath": str(home / "out" / "hubert_base.pt"), "epochs": 3}, "params")
    check_paths(access, home, profile, {"voicesPath": "out/voices/kokoro/voices-v1.0.bin"}, "params")
    message = refused(lambda: check_paths(access, home, profile, {"pretrainedGenerator": "/etc/shadow"}, "params"))
    assert "params.pretrainedGenerator" in message and "outside the agent's home" in message
    refused(lambda: check_paths(access, home, profile, {"rmvpePath": "../../../../etc/passwd"}, "params"))
    check_paths(AccessConfig(paths="anywhere"), home, profile, {"pretrainedGenerator": "/etc/shadow"}, "params")


def test_a_request_cannot_change_access_nor_the_program_run(tmp_path: Path) -> None:
    access = AccessConfig()
    refused(lambda: check_config_change(access, tmp_path, tmp_path, {"access": {"paths": "anywhere"}}))
    refused(lambda: check_config_change(access, tmp_path, tmp_path, {"tts": {"sovits": {"python": "/bin/sh"}}}))
    refused(lambda: check_config_change(access, tmp_path, tmp_path, {"tts": {"sovits": {"serverArgs": ["-c", "id"]}}}))
    refused(lambda: check_config_change(access, tmp_path, tmp_path, {"tts": {"sovits": {"installDir": "/opt/elsewhere"}}}))
    refused(lambda: check_config_change(access, tmp_path, tmp_path, {"cache": {"directory": "/var/tmp"}}))
    check_config_change(access, tmp_path, tmp_path, {"tts": {"provider": "kokoro", "kokoro": {"voicepackPath": "owner.npy"}}})
