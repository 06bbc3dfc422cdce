"""The node's own connection (agent/mqtt/node.py): its availability is the node document with the
``offline`` document as its will, what it subscribes to (and only with MQTT 5: the speak and train
work of the providers this node takes, shared and its own, and its stop topic), where each message
it hears goes (node states to the registry, replies to the waiting training or speak job, work to
the speak or train worker by its kind with the answer bound to the job's response topic and
correlation data, a stop to the train worker), and that remote training's last words are said
before the connection closes."""

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
STOP = "home/voice/node/desk/work/stop"
HOME_REPLY = "home/voice/node/home-server/reply"


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
    """The speak path's remote jobs (agent/speak/remote.py), or with ``mine`` the training's
    (agent/train/remote.py), which says whether a correlation was one of its jobs."""

    def __init__(self, mine: tuple[bytes, ...] = ()) -> None:
        self.links: list[Any] = []
        self.replies: list[tuple[bytes, bytes]] = []
        self.mine = set(mine)

    def use(self, link: Any) -> None:
        self.links.append(link)

    def replied(self, correlation: bytes, payload: bytes) -> bool:
        self.replies.append((correlation, payload))
        return correlation in self.mine


class Worker:
    """A speak or train worker; ``calls`` is shared with the transport's, so their order shows."""

    def __init__(self, providers: tuple[str, ...] = ("rvc",), calls: list[str] | None = None, name: str = "worker") -> None:
        self._providers = list(providers)
        self.jobs: list[tuple[str, bytes, Any, Any]] = []
        self.stops: list[bytes] = []
        self.calls = [] if calls is None else calls
        self.name = name

    def providers(self) -> list[str]:
        return self._providers

    def take(self, provider: str, payload: bytes, reply: Any, answers_home: Any) -> None:
        self.jobs.append((provider, payload, reply, answers_home))

    def stop_asked(self, payload: bytes) -> None:
        self.stops.append(payload)

    def stop(self) -> None:
        self.calls.append(f"{self.name}.stop")


class Train:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def stop_remote(self) -> None:
        self.calls.append("train.stop_remote")


def door(tmp_path: Path, worker: Worker | None = None, transport: NodeTransport | None = None,
         trainer: Worker | None = None, mine: tuple[bytes, ...] = ()) -> tuple[NodeDoor, Any]:
    calls = transport.calls if transport is not None else []
    core = SimpleNamespace(nodes=Nodes(), remote=Remote(), remote_train=Remote(mine), worker=worker,
                           train_worker=trainer, train=Train(calls))
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


def test_a_worker_with_mqtt5_reads_states_its_replies_the_shared_and_its_own_work_of_each_kind_and_its_stop(
        tmp_path: Path) -> None:
    transport = NodeTransport()
    made, core = door(tmp_path, Worker(("rvc", "sovits")), transport, trainer=Worker(("kokoro", "rvc")))
    made.start()
    assert transport.subscribed == [
        ("home/voice/node/+/state", 1), (REPLY, 1),
        ("$share/voice-workers/home/voice/work/speak/rvc", 1), ("home/voice/node/desk/work/speak/rvc", 1),
        ("$share/voice-workers/home/voice/work/speak/sovits", 1), ("home/voice/node/desk/work/speak/sovits", 1),
        ("$share/voice-workers/home/voice/work/train/kokoro", 1), ("home/voice/node/desk/work/train/kokoro", 1),
        ("$share/voice-workers/home/voice/work/train/rvc", 1), ("home/voice/node/desk/work/train/rvc", 1),
        (STOP, 1),
    ]
    assert transport.calls[-1] == "start" and transport.calls.count("start") == 1  # subscribed before it connects
    assert core.remote.links == [made] and core.remote_train.links == [made] and transport.handler == made._heard
    assert core.nodes.listeners == [made._publish]


def test_a_node_that_only_trains_for_others_reads_train_work_and_its_stop(tmp_path: Path) -> None:
    transport = NodeTransport()
    made, core = door(tmp_path, None, transport, trainer=Worker(("kokoro",)))
    made.start()
    assert transport.subscribed == [
        ("home/voice/node/+/state", 1), (REPLY, 1),
        ("$share/voice-workers/home/voice/work/train/kokoro", 1), ("home/voice/node/desk/work/train/kokoro", 1),
        (STOP, 1),
    ]


def test_the_stop_is_read_by_a_train_worker_even_without_a_trainer_now_and_by_no_other_node(tmp_path: Path) -> None:
    transport = NodeTransport()
    made, _ = door(tmp_path, Worker(("rvc",)), transport, trainer=Worker(()))
    made.start()
    speak = [("$share/voice-workers/home/voice/work/speak/rvc", 1), ("home/voice/node/desk/work/speak/rvc", 1)]
    assert transport.subscribed == [("home/voice/node/+/state", 1), (REPLY, 1), *speak, (STOP, 1)]
    transport = NodeTransport()
    made, _ = door(tmp_path, Worker(("rvc",)), transport)
    made.start()
    assert transport.subscribed == [("home/voice/node/+/state", 1), (REPLY, 1), *speak]


