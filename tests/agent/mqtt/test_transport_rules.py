"""The transport's rules, each on its own, with paho's client replaced where the network would
answer (agent/mqtt/transport.py): the will and the ``online`` on each connect, ready only after
the SUBACK, the MQTT 5 request/response properties, the fall back to 3.1.1 (a CONNACK that refuses
the version, or a CONNECT nobody answers), the session watch, a clean stop, and handlers that
cannot break the network thread."""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.mqtt import transport as module
from agent.mqtt.connect import MQTT5, MQTT311
from agent.mqtt.transport import Availability, Meta, MqttTransport, meta_of, request_properties
from agent.settings import AgentSettings

WAIT = 10


class Info:
    def __init__(self, rc: int, fails: type[Exception] | None = None) -> None:
        self.rc = rc
        self.fails = fails
        self.waited: list[float] = []

    def wait_for_publish(self, timeout: float) -> None:
        self.waited.append(timeout)
        if self.fails is not None:
            raise self.fails("not queued")


class Client:
    """paho's client as the transport calls it: each call kept in order."""

    def __init__(self, connected: bool = False, sock: Any = None) -> None:
        self.connected = connected
        self.sock = sock
        self.calls: list[tuple[Any, ...]] = []
        self.rc = mqtt.MQTT_ERR_SUCCESS
        self.fails: type[Exception] | None = None
        self.infos: list[Info] = []

    def is_connected(self) -> bool:
        return self.connected

    def socket(self) -> Any:
        return self.sock

    def subscribe(self, topic: Any, qos: int = 0) -> tuple[int, int]:
        self.calls.append(("subscribe", topic, qos))
        return 0, 41

    def publish(self, topic: str, payload: Any, qos: int = 0, retain: bool = False, properties: Any = None) -> Info:
        self.calls.append(("publish", topic, payload, qos, retain, properties))
        self.infos.append(Info(self.rc, self.fails))
        return self.infos[-1]

    def connect_async(self, host: str, port: int, keepalive: int = 60) -> None:
        self.calls.append(("connect_async", host, port, keepalive))

    def loop_start(self) -> None:
        self.calls.append(("loop_start",))

    def loop_stop(self) -> None:
        self.calls.append(("loop_stop",))

    def disconnect(self) -> None:
        self.calls.append(("disconnect",))

    def published(self) -> list[tuple[Any, ...]]:
        return [call[1:] for call in self.calls if call[0] == "publish"]


def settings(tmp_path: Path, **fields: Any) -> AgentSettings:
    return AgentSettings(home=tmp_path, mqtt_host="broker.lan", mqtt_port=1999, mqtt_client_id="agent-7", **fields)


def transport(tmp_path: Path, client: Client | None = None, **fields: Any) -> tuple[MqttTransport, Client]:
    made = MqttTransport(settings(tmp_path, **fields), Availability("voice/status", lambda: b"{doc}", b"{gone}"))
    fake = client or Client()
    made._client = fake  # type: ignore[assignment]
    return made, fake


def reason(code: int) -> ReasonCode:
    return ReasonCode(PacketTypes.CONNACK, identifier=code)


def message(topic: str, payload: bytes, props: Properties | None = None) -> mqtt.MQTTMessage:
    found = mqtt.MQTTMessage(topic=topic.encode())
    found.payload = payload
    if props is not None:
        found.properties = props
    return found


# -- properties ----------------------------------------------------------------------------------
def test_a_request_names_where_to_answer_and_what_comes_back() -> None:
    props = request_properties("voice/node/a/reply", b"job-1")
    assert props.packetType == PacketTypes.PUBLISH
    assert (getattr(props, "ResponseTopic"), getattr(props, "CorrelationData")) == ("voice/node/a/reply", b"job-1")
    answer = request_properties(None, b"job-1")
    assert getattr(answer, "CorrelationData") == b"job-1" and not hasattr(answer, "ResponseTopic")
    assert not hasattr(request_properties("t", None), "CorrelationData")


def test_a_messages_meta_is_its_response_topic_and_correlation_else_none() -> None:
    assert meta_of(message("t", b"x", request_properties("voice/node/a/reply", b"job-1"))) == Meta("voice/node/a/reply", b"job-1")
    correlated = request_properties(None, b"c")
    assert meta_of(message("t", b"x", correlated)) == Meta(None, b"c")
    assert meta_of(message("t", b"x", Properties(PacketTypes.PUBLISH))) == Meta(None, None)
    assert meta_of(message("t", b"x")) == Meta()  # an MQTT 3 message
    found = meta_of(message("t", b"x", request_properties(None, b"c")))
    assert type(found.correlation) is bytes


