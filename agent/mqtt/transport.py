"""The MQTT connection: publish, subscribe, stop — with reconnects and the availability topic.

paho's network thread runs the callbacks; they only hand work on, never block.
Subscriptions and retained state are restored on every (re)connect.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt

from agent.mqtt.connect import new_client, why_no_connection
from agent.settings import AgentSettings

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]


class MqttTransport:
    """One paho client with a retained last will ``offline`` on the status topic."""

    def __init__(self, settings: AgentSettings, status_topic: str) -> None:
        self._settings = settings
        self._status_topic = status_topic
        self._subscriptions: dict[str, int] = {}
        self._on_message: MessageHandler | None = None
        self._on_connect_hooks: list[Callable[[], None]] = []
        self._connected = threading.Event()  # connected and subscribed: requests published now reach us
        self._subscribing: int | None = None  # the mid of the connect's SUBSCRIBE, until its SUBACK
        self._stopping = False
        self._client = new_client(settings, settings.mqtt_client_id)
        self._client.will_set(status_topic, "offline", qos=1, retain=True)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._handle_connect
        self._client.on_connect_fail = self._handle_connect_fail
        self._client.on_subscribe = self._handle_subscribe
        self._client.on_disconnect = self._handle_disconnect
        self._client.on_message = self._handle_message

    def on_message(self, handler: MessageHandler) -> None:
        self._on_message = handler

    def on_connect(self, hook: Callable[[], None]) -> None:
        """Run after every (re)connect, once subscriptions are restored."""
        self._on_connect_hooks.append(hook)

    def subscribe(self, topic: str, qos: int = 1) -> None:
        self._subscriptions[topic] = qos
        if self._client.is_connected():  # also while the connect's SUBSCRIBE waits for its SUBACK
            self._client.subscribe(topic, qos)

    def start(self) -> None:
        s = self._settings
        log.info("connecting to MQTT broker %s:%d", s.mqtt_host, s.mqtt_port)
        self._client.connect_async(s.mqtt_host, s.mqtt_port, keepalive=s.mqtt_keepalive)
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.warning("publish to %s failed: %s", topic, mqtt.error_string(info.rc))

    def stop(self) -> None:
        """Clean stop: ``offline`` is published (retained) before the disconnect."""
        self._stopping = True
        if self._connected.is_set():
            info = self._client.publish(self._status_topic, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=2)
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        self._client.loop_stop()

    def _handle_connect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
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
        client.publish(self._status_topic, "online", qos=1, retain=True)
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
        if self._connected.is_set() and not self._stopping:
            log.warning("disconnected from MQTT broker (%s); reconnecting", reason)
        self._connected.clear()

    def _handle_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if self._on_message is None:
            return
        try:
            self._on_message(message.topic, bytes(message.payload))
        except Exception:
            log.exception("handler for %s failed", message.topic)
