"""The MQTT connection: publish, subscribe, stop — with reconnects and the availability topic.

paho's network thread runs the callbacks; they only hand work on, never block.
Subscriptions and retained state are restored on every (re)connect.

A session can go deaf without a disconnect: when another client connects with our client id,
Mosquitto closes our connection (paho reconnects), but amqtt (the embedded broker) drops our
session's subscriptions and keeps the connection open, answering our keepalive pings. So every
keepalive interval the transport sends itself a message on a topic of its own; when the last one
has not come back, the session is lost and it connects again.

It speaks MQTT 5 (shared subscriptions and request/response between nodes need it); a broker
that refuses the version (amqtt, the embedded one) gets MQTT 3.1.1, and the agent says it stays a
single node. A connection carries one last will: its availability topic's ``offline``.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.mqtt.connect import MQTT5, MQTT311, UNSUPPORTED_PROTOCOL, new_client, why_no_connection
from agent.settings import AgentSettings

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]


@dataclass(frozen=True)
class Meta:
    """A message's MQTT 5 request/response properties (None: not given, or an MQTT 3 message)."""

    response_topic: str | None = None
    correlation: bytes | None = None


MetaHandler = Callable[[str, bytes, Meta], None]


def request_properties(response_topic: str | None, correlation: bytes | None) -> Properties:
    """A PUBLISH's properties: where to answer, and what the answer carries back."""
    props = Properties(PacketTypes.PUBLISH)
    if response_topic is not None:
        props.ResponseTopic = response_topic
    if correlation is not None:
        props.CorrelationData = correlation
    return props


def meta_of(message: mqtt.MQTTMessage) -> Meta:
    props = getattr(message, "properties", None)
    if props is None:
        return Meta()
    correlation = getattr(props, "CorrelationData", None)
    return Meta(getattr(props, "ResponseTopic", None), bytes(correlation) if correlation is not None else None)


@dataclass(frozen=True)
class Availability:
    """A connection's availability topic: ``online()`` retained on every (re)connect, ``offline``
    its last will and what a clean stop publishes (retained, QoS 1)."""

    topic: str
    online: Callable[[], bytes] = lambda: b"online"
    offline: bytes = b"offline"