# -- the client it makes ---------------------------------------------------------------------------
def test_availability_is_online_and_offline_by_default(tmp_path: Path) -> None:
    plain = Availability("voice/status")
    assert (plain.online(), plain.offline) == (b"online", b"offline")
    made = MqttTransport(settings(tmp_path), "voice/status")
    assert made._availability == Availability("voice/status", made._availability.online)
    assert made._client._will_payload == b"offline"


def test_the_client_speaks_mqtt5_with_the_availability_as_its_retained_will(tmp_path: Path) -> None:
    made = MqttTransport(settings(tmp_path), Availability("voice/node/desk/state", offline=b"{gone}"))
    client = made._client
    assert made.protocol == MQTT5 and made.mqtt5 and client._protocol == MQTT5
    assert client._client_id == b"agent-7"
    assert (client._will_topic, client._will_payload, client._will_qos, client._will_retain) == (
        b"voice/node/desk/state", b"{gone}", 1, True)
    assert (client._reconnect_min_delay, client._reconnect_max_delay) == (1, 30)
    assert client.on_connect == made._handle_connect and client.on_connect_fail == made._handle_connect_fail
    assert client.on_subscribe == made._handle_subscribe and client.on_disconnect == made._handle_disconnect
    assert client.on_message == made._handle_message
    assert MqttTransport(settings(tmp_path), "voice/status", client_id="agent-7-node")._client._client_id == b"agent-7-node"


def test_use_mqtt311_makes_a_new_client_with_the_same_will(tmp_path: Path) -> None:
    made = MqttTransport(settings(tmp_path), Availability("voice/status", offline=b"{gone}"))
    first = made._client
    made.use_mqtt311()
    assert made.protocol == MQTT311 and not made.mqtt5
    assert made._client is not first and made._client._protocol == MQTT311
    assert (made._client._will_topic, made._client._will_payload, made._client._will_retain) == (b"voice/status", b"{gone}", True)
    assert made._client.on_connect == made._handle_connect


# -- subscribe, start, publish, stop ---------------------------------------------------------------
def test_a_subscription_is_kept_for_each_connect_and_sent_now_when_connected(tmp_path: Path) -> None:
    made, client = transport(tmp_path)
    made.subscribe("voice/+/request/+")
    made.subscribe("voice/+/stream/+/+", qos=0)
    assert client.calls == []  # the connect's SUBSCRIBE carries them
    assert made._subscriptions["voice/+/request/+"] == 1 and made._subscriptions["voice/+/stream/+/+"] == 0
    client.connected = True
    made.subscribe("hermes/tts/say", 1)
    assert client.calls == [("subscribe", "hermes/tts/say", 1)] and made._subscriptions["hermes/tts/say"] == 1


