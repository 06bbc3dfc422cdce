"""Home Assistant MQTT discovery: each profile a device with its entities (see README
"Home Assistant (MQTT discovery)")."""

from agent.mqtt.hass.extension import HassDiscovery

__all__ = ["HassDiscovery"]