class MqttTransport:
    """One paho client with a retained last will (``offline`` on the availability topic)."""

    def __init__(self, settings: AgentSettings, status: str | Availability, client_id: str | None = None) -> None:
        self._settings = settings
        self._availability = status if isinstance(status, Availability) else Availability(status)
        self._status_topic = self._availability.topic
        self._client_id = client_id or settings.mqtt_client_id
        self._subscriptions: dict[str, int] = {}
        self._on_message: MessageHandler | None = None
        self._on_meta: MetaHandler | None = None
        self._on_connect_hooks: list[Callable[[], None]] = []
        self._connected = threading.Event()  # connected and subscribed: requests published now reach us
        self._subscribing: int | None = None  # the mid of the connect's SUBSCRIBE, until its SUBACK
        self._stopping = False
        self._restart = threading.Lock()  # the session watch's reconnect and ``stop``, one at a time
        self._echo_topic = f"{self._status_topic}/echo/{uuid.uuid4().hex[:12]}"  # ours alone: one per process
        self._echo_pending: str | None = None  # sent to ourselves, not back yet
        self._subscriptions[self._echo_topic] = 1
        self._watch_stop = threading.Event()
        self._watch = threading.Thread(target=self._watch_session, name="mqtt-session", daemon=True)
        self.protocol: MQTTProtocolVersion = MQTT5
        self._client = self._new_client(MQTT5)

    def _new_client(self, protocol: MQTTProtocolVersion) -> mqtt.Client:
        client = new_client(self._settings, self._client_id, protocol)
        client.will_set(self._status_topic, self._availability.offline, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._handle_connect
        client.on_connect_fail = self._handle_connect_fail
        client.on_subscribe = self._handle_subscribe
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        return client

    def use_mqtt311(self) -> None:
        """Before ``start``: the broker is known to lack MQTT 5 (the embedded one, started by us)."""
        self.protocol = MQTT311
        self._client = self._new_client(MQTT311)

    @property
    def mqtt5(self) -> bool:
        """Whether the broker took MQTT 5 (work sharing between nodes needs it)."""
        return self.protocol == MQTT5

    def on_message(self, handler: MessageHandler) -> None:
        self._on_message = handler

    def on_message_meta(self, handler: MetaHandler) -> None:
        """Instead of ``on_message``: the handler also gets the message's request/response properties."""
        self._on_meta = handler

    def on_connect(self, hook: Callable[[], None]) -> None:
        """Run after every (re)connect, once subscriptions are restored."""
        self._on_connect_hooks.append(hook)

    def subscribe(self, topic: str, qos: int = 1) -> None:
        self._subscriptions[topic] = qos
        if self._client.is_connected():  # also while the connect's SUBSCRIBE waits for its SUBACK
            self._client.subscribe(topic, qos)

    def start(self) -> None:
        s = self._settings
        log.info("connecting to MQTT broker %s:%d as %s", s.mqtt_host, s.mqtt_port, self._client_id)
        self._client.connect_async(s.mqtt_host, s.mqtt_port, keepalive=s.mqtt_keepalive)
        self._client.loop_start()
        self._watch.start()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False,
                properties: Properties | None = None) -> None:
        info = self._client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.warning("publish to %s failed: %s", topic, mqtt.error_string(info.rc))

    def stop(self) -> None:
        """Clean stop: ``offline`` is published (retained) before the disconnect."""
        self._watch_stop.set()
        with self._restart:
            self._stopping = True
            if self._connected.is_set():
                info = self._client.publish(self._status_topic, self._availability.offline, qos=1, retain=True)
                try:
                    info.wait_for_publish(timeout=2)
                except (RuntimeError, ValueError):
                    pass
            self._client.disconnect()
            self._client.loop_stop()

    # -- is the session still ours? ------------------------------------------------------------
    def _watch_session(self) -> None:
        """Every keepalive interval: the last message to ourselves must be back, then send the next."""
        unanswered = 0  # watches that found a connection whose CONNECT the broker has not answered
        while not self._watch_stop.wait(self._settings.mqtt_keepalive):
            if not self._connected.is_set():
                # amqtt neither answers nor refuses an MQTT 5 CONNECT that carries a will
                waiting = self._client.socket() is not None and not self._client.is_connected()
                unanswered = unanswered + 1 if waiting and self.mqtt5 else 0
                if unanswered >= 2:
                    log.warning("the broker did not answer an MQTT 5 connect: connecting with MQTT 3.1.1; this agent "
                                "stays a single node (sharing work between nodes needs MQTT 5: Mosquitto 2, EMQX)")
                    unanswered = 0
                    self._reconnect(MQTT311)
                continue  # paho is reconnecting; ``_ready`` clears what was pending
            unanswered = 0
            if self.session_lost():
                log.warning(
                    "the broker stopped delivering to us (a message to ourselves did not come back in %d s: "
                    "did another client connect with our client id %s?); reconnecting",
                    self._settings.mqtt_keepalive, self._client_id,
                )
                self._reconnect()
                continue
            self._echo_pending = uuid.uuid4().hex
            self._client.publish(self._echo_topic, self._echo_pending, qos=1)

    def session_lost(self) -> bool:
        """A message sent to ourselves a keepalive interval ago has not come back."""
        return self._echo_pending is not None

    def _reconnect(self, protocol: MQTTProtocolVersion | None = None) -> None:
        """A clean DISCONNECT (the broker sends no last will for the session we lost), then connect
        as at the start: ``_ready`` says ``online`` and re-publishes the retained state. With
        ``protocol``: a new client that speaks it (a broker that refused MQTT 5)."""
        with self._restart:
            if self._stopping:
                return
            self._connected.clear()
            self._echo_pending = None
            self._client.disconnect()
            self._client.loop_stop()
            if protocol is not None:
                self.protocol = protocol
                self._client = self._new_client(protocol)
            s = self._settings
            self._client.connect_async(s.mqtt_host, s.mqtt_port, keepalive=s.mqtt_keepalive)
            self._client.loop_start()

    def _handle_connect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        if getattr(reason, "value", None) == UNSUPPORTED_PROTOCOL and self.protocol == MQTT5:
            log.warning("the broker speaks MQTT 3.1.1 only (amqtt, the embedded one, does): connecting with it; "
                        "this agent stays a single node (sharing work between nodes needs MQTT 5: Mosquitto 2, EMQX)")
            # not on paho's thread: the reconnect stops that thread's loop
            threading.Thread(target=self._reconnect, args=(MQTT311,), name="mqtt-downgrade", daemon=True).start()
            return
        if getattr(reason, "is_failure", False):
            log.error("broker refused the connection: %s", reason)
            return
        log.info("connected to MQTT broker")
        sock = client.socket()
        if isinstance(sock, socket.socket):  # small messages (events, responses) must not wait for delayed ACKs
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self._subscriptions:
            self._ready(client)
            return
        # ready (and "online") only once the broker has our subscriptions: a request published
        # after that is ours, one published before would be dropped by the broker unseen
        self._subscribing = client.subscribe(list(self._subscriptions.items()))[1]

    def _handle_subscribe(self, client: mqtt.Client, userdata: object, mid: int, reasons: object, props: object) -> None:
        if mid == self._subscribing:
            self._subscribing = None
            self._ready(client)

    def _ready(self, client: mqtt.Client) -> None:
        self._echo_pending = None
        client.publish(self._status_topic, self._availability.online(), qos=1, retain=True)
        self._connected.set()
        for hook in self._on_connect_hooks:
            try:
                hook()
            except Exception:
                log.exception("on-connect hook failed")

    def _handle_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        """paho retries without saying why; find out and say it, each time."""
        if not self._stopping:
            log.warning("cannot connect to the MQTT broker: %s; retrying", why_no_connection(self._settings))

    def _handle_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()  # before the line: whoever reads it finds us offline
        if was_connected and not self._stopping:
            log.warning("disconnected from MQTT broker (%s); reconnecting as %s", reason, self._client_id)

    def _handle_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.topic == self._echo_topic:
            if message.payload.decode(errors="replace") == self._echo_pending:
                self._echo_pending = None
            return
        try:
            if self._on_meta is not None:
                self._on_meta(message.topic, bytes(message.payload), meta_of(message))
            elif self._on_message is not None:
                self._on_message(message.topic, bytes(message.payload))
        except Exception:
            log.exception("handler for %s failed", message.topic)
