"""The speak memory setting on Piper's sessions: ONNX Runtime's CPU arena on or off as the host
says before the first voice loads, and an idle release that shrinks each loaded voice's arena
(and runs nothing on a session without one, which ONNX Runtime would refuse)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.speak.engines import ProviderPool
from providers.piper.config import PiperSettings
from providers.piper.engine import PiperProvider
from tests.contexts import loose_context

SHRINK = "memory.enable_memory_arena_shrinkage"


def loaded(tmp_path: Path, arena: bool) -> tuple[PiperProvider, Any]:
    """A Piper engine from the pool (as the agent makes it), the bundled voice preloaded, and its session."""
    provider = ProviderPool(arena=arena).get("piper")
    assert isinstance(provider, PiperProvider)
    provider.preload(PiperSettings(), loose_context(tmp_path, (tmp_path / "voices",)))
    ((_, voice),) = provider._voices.values()
    return provider, voice.session


@pytest.mark.parametrize("arena", [True, False])
def test_the_arena_setting_is_the_sessions(tmp_path: Path, arena: bool) -> None:
    _, session = loaded(tmp_path, arena)
    options = session.get_session_options()
    assert options.enable_cpu_mem_arena is arena
    assert options.enable_mem_pattern is False  # one pattern per sentence length otherwise (engine.session_options)


class Runs:
    """The session's runs, kept (and run)."""

    def __init__(self, session: Any) -> None:
        self.options: list[Any] = []
        self._run = session.run
        session.run = self

    def __call__(self, outputs: Any, feed: Any, options: Any = None) -> Any:
        self.options.append(options)
        return self._run(outputs, feed, options)


def test_an_idle_release_shrinks_the_voices_arena(tmp_path: Path) -> None:
    provider, session = loaded(tmp_path, arena=True)
    runs = Runs(session)
    provider.release_memory()
    (options,) = runs.options
    assert options is not None and options.get_run_config_entry(SHRINK) == "cpu:0"


def test_without_an_arena_an_idle_release_runs_nothing(tmp_path: Path) -> None:
    provider, session = loaded(tmp_path, arena=False)
    runs = Runs(session)
    provider.release_memory()
    assert runs.options == []
    text = " ".join(["word"] * 60) + "."  # a run past KEEP_ARENA_IDS: the engine's own release after it
    chunks = list(provider.synthesize(text, PiperSettings(), loose_context(tmp_path, (tmp_path / "voices",))))
    assert chunks and all(options is None for options in runs.options)
