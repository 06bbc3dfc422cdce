"""The node document, the registry and the node service rule by rule: a name that only resembles
one, the document's defaults and what ``build_state`` makes of a partial GPU report, a retained
document at and over its size cap, stale against offline at the boundary, which node is a
profile's home, and the heartbeat."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest

from agent.nodes import state as node_state
from agent.nodes.registry import NodeRegistry
from agent.nodes.service import REFRESH_S, NodeService, NodeSources
from agent.nodes.state import (
    MAX_DOCUMENT_BYTES, Ability, GpuCard, Memory, NodeState, Queues, build_state, check_node_name, default_node_name,
    http_url,
)

WAIT = 10  # seconds a step may take (never reached when it works)


# The document

@pytest.mark.parametrize("name", ["desk\n", "desk/", "desk+", "de#sk", "a" * 65, "", " desk"])
def test_a_name_that_only_resembles_a_node_name_is_refused(name: str) -> None:
    with pytest.raises(ValueError) as refused:
        check_node_name(name)
    assert str(refused.value) == (f"{name!r} is not a node name: 1 to 64 letters, digits, '_', '.' or '-' (not starting "
                                  "with '.'), e.g. the host name")


@pytest.mark.parametrize("name", ["d", "_", "9", "a.", "a" * 64, "x-y_z.1"])
def test_a_short_or_dotted_name_is_one(name: str) -> None:
    assert check_node_name(name) == name


def test_the_host_name_is_asked_when_none_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node_state.socket, "gethostname", lambda: "..gpu box")
    assert default_node_name() == "gpu-box"
    assert default_node_name("") == "node" and default_node_name("...") == "node"
    assert default_node_name(".a.b") == "a.b" and default_node_name("y" * 64 + "z") == "y" * 64
    assert default_node_name("Xbox-One_2.lan") == "Xbox-One_2.lan"  # capitals kept, an X at the start too


@pytest.mark.parametrize("host", ["0.0.0.0", "::", ""])
def test_a_wildcard_address_is_this_machines_name(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    monkeypatch.setattr(node_state.socket, "gethostname", lambda: "desk")
    assert http_url(host, 4321) == "http://desk:4321"


def test_a_named_host_is_kept_and_a_v6_address_bracketed() -> None:
    assert http_url("desk.lan", 80) == "http://desk.lan:80"
    assert http_url("fe80::2", 8080) == "http://[fe80::2]:8080"
    assert http_url("desk.lan", 80, False) == ""


def test_a_document_says_online_and_nothing_else_until_told() -> None:
    state = NodeState(node="pi")
    assert (state.status, state.instance, state.version, state.worker, state.url) == ("online", "", "", False, "")
    assert (state.profiles, state.providers, state.gpus, state.gpu_reason) == ([], [], [], "")
    assert state.memory == Memory(available_mb=0, total_mb=0) and state.queues == Queues(speak=0, train=0)
    assert (state.refresh_s, state.time) == (60.0, 0.0)
    assert Ability(provider="piper") == Ability(provider="piper", trains=False, loaded=False)
    assert GpuCard() == GpuCard(index=0, name="", total_mb=0, free_mb=0)


@pytest.mark.parametrize("refresh", [0, -1])
def test_a_document_that_never_refreshes_is_not_one(refresh: float) -> None:
    with pytest.raises(ValueError):
        NodeState(node="pi", refresh_s=refresh)


def test_the_free_vram_is_the_largest_free_card() -> None:
    state = NodeState(node="pi", gpus=[GpuCard(free_mb=10), GpuCard(free_mb=30), GpuCard(free_mb=20)])
    assert state.free_vram_mb == 30


def test_a_document_differs_in_any_field_but_its_time() -> None:
    one = NodeState(node="pi", time=1.0)
    assert one.same_as(one.model_copy(update={"time": 9.0}))
    for field, value in (("status", "offline"), ("instance", "x"), ("version", "2"), ("worker", True), ("url", "u"),
                         ("profiles", ["a"]), ("refresh_s", 30.0), ("gpu_reason", "r")):
        assert not one.same_as(one.model_copy(update={field: value})), field


def test_a_partial_gpu_report_makes_cards_of_what_it_has() -> None:
    report = {"gpus": [{"free_mb": "512"}, "not a card", {"index": 3, "name": "T4", "total_mb": 16000, "free_mb": 100},
                       {"name": "busy"}], "memory": {"available_mb": "700"}}
    state = build_state("pi", "i9", "2.0", False, "", ["a"], [], report, Queues(), 30.0, 12.5)
    assert state.gpus == [GpuCard(index=0, name="", total_mb=0, free_mb=512),
                          GpuCard(index=3, name="T4", total_mb=16000, free_mb=100), GpuCard(name="busy", free_mb=0)]
    assert state.gpu_reason == "" and state.memory == Memory(available_mb=700, total_mb=0)
    assert (state.instance, state.version, state.refresh_s, state.time) == ("i9", "2.0", 30.0, 12.5)
    whole = build_state("pi", "i9", "2.0", False, "", [], [], {"memory": {"available_mb": 7, "total_mb": 16}}, Queues(), 30.0, 0.0)
    assert whole.memory == Memory(available_mb=7, total_mb=16)


@pytest.mark.parametrize(("report", "reason"), [
    ({}, "no GPU report yet"), ({"gpus": None, "memory": None}, "no GPU report yet"), ({"reason": ""}, "no GPU report yet"),
    ({"reason": "no NVML", "gpus": []}, "no NVML"),
])
def test_without_a_card_the_reason_is_said(report: dict[str, object], reason: str) -> None:
    state = build_state("pi", "i", "1", False, "", [], [], report, Queues(), 60.0, 0.0)
    assert state.gpus == [] and state.gpu_reason == reason and state.memory == Memory()


# The registry

class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def padded(document: NodeState, size: int) -> bytes:
    """The document's JSON with spaces inside it, ``size`` bytes in all."""
    raw = document.to_json()
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


