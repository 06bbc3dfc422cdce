"""Every paho client the agent makes (the agent's own, the CLI's): one place for login and TLS."""

from __future__ import annotations

import socket
import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from agent.settings import AgentSettings


MQTT5 = MQTTProtocolVersion.MQTTv5
MQTT311 = MQTTProtocolVersion.MQTTv311
UNSUPPORTED_PROTOCOL = 132  # CONNACK reason: a broker without MQTT 5 (amqtt, the embedded one) refuses the version


def new_client(settings: AgentSettings, client_id: str, protocol: MQTTProtocolVersion = MQTT311) -> mqtt.Client:
    """An MQTT 5 client for the agent's own connections (shared subscriptions and request/response
    need it; it talks to MQTT 3 clients through the broker as any other), 3.1.1 for the CLI's
    short-lived ones, which any broker takes. A session ends with its connection either way."""
    if protocol == MQTT5:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTT5)
    else:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True, protocol=protocol)
    if settings.mqtt_username:
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        client.username_pw_set(settings.mqtt_username, password)
    if settings.mqtt_tls:
        client.tls_set_context(tls_context(settings))
    return client


def tls_context(settings: AgentSettings) -> ssl.SSLContext:
    """The broker's certificate checked against the CA (the system's when unset), and our own
    certificate shown when one is configured (mTLS)."""
    context = ssl.create_default_context(cafile=str(settings.mqtt_tls_ca) if settings.mqtt_tls_ca else None)
    if settings.mqtt_tls_cert is not None:
        key = settings.mqtt_tls_key or settings.mqtt_tls_cert
        context.load_cert_chain(str(settings.mqtt_tls_cert), str(key))
    return context


def why_no_connection(settings: AgentSettings, timeout: float = 3.0) -> str:
    """What stops a connection to the broker right now, found by trying it (paho keeps it to itself)."""
    try:
        with socket.create_connection((settings.mqtt_host, settings.mqtt_port), timeout=timeout) as raw:
            if settings.mqtt_tls:
                with tls_context(settings).wrap_socket(raw, server_hostname=settings.mqtt_host):
                    pass
    except ssl.SSLCertVerificationError as exc:
        return f"the broker's TLS certificate is not trusted: {exc.verify_message} (check VOICE_AGENT_MQTT_TLS_CA and the host name)"
    except ssl.SSLError as exc:
        return f"TLS failed: {exc.reason or exc}"
    except OSError as exc:
        return f"cannot reach {settings.mqtt_host}:{settings.mqtt_port}: {exc.strerror or exc}"
    return "the broker accepts connections; it refused ours (login?)"
