"""MQTT edge of the agent: topics, payload schemas, transport and the request router."""
