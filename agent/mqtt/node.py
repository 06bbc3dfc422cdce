"""The node's own MQTT connection: this agent's state document, retained on
``<base>/node/<node>/state``, with ``offline`` as the connection's last will; and every node's
document heard on ``<base>/node/+/state`` handed to the registry (this node's own included).

A connection has one last will, and the agent's main one keeps ``<base>/status`` (Home
Assistant's availability, the CLI's). So the node speaks on a connection of its own, client id
``<client id>-node``: a ``kill -9`` ends both, and the broker tells both wills.
"""

from __future__ import annotations

import logging

from agent.core import Core
from agent.mqtt.topics import Topics
from agent.mqtt.transport import Availability, MqttTransport
from agent.nodes.state import NodeState
from agent.settings import AgentSettings

log = logging.getLogger(__name__)


class NodeDoor:
    def __init__(self, core: Core, settings: AgentSettings) -> None:
        self._nodes = core.nodes
        self.topics = Topics(settings.base_topic)
        self._topic = self.topics.node_state(settings.node)
        self.transport = MqttTransport(
            settings,
            Availability(self._topic, online=lambda: self._nodes.document().to_json(),
                         offline=NodeState.offline(settings.node).to_json()),
            client_id=f"{settings.mqtt_client_id}-node",
        )

    def start(self) -> None:
        self._nodes.watch(self._publish)
        self.transport.on_message(self._heard)
        self.transport.subscribe(self.topics.node_states, qos=1)
        self.transport.start()

    def stop(self) -> None:
        self.transport.stop()

    def _publish(self, state: NodeState) -> None:
        if self.transport.connected:  # else the next connect says it (the availability's ``online``)
            self.transport.publish(self._topic, state.to_json(), 1, True)

    def _heard(self, topic: str, payload: bytes) -> None:
        """paho's thread: a small document checked against the model, nothing that blocks."""
        node = self.topics.parse_node_state(topic)
        if node is not None:
            self._nodes.heard(node, payload)
