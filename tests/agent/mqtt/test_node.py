"""The node's own connection (agent/mqtt/node.py): its availability is the node document with the
``offline`` document as its will, what it subscribes to (and only with MQTT 5), and where each
message it hears goes: node states to the registry, replies to the waiting job, work to the worker
with the answer bound to the job's response topic and correlation data."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent.mqtt.node import NodeDoor
from agent.mqtt.transport import Meta
from agent.nodes.state import NodeState
from agent.settings import AgentSettings
from tests.agent.mqtt.fakes import NodeTransport

BASE = "home/voice"
STATE = "home/voice/node/desk/state"
REPLY = "home/voice/node/desk/reply"


class Nodes:
    def __init__(self) -> None:
        self.doc = NodeState(node="desk", status="online", version="1")
        self.listeners: list[Any] = []
        self.heard_from: list[tuple[str, bytes]] = []

    def document(self) -> NodeState:
        return self.doc

    def watch(self, listener: Any) -> None:
        self.listeners.append(listener)

    def heard(self, node: str, payload: bytes) -> None:
        self.heard_from.append((node, payload))


class Remote:
    def __init__(self) -> None:
        self.links: list[Any] = []
        self.replies: list[tuple[bytes, bytes]] = []

    def use(self, link: Any) -> None:
        self.links.append(link)

    def replied(self, correlation: bytes, payload: bytes) -> None:
        self.replies.append((correlation, payload))


class Worker:
    def __init__(self, providers: tuple[str, ...] = ("rvc",)) -> None:
        self._providers = list(providers)
        self.jobs: list[tuple[str, bytes, Any, Any]] = []
        self.stopped = 0

    def providers(self) -> list[str]:
        return self._providers

    def take(self, provider: str, payload: bytes, reply: Any, answers_home: Any) -> None:
        self.jobs.append((provider, payload, reply, answers_home))

    def stop(self) -> None:
        self.stopped += 1


def door(tmp_path: Path, worker: Worker | None = None, transport: NodeTransport | None = None) -> tuple[NodeDoor, Any]:
    core = SimpleNamespace(nodes=Nodes(), remote=Remote(), worker=worker)
    settings = AgentSettings(home=tmp_path, node="desk", base_topic=BASE, mqtt_client_id="agent-7")
    made = NodeDoor(core, settings)  # type: ignore[arg-type]
    if transport is not None:
        made.transport = transport  # type: ignore[assignment]
    return made, core


def props(published: Any) -> tuple[Any, Any]:
    p = published.properties
    return getattr(p, "ResponseTopic", None), getattr(p, "CorrelationData", None)


def test_the_node_speaks_on_a_connection_of_its_own_whose_will_is_its_offline_document(tmp_path: Path) -> None:
    made, core = door(tmp_path)
    transport = made.transport
    assert transport._client_id == "agent-7-node"  # the main connection keeps ``agent-7`` and its own will
    assert transport._availability.topic == STATE
    assert transport._availability.offline == NodeState.offline("desk").to_json()
    assert transport._availability.online() == core.nodes.doc.to_json()
    core.nodes.doc = NodeState(node="desk", status="online", version="2")  # read at each connect, not once
    assert transport._availability.online() == core.nodes.doc.to_json()
    client = transport._client
    assert (client._will_topic, client._will_payload, client._will_qos, client._will_retain) == (
        STATE.encode(), NodeState.offline("desk").to_json(), 1, True)


def test_a_worker_with_mqtt5_reads_states_its_replies_and_the_shared_and_its_own_work(tmp_path: Path) -> None:
    transport = NodeTransport()
    made, core = door(tmp_path, Worker(("rvc", "sovits")), transport)
    made.start()
    assert transport.subscribed == [
        ("home/voice/node/+/state", 1), (REPLY, 1),
        ("$share/voice-workers/home/voice/work/speak/rvc", 1), ("home/voice/node/desk/work/speak/rvc", 1),
        ("$share/voice-workers/home/voice/work/speak/sovits", 1), ("home/voice/node/desk/work/speak/sovits", 1),
    ]
    assert transport.calls[-1] == "start" and transport.calls.count("start") == 1  # subscribed before it connects
    assert core.remote.links == [made] and transport.handler == made._heard
    assert core.nodes.listeners == [made._publish]


def test_a_node_that_takes_no_work_reads_only_states_and_its_replies(tmp_path: Path) -> None:
    transport = NodeTransport()
    made, core = door(tmp_path, None, transport)
    made.start()
    assert transport.subscribed == [("home/voice/node/+/state", 1), (REPLY, 1)]
    assert core.remote.links == [made] and transport.calls[-1] == "start"


def test_over_mqtt_3_the_node_only_reads_states_and_sends_no_work(tmp_path: Path) -> None:
    transport = NodeTransport(mqtt5=False)
    made, core = door(tmp_path, Worker(), transport)
    made.start()
    assert transport.subscribed == [("home/voice/node/+/state", 1)]
    assert core.remote.links == []  # the speak path keeps its work here
    assert transport.calls == ["subscribe", "start"]


def test_stop_ends_the_connection_and_the_worker(tmp_path: Path) -> None:
    transport, worker = NodeTransport(), Worker()
    made, _ = door(tmp_path, worker, transport)
    made.stop()
    assert transport.calls == ["stop"] and worker.stopped == 1
    alone = NodeTransport()
    made, _ = door(tmp_path, None, alone)
    made.stop()
    assert alone.calls == ["stop"]


@pytest.mark.parametrize(("connected", "mqtt5", "ready"), [(True, True, True), (False, True, False), (True, False, False),
                                                            (False, False, False)])
def test_work_may_be_sent_only_while_connected_with_mqtt5(tmp_path: Path, connected: bool, mqtt5: bool, ready: bool) -> None:
    made, _ = door(tmp_path, None, NodeTransport(connected=connected, mqtt5=mqtt5))
    assert made.ready() is ready


def test_work_goes_to_the_shared_or_the_named_nodes_topic_with_this_nodes_reply_topic(tmp_path: Path) -> None:
    transport = NodeTransport()
    made, _ = door(tmp_path, None, transport)
    made.send("rvc", None, b"job-1", b"corr-1")
    made.send("rvc", "attic", b"job-2", b"corr-2")
    first, second = transport.sent
    assert (first.topic, first.payload, first.qos, first.retain) == ("home/voice/work/speak/rvc", b"job-1", 1, False)
    assert props(first) == (REPLY, b"corr-1")
    assert (second.topic, second.payload, second.qos, second.retain) == ("home/voice/node/attic/work/speak/rvc", b"job-2", 1, False)
    assert props(second) == (REPLY, b"corr-2")


def test_a_changed_document_is_published_retained_while_connected(tmp_path: Path) -> None:
    transport = NodeTransport()
    made, core = door(tmp_path, None, transport)
    made._publish(core.nodes.doc)
    (sent,) = transport.sent
    assert (sent.topic, sent.payload, sent.qos, sent.retain) == (STATE, core.nodes.doc.to_json(), 1, True)
    transport.connected = False
    made._publish(core.nodes.doc)  # the next connect's ``online`` says it
    assert len(transport.sent) == 1


def test_a_node_state_goes_to_the_registry_and_nowhere_else(tmp_path: Path) -> None:
    worker = Worker()
    made, core = door(tmp_path, worker, NodeTransport())
    made._heard("home/voice/node/attic/state", b"{}", Meta("home/voice/node/attic/reply", b"c"))
    made._heard("home/voice/node/desk/state", b"mine", Meta())
    assert core.nodes.heard_from == [("attic", b"{}"), ("desk", b"mine")]
    assert core.remote.replies == [] and worker.jobs == []


def test_a_reply_goes_to_its_job_by_correlation_and_one_without_is_dropped(tmp_path: Path) -> None:
    worker = Worker()
    made, core = door(tmp_path, worker, NodeTransport())
    made._heard(REPLY, b"audio", Meta(None, b"job-9"))
    made._heard(REPLY, b"lost", Meta(REPLY, None))
    made._heard("home/voice/node/attic/reply", b"not ours", Meta(None, b"job-9"))
    assert core.remote.replies == [(b"job-9", b"audio")]
    assert worker.jobs == [] and core.nodes.heard_from == []


@pytest.mark.parametrize("topic", ["home/voice/work/speak/rvc", "home/voice/node/desk/work/speak/rvc"])
def test_a_job_goes_to_the_worker_and_its_answers_to_the_jobs_response_topic(tmp_path: Path, topic: str) -> None:
    transport, worker = NodeTransport(), Worker()
    made, core = door(tmp_path, worker, transport)
    made._heard(topic, b"job", Meta("home/voice/node/home-server/reply", b"corr-3"))
    ((provider, payload, reply, answers_home),) = worker.jobs
    assert (provider, payload) == ("rvc", b"job")
    reply(b"accepted")
    (sent,) = transport.sent
    assert (sent.topic, sent.payload, sent.qos, sent.retain) == ("home/voice/node/home-server/reply", b"accepted", 1, False)
    assert props(sent) == (None, b"corr-3")  # an answer names no response topic of its own
    assert answers_home("home-server") and not answers_home("attic") and not answers_home("desk")
    assert core.remote.replies == [] and core.nodes.heard_from == []


@pytest.mark.parametrize("meta", [Meta(None, b"c"), Meta("home/voice/node/home-server/reply", None),
                                  Meta("home/voice/kitchen/response/speak", b"c"), Meta("home/voice/node/+/reply", b"c")],
                         ids=["no-response-topic", "no-correlation", "not-a-reply-topic", "a-wildcard"])
def test_a_job_without_a_nodes_response_topic_and_correlation_is_ignored(
        tmp_path: Path, meta: Meta, caplog: pytest.LogCaptureFixture) -> None:
    worker = Worker()
    made, _ = door(tmp_path, worker, NodeTransport())
    made._heard("home/voice/work/speak/rvc", b"job", meta)
    assert worker.jobs == []
    assert caplog.messages == [
        "ignored a speak job on home/voice/work/speak/rvc without a node's response topic and correlation data"]


def test_a_node_that_takes_no_work_ignores_a_job_and_other_topics(tmp_path: Path) -> None:
    transport = NodeTransport()
    made, core = door(tmp_path, None, transport)
    made._heard("home/voice/work/speak/rvc", b"job", Meta("home/voice/node/home-server/reply", b"c"))
    worker = Worker()
    made, core = door(tmp_path, worker, transport)
    made._heard("home/voice/kitchen/request/speak", b"{}", Meta("home/voice/node/home-server/reply", b"c"))
    assert worker.jobs == [] and core.remote.replies == [] and core.nodes.heard_from == [] and transport.sent == []