def test_a_document_of_the_size_cap_is_read_and_one_byte_more_is_not(caplog: pytest.LogCaptureFixture) -> None:
    registry = NodeRegistry(Clock())
    assert registry.heard("desk", padded(NodeState(node="desk", version="1"), MAX_DOCUMENT_BYTES))
    with caplog.at_level(logging.WARNING, "agent.nodes.registry"):
        assert not registry.heard("desk", padded(NodeState(node="desk", version="2"), MAX_DOCUMENT_BYTES + 1))
    assert registry.state_of("desk").version == "1"  # type: ignore[union-attr]
    assert f"{MAX_DOCUMENT_BYTES + 1} bytes, more than {MAX_DOCUMENT_BYTES}" in caplog.text
    assert MAX_DOCUMENT_BYTES == 64 * 1024


@pytest.mark.parametrize(("node", "said"), [
    ("desk\n", "is not a node name"), ("de/sk", "is not a node name"), ("+", "is not a node name"),
])
def test_a_topic_that_names_no_node_is_said_and_ignored(caplog: pytest.LogCaptureFixture, node: str, said: str) -> None:
    registry = NodeRegistry(Clock())
    with caplog.at_level(logging.WARNING, "agent.nodes.registry"):
        assert not registry.heard(node, NodeState(node="desk").to_json())
    assert said in caplog.text and registry.nodes() == []


def test_a_document_that_lies_about_its_node_is_said_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    registry = NodeRegistry(Clock())
    with caplog.at_level(logging.WARNING, "agent.nodes.registry"):
        assert not registry.heard("desk", NodeState(node="desk2").to_json())
        assert not registry.heard("desk", json.dumps({"node": "desk", "refresh_s": 0}).encode())
        assert not registry.heard("desk", b"\xff not json")
    assert "a state of node 'desk2' published on node 'desk''s topic" in caplog.text
    assert caplog.text.count("not a node document") == 2 and registry.nodes() == []


def test_an_empty_payload_for_a_node_never_heard_is_fine() -> None:
    registry = NodeRegistry(Clock())
    assert registry.heard("desk", b"") and registry.nodes() == []


def test_a_will_from_a_node_never_heard_is_all_there_is_of_it() -> None:
    registry = NodeRegistry(Clock())
    assert registry.heard("desk", NodeState.offline("desk").to_json())
    state = registry.state_of("desk")
    assert state is not None and state.status == "offline" and not registry.online("desk")
    [node] = registry.nodes()
    assert node["status"] == "offline" and not node["online"] and not node["stale"]


def test_a_will_keeps_what_the_node_said_and_says_offline() -> None:
    registry = NodeRegistry(Clock())
    registry.heard("desk", NodeState(node="desk", worker=True, profiles=["office"]).to_json())
    registry.heard("desk", NodeState.offline("desk").to_json())
    state = registry.state_of("desk")
    assert state is not None and state.status == "offline" and state.worker and state.profiles == ["office"]
    assert registry.state_of("other") is None and not registry.online("other")


