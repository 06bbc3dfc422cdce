"""The CLI's MQTT client says which broker and topic it asked when no answer comes."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.mqtt.client import RequestClient, broker_address
from agent.settings import AgentSettings
from tests.mosquitto import Mosquitto, free_port


def test_broker_address() -> None:
    assert broker_address(AgentSettings(mqtt_host="broker.lan", mqtt_port=8883)) == "broker.lan:8883"
    assert broker_address(AgentSettings(mqtt_host="::1", mqtt_port=1883)) == "[::1]:1883"


def test_no_answer_names_broker_and_topic(broker: Mosquitto, tmp_path: Path) -> None:
    settings = AgentSettings(home=tmp_path, mqtt_port=broker.port, base_topic="nobody-listens")
    with pytest.raises(TimeoutError) as caught:
        RequestClient(settings).request("default", "train.status", {}, timeout=0.3)
    assert f"at 127.0.0.1:{broker.port} on nobody-listens/default/request/train.status" in str(caught.value)


def test_no_broker_names_host_and_port(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}"):
        RequestClient(AgentSettings(home=tmp_path, mqtt_port=port)).request("default", "speak", {"text": "x"}, timeout=1)