def test_start_connects_to_the_settings_broker_and_starts_the_watch(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    made, client = transport(tmp_path, mqtt_keepalive=45)
    made.start()
    try:
        assert client.calls == [("connect_async", "broker.lan", 1999, 45), ("loop_start",)]
        assert made._watch.is_alive() and made._watch.daemon and made._watch.name == "mqtt-session"
        assert caplog.messages == ["connecting to MQTT broker broker.lan:1999 as agent-7"]
    finally:
        made._watch_stop.set()
        made._watch.join(WAIT)


def test_publish_passes_everything_on_and_says_when_it_failed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    made, client = transport(tmp_path)
    props = request_properties("r", b"c")
    made.publish("voice/a", b"x", 0, True, properties=props)
    made.publish("voice/b", "y")
    assert client.published() == [("voice/a", b"x", 0, True, props), ("voice/b", "y", 1, False, None)]
    client.rc = mqtt.MQTT_ERR_NO_CONN  # queued for the reconnect: nothing to say
    made.publish("voice/c", b"z")
    assert "failed" not in caplog.text
    client.rc = mqtt.MQTT_ERR_QUEUE_SIZE
    made.publish("voice/d", b"z")
    assert caplog.messages == [f"publish to voice/d failed: {mqtt.error_string(mqtt.MQTT_ERR_QUEUE_SIZE)}"]


def test_a_clean_stop_says_offline_retained_before_it_disconnects(tmp_path: Path) -> None:
    made, client = transport(tmp_path, Client(connected=True))
    made._connected.set()
    made.stop()
    assert client.calls == [("publish", "voice/status", b"{gone}", 1, True, None), ("disconnect",), ("loop_stop",)]
    assert client.infos[0].waited == [2]
    assert made._stopping and made._watch_stop.is_set()


@pytest.mark.parametrize("fails", [RuntimeError, ValueError])
def test_a_stop_whose_offline_cannot_be_sent_still_disconnects(tmp_path: Path, fails: type[Exception]) -> None:
    made, client = transport(tmp_path)
    client.fails = fails
    made._connected.set()
    made.stop()
    assert client.calls[-2:] == [("disconnect",), ("loop_stop",)]


def test_a_stop_while_not_connected_publishes_nothing(tmp_path: Path) -> None:
    made, client = transport(tmp_path)
    made.stop()
    assert client.calls == [("disconnect",), ("loop_stop",)]


# -- connect, SUBACK, ready ------------------------------------------------------------------------
def test_connected_means_subscribed_then_online_is_said(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="agent.mqtt.transport")
    made, client = transport(tmp_path)
    assert not made.wait_connected(0.01)
    made.subscribe("voice/+/request/+")
    sock = socket.socket()
    try:
        client.sock = sock
        made._handle_connect(client, None, None, reason(0), None)  # type: ignore[arg-type]
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        sock.close()
    ((name, topics, _),) = client.calls
    assert name == "subscribe" and topics == [(made._echo_topic, 1), ("voice/+/request/+", 1)]
    assert not made.connected and made._subscribing == 41
    assert caplog.messages == ["connected to MQTT broker"]
    made._handle_subscribe(client, None, 40, [], None)  # type: ignore[arg-type]
    assert not made.connected and made._subscribing == 41  # another SUBACK
    made._handle_subscribe(client, None, 41, [], None)  # type: ignore[arg-type]
    assert made.connected and made._subscribing is None and made.wait_connected(0.01)
    assert client.published() == [("voice/status", b"{doc}", 1, True, None)]


def test_with_nothing_to_subscribe_it_is_ready_at_once(tmp_path: Path) -> None:
    made, client = transport(tmp_path)
    made._subscriptions.clear()
    made._handle_connect(client, None, None, reason(0), None)  # type: ignore[arg-type]
    assert made.connected and client.published() == [("voice/status", b"{doc}", 1, True, None)]
    assert not any(call[0] == "subscribe" for call in client.calls)


def test_ready_forgets_the_old_sessions_echo_and_runs_every_hook(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    made, client = transport(tmp_path)
    ran: list[str] = []

    def broken() -> None:
        ran.append("broken")
        raise RuntimeError("hook broke")

    made.on_connect(broken)
    made.on_connect(lambda: ran.append("second"))
    made._echo_pending = "owed by the old session"
    made._ready(client)  # type: ignore[arg-type]
    assert ran == ["broken", "second"] and made.connected and not made.session_lost()
    assert caplog.messages == ["on-connect hook failed"]


def test_a_refused_connect_is_said_and_nothing_is_published(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    made, client = transport(tmp_path)
    made._handle_connect(client, None, None, reason(135), None)  # type: ignore[arg-type]
    assert client.calls == [] and not made.connected
    assert caplog.messages == ["broker refused the connection: Not authorized"]


def test_a_broker_that_refuses_mqtt5_is_spoken_to_in_3_1_1(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    made, client = transport(tmp_path)
    asked: list[Any] = []
    done = threading.Event()

    def reconnect(protocol: Any = None) -> None:
        asked.append((protocol, threading.current_thread().name, threading.current_thread().daemon))
        done.set()

    made._reconnect = reconnect  # type: ignore[method-assign]
    made._handle_connect(client, None, None, reason(132), None)  # type: ignore[arg-type]
    assert done.wait(WAIT)
    assert asked == [(MQTT311, "mqtt-downgrade", True)]  # not on paho's thread, whose loop the reconnect stops
    assert client.calls == [] and not made.connected
    assert caplog.messages == ["the broker speaks MQTT 3.1.1 only (amqtt, the embedded one, does): connecting with it; this "
                               "agent stays a single node (sharing work between nodes needs MQTT 5: Mosquitto 2, EMQX)"]


def test_a_3_1_1_client_refused_the_version_does_not_downgrade_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    made, client = transport(tmp_path)
    made.protocol = MQTT311
    made._reconnect = lambda protocol=None: pytest.fail("reconnected")  # type: ignore[method-assign]
    made._handle_connect(client, None, None, reason(132), None)  # type: ignore[arg-type]
    assert "broker refused the connection" in caplog.text and client.calls == []


def test_a_failed_connect_says_why_each_time_but_not_while_stopping(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    made, client = transport(tmp_path)
    monkeypatch.setattr(module, "why_no_connection", lambda s: f"nobody at {s.mqtt_host}")
    made._handle_connect_fail(client, None)  # type: ignore[arg-type]
    assert caplog.messages == ["cannot connect to the MQTT broker: nobody at broker.lan; retrying"]
    caplog.clear()
    made._stopping = True
    made._handle_connect_fail(client, None)  # type: ignore[arg-type]
    assert caplog.text == ""


def test_a_disconnect_clears_connected_and_is_said_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    made, client = transport(tmp_path)
    made._connected.set()
    made._handle_disconnect(client, None, None, "keepalive timeout", None)  # type: ignore[arg-type]
    assert not made.connected
    assert caplog.messages == ["disconnected from MQTT broker (keepalive timeout); reconnecting as agent-7"]
    caplog.clear()
    made._handle_disconnect(client, None, None, "again", None)  # type: ignore[arg-type]
    assert caplog.text == ""  # paho's retries are not news
    made._connected.set()
    made._stopping = True
    made._handle_disconnect(client, None, None, "bye", None)  # type: ignore[arg-type]
    assert caplog.text == "" and not made.connected


# -- messages --------------------------------------------------------------------------------------
def test_an_echo_that_is_not_text_is_not_ours(tmp_path: Path) -> None:
    made, client = transport(tmp_path)
    made._echo_pending = "abc"
    made._handle_message(client, None, message(made._echo_topic, b"\xff\xfeabc"))  # type: ignore[arg-type]
    assert made.session_lost()


def test_the_meta_handler_gets_the_properties_and_a_failing_handler_is_contained(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    made, client = transport(tmp_path)
    plain: list[Any] = []
    meta: list[Any] = []
    made._handle_message(client, None, message("voice/x", b"nobody"))  # type: ignore[arg-type]
    made.on_message(lambda topic, payload: plain.append((topic, payload)))
    made._handle_message(client, None, message("voice/x", b"one"))  # type: ignore[arg-type]
    made.on_message_meta(lambda topic, payload, m: meta.append((topic, payload, m)))
    made._handle_message(client, None, message("voice/y", b"two", request_properties("r", b"c")))  # type: ignore[arg-type]
    assert plain == [("voice/x", b"one")] and meta == [("voice/y", b"two", Meta("r", b"c"))]
    assert type(plain[0][1]) is bytes and type(meta[0][1]) is bytes

    def broken(topic: str, payload: bytes, m: Meta) -> None:
        raise ValueError("bad")

    made.on_message_meta(broken)
    made._handle_message(client, None, message("voice/z", b"three"))  # type: ignore[arg-type]
    assert caplog.messages == ["handler for voice/z failed"]


# -- the session watch -----------------------------------------------------------------------------
class Watches:
    """``_watch_stop`` whose ``wait`` runs one scripted step per keepalive, then ends the watch."""

    def __init__(self, steps: list[Any]) -> None:
        self.steps = list(steps)
        self.timeouts: list[float] = []

    def wait(self, timeout: float) -> bool:
        self.timeouts.append(timeout)
        if not self.steps:
            return True
        self.steps.pop(0)()
        return False

    def set(self) -> None:
        self.steps = []


def watched(tmp_path: Path, steps: list[Any], client: Client | None = None) -> tuple[MqttTransport, Client, list[Any]]:
    made, fake = transport(tmp_path, client, mqtt_keepalive=17)
    reconnects: list[Any] = []
    made._reconnect = lambda protocol=None: reconnects.append(protocol)  # type: ignore[method-assign]
    made._watch_stop = Watches(steps)  # type: ignore[assignment]
    return made, fake, reconnects


def nothing() -> None:
    pass


def test_an_mqtt5_connect_nobody_answers_twice_is_made_again_in_3_1_1(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    made, client, reconnects = watched(tmp_path, [nothing, nothing], Client(connected=False, sock=object()))
    made._watch_session()
    assert reconnects == [MQTT311] and made._watch_stop.timeouts == [17, 17, 17]  # type: ignore[attr-defined]
    assert caplog.messages == ["the broker did not answer an MQTT 5 connect: connecting with MQTT 3.1.1; this agent stays a "
                               "single node (sharing work between nodes needs MQTT 5: Mosquitto 2, EMQX)"]
    made, client, reconnects = watched(tmp_path, [nothing], Client(connected=False, sock=object()))
    made._watch_session()
    assert reconnects == []  # once may be a slow broker
    made, client, reconnects = watched(tmp_path, [nothing] * 4, Client(connected=False, sock=object()))
    made._watch_session()
    assert reconnects == [MQTT311, MQTT311]  # counted again after each try


@pytest.mark.parametrize("case", ["no-socket", "connack-came", "already-3.1.1"])
def test_only_an_unanswered_mqtt5_connect_counts(tmp_path: Path, case: str) -> None:
    client = Client(connected=case == "connack-came", sock=None if case == "no-socket" else object())
    made, _, reconnects = watched(tmp_path, [nothing] * 3, client)
    if case == "already-3.1.1":
        made.protocol = MQTT311
    made._watch_session()
    assert reconnects == []


def test_a_connect_not_yet_sent_in_between_starts_the_count_again(tmp_path: Path) -> None:
    client = Client(connected=False, sock=None)
    made, _, reconnects = watched(tmp_path, [])

    def sent() -> None:
        client.sock = object()

    made._client = client  # type: ignore[assignment]
    made._watch_stop = Watches([nothing, sent])  # type: ignore[assignment]
    made._watch_session()  # no socket yet (0), then one unanswered connect (1): no downgrade
    assert reconnects == []


def test_a_connected_watch_in_between_starts_the_count_again(tmp_path: Path) -> None:
    client = Client(connected=False, sock=object())
    made, _, reconnects = watched(tmp_path, [])

    def connected() -> None:
        made._connected.set()

    def lost() -> None:
        made._connected.clear()
        made._echo_pending = None

    made._client = client  # type: ignore[assignment]
    made._watch_stop = Watches([nothing, connected, lost])  # type: ignore[assignment]
    made._watch_session()  # unanswered 1, then connected (0), then 1 again: no downgrade
    assert reconnects == []


def test_each_watch_sends_itself_an_echo_and_one_not_back_by_the_next_is_a_lost_session(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    made, client, reconnects = watched(tmp_path, [])
    made._connected.set()
    echoes: list[str | None] = []

    def back() -> None:
        echoes.append(made._echo_pending)
        made._handle_message(client, None, message(made._echo_topic, str(made._echo_pending).encode()))  # type: ignore[arg-type]

    made._watch_stop = Watches([nothing, back, nothing, nothing])  # type: ignore[assignment]
    made._watch_session()
    sent = client.published()
    assert [s[0] for s in sent] == [made._echo_topic, made._echo_topic] and all(s[2] == 1 for s in sent)
    assert sent[0][1] == echoes[0] and sent[0][1] != sent[1][1] and len(sent[0][1]) == 32
    # the second one never came back: connected again as at the start, and the watch goes on (the
    # stand-in reconnect leaves the echo owed, so the next watch reconnects again)
    assert reconnects == [None, None]
    assert caplog.messages == 2 * ["the broker stopped delivering to us (a message to ourselves did not come back in 17 s: did "
                               "another client connect with our client id agent-7?); reconnecting"]


def test_a_reconnect_disconnects_and_connects_as_at_the_start(tmp_path: Path) -> None:
    made, client = transport(tmp_path, mqtt_keepalive=45)
    made._connected.set()
    made._echo_pending = "x"
    made._reconnect()
    assert not made.connected and not made.session_lost()
    assert client.calls == [("disconnect",), ("loop_stop",), ("connect_async", "broker.lan", 1999, 45), ("loop_start",)]
    assert made._client is client and made.protocol == MQTT5


def test_a_reconnect_with_another_protocol_uses_a_new_client(tmp_path: Path) -> None:
    made, old = transport(tmp_path)
    new = Client()
    asked: list[Any] = []

    def new_client(protocol: Any) -> Any:
        asked.append(protocol)
        return new

    made._new_client = new_client  # type: ignore[method-assign]
    made._reconnect(MQTT311)
    assert made.protocol == MQTT311 and made._client is new and asked == [MQTT311]
    assert old.calls == [("disconnect",), ("loop_stop",)]
    assert new.calls == [("connect_async", "broker.lan", 1999, 30), ("loop_start",)]


def test_no_reconnect_after_stop(tmp_path: Path) -> None:
    made, client = transport(tmp_path)
    made.stop()
    client.calls.clear()
    made._connected.set()
    made._reconnect(MQTT311)
    assert client.calls == [] and made.connected and made.protocol == MQTT5
