"""The transport's session watch: a message to itself must come back, and only its own counts."""

from __future__ import annotations

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
    assert one._echo_topic.startswith("voice/status/echo/") and one._echo_topic != two._echo_topic
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
