"""The speak path: request -> cache -> provider (with Piper fallback) -> audio on MQTT."""
