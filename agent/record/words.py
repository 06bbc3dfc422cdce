"""The record path's verdicts in plain words ("too quiet", "another speaker", "background
noise"), for people: the one place that maps its refusal codes, its weak score components and
its errors to words. Every answer of ``record`` carries them (``say``), so each door shows the
same words and none has to know the codes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Outright refusals (quality.score's codes) and the transcript check.
CODE_WORDS = {
    "clipped": "too loud (it clipped)",
    "little_speech": "mostly silence",
    "steady_noise": "background noise",
    "another_speaker": "another speaker",
    "transcript_mismatch": "other words than the sentence",
}
# A component scoring below this (of 100) is named when it pulled the score down.
WEAK = 60.0
LOUD_DBFS = -20.0  # the level component is low either way: too quiet below this, too loud above
SHORT_SECONDS = 5.0  # the duration component is low either way: too short below this
# The record path's errors: what went wrong with the take as a whole.
ERROR_WORDS = {
    "no_speech": "no speech heard (too quiet, or the microphone is muted)",
    "invalid_audio": "the recording could not be read",
    "busy": "the agent is busy with other recordings: try again in a moment",
    "record_disabled": "recording is switched off for this profile",
    "record_unavailable": "the agent cannot store samples right now",
}


def component_words(name: str, measurements: Mapping[str, Any]) -> str:
    """What a weak ``name`` component means for this take."""
    if name == "level":
        return "too quiet" if float(measurements.get("level_dbfs", -99.0)) < LOUD_DBFS else "too loud"
    if name == "duration":
        return "too short" if float(measurements.get("seconds", 0.0)) < SHORT_SECONDS else "too long"
    return {
        "snr": "background noise", "dnsmos": "background noise", "speech_ratio": "mostly silence",
        "clipping": "too loud (it clipped)", "speaker": "another speaker",
    }.get(name, name.replace("_", " "))


def say(codes: list[str], components: Mapping[str, float], measurements: Mapping[str, Any],
        low_score: bool = False) -> list[str]:
    """The take's problems in words: its refusals, then (when its score was too low, or to say
    what held a kept one back) its weak components, weakest first; each said once."""
    said = [CODE_WORDS.get(code, code.replace("_", " ")) for code in codes]
    for name, value in sorted(components.items(), key=lambda item: item[1]):
        if value < WEAK:
            said.append(component_words(name, measurements))
    if low_score and len(said) == len(codes):
        said.append("a low score")
    return list(dict.fromkeys(said))


def error_words(code: str) -> str:
    """A refused take (an error code of the record path) in words."""
    return ERROR_WORDS.get(code, code.replace("_", " "))
