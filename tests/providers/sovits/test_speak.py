"""Speaking through a GPT-SoVITS server: the fields sent, whole and streamed answers, v1."""

from __future__ import annotations

import json
import logging
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from providers.base import ProviderContext
from providers.sovits.config import SovitsSettings
from providers.sovits.engine import SovitsProvider
from tests.fake_sovits import FakeSovits
from tests.providers.sovits.conftest import REFERENCE_TEXT, pcm_of

THREE_SENTENCES = "The first sentence is here. Then comes a second one! And is this the third?"


def direct(fake: FakeSovits, body: dict[str, object], path: str = "/tts") -> bytes:
    """The same request without the agent."""
    request = urllib.request.Request(fake.url + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, np.int16) / 32768.0
    return float(np.sqrt(np.mean(samples**2)))


def test_plain_request_sends_the_documented_fields_and_returns_the_servers_audio(
    provider: SovitsProvider, fake: FakeSovits, ctx: ProviderContext, reference: Path
) -> None:
    settings = SovitsSettings(
        serverUrl=fake.url, streamingMode=0, textLang="en", promptLang="en", temperature=0.7, speed=1.25, topK=20, topP=0.8
    )
    chunks = list(provider.synthesize("Hello from the kitchen.", settings, ctx))

    assert len(chunks) == 1 and chunks[0].sample_rate == 32000
    sent = fake.requests[-1]
    assert sent["ref_audio_path"] == str(reference)
    assert sent["prompt_text"] == REFERENCE_TEXT
    assert (sent["text"], sent["text_lang"], sent["prompt_lang"]) == ("Hello from the kitchen.", "en", "en")
    assert (sent["temperature"], sent["speed_factor"], sent["top_k"], sent["top_p"]) == (0.7, 1.25, 20, 0.8)
    assert (sent["media_type"], sent["streaming_mode"], sent["text_split_method"]) == ("wav", 0, "cut5")
    expected, rate = pcm_of(direct(fake, {k: sent[k] for k in ("text", "text_lang", "ref_audio_path", "prompt_text",
                                                                "prompt_lang", "speed_factor", "streaming_mode")}))
    assert chunks[0].pcm == expected and rate == 32000
    assert rms(chunks[0].pcm) > 0.02


def test_streaming_yields_one_chunk_per_sentence_with_the_same_audio(
    provider: SovitsProvider, fake: FakeSovits, ctx: ProviderContext, reference: Path
) -> None:
    whole = list(provider.synthesize(THREE_SENTENCES, SovitsSettings(serverUrl=fake.url, streamingMode=0), ctx))
    streamed = list(provider.synthesize(THREE_SENTENCES, SovitsSettings(serverUrl=fake.url, streamingMode=1), ctx))

    assert fake.requests[-1]["streaming_mode"] == 1
    assert len(streamed) == 3
    assert b"".join(c.pcm for c in streamed) == whole[0].pcm
    # each sentence's audio is as long as the server made it: longer text, longer audio
    assert streamed[0].seconds > streamed[2].seconds
    assert all(rms(c.pcm) > 0.02 for c in streamed)


def test_token_streaming_modes_give_smaller_pieces(
    provider: SovitsProvider, fake: FakeSovits, ctx: ProviderContext, reference: Path
) -> None:
    pieces = list(provider.synthesize(THREE_SENTENCES, SovitsSettings(serverUrl=fake.url, streamingMode=2), ctx))
    sentences = list(provider.synthesize(THREE_SENTENCES, SovitsSettings(serverUrl=fake.url, streamingMode=1), ctx))

    assert len(pieces) > len(sentences)
    assert b"".join(c.pcm for c in pieces) == b"".join(c.pcm for c in sentences)


def test_speed_is_sent_as_speed_factor(provider: SovitsProvider, fake: FakeSovits, ctx: ProviderContext, reference: Path) -> None:
    settings = SovitsSettings(serverUrl=fake.url, streamingMode=0)
    normal = sum(c.seconds for c in provider.synthesize("Speed changes how long this takes.", settings, ctx))
    fast = sum(c.seconds for c in provider.synthesize("Speed changes how long this takes.", settings.with_request(None, 2.0), ctx))

    assert fake.requests[-1]["speed_factor"] == 2.0
    assert fast < normal * 0.75


