"""voice.json described for a form: its JSON schema (the same pydantic models that validate it),
which field of each provider's section is its voice and its speed, and which fields a request
may not change. A web page builds its inputs from this; the server still validates every change."""

from __future__ import annotations

from typing import Any

from agent.access import PROGRAM_FIELDS
from agent.config.model import VoiceConfig
from providers import registry


def voice_config_schema() -> dict[str, Any]:
    providers = {}
    for spec in registry.SPECS:
        fields = spec.settings.model_fields
        providers[spec.name] = {
            "summary": spec.summary,
            "aliases": list(spec.aliases),
            "voice_field": fields[spec.settings.voice_field].alias or spec.settings.voice_field,
            "speed_field": fields[spec.settings.speed_field].alias or spec.settings.speed_field,
            "dataset": spec.dataset is not None,
            "trainer": spec.trainer is not None,
            "actions": [action.name for action in spec.actions],
        }
    return {
        "schema": VoiceConfig.model_json_schema(by_alias=True),
        "providers": providers,
        "locked": ["access", *PROGRAM_FIELDS],  # only voice.json itself changes these (agent/access.py)
    }
