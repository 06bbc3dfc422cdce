"""Every paho client the agent makes (the agent's own, the CLI's): one place for login and TLS."""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.settings import AgentSettings


def new_client(settings: AgentSettings, client_id: str, clean_session: bool = True) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session)
    if settings.mqtt_username:
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        client.username_pw_set(settings.mqtt_username, password)
    if settings.mqtt_tls:
        client.tls_set(
            ca_certs=str(settings.mqtt_tls_ca) if settings.mqtt_tls_ca else None,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    return client