def test_a_node_that_takes_no_work_reads_only_states_and_its_replies(tmp_path: Path) -> None:
    transport = NodeTransport()
    made, core = door(tmp_path, None, transport)
    made.start()
    assert transport.subscribed == [("home/voice/node/+/state", 1), (REPLY, 1)]
    assert core.remote.links == [made] and core.remote_train.links == [made] and transport.calls[-1] == "start"


def test_over_mqtt_3_the_node_only_reads_states_and_sends_no_work(tmp_path: Path) -> None:
    transport = NodeTransport(mqtt5=False)
    made, core = door(tmp_path, Worker(), transport, trainer=Worker(("kokoro",)))
    made.start()
    assert transport.subscribed == [("home/voice/node/+/state", 1)]
    assert core.remote.links == [] and core.remote_train.links == []  # the speak and train paths keep their work here
    assert transport.calls == ["subscribe", "start"]


def test_stop_says_remote_trainings_last_words_then_closes_the_connection_then_stops_the_speak_worker(
        tmp_path: Path) -> None:
    transport = NodeTransport()
    made, _ = door(tmp_path, Worker(calls=transport.calls, name="speak"), transport,
                   trainer=Worker(("kokoro",), calls=transport.calls, name="train_worker"))
    made.stop()
    # a job taken for another node checkpoints and sends it; this home's job on a worker is asked to
    assert transport.calls == ["train_worker.stop", "train.stop_remote", "stop", "speak.stop"]
    alone = NodeTransport()
    made, _ = door(tmp_path, None, alone)
    made.stop()
    assert alone.calls == ["train.stop_remote", "stop"]  # a home without workers may have a job on one


@pytest.mark.parametrize(("connected", "mqtt5", "ready"), [(True, True, True), (False, True, False), (True, False, False),
                                                            (False, False, False)])
def test_work_may_be_sent_only_while_connected_with_mqtt5(tmp_path: Path, connected: bool, mqtt5: bool, ready: bool) -> None:
    made, _ = door(tmp_path, None, NodeTransport(connected=connected, mqtt5=mqtt5))
    assert made.ready() is ready


def test_work_goes_to_the_shared_or_the_named_nodes_topic_of_its_kind_with_this_nodes_reply_topic(tmp_path: Path) -> None:
    transport = NodeTransport()
    made, _ = door(tmp_path, None, transport)
    made.send("rvc", None, b"job-1", b"corr-1")
    made.send("rvc", "attic", b"job-2", b"corr-2")
    made.send_work("train", "kokoro", None, b"job-3", b"corr-3")
    made.send_work("train", "kokoro", "attic", b"job-4", b"corr-4")
    assert [(p.topic, p.payload, p.qos, p.retain, *props(p)) for p in transport.sent] == [
        ("home/voice/work/speak/rvc", b"job-1", 1, False, REPLY, b"corr-1"),
        ("home/voice/node/attic/work/speak/rvc", b"job-2", 1, False, REPLY, b"corr-2"),
        ("home/voice/work/train/kokoro", b"job-3", 1, False, REPLY, b"corr-3"),
        ("home/voice/node/attic/work/train/kokoro", b"job-4", 1, False, REPLY, b"corr-4"),
    ]


def test_a_stop_goes_to_the_workers_own_stop_topic_and_asks_for_no_reply(tmp_path: Path) -> None:
    transport = NodeTransport()
    made, _ = door(tmp_path, None, transport)
    made.send_stop("attic", b"stop-1")
    (sent,) = transport.sent
    assert (sent.topic, sent.payload, sent.qos, sent.retain, sent.properties) == (
        "home/voice/node/attic/work/stop", b"stop-1", 1, False, None)


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
    worker, trainer = Worker(), Worker()
    made, core = door(tmp_path, worker, NodeTransport(), trainer=trainer)
    made._heard("home/voice/node/attic/state", b"{}", Meta("home/voice/node/attic/reply", b"c"))
    made._heard("home/voice/node/desk/state", b"mine", Meta())
    assert core.nodes.heard_from == [("attic", b"{}"), ("desk", b"mine")]
    assert core.remote.replies == [] and core.remote_train.replies == [] and worker.jobs == [] and trainer.jobs == []


def test_a_reply_goes_to_its_training_job_else_to_its_speak_job_and_one_without_correlation_is_dropped(
        tmp_path: Path) -> None:
    worker, trainer = Worker(), Worker()
    made, core = door(tmp_path, worker, NodeTransport(), trainer=trainer, mine=(b"train-1",))
    made._heard(REPLY, b"progress", Meta(None, b"train-1"))
    made._heard(REPLY, b"audio", Meta(None, b"job-9"))
    made._heard(REPLY, b"lost", Meta(REPLY, None))
    made._heard("home/voice/node/attic/reply", b"not ours", Meta(None, b"job-9"))
    assert core.remote_train.replies == [(b"train-1", b"progress"), (b"job-9", b"audio")]  # training asked first
    assert core.remote.replies == [(b"job-9", b"audio")]  # only what no training job claimed
    assert worker.jobs == [] and trainer.jobs == [] and trainer.stops == [] and core.nodes.heard_from == []


