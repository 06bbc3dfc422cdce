"""The node document (agent/nodes/state.py): node names that are one topic level, the document
built from the agent's figures, the last will."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.nodes.state import Ability, NodeState, Queues, build_state, check_node_name, default_node_name, http_url
from agent.settings import AgentSettings

GPU_REPORT = {"available": True, "reason": "", "gpus": [
    {"index": 0, "name": "RTX 3060", "total_mb": 12288, "used_mb": 2288, "free_mb": 10000, "processes": []},
    {"index": 1, "name": "T400", "total_mb": 2048, "used_mb": 48, "free_mb": 2000, "processes": []}],
    "memory": {"agent_mb": 300, "available_mb": 9000, "total_mb": 16000, "limit_mb": None, "limit_from": ""}}


@pytest.mark.parametrize("name", ["desktop", "gpu-box.lan", "Node_2", "a" * 64, "-x"])
def test_a_topic_level_is_a_node_name(name: str) -> None:
    assert check_node_name(name) == name


@pytest.mark.parametrize("name", ["", "a/b", "+", "#", "desk#1", "a+b", ".hidden", "$SYS", "a" * 65, "two words",
                                  "nödé"])
def test_what_would_break_the_topic_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a node name"):
        check_node_name(name)


def test_a_reserved_name_is_refused_with_every_word_it_may_not_be() -> None:
    with pytest.raises(ValueError) as refused:
        check_node_name("hass")
    assert str(refused.value) == ("'hass' is not a node name: 'local' and 'auto' are runOn's own words, "
                                  "request, response, audio, event, state, stream, hass a profile's topics")


def test_the_host_name_becomes_a_node_name() -> None:
    assert default_node_name("desk top/1") == "desk-top-1"
    assert default_node_name(".") == "node"
    assert check_node_name(default_node_name("x" * 100 + "#")) == "x" * 64


def test_the_setting_is_checked_and_named(tmp_path: object) -> None:
    with pytest.raises(ValidationError, match="node"):
        AgentSettings(home=tmp_path, node="voice/+")  # type: ignore[arg-type]
    assert AgentSettings(home=tmp_path, node="desk").node == "desk"  # type: ignore[arg-type]


def test_the_document_says_what_the_node_has() -> None:
    state = build_state("desk", "i1", "1.2", True, "http://desk:4321", ["anna"], [Ability(provider="rvc", trains=True, loaded=True)],
                        GPU_REPORT, Queues(speak=2, train=1), 60.0, 1000.0)
    assert state.free_vram_mb == 10000 and [c.name for c in state.gpus] == ["RTX 3060", "T400"]
    assert state.memory.available_mb == 9000 and state.worker and state.url == "http://desk:4321"
    assert state.queues == Queues(speak=2, train=1) and state.status == "online" and state.profiles == ["anna"]
    assert NodeState.model_validate_json(state.to_json()) == state  # what a reader gets back


def test_no_gpu_is_said_with_its_reason() -> None:
    state = build_state("pi", "i1", "1", False, "", [], [], {"available": False, "reason": "no GPU: NVML unavailable",
                                                   "gpus": []}, Queues(), 60.0, 0.0)
    assert state.gpus == [] and state.free_vram_mb == 0 and state.gpu_reason == "no GPU: NVML unavailable"


def test_only_the_time_does_not_make_a_new_document() -> None:
    one = build_state("pi", "i1", "1", False, "", [], [], {}, Queues(), 60.0, 1.0)
    assert one.same_as(one.model_copy(update={"time": 2.0}))
    assert not one.same_as(one.model_copy(update={"queues": Queues(speak=1)}))
    assert not one.same_as(None)


def test_the_last_will_names_the_node_and_nothing_else() -> None:
    will = NodeState.model_validate_json(NodeState.offline("desk").to_json())
    assert will.status == "offline" and will.node == "desk" and will.providers == [] and will.gpus == []


def test_the_http_door_is_addressed_as_another_machine_reaches_it() -> None:
    assert http_url("192.168.1.5", 4321) == "http://192.168.1.5:4321"
    assert http_url("::1", 4321) == "http://[::1]:4321"
    assert http_url("0.0.0.0", 4321).endswith(":4321") and "0.0.0.0" not in http_url("0.0.0.0", 4321)
    assert http_url("127.0.0.1", 4321, enabled=False) == ""
