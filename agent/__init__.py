"""Local-first voice agent: speak, record and train voices over MQTT."""

__version__ = "0.1.0"
