"""The node's own MQTT connection: this agent's state document, retained on
``<base>/node/<node>/state``, with ``offline`` as the connection's last will; and every node's
document heard on ``<base>/node/+/state`` handed to the registry (this node's own included).

Work between nodes rides on it too (MQTT 5): the replies to this node's jobs on
``<base>/node/<node>/reply``; and, on a worker, speak and training jobs from the shared work
topics ``$share/voice-workers/<base>/work/<speak|train>/<provider>`` (one worker gets each) and
from its own ``<base>/node/<node>/work/<speak|train>/<provider>`` (a profile whose runOn names
it), and a home's stop of its training job, or its release of the files it fetched from this
worker, on ``<base>/node/<node>/work/stop``.

A connection has one last will, and the agent's main one keeps ``<base>/status`` (Home
Assistant's availability, the CLI's). So the node speaks on a connection of its own, client id
``<client id>-node``: a ``kill -9`` ends both, and the broker tells both wills.
"""

from __future__ import annotations

import logging

from agent.core import Core
from agent.mqtt.topics import Topics
from agent.mqtt.transport import Availability, Meta, MqttTransport, request_properties
from agent.nodes.state import NodeState
from agent.settings import AgentSettings

log = logging.getLogger(__name__)


class NodeDoor:
    def __init__(self, core: Core, settings: AgentSettings) -> None:
        self._nodes = core.nodes
        self._remote = core.remote
        self._remote_train = core.remote_train
        self._worker = core.worker
        self._train_worker = core.train_worker
        self._train = core.train
        self.node = settings.node
        self.topics = Topics(settings.base_topic)
        self._topic = self.topics.node_state(settings.node)
        self._reply_topic = self.topics.work_reply(settings.node)
        self.transport = MqttTransport(
            settings,
            Availability(self._topic, online=lambda: self._nodes.document().to_json(),
                         offline=NodeState.offline(settings.node).to_json()),
            client_id=f"{settings.mqtt_client_id}-node",
        )

    def start(self) -> None:
        self._nodes.watch(self._publish)
        self.transport.on_message_meta(self._heard)
        self.transport.subscribe(self.topics.node_states, qos=1)
        if self.transport.mqtt5:  # the embedded broker (MQTT 3.1.1) has neither shared subscriptions nor properties
            self.transport.subscribe(self._reply_topic, qos=1)
            takers = [("speak", self._worker), ("train", self._train_worker)]
            for kind, worker in takers:
                for provider in worker.providers() if worker is not None else []:
                    self.transport.subscribe(self.topics.shared_work(kind, provider), qos=1)
                    self.transport.subscribe(self.topics.work(kind, provider, self.node), qos=1)
            if self._train_worker is not None:
                self.transport.subscribe(self.topics.work_stop(self.node), qos=1)
            self._remote.use(self)
            self._remote_train.use(self)
        self.transport.start()

    def stop(self) -> None:
        # remote training's last words ride on this connection: said before it closes (a job taken for
        # another node checkpoints and sends it; this home's job on a worker is asked to, and keeps it)
        if self._train_worker is not None:
            self._train_worker.stop()
        self._train.stop_remote()
        self.transport.stop()
        if self._worker is not None:
            self._worker.stop()

    # -- WorkLink (agent/speak/remote.py) ---------------------------------------------------
    def ready(self) -> bool:
        return self.transport.connected and self.transport.mqtt5

    def send(self, provider: str, node: str | None, payload: bytes, correlation: bytes) -> None:
        self.send_work("speak", provider, node, payload, correlation)

    # -- TrainLink (agent/train/remote.py) -------------------------------------------------------
    def send_work(self, kind: str, provider: str, node: str | None, payload: bytes, correlation: bytes) -> None:
        self.transport.publish(self.topics.work(kind, provider, node), payload, 1,
                               properties=request_properties(self._reply_topic, correlation))

    def send_stop(self, node: str, payload: bytes) -> None:
        self.transport.publish(self.topics.work_stop(node), payload, 1)

    # -- paho's thread: small documents checked against their models, nothing that blocks -------
    def _publish(self, state: NodeState) -> None:
        if self.transport.connected:  # else the next connect says it (the availability's ``online``)
            self.transport.publish(self._topic, state.to_json(), 1, True)

    def _heard(self, topic: str, payload: bytes, meta: Meta) -> None:
        node = self.topics.parse_node_state(topic)
        if node is not None:
            self._nodes.heard(node, payload)
            return
        if topic == self._reply_topic:
            correlation = meta.correlation
            if correlation is not None and not self._remote_train.replied(correlation, payload) \
                    and not self._remote.replied(correlation, payload):
                log.debug("a reply for job %s, which no longer waits", correlation.decode(errors="replace")[:80])
            return
        if topic == self.topics.work_stop(self.node):
            if self._train_worker is not None:
                self._train_worker.stop_asked(payload)
            return
        work = self.topics.parse_work(topic)
        taker = self._worker if work is None or work[0] == "speak" else self._train_worker
        if work is not None and taker is not None:
            if meta.response_topic is None or meta.correlation is None or not self.topics.is_work_reply(meta.response_topic):
                log.warning("ignored a %s job on %s without a node's response topic and correlation data", work[0], topic)
                return
            answer_to, correlation = meta.response_topic, meta.correlation
            taker.take(work[1], payload, lambda reply: self.transport.publish(
                answer_to, reply, 1, properties=request_properties(None, correlation)),
                lambda home: answer_to == self.topics.work_reply(home))
