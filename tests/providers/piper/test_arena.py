"""The speak memory setting on Piper's sessions: ONNX Runtime's CPU arena on or off as the host
says before the first voice loads, and an idle release that shrinks each loaded voice's arenas
(both parts of a voice split at its vocoder; nothing run on a session without one, which ONNX
Runtime would refuse)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.speak.engines import ProviderPool
from providers.common.onnx_spinning import SPINNING, STOP_SPINNING
from providers.piper.config import PiperSettings
from providers.piper.engine import PiperProvider
from tests.contexts import loose_context

SHRINK = "memory.enable_memory_arena_shrinkage"


def loaded(tmp_path: Path, arena: bool, spinning: bool = False) -> tuple[PiperProvider, list[Any]]:
    """A Piper engine from the pool (as the agent makes it), the bundled voice preloaded, and its
    sessions (the encoder part's, then the vocoder's)."""
    provider = ProviderPool(arena=arena, spinning=spinning).get("piper")
    assert isinstance(provider, PiperProvider)
    provider.preload(PiperSettings(), loose_context(tmp_path, (tmp_path / "voices",)))
    (voice,) = provider._voices.values()
    assert voice.split is not None
    return provider, [voice.voice.session, voice.split.decoder]


@pytest.mark.parametrize("arena", [True, False])
def test_the_arena_setting_is_the_sessions(tmp_path: Path, arena: bool) -> None:
    _, sessions = loaded(tmp_path, arena)
    for session in sessions:
        options = session.get_session_options()
        assert options.enable_cpu_mem_arena is arena
        assert options.enable_mem_pattern is False  # one pattern per sentence length otherwise (engine.session_options)


@pytest.mark.parametrize("spinning", [True, False])
def test_the_spinning_setting_is_the_sessions(tmp_path: Path, spinning: bool) -> None:
    _, sessions = loaded(tmp_path, True, spinning)
    for session in sessions:
        options = session.get_session_options()
        assert options.get_session_config_entry(SPINNING) == ("1" if spinning else "0")
        if spinning:  # the encoder part's threads must not spin on while the vocoder runs
            assert options.get_session_config_entry(STOP_SPINNING) == "1"


class Runs:
    """The session's runs, kept (and run)."""

    def __init__(self, session: Any) -> None:
        self.options: list[Any] = []
        self._run = session.run
        session.run = self

    def __call__(self, outputs: Any, feed: Any, options: Any = None) -> Any:
        self.options.append(options)
        return self._run(outputs, feed, options)


def test_an_idle_release_shrinks_the_voices_arenas(tmp_path: Path) -> None:
    provider, sessions = loaded(tmp_path, arena=True)
    runs = [Runs(session) for session in sessions]
    provider.release_memory()
    for run in runs:
        (options,) = run.options
        assert options is not None and options.get_run_config_entry(SHRINK) == "cpu:0"


def test_without_an_arena_an_idle_release_runs_nothing(tmp_path: Path) -> None:
    provider, sessions = loaded(tmp_path, arena=False)
    runs = [Runs(session) for session in sessions]
    provider.release_memory()
    assert all(run.options == [] for run in runs)
    text = " ".join(["word"] * 60) + "."  # a run past KEEP_ARENA_IDS: the engine's own release after it
    chunks = list(provider.synthesize(text, PiperSettings(), loose_context(tmp_path, (tmp_path / "voices",))))
    assert chunks and all(run.options and all(options is None for options in run.options) for run in runs)
