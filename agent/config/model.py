"""voice.json: the seed's shape, validated strictly, global defaults merged under each profile.

``etc/voice.json`` holds household defaults; ``profiles/<user>/etc/voice.json`` overrides any
subset of it. The merged document is validated once; errors name the key path. ``tts`` has one
section per provider in the registry, each the provider's own settings model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, StringConstraints, ValidationError, create_model, field_validator

from agent.access import AccessConfig
from agent.nodes.state import NODE_PATTERN
from agent.record.config import RecordConfig
from agent.requests import ProviderName, load_json, validation_problems
from agent.train.config import TrainConfig
from providers import registry
from providers.settings_base import CamelModel, LocalPath, ProviderSettings

MAX_CONFIG_BYTES = 1024 * 1024
MAX_CACHE_MB = 1024 * 1024  # a tebibyte; 1e308 MB was a number, and as bytes an overflow on every speak


class _Tts(CamelModel):
    provider: ProviderName = Field("piper", description="Provider used when a request names none.")

    def settings_for(self, provider: str) -> ProviderSettings:
        """The section of ``provider`` (a name or an alias)."""
        return getattr(self, registry.canonical(provider))  # type: ignore[no-any-return]


if TYPE_CHECKING:
    TtsConfig = _Tts  # what the checker knows: the provider sections are reached with settings_for()
else:
    TtsConfig = create_model(
        "TtsConfig", __base__=_Tts, **{spec.name: (spec.settings, spec.settings()) for spec in registry.SPECS}
    )


class CacheConfig(CamelModel):
    enabled: bool = Field(True, description="Serve repeated requests from disk.")
    directory: LocalPath = Field("out/cache/tts", description="Relative to the profile directory, or absolute.")
    max_size_mb: float = Field(
        200.0, ge=0, le=MAX_CACHE_MB, alias="maxSizeMB", description="LRU eviction above this size (at most 1 TiB)."
    )

    @field_validator("directory")
    @classmethod
    def _no_parent_escape(cls, value: str) -> str:
        if ".." in PurePosixPath(value).parts:
            raise ValueError("must not contain '..'")
        return value


class OpenAIConfig(CamelModel):
    """The OpenAI-compatible door (``POST /v1/audio/speech``): which voice each OpenAI voice name is."""

    voices: dict[
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")],
        Annotated[str, StringConstraints(pattern=r"^([A-Za-z0-9][A-Za-z0-9_.:,-]{0,159})?$")],
    ] = Field(
        default_factory=dict, max_length=64,
        description="OpenAI voice name (alloy, echo, ... or a name of your own) -> '[provider:]voice' of this "
        "profile, e.g. {\"alloy\": \"kokoro:af_alloy\"}; empty or left out: the profile's own voice.",
    )


RunOn = Annotated[str, StringConstraints(pattern=NODE_PATTERN)]


class RunOnConfig(CamelModel):
    """Which node makes a profile's work (several machines, one household: README "Several machines")."""

    speak: dict[ProviderName, RunOn] = Field(
        default_factory=dict,
        description="Provider -> where its speech is made: 'local' (here, the default), 'auto' (a worker node when "
        "an online one has the provider, else here) or a node's name (VOICE_AGENT_NODE); e.g. {\"rvc\": \"auto\"}.",
    )

    train: RunOn = Field(
        "local",
        description="Where this profile's training jobs run: 'local' (here, the default), 'auto' (a worker node "
        "whose trainers include the job's, when one is online, else here) or a node's name; a job for a node that "
        "is offline, or that no worker takes, fails with no_worker.",
    )

    @field_validator("speak")
    @classmethod
    def _remote_providers(cls, value: dict[str, str]) -> dict[str, str]:
        for provider, where in value.items():
            if where != "local" and registry.spec(provider).remote is None:
                able = ", ".join(spec.name for spec in registry.SPECS if spec.remote is not None)
                raise ValueError(f"{provider} speaks where its profile is ('local'); another node can speak for: {able}")
        return value

    def speak_on(self, provider: str) -> str:
        return self.speak.get(registry.canonical(provider), "local")


class VoiceConfig(CamelModel):
    tts: TtsConfig = Field(default_factory=TtsConfig)
    run_on: RunOnConfig = RunOnConfig()
    cache: CacheConfig = CacheConfig()
    openai: OpenAIConfig = OpenAIConfig()
    record: RecordConfig = RecordConfig()
    train: TrainConfig = TrainConfig()
    access: AccessConfig = AccessConfig()


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    field: str
    message: str
    code: str = ""  # a problem with its own error code (voice_not_found); empty: invalid_config

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        return f"{where}: {self.message}" + (f" ({self.code})" if self.code else "")


class ConfigError(Exception):
    """voice.json could not be used; ``problems`` names each bad key."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))

    @property
    def code(self) -> str:
        """The problems' own code when they share one (voice_not_found), else invalid_config."""
        codes = {p.code for p in self.problems}
        return codes.pop() if len(codes) == 1 and "" not in codes else "invalid_config"


# Checks a valid config against what exists (agent/voices/names.py: its voices): problems with ``file``
# empty, filled in by the caller. Injected, so the config package knows no engine and no catalog.
ConfigCheck = Callable[[str, "VoiceConfig"], list[ConfigProblem]]


def checked(config: VoiceConfig, profile: str, check: ConfigCheck | None, files: str) -> VoiceConfig:
    """``config`` when ``check`` finds nothing, else ``ConfigError`` naming ``files``."""
    if check is not None:
        problems = check(profile, config)
        if problems:
            raise ConfigError([replace(p, file=files) for p in problems])
    return config


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; ``{}`` when the file does not exist."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError([ConfigProblem(str(path), "", f"cannot read: {exc.strerror}")]) from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([ConfigProblem(str(path), "", f"larger than {MAX_CONFIG_BYTES} bytes")])
    if not raw.strip():
        return {}
    try:
        data = load_json(raw)
    except ValueError as exc:
        raise ConfigError([ConfigProblem(str(path), "", str(exc))]) from exc
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem(str(path), "", "must be a JSON object")])
    return data


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def file_problems(exc: ValidationError, file: str) -> list[ConfigProblem]:
    return [ConfigProblem(file, p["field"], p["message"]) for p in validation_problems(exc)]


def load_voice_config(global_path: Path, profile_path: Path | None = None) -> VoiceConfig:
    """Merge the profile's voice.json over the global one and validate the result."""
    override = read_json_object(profile_path) if profile_path is not None else {}
    return merged_config(global_path, profile_path, override)


def merged_config(global_path: Path, profile_path: Path | None, override: dict[str, Any]) -> VoiceConfig:
    """``override`` (a profile's document) over the household's file, validated."""
    document = read_json_object(global_path)
    files = str(global_path)
    if override:
        document = deep_merge(document, override)
        files = f"{profile_path} (over {global_path})"
    try:
        return VoiceConfig.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(file_problems(exc, files)) from exc
