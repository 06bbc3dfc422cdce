"""What a request may do, whoever sent it: anyone who may publish to the broker, or reach the HTTP
API, can send a command. voice.json's ``access`` (editable only in the file, never by a request)
switches the destructive commands on and off and keeps file paths inside the agent's home.

A broker ACL (README "Broker ACLs") is the other half: it decides who may send what at all."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from agent.errors import ServiceError
from providers.settings_base import CamelModel

GUARDED = ("samples.delete", "speaker.enroll", "sovits.*", "samples.export", "train", "train.cancel", "config.set")
# voice.json fields no request may set: they decide which program the agent runs.
PROGRAM_FIELDS = ("tts.sovits.python", "tts.sovits.serverArgs")


class AccessConfig(CamelModel):
    commands: dict[str, bool] = Field(
        default_factory=lambda: {name: True for name in GUARDED},
        description="Destructive commands (patterns like sovits.*) and whether requests may use them.",
    )
    paths: Literal["home", "anywhere"] = Field(
        "home", description="Where paths in requests may point: inside VOICE_AGENT_HOME only, or anywhere."
    )

    def allows(self, command: str) -> bool:
        for pattern, allowed in self.commands.items():
            if fnmatch.fnmatchcase(command, pattern):
                return allowed
        return True


def check_command(access: AccessConfig, command: str) -> None:
    if not access.allows(command):
        raise ServiceError("forbidden", f"{command} is switched off for this profile (voice.json access.commands)")


def check_paths(access: AccessConfig, home: Path, base: Path, values: dict[str, Any], where: str) -> None:
    """Every path-like value (a key with "path", "dir" or "pretrained" in it) must lead inside
    ``home``; relative ones are read from ``base``."""
    if access.paths == "anywhere":
        return
    root = home.resolve()
    for key, value in _flat(values, where):
        name = key.rsplit(".", 1)[-1].lower()
        if not isinstance(value, str) or not value or not any(w in name for w in ("path", "dir", "pretrained")):
            continue
        path = Path(value).expanduser()
        resolved = (path if path.is_absolute() else base / path).resolve()
        if not resolved.is_relative_to(root):
            raise ServiceError("forbidden", f"{key}: {value!r} is outside the agent's home {root} (voice.json access.paths)")


def check_config_change(access: AccessConfig, home: Path, profile_dir: Path, changes: dict[str, Any]) -> None:
    """A request's change to voice.json: never to ``access`` itself nor to the program the agent
    runs; its paths inside the home."""
    flat = dict(_flat(changes, ""))
    for key in flat:
        if key == "access" or key.startswith("access."):
            raise ServiceError("forbidden", "access can only be changed in voice.json itself, not by a request")
        if key in PROGRAM_FIELDS:
            raise ServiceError("forbidden", f"{key} decides which program the agent runs: change it in voice.json itself")
    check_paths(access, home, profile_dir, changes, "")


def _flat(values: dict[str, Any], prefix: str) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            found += _flat(value, name)
            found.append((name, None))
        else:
            found.append((name, value))
    return found