def test_stale_is_judged_from_the_last_word_against_the_nodes_own_interval() -> None:
    clock = Clock()
    registry = NodeRegistry(clock)
    registry.heard("fast", NodeState(node="fast", refresh_s=1.0).to_json())
    registry.heard("slow", NodeState(node="slow", refresh_s=100.0).to_json())
    clock.now += 3.0
    assert registry.online("fast") and registry.online("slow")
    clock.now += 0.5
    assert not registry.online("fast") and registry.online("slow")
    clock.now = 100.0 + 300.0
    assert registry.online("slow")
    clock.now += 0.1
    fast, slow = registry.nodes()
    assert (fast["node"], fast["stale"], fast["online"]) == ("fast", True, False)
    assert (slow["node"], slow["stale"], slow["heard_s_ago"]) == ("slow", True, 300.1)


def test_the_nodes_are_listed_by_name_with_the_seconds_since_each_was_heard() -> None:
    clock = Clock()
    registry = NodeRegistry(clock)
    registry.heard("pi", NodeState(node="pi", gpus=[GpuCard(free_mb=5), GpuCard(free_mb=7)]).to_json())
    clock.now += 12.34
    registry.heard("desk", NodeState(node="desk").to_json())
    clock.now += 1.0
    desk, pi = registry.nodes()
    assert (desk["node"], desk["heard_s_ago"], desk["online"], desk["status"]) == ("desk", 1.0, True, "online")
    assert (pi["node"], pi["heard_s_ago"], pi["free_vram_mb"]) == ("pi", 13.3, 7)


def test_a_profiles_home_is_the_first_online_node_by_name_that_lists_it_exactly() -> None:
    clock = Clock()
    registry = NodeRegistry(clock)
    registry.heard("zeta", NodeState(node="zeta", profiles=["office"]).to_json())
    registry.heard("alpha", NodeState(node="alpha", profiles=["office"], refresh_s=1.0).to_json())
    registry.heard("mid", NodeState(node="mid", profiles=["office-2", "offices"]).to_json())
    assert registry.home_of("office") == "alpha" and registry.home_of("office", besides="alpha") == "zeta"
    assert registry.home_of("offic") is None and registry.home_of("office-") is None
    clock.now += 3.5  # alpha is stale: no home any more
    assert registry.home_of("office") == "zeta"


# The service

def sources(queues: list[Queues], fail: list[bool] | None = None) -> NodeSources:
    def figures() -> Queues:
        if fail and fail[-1]:
            raise RuntimeError("a figure that cannot be read")
        return queues[-1]
    return NodeSources(profiles=lambda: ["anna"], abilities=lambda: [], gpu=lambda: {"gpus": [{"free_mb": 9}]},
                       queues=figures)


def test_the_service_builds_the_document_from_its_sources_and_its_own_figures() -> None:
    made = NodeService("pi", "1.5", True, "http://pi:1", sources([Queues(speak=4)]), refresh_s=7.0, clock=lambda: 42.0)
    document = made.document()
    assert (document.node, document.version, document.worker, document.url) == ("pi", "1.5", True, "http://pi:1")
    assert (document.refresh_s, document.time, document.queues.speak) == (7.0, 42.0, 4)
    assert document.instance == made.instance and len(made.instance) == 12
    assert int(made.instance, 16) >= 0 and document.free_vram_mb == 9 and document.profiles == ["anna"]
    assert NodeService("pi", "1", False, "", sources([Queues()])).instance != made.instance
    assert REFRESH_S == 60.0 and made.document() is made.document()


def test_the_first_document_is_not_told_and_the_next_change_is() -> None:
    queues: list[Queues] = [Queues()]
    told: list[NodeState] = []
    made = NodeService("pi", "1", False, "", sources(queues))
    made.watch(told.append)
    made.document()
    assert told == []
    made.refresh()
    assert told == []  # unchanged since the document was built
    queues.append(Queues(train=1))
    made.refresh(tell=False)
    assert told == [] and made.document().queues.train == 1


def test_a_figure_that_fails_says_the_last_document_again(caplog: pytest.LogCaptureFixture) -> None:
    queues, fail = [Queues(speak=1)], [False]
    made = NodeService("pi", "1", False, "", sources(queues, fail))
    told: list[NodeState] = []
    made.watch(told.append)
    first = made.refresh()
    fail.append(True)
    with caplog.at_level(logging.ERROR, "agent.nodes.service"):
        assert made.refresh(force=True) == first
    assert said(caplog) == ["node state: a figure could not be read"] and told == [first, first]


def test_a_figure_that_fails_before_any_document_is_raised() -> None:
    made = NodeService("pi", "1", False, "", sources([Queues()], [True]))
    with pytest.raises(RuntimeError, match="cannot be read"):
        made.document()


