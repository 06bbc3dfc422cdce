"""One warm engine per provider, created on first use and shared by every profile."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from providers import registry
from providers.base import Provider, ProviderContext, ProviderError, VoiceInfo

log = logging.getLogger(__name__)


class ProviderPool:
    def __init__(
        self,
        gpu_guard: Any = None,
        factory: Callable[[str], Provider] = registry.create_provider,
        on_create: Callable[[str, Provider], None] | None = None,
        arena: bool = True,
        spinning: bool = False,
    ) -> None:
        """``gpu_guard``: the agent's GPU arbitration (``GpuArbiter.reserve``), handed to every
        provider that can use a GPU (those with ``use_gpu_guard``). ``factory`` builds an engine
        by name (the registry; tests hand in their own); ``on_create`` hears of each new engine.
        ``arena``: ONNX Runtime's CPU buffer arena for the engines that run it (those with
        ``use_arena``; providers/common/onnx_arena.py), said before they load anything, as is
        ``spinning`` (those with ``use_spinning``; providers/common/onnx_spinning.py)."""
        self._arena = arena
        self._spinning = spinning
        self._providers: dict[str, Provider] = {}
        self._lock = threading.Lock()
        self._gpu_guard = gpu_guard
        self._factory = factory
        self._on_create = on_create

    def get(self, name: str) -> Provider:
        with self._lock:
            provider = self._providers.get(name)
            if provider is None:
                provider = self._factory(name)
                if self._gpu_guard is not None and hasattr(provider, "use_gpu_guard"):
                    provider.use_gpu_guard(self._gpu_guard)
                if hasattr(provider, "use_arena"):
                    provider.use_arena(self._arena)
                if hasattr(provider, "use_spinning"):
                    provider.use_spinning(self._spinning)
                self._providers[name] = provider
                if self._on_create is not None:
                    self._on_create(name, provider)
            return provider

    def loaded(self) -> list[str]:
        """The providers whose engines exist (created on first use)."""
        with self._lock:
            return sorted(self._providers)

    def release_memory(self) -> None:
        """Every engine that keeps buffers for its next sentence (those with ``release_memory``)
        hands them back: speech has been idle a while (agent/speak/idle_release.py)."""
        with self._lock:
            providers = list(self._providers.values())
        for provider in providers:
            release = getattr(provider, "release_memory", None)
            if release is None:
                continue
            try:
                release()
            except Exception:  # one engine that cannot must not keep the others' memory
                log.exception("%s could not hand back its idle memory", provider.name)

    def close(self) -> None:
        with self._lock:
            providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            try:
                provider.close()
            except Exception:
                log.exception("closing provider %s failed", provider.name)


def list_voices(pool: ProviderPool, ctx: ProviderContext) -> tuple[list[VoiceInfo], dict[str, str]]:
    """Every provider's voices for a profile, and why a provider could not list any."""
    voices: list[VoiceInfo] = []
    problems: dict[str, str] = {}
    for name in registry.NAMES:
        try:
            voices.extend(pool.get(name).voices(ctx))
        except ProviderError as exc:
            problems[name] = str(exc)
        except Exception as exc:  # a broken engine must not hide the others
            log.exception("listing %s voices failed", name)
            problems[name] = f"{type(exc).__name__}: {exc}"
    return voices, problems
