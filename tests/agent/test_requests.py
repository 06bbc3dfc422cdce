"""What every request shares: the JSON reader, and the models' refusal of what is no number or no text."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any, get_args

import pytest
from pydantic import BaseModel, ValidationError

import agent.mqtt.hermes
import agent.record.streams
from agent.commands import command_table
from agent.config.model import VoiceConfig
from agent.errors import ServiceError
from agent.requests import json_object, load_json
from agent.speak.requests import SpeakRequest
from providers import registry
from providers.settings_base import InputModel

NOT_FINITE_JSON = ("NaN", "Infinity", "-Infinity", "1e999999", "-1e999999", "1" + "0" * 400 + ".0")
NOT_FINITE = (math.nan, math.inf, -math.inf)


@pytest.mark.parametrize("number", NOT_FINITE_JSON)
def test_the_json_reader_refuses_numbers_that_are_not_finite(number: str) -> None:
    with pytest.raises(ValueError, match="numbers must be finite"):
        load_json('{"a": [%s]}' % number)
    with pytest.raises(ServiceError) as caught:
        json_object('{"changes": {"cache": {"maxSizeMB": %s}}}' % number)
    assert caught.value.code == "invalid_json"


@pytest.mark.parametrize("number", ["1.7976931348623157e308", "-1.7976931348623157e308", "1e-400", "0.0", "1" + "0" * 400])
def test_the_largest_finite_numbers_are_numbers(number: str) -> None:
    value = load_json('{"a": %s}' % number)["a"]
    assert math.isfinite(value) if isinstance(value, float) else value == int(number)


def models_that_read_input() -> set[type[BaseModel]]:
    """Every model the doors validate what came in with, nested models included."""
    table = command_table(SimpleNamespace(records=None, samples=None))  # type: ignore[arg-type]
    roots: list[type[BaseModel]] = [VoiceConfig, *(c.model for c in table.values()), agent.mqtt.hermes.Say,
                                    agent.mqtt.hermes.Captured, agent.record.streams.StreamStart]
    roots += [spec.trainer.params for spec in registry.SPECS if spec.trainer is not None]
    found: set[type[BaseModel]] = set()
    while roots:
        model = roots.pop()
        if model in found:
            continue
        found.add(model)
        for field in model.model_fields.values():
            roots += [arg for arg in (field.annotation, *get_args(field.annotation))
                      if isinstance(arg, type) and issubclass(arg, BaseModel)]
    return found


def float_fields(model: type[BaseModel]) -> list[str]:
    def holds_float(annotation: Any) -> bool:
        return annotation is float or any(holds_float(arg) for arg in get_args(annotation))

    return [field.alias or name for name, field in model.model_fields.items() if holds_float(field.annotation)]


def test_every_model_that_reads_input_is_an_input_model() -> None:
    models = models_that_read_input()
    assert len(models) > 30
    assert [m.__name__ for m in models if not issubclass(m, InputModel)] == []


@pytest.mark.parametrize("number", NOT_FINITE, ids=repr)
def test_every_number_field_refuses_what_is_not_finite(number: float) -> None:
    """Where the values come as Python floats (a door that is not JSON, the CLI), not through the reader."""
    checked = 0
    for model in models_that_read_input():
        for key in float_fields(model):
            with pytest.raises(ValidationError) as caught:
                model.model_validate({key: number})
            errors = [e for e in caught.value.errors() if e["loc"][:1] == (key,)]
            assert errors and errors[0]["type"] == "finite_number", (model.__name__, key, errors)
            checked += 1
    assert checked > 20  # speed, cache.maxSizeMB, learningRate, minMinutes, ...


@pytest.mark.parametrize("character", [*map(chr, [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)])],
                         ids=lambda c: f"U+{ord(c):04X}")
def test_a_control_character_is_no_text(character: str) -> None:
    with pytest.raises(ValidationError, match=f"control character U\\+{ord(character):04X} at position 3"):
        SpeakRequest.model_validate({"text": f"Say{character} this."})


@pytest.mark.parametrize("text", ["tab\there", "line\nfeed", "carriage\r\nreturn", "space ~ tilde", "no\u00a0break",
                                  "family \U0001F468\u200D\U0001F469", "\ufeffmark", "\u2028separator"])
def test_the_characters_around_the_control_ranges_are_text(text: str) -> None:
    assert SpeakRequest.model_validate({"text": text}).text == text


def test_a_transcript_is_text_as_well() -> None:
    model = next(c.model for n, c in command_table(SimpleNamespace(records=None, samples=None)).items()  # type: ignore[arg-type]
                 if n == "record")
    with pytest.raises(ValidationError, match="control character U\\+0000"):
        model.model_validate({"audio_b64": "", "transcript": "a\x00b"})
