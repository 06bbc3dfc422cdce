"""What /api/health's status says: offline while requests cannot reach the agent over the broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.core import Core
from agent.settings import AgentSettings


@pytest.fixture()
def core(tmp_path: Path) -> Iterator[Core]:
    made = Core(AgentSettings(home=tmp_path))
    yield made
    made.streams.stop()
    made.records.stop()


def test_availability(core: Core) -> None:
    assert core.availability([]) == "online"  # no door said otherwise
    assert core.availability(["speak worker stuck"]) == "unhealthy"
    core.reachable = lambda: False
    assert core.availability([]) == "offline"
    assert core.availability(["speak worker stuck"]) == "offline"
    core.reachable = lambda: True
    assert core.availability([]) == "online"


@pytest.mark.parametrize(("mode", "arena", "releases"), [("idle", True, True), ("keep", True, False), ("off", False, False)])
def test_the_speak_arena_setting_reaches_the_voices_session(tmp_path: Path, mode: str, arena: bool, releases: bool) -> None:
    """VOICE_AGENT_SPEAK_ARENA as the agent builds its engines: the Piper voice's session has ONNX
    Runtime's arena or not, and only ``idle`` hands it back after speech."""
    from providers.piper.config import PiperSettings
    from providers.piper.engine import PiperProvider

    made = Core(AgentSettings(home=tmp_path, speak_arena=mode))  # type: ignore[arg-type]
    try:
        piper = made.engines.get("piper")
        assert isinstance(piper, PiperProvider)
        piper.preload(PiperSettings(), made.layout.provider_context("default"))
        (loaded,) = piper._voices.values()
        sessions = [loaded.voice.session] + ([loaded.split.decoder] if loaded.split is not None else [])
        assert [s.get_session_options().enable_cpu_mem_arena for s in sessions] == [arena] * len(sessions)
        assert (made.speak._idle is not None) is releases
    finally:
        made.speak.stop()
        made.streams.stop()
        made.records.stop()


def test_the_blob_route_lends_a_workers_offered_file_first_then_a_kept_one(tmp_path: Path) -> None:
    import types

    from agent.core import Core

    offered, kept = tmp_path / "offered", tmp_path / "kept"
    core = object.__new__(Core)
    core.blobs = types.SimpleNamespace(find=lambda sha: kept if sha in ("a", "b") else None)  # type: ignore[assignment]
    core.offers = types.SimpleNamespace(find=lambda sha: offered if sha == "a" else None)  # type: ignore[assignment]
    assert [core.find_blob(sha) for sha in ("a", "b", "c")] == [offered, kept, None]
    core.offers = None  # a node that takes no work offers nothing
    assert [core.find_blob(sha) for sha in ("a", "c")] == [kept, None]