def test_only_this_nodes_own_online_document_from_another_instance_is_an_error(caplog: pytest.LogCaptureFixture) -> None:
    made = NodeService("pi", "1", False, "", sources([Queues()]))
    with caplog.at_level(logging.ERROR, "agent.nodes.service"):
        made.heard("desk", NodeState(node="desk", instance="other").to_json())  # another node: its own business
        made.heard("pi", NodeState(node="pi", instance="").to_json())  # an agent too old to say its instance
        made.heard("pi", NodeState(node="pi", instance="other", status="offline").to_json())
        made.heard("pi", b"not json")
        assert not caplog.records
        made.heard("pi", NodeState(node="pi", instance="other").to_json())
    assert f"its instance other, ours {made.instance}" in caplog.text
    assert made.registry.online("desk")


def test_the_heartbeat_tells_the_unchanged_document_every_interval_and_stop_ends_it() -> None:
    made = NodeService("pi", "1", False, "", sources([Queues()]), refresh_s=0.05)
    beats = threading.Semaphore(0)
    made.watch(lambda state: beats.release())
    made.start()
    try:
        for _ in range(3):  # three beats of an unchanged document
            assert beats.acquire(timeout=WAIT)
    finally:
        made.stop()
    assert not made._thread.is_alive()


def test_a_change_wakes_the_node_thread_before_its_beat() -> None:
    queues = [Queues()]
    made = NodeService("pi", "1", False, "", sources(queues), refresh_s=3600.0)
    told = threading.Event()
    made.document()
    made.watch(lambda state: told.set())
    made.start()
    try:
        made.changed()  # nothing changed, and no beat for an hour: nobody is told
        queues.append(Queues(speak=5))
        made.changed()
        assert told.wait(WAIT)
    finally:
        made.stop()
    assert not made._thread.is_alive()


def test_stop_before_start_is_fine() -> None:
    NodeService("pi", "1", False, "", sources([Queues()])).stop()


# What is said when a document is ignored, exactly (the node named, cut at 80 characters)

def said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def test_each_ignored_document_is_said_with_its_node_and_reason(caplog: pytest.LogCaptureFixture) -> None:
    registry = NodeRegistry(Clock())
    long = "x" * 100
    with caplog.at_level(logging.WARNING, "agent.nodes.registry"):
        registry.heard(long + "/", b"{}")
        registry.heard("desk", b"{" + b" " * MAX_DOCUMENT_BYTES + b"}")
        registry.heard("desk", b"not json")
        registry.heard("desk", NodeState(node="y" * 100).to_json())
    assert said(caplog) == [
        f"ignored a node state on a topic whose node {long[:80]!r} is not a node name",
        f"ignored node desk's state: {MAX_DOCUMENT_BYTES + 2} bytes, more than {MAX_DOCUMENT_BYTES}",
        "ignored node desk's state: not a node document (Expecting value: line 1 column 1 (char 0))",
        f"ignored a state of node {'y' * 80!r} published on node 'desk''s topic",
    ]


def test_another_agent_under_this_name_is_said_in_full(caplog: pytest.LogCaptureFixture) -> None:
    made = NodeService("pi", "1", False, "", sources([Queues()]))
    with caplog.at_level(logging.ERROR, "agent.nodes.service"):
        made.heard("pi", NodeState(node="pi", instance="other").to_json())
    assert said(caplog) == [f"another agent publishes as node 'pi' (its instance other, ours {made.instance}): give "
                            "each agent its own VOICE_AGENT_NODE"]


# The heartbeat, driven on the test's thread: the node thread's wake replaced by one that keeps
# each wait's timeout, sleeps the first out (a beat) or returns at once (a wake), then stops.

class Waits:
    def __init__(self, made: NodeService, script: list[str]) -> None:
        self.made = made
        self.script = script
        self.timeouts: list[float] = []

    def wait(self, timeout: float) -> bool:
        self.timeouts.append(timeout)
        step = self.script.pop(0)
        if step == "beat":
            time.sleep(timeout)
            return False
        if step == "stop":
            self.made._stop.set()
        return True

    def clear(self) -> None:
        pass

    def set(self) -> None:
        pass


def beating(refresh_s: float, script: list[str], queues: list[Queues] | None = None) -> tuple[NodeService, Waits, list[NodeState]]:
    made = NodeService("pi", "1", False, "", sources(queues or [Queues()]), refresh_s=refresh_s)
    made.document()
    told: list[NodeState] = []
    made.watch(told.append)
    waits = Waits(made, script)
    made._wake = waits  # type: ignore[assignment]
    made._beat()
    return made, waits, told


