"""The registry of the household's nodes (agent/nodes/registry.py): documents heard, the last
will, a node that went quiet, and what is not a node's document."""

from __future__ import annotations

import json

import pytest

from agent.nodes.registry import MAX_NODES, STALE_AFTER, NodeRegistry
from agent.nodes.state import GpuCard, NodeState


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def desk(**changes: object) -> bytes:
    return NodeState(node="desk", worker=True, gpus=[GpuCard(name="RTX", total_mb=12000, free_mb=9000)],
                     refresh_s=10.0, **changes).to_json()  # type: ignore[arg-type]


def test_a_node_heard_is_online_with_what_it_said() -> None:
    registry = NodeRegistry(Clock())
    assert registry.heard("desk", desk())
    [node] = registry.nodes()
    assert node["node"] == "desk" and node["online"] and not node["stale"]
    assert node["worker"] and node["free_vram_mb"] == 9000 and node["gpus"][0]["name"] == "RTX"


def test_the_last_will_makes_it_offline_and_keeps_what_it_had() -> None:
    registry = NodeRegistry(Clock())
    registry.heard("desk", desk())
    registry.heard("desk", NodeState.offline("desk").to_json())
    [node] = registry.nodes()
    assert not node["online"] and node["status"] == "offline" and node["free_vram_mb"] == 9000
    assert not registry.online("desk")
    registry.heard("desk", desk())  # back
    assert registry.online("desk")


def test_a_node_not_heard_from_for_too_long_is_stale() -> None:
    clock = Clock()
    registry = NodeRegistry(clock)
    registry.heard("desk", desk())
    clock.now += STALE_AFTER * 10.0  # its own refresh interval, three times over: still in time
    assert registry.online("desk")
    clock.now += 1
    [node] = registry.nodes()
    assert node["status"] == "online" and not node["online"] and node["stale"]
    registry.heard("desk", desk())
    assert registry.online("desk")


def test_an_empty_retained_payload_forgets_the_node() -> None:
    registry = NodeRegistry(Clock())
    registry.heard("desk", desk())
    registry.heard("desk", b"")
    assert registry.nodes() == []


@pytest.mark.parametrize(("topic_node", "payload"), [
    ("desk", b"not json"),
    ("desk", b"[1, 2]"),
    ("desk", json.dumps({"node": "desk", "status": "asleep"}).encode()),
    ("desk", json.dumps({"node": "desk", "gpus": "many"}).encode()),
    ("other", desk()),  # another node's document on this node's topic
    ("bad#name", NodeState(node="bad#name").to_json()),
    ("desk", b"{" + b" " * (64 * 1024) + b"}"),
])
def test_what_is_not_a_nodes_document_changes_nothing(topic_node: str, payload: bytes) -> None:
    registry = NodeRegistry(Clock())
    registry.heard("desk", desk())
    before = registry.nodes()
    assert not registry.heard(topic_node, payload)
    assert registry.nodes() == before


def test_a_newer_nodes_fields_are_no_reason_to_ignore_it() -> None:
    registry = NodeRegistry(Clock())
    document = json.loads(desk())
    document["something_new"] = {"x": 1}
    assert registry.heard("desk", json.dumps(document).encode())
    assert registry.online("desk")


def test_a_profile_is_at_home_on_the_online_node_that_lists_it() -> None:
    clock = Clock()
    registry = NodeRegistry(clock)
    registry.heard("desk", desk(profiles=["office"]))
    registry.heard("pi", NodeState(node="pi", profiles=["kitchen"]).to_json())
    assert registry.home_of("office") == "desk" and registry.home_of("kitchen") == "pi"
    assert registry.home_of("office", besides="desk") is None and registry.home_of("attic") is None
    registry.heard("desk", NodeState.offline("desk").to_json())
    assert registry.home_of("office") is None  # its home is gone: the request is answered (unknown_profile)


def test_a_flood_of_made_up_nodes_is_bounded_and_keeps_the_ones_online() -> None:
    """Anyone who may publish on the broker can make up node names by the million: the registry
    keeps at most MAX_NODES, a newcomer takes the place of the node gone longest, never of one
    online, and a known node is always heard."""
    clock = Clock()
    registry = NodeRegistry(clock)
    for n in range(MAX_NODES):
        assert registry.heard(f"n{n}", NodeState(node=f"n{n}", refresh_s=10.0).to_json())
        clock.now += 0.001
    assert not registry.heard("flood", NodeState(node="flood").to_json())
    assert registry.state_of("flood") is None and len(registry.nodes()) == MAX_NODES
    assert registry.heard("n5", NodeState.offline("n5").to_json())  # a known node is heard, full or not
    assert registry.heard("flood", NodeState(node="flood").to_json())  # it takes the offline one's place
    assert registry.state_of("n5") is None and registry.online("flood") and len(registry.nodes()) == MAX_NODES
    clock.now += STALE_AFTER * 10.0 + 1  # every one of them stale now, "flood" included (refresh 60 s)
    assert registry.heard("late", NodeState(node="late").to_json())
    assert registry.state_of("n0") is None and len(registry.nodes()) == MAX_NODES  # the one unheard longest
