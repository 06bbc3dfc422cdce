"""Piper as the registry knows it: the default voice and everyone's fallback; nothing to train."""

from __future__ import annotations

from providers.piper.catalog import CATALOG
from providers.piper.config import PiperSettings
from providers.spec import ProviderSpec

SPEC = ProviderSpec(
    name="piper",
    settings=PiperSettings,
    engine="providers.piper.engine:PiperProvider",
    summary="fast neural TTS (piper-tts), the default voice and the fallback of every other provider",
    catalog=CATALOG,
)
