"""Profiles are directories under ``profiles/``; their names are plain identifiers."""

from __future__ import annotations

import re
from pathlib import Path

from providers.base import ProviderContext

PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
RESERVED = frozenset({"gpu"})  # <base>/gpu/... carries the GPU state, not a profile


def is_plain_name(name: str) -> bool:
    """True for names safe as a path segment and a topic level (no '..', '/', wildcards)."""
    return bool(PLAIN_NAME.match(name))


class Profiles:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.root = home / "profiles"

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and is_plain_name(p.name) and p.name not in RESERVED
        )

    def exists(self, name: str) -> bool:
        return is_plain_name(name) and name not in RESERVED and (self.root / name).is_dir()

    def directory(self, name: str) -> Path:
        if not is_plain_name(name):
            raise ValueError(f"not a plain profile name: {name!r}")
        return self.root / name

    @property
    def global_config(self) -> Path:
        return self.home / "etc" / "voice.json"

    def config_path(self, name: str) -> Path:
        return self.directory(name) / "etc" / "voice.json"

    def provider_context(self, name: str) -> ProviderContext:
        directory = self.directory(name)
        return ProviderContext(
            profile=name,
            profile_dir=directory,
            voices_dirs=(directory / "out" / "voices", self.home / "out" / "voices"),
        )
