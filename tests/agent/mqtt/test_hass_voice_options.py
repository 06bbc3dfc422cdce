"""Home Assistant's voice select: the provider's installed voices first, then the catalog voices
a pick would download, of the language family of the voice in force, bounded; values are voice
names as they are, and the voice in force is always an option."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.mqtt.hass.extension import MAX_OPTIONS, select_options
from agent.voices.catalog import Catalog
from agent.voices.listing import listing


def voice(name: str, language: str, installed: bool, provider: str = "piper") -> dict[str, Any]:
    return {"name": name, "provider": provider, "language": language, "installed": installed}


VOICES = [
    voice("en_US-joe-medium", "en_US", True), voice("de_DE-own", "de_DE", True), voice("jf_alpha", "ja", True, "kokoro"),
    voice("en_GB-alan-low", "en_GB", False), voice("fr_FR-siwis-low", "fr_FR", False),
    voice("en_US-amy-low", "en_US", False), voice("af_heart", "en_US", False, "kokoro"),
]


def test_installed_first_then_downloads_of_the_language_in_force() -> None:
    assert select_options(VOICES, "piper", "en_US-joe-medium") == [
        "en_US-joe-medium", "de_DE-own", "en_GB-alan-low", "en_US-amy-low"]
    assert select_options(VOICES, "piper", "fr_FR-siwis-low") == ["en_US-joe-medium", "de_DE-own", "fr_FR-siwis-low"]
    assert select_options(VOICES, "kokoro", "jf_alpha") == ["jf_alpha"]


def test_a_voice_the_listing_does_not_know_is_an_option_and_installed_languages_decide() -> None:
    assert select_options(VOICES, "piper", "/abs/amy.onnx") == [
        "en_US-joe-medium", "de_DE-own", "en_GB-alan-low", "en_US-amy-low", "/abs/amy.onnx"]


def test_the_options_are_bounded_and_keep_the_voice_in_force() -> None:
    many = [voice(f"en_US-v{i:03}-low", "en_US", i < 3) for i in range(300)]
    options = select_options(many, "piper", "en_US-v299-low", limit=50)
    assert len(options) == 50 and options[:3] == ["en_US-v000-low", "en_US-v001-low", "en_US-v002-low"]
    assert options[-1] == "en_US-v299-low"


def test_the_real_catalog_makes_a_small_select() -> None:
    """176 Piper voices in one drop-down: the English ones (38) and the installed, under 3 kB."""
    catalog = Catalog({}, Path("/nonexistent"))
    voices = [{**v, "installed": v["name"] == "en_US-joe-medium"} for v in listing([], catalog, provider="piper")]
    options = select_options(voices, "piper", "en_US-joe-medium")
    assert options[0] == "en_US-joe-medium" and 30 < len(options) <= MAX_OPTIONS
    assert all(name.startswith("en_") for name in options) and len(json.dumps(options)) < 3000
    assert select_options(voices, "piper", None) == options  # no voice in force: the installed voices' languages


def test_a_voice_that_does_not_say_whether_it_is_installed_is_installed() -> None:
    """And so its language decides, when the voice in force has none the listing knows."""
    voices = [{"name": "own", "provider": "piper", "language": "de_DE"}, voice("de_AT-hmm-low", "de_AT", False),
              voice("en_GB-alan-low", "en_GB", False)]
    assert select_options(voices, "piper", "/abs/own.onnx") == ["own", "de_AT-hmm-low", "/abs/own.onnx"]
