"""Provider contexts for tests: the one the agent hands a provider, or one of loose folders."""

from __future__ import annotations

from pathlib import Path

from agent.layout import Layout
from providers.base import ProviderContext
from tests.piper_split_seed import seed_split


def home_context(home: Path, profile: str = "default") -> ProviderContext:
    """What the agent hands a provider for ``profile`` of the home ``home``."""
    return Layout(home).provider_context(profile)


def loose_context(profile_dir: Path, voices_dirs: tuple[Path, ...], profile: str = "default") -> ProviderContext:
    """Voices wherever a test put them; everything a provider derives goes under ``profile_dir``
    (the bundled Piper voice's split already there: tests/piper_split_seed.py)."""
    seed_split(profile_dir / "models")
    return ProviderContext(profile, profile_dir, voices_dirs, data_dir=profile_dir / "models", run_dir=profile_dir / "run",
                           home=profile_dir, samples_dir=profile_dir / "samples")
