"""Piper split at its vocoder, end to end (a real agent, Mosquitto, the HTTP door): the agent makes
the split of the profile's voice when it loads it, and a text's first run, decoded in two chunks
once the voice has spoken, streams the same audio as the voice decoded whole in this process
(the bundled voice with its noise scales at 0, so that the same text is the same z every time):
the same rate and length, the same samples to within rounding."""

from __future__ import annotations

import io
import json
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from agent.speak.text import pieces
from providers.common.audio import to_pcm16
from providers.piper.engine import load_voice, normalized
from tests.conftest import AgentProcess, write_json
from tests.e2e.test_http import http_agent
from tests.mosquitto import Mosquitto
from tests.providers.piper.test_split import deterministic_voice

pytestmark = pytest.mark.slow

TEXT = "The kitchen lights are on now and the front door is locked for the night."  # one piece, one run


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[AgentProcess]:
    process = http_agent(tmp_path_factory.mktemp("piper-split"), broker)
    for name in ("still", "still_paragraph"):  # a voice per test: each learns its own loudness
        deterministic_voice(process.home / "out" / "voices", name)
    write_json(process.home / "profiles" / "default" / "etc" / "voice.json",
               {"cache": {"enabled": False}, "tts": {"piper": {"model": "still"}}})
    process.start()
    process.wait_log("ready")
    yield process
    process.stop()


def streamed(agent: AgentProcess, text: str, voice: str = "still") -> tuple[int, np.ndarray]:
    """(rate, samples) of ``POST /api/tts``, streamed (an open-length WAV read to its end)."""
    with requests.post(f"{agent.http}/api/tts", json={"text": text, "voice": voice}, stream=True,  # type: ignore[attr-defined]
                       timeout=120) as response:
        assert response.status_code == 200, response.text
        assert response.headers["X-Provider"] == "piper" and response.headers["X-Voice"] == voice
        body = b"".join(response.iter_content(chunk_size=None))
    with wave.open(io.BytesIO(body)) as wav:
        rate = wav.getframerate()
    return rate, np.frombuffer(body[44:], np.int16).astype(int)


def test_the_streamed_audio_is_the_voice_decoded_whole(agent: AgentProcess) -> None:
    model = agent.home / "out" / "voices" / "still.onnx"
    voice = load_voice(model)
    assert pieces(TEXT) == [TEXT]
    (phonemes,) = voice.phonemize(TEXT)
    audio = voice.phoneme_ids_to_audio(voice.phonemes_to_ids(phonemes))
    assert isinstance(audio, np.ndarray)
    expected = np.frombuffer(to_pcm16(normalized(audio)), np.int16).astype(int)
    records = list((agent.home / "out" / "models" / "piper").glob("still-*.split.json"))  # made at the preload
    assert len(records) == 1 and json.loads(records[0].read_text())["source"] == str(model)
    for _ in range(2):  # the voice's first run (whole: no loudness known yet), then cut in two
        rate, got = streamed(agent, TEXT)
        assert rate == 22050 and got.shape == expected.shape
        assert np.max(np.abs(got - expected)) <= 2
    assert "split at its vocoder" in agent.log.read_text()


def test_a_paragraph_streams_as_long_as_whole(agent: AgentProcess) -> None:
    text = f"Good morning! {TEXT} It is seven degrees outside."
    voice = load_voice(agent.home / "out" / "voices" / "still_paragraph.onnx")
    samples = 0
    for piece in pieces(text):  # as the agent cuts it
        for phonemes in voice.phonemize(piece):
            audio = voice.phoneme_ids_to_audio(voice.phonemes_to_ids(phonemes))
            assert isinstance(audio, np.ndarray)
            samples += audio.size
    for _ in range(2):  # the voice's first runs whole, then each piece's first run cut in two
        rate, got = streamed(agent, text, "still_paragraph")
        assert rate == 22050 and got.size == samples
