"""This agent's node document kept current (agent/nodes/service.py): told when it changes, and
at every beat even when it does not; a listener that fails does not stop the others."""

from __future__ import annotations

import logging
import threading

import pytest

from agent.nodes.service import NodeService, NodeSources
from agent.nodes.state import Ability, NodeState, Queues


def service(queues: list[Queues], told: list[NodeState]) -> NodeService:
    made = NodeService("pi", "1.0", False, "http://pi:4321", NodeSources(
        profiles=lambda: ["anna"], abilities=lambda: [Ability(provider="piper")], gpu=lambda: {}, queues=lambda: queues[-1]),
        clock=lambda: 5.0)

    def broken(state: NodeState) -> None:
        raise RuntimeError("a listener that fails")

    made.watch(broken)
    made.watch(told.append)
    return made


def test_a_change_is_told_and_no_change_is_not() -> None:
    queues, told = [Queues()], []
    made = service(queues, told)
    made.refresh()
    made.refresh()
    assert len(told) == 1 and told[0].queues.speak == 0
    queues.append(Queues(speak=3))
    made.refresh()
    assert len(told) == 2 and told[1].queues.speak == 3 and made.document().queues.speak == 3


def test_the_beat_tells_it_again_unchanged() -> None:
    queues, told = [Queues()], []
    made = service(queues, told)
    made.refresh()
    made.refresh(force=True)
    assert len(told) == 2 and told[0].same_as(told[1])


def test_the_document_before_any_refresh_is_built_and_whole() -> None:
    made = service([Queues()], [])
    document = made.document()
    assert document.node == "pi" and document.url == "http://pi:4321" and document.providers[0].provider == "piper"
    assert document.profiles == ["anna"]


def test_a_change_is_picked_up_on_the_nodes_own_thread() -> None:
    queues, told = [Queues()], []
    made = service(queues, told)
    arrived = threading.Event()
    made.watch(lambda state: arrived.set() if state.queues.speak == 2 else None)
    made.start()
    try:
        queues.append(Queues(speak=2))
        made.changed()
        assert arrived.wait(10)
    finally:
        made.stop()


def test_another_agent_with_this_nodes_name_is_said(caplog: pytest.LogCaptureFixture) -> None:
    made = service([Queues()], [])
    with caplog.at_level(logging.ERROR, "agent.nodes.service"):
        made.heard("pi", made.document().to_json())  # our own, back from the broker
        assert not caplog.records
        made.heard("pi", made.document().model_copy(update={"instance": "someone-else"}).to_json())
    assert "another agent publishes as node 'pi'" in caplog.text and "VOICE_AGENT_NODE" in caplog.text
    assert made.registry.state_of("pi") is not None
