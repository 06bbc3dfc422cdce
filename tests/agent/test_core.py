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
