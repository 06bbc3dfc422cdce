"""The page's words for the services' refusals: what to do, by the page's buttons and tabs.

The services say what is wrong and carry the facts in the error's data; each door says what to do
about it in its own terms. The CLI names commands (agent/cli/train.py: ``cli_hint``); a person at
the web page has no shell, so the answers the HTTP door sends carry a ``hint`` made here, the one
place that maps a refusal code to the page's words.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Hint = Callable[[dict[str, Any]], str | None]


def _not_ready(data: dict[str, Any]) -> str | None:
    provider = data.get("provider")
    if "missing" in data and provider:
        missing = "; ".join(str(m) for m in data["missing"]) or "its dataset folder is missing"
        return (f"Not enough to train {provider} yet: {missing}. Record more takes with the Record card in the Samples "
                f"tab, or upload recordings there; Start turns on when there is enough.")
    if "problems_found" in data and provider:
        return (f"The {provider} dataset for {data.get('speaker')} that is already exported will not do: "
                f"{'; '.join(str(p) for p in data['problems_found'])}. In the Samples tab, Export a new one for {provider} "
                f"(it replaces the old one) once there are enough samples.")
    if data.get("job") and data.get("state"):
        return f"Job {data['job']} is {data['state']}: Listen and Use this voice work once it has finished."
    if data.get("job"):
        return "This job made nothing the profile can speak with; train Kokoro or RVC for a voice to choose."
    return None


def _duplicate(data: dict[str, Any]) -> str | None:
    if data.get("job") and data.get("provider"):
        return (f"Job {data['job']} already trains {data['provider']} for {data.get('speaker')} ({data.get('state')}): "
                f"wait for it, or press its Cancel button under Jobs first.")
    return None


def _busy(data: dict[str, Any]) -> str | None:
    if "queued" in data:
        return f"{data['queued']} jobs are waiting already (at most {data.get('limit')}): press Cancel on one under Jobs, or wait."
    return None


def _nothing_to_export(data: dict[str, Any]) -> str | None:
    return "There are no kept samples to export yet: record takes with the Record card above, or upload recordings."


HINTS: dict[str, Hint] = {
    "not_ready": _not_ready,
    "duplicate": _duplicate,
    "busy": _busy,
    "nothing_to_export": _nothing_to_export,
}


def page_hint(code: str, data: dict[str, Any] | None) -> str | None:
    """What the page tells a person to do about a refusal with this code, or None (its message says enough)."""
    hint = HINTS.get(code)
    return hint(data or {}) if hint is not None else None
