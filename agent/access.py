"""What a request may do, whoever sent it: anyone who may publish to the broker, or reach the HTTP
API, can send a command. voice.json's ``access`` (editable only in the file, never by a request)
switches the destructive commands on and off and keeps file paths inside the agent's home: the
fields that settings models and trainer parameters mark ``LocalPath``, and only those.

A broker ACL (README "Broker ACLs") is the other half: it decides who may send what at all."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

from agent.errors import ServiceError
from providers.settings_base import CamelModel, is_local_path

GUARDED = ("samples.delete", "speaker.enroll", "sovits.*", "samples.export", "train", "train.cancel", "config.set",
           "voices.import")
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


def check_paths(access: AccessConfig, home: Path, base: Path, model: type[BaseModel], values: dict[str, Any],
                where: str) -> None:
    """What a request sets of ``model`` (``values``, its keys as the model reads them) in a field
    marked ``LocalPath`` must lead inside ``home``, wherever it is read from: a relative path
    from the profile directory ``base`` and from the home, symlinks followed. The refusal names
    the field and repeats the value, and says nothing of the file: one outside the home that
    exists and one that does not get the same answer. Defaults and what the agent finds by
    itself (a bundled voice) are not the request's, and not checked."""
    if access.paths == "anywhere":
        return
    root = home.resolve()
    for key, value in request_paths(model, values, where):
        if not _inside(root, (base, home), value):
            raise ServiceError("forbidden", f"{key}: {value!r} is outside the agent's home (voice.json access.paths)")


def request_paths(model: type[BaseModel], values: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """``(key path, value)`` of each non-empty string in ``values`` that a ``LocalPath`` field of
    ``model`` (or of a model nested in it) would take. Keys the model does not know are left to
    its validation."""
    found: list[tuple[str, str]] = []
    for key, value in values.items():
        field = _field(model, str(key))
        if field is None:
            continue
        name = f"{prefix}.{key}" if prefix else str(key)
        if is_local_path(field):
            items = value if isinstance(value, list) else [value]
            found += [(name, item) for item in items if isinstance(item, str) and item]
        nested = _model_of(field.annotation)
        if nested is not None and isinstance(value, dict):
            found += request_paths(nested, value, name)
    return found


def _field(model: type[BaseModel], key: str) -> FieldInfo | None:
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (also inside ``Optional``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _inside(root: Path, bases: tuple[Path, ...], value: str) -> bool:
    try:
        path = Path(value).expanduser()
        candidates = [path] if path.is_absolute() else [base / path for base in bases]
        return all(candidate.resolve().is_relative_to(root) for candidate in candidates)
    except (OSError, RuntimeError, ValueError):  # a NUL, an unknown ~user, a symlink loop: not inside
        return False


def check_config_change(access: AccessConfig, home: Path, profile_dir: Path, model: type[BaseModel],
                        changes: dict[str, Any]) -> None:
    """A request's change to voice.json (``model``): never to ``access`` itself nor to the
    program the agent runs; its paths inside the home."""
    flat = dict(_flat(changes, ""))
    for key in flat:
        if key == "access" or key.startswith("access."):
            raise ServiceError("forbidden", "access can only be changed in voice.json itself, not by a request")
        if key in PROGRAM_FIELDS:
            raise ServiceError("forbidden", f"{key} decides which program the agent runs: change it in voice.json itself")
    check_paths(access, home, profile_dir, model, changes, "")


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
