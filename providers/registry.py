"""Which engine implements which provider name; engines are imported on first use."""

from __future__ import annotations

import importlib

from providers.base import Provider, ProviderUnavailableError

# name -> "module:Class". Kokoro, GPT-SoVITS and RVC register here when implemented.
ENGINES: dict[str, str] = {
    "piper": "providers.piper.engine:PiperProvider",
    "sovits": "providers.sovits.engine:SovitsProvider",
    "kokoro": "providers.kokoro.engine:KokoroProvider",
    "rvc": "providers.rvc.engine:RvcProvider",
}


def create_provider(name: str) -> Provider:
    target = ENGINES.get(name)
    if target is None:
        raise ProviderUnavailableError(f"provider '{name}' is not available in this version of the agent")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ProviderUnavailableError(
            f"provider '{name}' needs a package that is not installed ({exc.name}): "
            f"pip install 'voice-agent[{name}]'"
        ) from exc
    provider: Provider = getattr(module, class_name)()
    return provider
