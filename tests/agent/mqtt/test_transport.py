"""The transport's session watch: a message to itself must come back, and only its own counts."""

from __future__ import annotations

import re
from pathlib import Path

import paho.mqtt.client as mqtt

from agent.mqtt.transport import MqttTransport
from agent.settings import AgentSettings


def message(topic: str, payload: bytes) -> mqtt.MQTTMessage:
    found = mqtt.MQTTMessage(topic=topic.encode())
    found.payload = payload
    return found


def transport(tmp_path: Path) -> tuple[MqttTransport, list[str]]:
    handed: list[str] = []
    made = MqttTransport(AgentSettings(home=tmp_path), "voice/status")
    made.on_message(lambda topic, payload: handed.append(topic))
    return made, handed


def test_the_echo_topic_is_its_own_and_subscribed(tmp_path: Path) -> None:
    one, _ = transport(tmp_path)
    two, _ = transport(tmp_path)
    assert re.fullmatch(r"voice/status/echo/[0-9a-f]{12}", one._echo_topic) and one._echo_topic != two._echo_topic
    assert one._subscriptions[one._echo_topic] == 1  # restored with the others on every connect


def test_only_the_pending_echo_clears_the_watch(tmp_path: Path) -> None:
    made, handed = transport(tmp_path)
    assert not made.session_lost()
    made._echo_pending = "abc"
    assert made.session_lost()
    made._handle_message(None, None, message(made._echo_topic, b"older"))  # type: ignore[arg-type]
    assert made.session_lost()
    made._handle_message(None, None, message("voice/status/echo/someone-else", b"abc"))  # type: ignore[arg-type]
    assert made.session_lost()
    made._handle_message(None, None, message(made._echo_topic, b"abc"))  # type: ignore[arg-type]
    assert not made.session_lost()
    assert handed == ["voice/status/echo/someone-else"]  # our echo is not a request for the doors


def test_a_new_session_forgets_what_the_old_one_owed(tmp_path: Path) -> None:
    made, _ = transport(tmp_path)
    made._echo_pending = "lost with the old session"
    made._ready(made._client)  # not connected: the publish is queued, the state is what counts
    assert not made.session_lost() and made.connected


def test_a_broker_without_mqtt5_is_spoken_to_in_3_1_1(tmp_path: Path) -> None:
    """amqtt (the embedded broker) does not answer an MQTT 5 connect that carries a will: after two
    keepalive watches the transport connects again with 3.1.1."""
    from agent.broker import EmbeddedBroker
    from tests.mosquitto import free_port

    broker = EmbeddedBroker("127.0.0.1", free_port())
    broker.start()
    made = MqttTransport(AgentSettings(home=tmp_path, mqtt_port=broker.port, mqtt_keepalive=5), "voice/status")
    try:
        made.start()
        assert made.wait_connected(20)
        assert not made.mqtt5
    finally:
        made.stop()
        broker.stop()


def test_mosquitto_is_spoken_to_in_mqtt5(tmp_path: Path) -> None:
    from tests.mosquitto import Mosquitto

    broker = Mosquitto(tmp_path / "mq").start()
    made = MqttTransport(AgentSettings(home=tmp_path, mqtt_port=broker.port), "voice/status")
    try:
        made.start()
        assert made.wait_connected(20)
        assert made.mqtt5
    finally:
        made.stop()
        broker.stop()
