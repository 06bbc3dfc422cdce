"""The providers: one spec each (``providers/<name>/spec.py``), one line each here. A fifth
provider is a new package with its spec, and its line below."""

from __future__ import annotations

import importlib

from providers.base import Provider, ProviderUnavailableError
from providers.kokoro.spec import SPEC as KOKORO
from providers.piper.spec import SPEC as PIPER
from providers.rvc.spec import SPEC as RVC
from providers.sovits.spec import SPEC as SOVITS
from providers.spec import ProviderSpec

SPECS: tuple[ProviderSpec, ...] = (PIPER, KOKORO, SOVITS, RVC)

BY_NAME = {spec.name: spec for spec in SPECS}
NAMES: tuple[str, ...] = tuple(BY_NAME)
ALIASES = {alias: spec.name for spec in SPECS for alias in spec.aliases}


def canonical(name: str) -> str:
    """The provider's name for ``name`` or one of its aliases (the seed's "gpt-sovits")."""
    found = name if name in BY_NAME else ALIASES.get(name)
    if found is None:
        raise ValueError(f"unknown provider {name!r}; known: {', '.join(NAMES)}")
    return found


def spec(name: str) -> ProviderSpec:
    return BY_NAME[canonical(name)]


def create_provider(name: str) -> Provider:
    """A new engine of the provider, its module imported now (torch and models load later still)."""
    try:
        found = spec(name)
    except ValueError as exc:
        raise ProviderUnavailableError(f"provider '{name}' is not available in this version of the agent") from exc
    module_name, _, class_name = found.engine.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ProviderUnavailableError(
            f"provider '{found.name}' needs a package that is not installed ({exc.name}): "
            f"pip install 'voice-agent[{found.extra or found.name}]'"
        ) from exc
    provider: Provider = getattr(module, class_name)()
    return provider