@pytest.mark.parametrize(("topic", "kind", "provider"), [
    ("home/voice/work/speak/rvc", "speak", "rvc"), ("home/voice/node/desk/work/speak/rvc", "speak", "rvc"),
    ("home/voice/work/train/kokoro", "train", "kokoro"), ("home/voice/node/desk/work/train/kokoro", "train", "kokoro"),
])
def test_a_job_goes_to_the_worker_of_its_kind_and_its_answers_to_the_jobs_response_topic(
        tmp_path: Path, topic: str, kind: str, provider: str) -> None:
    transport, worker, trainer = NodeTransport(), Worker(), Worker(("kokoro",))
    made, core = door(tmp_path, worker, transport, trainer=trainer)
    made._heard(topic, b"job", Meta(HOME_REPLY, b"corr-3"))
    taker, other = (worker, trainer) if kind == "speak" else (trainer, worker)
    ((got, payload, reply, answers_home),) = taker.jobs
    assert (got, payload) == (provider, b"job") and other.jobs == []
    reply(b"accepted")
    (sent,) = transport.sent
    assert (sent.topic, sent.payload, sent.qos, sent.retain) == (HOME_REPLY, b"accepted", 1, False)
    assert props(sent) == (None, b"corr-3")  # an answer names no response topic of its own
    assert answers_home("home-server") and not answers_home("attic") and not answers_home("desk")
    assert core.remote.replies == [] and core.remote_train.replies == [] and core.nodes.heard_from == []


@pytest.mark.parametrize("meta", [Meta(None, b"c"), Meta(HOME_REPLY, None),
                                  Meta("home/voice/kitchen/response/speak", b"c"), Meta("home/voice/node/+/reply", b"c")],
                         ids=["no-response-topic", "no-correlation", "not-a-reply-topic", "a-wildcard"])
@pytest.mark.parametrize(("topic", "kind"), [("home/voice/work/speak/rvc", "speak"), ("home/voice/work/train/rvc", "train")])
def test_a_job_without_a_nodes_response_topic_and_correlation_is_ignored(
        tmp_path: Path, meta: Meta, topic: str, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    worker, trainer = Worker(), Worker()
    made, _ = door(tmp_path, worker, NodeTransport(), trainer=trainer)
    made._heard(topic, b"job", meta)
    assert worker.jobs == [] and trainer.jobs == []
    assert caplog.messages == [f"ignored a {kind} job on {topic} without a node's response topic and correlation data"]


def test_a_stop_goes_to_the_train_worker_and_nowhere_else(tmp_path: Path) -> None:
    worker, trainer = Worker(), Worker()
    made, core = door(tmp_path, worker, NodeTransport(), trainer=trainer)
    made._heard(STOP, b"stop-1", Meta())
    made._heard("home/voice/node/attic/work/stop", b"stop-2", Meta())  # another worker's
    assert trainer.stops == [b"stop-1"] and trainer.jobs == [] and worker.jobs == []
    assert core.remote.replies == [] and core.remote_train.replies == [] and core.nodes.heard_from == []
    made, core = door(tmp_path, worker, NodeTransport())
    made._heard(STOP, b"stop-3", Meta(HOME_REPLY, b"c"))  # no train worker here: nothing takes it
    assert worker.jobs == [] and core.remote.replies == [] and core.remote_train.replies == []


def test_a_node_ignores_work_of_a_kind_it_does_not_take_and_other_topics(tmp_path: Path) -> None:
    transport = NodeTransport()
    made, core = door(tmp_path, None, transport)
    made._heard("home/voice/work/speak/rvc", b"job", Meta(HOME_REPLY, b"c"))
    made._heard("home/voice/work/train/rvc", b"job", Meta(HOME_REPLY, b"c"))
    worker, trainer = Worker(), Worker()
    made, core = door(tmp_path, worker, transport)
    made._heard("home/voice/work/train/rvc", b"job", Meta(HOME_REPLY, b"c"))  # a speak worker trains nothing
    made, core = door(tmp_path, None, transport, trainer=trainer)
    made._heard("home/voice/work/speak/rvc", b"job", Meta(HOME_REPLY, b"c"))  # a train worker speaks nothing
    made._heard("home/voice/kitchen/request/speak", b"{}", Meta(HOME_REPLY, b"c"))
    made._heard("home/voice/node/desk/work/train", b"job", Meta(HOME_REPLY, b"c"))  # no provider
    assert worker.jobs == [] and trainer.jobs == [] and trainer.stops == []
    assert core.remote.replies == [] and core.remote_train.replies == [] and core.nodes.heard_from == [] and transport.sent == []