def test_the_beat_comes_a_refresh_interval_after_the_last_and_tells_the_unchanged_document() -> None:
    made, waits, told = beating(0.2, ["beat", "stop"])
    assert len(told) == 1 and told[0].same_as(made.document())
    first, second = waits.timeouts
    assert 0.1 < first <= 0.2 and 0.1 < second <= 0.2  # the next beat is an interval after this one


def test_a_wake_without_a_change_tells_nobody_and_keeps_the_beats_time() -> None:
    _, waits, told = beating(3600.0, ["wake", "stop"])
    assert told == [] and 3000 < waits.timeouts[1] <= 3600


def test_a_wake_with_a_change_tells_it() -> None:
    queues = [Queues()]
    made = NodeService("pi", "1", False, "", sources(queues), refresh_s=3600.0)
    made.document()
    told: list[NodeState] = []
    made.watch(told.append)
    queues.append(Queues(speak=5))
    made._wake = Waits(made, ["wake", "stop"])  # type: ignore[assignment]
    made._beat()
    assert [state.queues.speak for state in told] == [5]


def test_a_listener_that_fails_is_said_and_the_next_is_told(caplog: pytest.LogCaptureFixture) -> None:
    made = NodeService("pi", "1", False, "", sources([Queues()]))
    told: list[NodeState] = []

    def broken(state: NodeState) -> None:
        raise RuntimeError("a listener that fails")

    made.watch(broken)
    made.watch(told.append)
    with caplog.at_level(logging.ERROR, "agent.nodes.service"):
        made.refresh()
    assert said(caplog) == ["node state listener failed"] and len(told) == 1



@pytest.mark.parametrize("name", ["a/b", "desk\n", "+", "#", "$SYS", "", "x" * 65, "ok/../x"])
def test_a_job_or_reply_naming_a_node_that_cannot_be_is_refused(name: str) -> None:
    from pydantic import ValidationError

    from agent.nodes.work import SpeakWork, WorkReply

    job = {"id": "j1", "home": name, "home_url": "http://10.0.0.2:8766", "provider": "rvc", "text": "Hi."}
    with pytest.raises(ValidationError):
        SpeakWork.model_validate(job)
    with pytest.raises(ValidationError):
        WorkReply.model_validate({"kind": "alive", "node": name, "id": "j1"})
    assert SpeakWork.model_validate({**job, "home": "desk"}).home == "desk"
    assert WorkReply.model_validate({"kind": "alive", "node": "desk.lan", "id": "j1"}).node == "desk.lan"


@pytest.mark.parametrize("name", ["local", "auto", "Local", "AUTO"])
def test_runons_own_words_are_no_node_names_and_a_host_so_named_gets_another(name: str) -> None:
    with pytest.raises(ValueError, match="runOn's own words"):
        check_node_name(name)
    assert check_node_name(default_node_name(name)) == f"node-{name}"
    assert check_node_name("localhost") == "localhost" and check_node_name("autumn") == "autumn"  # look-alikes pass


@pytest.mark.parametrize("name", ["request", "response", "audio", "event", "state", "stream", "hass", "Request"])
def test_a_profiles_topic_kinds_are_no_node_names(name: str) -> None:
    """The home server's ACL grants voice/+/request/+ as a profile's: a node "request" would have
    its state (voice/node/request/state) writable by that login."""
    with pytest.raises(ValueError, match="a profile's topics"):
        check_node_name(name)
    assert check_node_name(default_node_name(name)) == f"node-{name}"


@pytest.mark.parametrize("name", ["gpu", "node", "work", "status"])
def test_the_household_topics_are_no_profile_names(name: str, tmp_path: Path) -> None:
    from agent.layout import Layout

    layout = Layout(tmp_path)
    (layout.profiles_root / name).mkdir(parents=True)
    (layout.profiles_root / "office").mkdir()
    assert not Layout.is_profile_name(name) and not layout.exists(name)
    assert layout.names() == ["office"]


def test_a_document_that_claims_it_need_not_be_heard_for_over_an_hour_is_no_document() -> None:
    from pydantic import ValidationError

    from agent.nodes.state import MAX_REFRESH_S

    document = {"node": "desk", "status": "online", "refresh_s": MAX_REFRESH_S}
    assert NodeState.model_validate(document).refresh_s == MAX_REFRESH_S
    with pytest.raises(ValidationError):
        NodeState.model_validate({**document, "refresh_s": MAX_REFRESH_S + 1})