def test_v1_api(provider: SovitsProvider, fake_v1: FakeSovits, ctx: ProviderContext, reference: Path) -> None:
    settings = SovitsSettings(serverUrl=fake_v1.url, apiVersion="v1", textLang="en", promptLang="en", speed=1.5, temperature=0.6)
    chunks = list(provider.synthesize("An older server still speaks.", settings, ctx))

    sent = fake_v1.requests[-1]
    assert sent["refer_wav_path"] == str(reference) and sent["prompt_text"] == REFERENCE_TEXT
    assert (sent["prompt_language"], sent["text_language"], sent["speed"], sent["temperature"]) == ("en", "en", 1.5, 0.6)
    assert "streaming_mode" not in sent and "text_lang" not in sent
    assert len(chunks) == 1 and chunks[0].sample_rate == 32000 and rms(chunks[0].pcm) > 0.02


def test_mp3_reference(provider: SovitsProvider, fake: FakeSovits, ctx: ProviderContext) -> None:
    from tests.providers.sovits.conftest import speaker_dir, write_reference

    mp3 = write_reference(speaker_dir(ctx), kind="mp3")
    chunks = list(provider.synthesize("From an MP3.", SovitsSettings(serverUrl=fake.url), ctx))

    assert fake.requests[-1]["ref_audio_path"] == str(mp3)
    assert chunks and rms(b"".join(c.pcm for c in chunks)) > 0.02


def test_speakers_are_switched_by_speaker_id(provider: SovitsProvider, fake: FakeSovits, ctx: ProviderContext, reference: Path) -> None:
    from tests.providers.sovits.conftest import speaker_dir, write_reference

    other = write_reference(speaker_dir(ctx, "grandma"), name="kitchen", transcript="Grandma says hello.")
    list(provider.synthesize("Hi.", SovitsSettings(serverUrl=fake.url).with_request("grandma", None), ctx))

    assert fake.requests[-1]["ref_audio_path"] == str(other)
    assert fake.requests[-1]["prompt_text"] == "Grandma says hello."
    assert [v.name for v in provider.voices(ctx)] == ["default", "grandma"]


def test_kept_alive_connection_survives_a_server_restart(
    provider: SovitsProvider, ctx: ProviderContext, reference: Path
) -> None:
    first = FakeSovits().start()
    port = first.port
    settings = SovitsSettings(serverUrl=first.url)
    assert list(provider.synthesize("Before.", settings, ctx))
    first.stop()  # the agent's kept-alive socket now points at a closed server
    second = FakeSovits(port=port).start()
    try:
        assert list(provider.synthesize("After.", settings, ctx))
        assert second.requests[-1]["text"] == "After."
    finally:
        second.stop()


def test_cache_tag_follows_the_reference(provider: SovitsProvider, ctx: ProviderContext, reference: Path) -> None:
    settings = SovitsSettings()
    tag = provider.asset_tag(settings, ctx)
    assert provider.asset_tag(settings, ctx) == tag
    assert provider.asset_tag(settings.model_copy(update={"text_lang": "en"}), ctx) != tag

    reference.with_suffix(".txt").write_text("Someone else said this.", encoding="utf-8")
    changed_text = provider.asset_tag(settings, ctx)
    assert changed_text != tag

    from tests.providers.sovits.conftest import write_reference

    write_reference(reference.parent, seconds=6.0)  # same names, new audio
    assert provider.asset_tag(settings, ctx) not in (tag, changed_text)


def test_a_reference_without_transcript_speaks_reference_free_and_says_so_once(
    provider: SovitsProvider, fake: FakeSovits, ctx: ProviderContext, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.providers.sovits.conftest import speaker_dir, write_reference

    audio = write_reference(speaker_dir(ctx), transcript=None)
    settings = SovitsSettings(serverUrl=fake.url, streamingMode=0)
    with caplog.at_level(logging.WARNING, logger="providers.sovits.engine"):
        for _ in range(2):
            assert list(provider.synthesize("No words for the reference.", settings, ctx))
    assert fake.requests[-1]["prompt_text"] == "" and fake.requests[-1]["ref_audio_path"] == str(audio)
    warnings = [r.getMessage() for r in caplog.records if "reference-free" in r.getMessage()]
    assert len(warnings) == 1 and str(audio.with_suffix(".txt")) in warnings[0]
