"""One speak request through the pipeline with stand-in engines: the cache, the Piper fallback
and what streaming changes about it (audio already sent cannot be taken back)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agent.config.model import VoiceConfig
from agent.errors import ServiceError
from agent.speak.budget import AudioBudget
from agent.speak.cache import AudioCache
from agent.speak.delivery import keep_audio
from agent.speak.engines import ProviderPool
from agent.speak.pipeline import SpeakFailed, SpeakJob, run_speak
from providers.base import AudioChunk, ProviderContext, ProviderError, VoiceInfo, VoiceNotFoundError, VoiceUnavailableError
from providers.settings_base import ProviderSettings
from tests.contexts import loose_context


@dataclass
class Engine:
    """Says each sentence as one chunk of a fixed sample value; fails where told to."""

    name: str
    value: int
    rate: int = 16000
    fail_after: int | None = None  # chunks produced before raising
    error: Exception = field(default_factory=lambda: ProviderError("engine broke"))
    tag: str = "v1"
    calls: int = 0
    asked: list[tuple[str, ProviderSettings, ProviderContext]] = field(default_factory=list)
    tagged: list[tuple[ProviderSettings, ProviderContext]] = field(default_factory=list)

    made: int = 0  # chunks of the request so far (the pipeline calls once per piece): ``Run`` resets it

    def synthesize(self, text: str, settings: ProviderSettings, ctx: ProviderContext) -> Iterator[AudioChunk]:
        self.calls += 1
        self.asked.append((text, settings, ctx))
        for sentence in (s for s in text.split(".") if s.strip()):
            if self.fail_after is not None and self.made >= self.fail_after:
                raise self.error
            self.made += 1
            yield AudioChunk(self.value.to_bytes(2, "little", signed=True) * 100 * self.made, self.rate, sentence)
        if self.fail_after is not None and self.made >= self.fail_after:
            raise self.error

    def voices(self, ctx: ProviderContext) -> list[VoiceInfo]:
        return []

    def asset_tag(self, settings: ProviderSettings, ctx: ProviderContext) -> str:
        self.tagged.append((settings, ctx))
        return self.tag

    def preload(self, settings: ProviderSettings, ctx: ProviderContext) -> None:
        pass

    def close(self) -> None:
        pass


class Run:
    def __init__(self, tmp_path: Path, engines: dict[str, Engine], cache: bool = False,
                 max_seconds: float = 3600) -> None:
        self.engines = engines
        self.budget = AudioBudget(max_seconds)
        self.progress = 0  # chunks the pipeline reported as made
        self.pool = ProviderPool(factory=lambda name: engines[name])  # type: ignore[arg-type,return-value]
        self.ctx = loose_context(tmp_path, (tmp_path / "voices",))
        self.cache = AudioCache(tmp_path / "cache", 10**6) if cache else None
        self.chunks: list[tuple[int, AudioChunk]] = []
        self.fallbacks: list[tuple[str, str]] = []

    def __call__(self, text: str = "One. Two. Three.", provider: str | None = "kokoro", stream: bool = False,
                 config: VoiceConfig | None = None, speed: float | None = None, voice: str | None = None,
                 received: float | None = None, lang: str | None = None):  # type: ignore[no-untyped-def]
        for engine in self.engines.values():
            engine.made = 0
        job = SpeakJob("j1", text, provider, voice, speed, stream,  # type: ignore[arg-type]
                       time.perf_counter() if received is None else received, lang)
        result = run_speak(job, config or VoiceConfig(), self.ctx, self.pool, self.cache,
                           lambda seq, chunk: self.chunks.append((seq, chunk)),
                           lambda failed, reason, code: self.fallbacks.append((failed, reason)),
                           budget=self.budget, on_progress=self._made)
        keep_audio(self.cache, text, result)  # as the speak service does once the answer has gone
        return result

    def _made(self) -> None:
        self.progress += 1


def pcm(value: int, sentences: int = 3) -> bytes:
    return b"".join(value.to_bytes(2, "little", signed=True) * 100 * (i + 1) for i in range(sentences))


def test_the_requested_provider_speaks_every_sentence(tmp_path: Path) -> None:
    run = Run(tmp_path, {"kokoro": Engine("kokoro", 7, rate=24000), "piper": Engine("piper", 1)})
    result = run(stream=True)
    assert (result.provider, result.sample_rate, result.chunks, result.cached) == ("kokoro", 24000, 3, False)
    assert result.pcm == pcm(7) and result.fallback_reason is None
    assert [seq for seq, _ in run.chunks] == [0, 1, 2] and not run.fallbacks
    assert result.seconds == pytest.approx(len(pcm(7)) / 2 / 24000)
    assert result.voice == VoiceConfig().tts.kokoro.voice_name == "af_heart"  # no voice named: the language's own


def test_the_configured_provider_speaks_when_the_request_names_none(tmp_path: Path) -> None:
    run = Run(tmp_path, {"kokoro": Engine("kokoro", 7), "piper": Engine("piper", 1)})
    config = VoiceConfig.model_validate({"tts": {"provider": "kokoro"}})
    assert run(provider=None, config=config).provider == "kokoro"
    assert run(provider=None).provider == "piper"


def test_a_failure_before_any_audio_falls_back_to_piper(tmp_path: Path) -> None:
    run = Run(tmp_path, {"kokoro": Engine("kokoro", 7, fail_after=0), "piper": Engine("piper", 1)})
    result = run(stream=True)
    assert result.provider == "piper" and result.pcm == pcm(1)
    assert result.fallback_reason == "engine broke"
    assert run.fallbacks == [("kokoro", "engine broke")]
    assert [seq for seq, _ in run.chunks] == [0, 1, 2]


def test_no_fallback_once_streamed_audio_went_out(tmp_path: Path) -> None:
    """The listener already heard the first sentence in one voice: switching voices mid-way
    would be worse than an error, so the request fails with the provider's code."""
    engines = {"kokoro": Engine("kokoro", 7, fail_after=1, error=VoiceNotFoundError("lost the voice")),
               "piper": Engine("piper", 1)}
    run = Run(tmp_path, engines)
    with pytest.raises(SpeakFailed) as failed:
        run(stream=True)
    assert (failed.value.code, failed.value.provider, str(failed.value)) == ("voice_not_found", "kokoro", "lost the voice")
    assert [seq for seq, _ in run.chunks] == [0] and not run.fallbacks
    assert engines["piper"].calls == 0


def test_without_streaming_a_late_failure_still_falls_back(tmp_path: Path) -> None:
    engines = {"kokoro": Engine("kokoro", 7, fail_after=2), "piper": Engine("piper", 1)}
    run = Run(tmp_path, engines)
    result = run(stream=False)
    assert result.provider == "piper" and result.pcm == pcm(1) and run.chunks == []
    assert run.fallbacks == [("kokoro", "engine broke")]


def test_an_engine_crash_is_a_provider_error_that_falls_back(tmp_path: Path) -> None:
    engines = {"kokoro": Engine("kokoro", 7, fail_after=0, error=ZeroDivisionError("bug")), "piper": Engine("piper", 1)}
    result = Run(tmp_path, engines)()
    assert result.provider == "piper" and result.fallback_reason == "kokoro failed: ZeroDivisionError: bug"


def test_fallback_off_means_the_error_is_the_answer(tmp_path: Path) -> None:
    engines = {"kokoro": Engine("kokoro", 7, fail_after=0), "piper": Engine("piper", 1)}
    run = Run(tmp_path, engines)
    config = VoiceConfig.model_validate({"tts": {"kokoro": {"autoFallbackToPiper": False}}})
    with pytest.raises(SpeakFailed) as failed:
        run(config=config)
    assert (failed.value.code, failed.value.provider) == ("provider_error", "kokoro")
    assert engines["piper"].calls == 0 and not run.fallbacks


def test_piper_failing_is_not_retried_with_piper(tmp_path: Path) -> None:
    engines = {"piper": Engine("piper", 1, fail_after=0)}
    run = Run(tmp_path, engines)
    with pytest.raises(SpeakFailed) as failed:
        run(provider="piper")
    assert failed.value.provider == "piper" and engines["piper"].calls == 1 and not run.fallbacks


def test_both_failing_names_both_reasons(tmp_path: Path) -> None:
    engines = {"kokoro": Engine("kokoro", 7, fail_after=0),
               "piper": Engine("piper", 1, fail_after=0, error=VoiceNotFoundError("no piper voice"))}
    with pytest.raises(SpeakFailed) as failed:
        Run(tmp_path, engines)()
    assert failed.value.code == "voice_not_found" and failed.value.provider == "piper"
    assert str(failed.value) == "engine broke; Piper fallback failed too: no piper voice"


def test_silence_is_no_audio(tmp_path: Path) -> None:
    engines = {"piper": Engine("piper", 1)}
    with pytest.raises(SpeakFailed) as failed:
        Run(tmp_path, engines)(text=" . . ", provider="piper")
    assert failed.value.code == "no_audio"


def test_a_sample_rate_change_mid_utterance_is_refused(tmp_path: Path) -> None:
    class Wobbly(Engine):
        def synthesize(self, text: str, settings: ProviderSettings, ctx: ProviderContext) -> Iterator[AudioChunk]:
            yield AudioChunk(b"\x01\x00" * 10, 16000)
            yield AudioChunk(b"\x01\x00" * 10, 22050)

    engines = {"piper": Wobbly("piper", 1)}
    with pytest.raises(SpeakFailed, match="changed sample rate mid-utterance"):
        Run(tmp_path, engines)(provider="piper")


def test_invalid_overrides_are_an_invalid_payload(tmp_path: Path) -> None:
    run = Run(tmp_path, {"piper": Engine("piper", 1)})
    with pytest.raises(SpeakFailed) as failed:
        run(provider="piper", speed=9.0)
    assert failed.value.code == "invalid_payload" and "speakingRate" in str(failed.value)


def test_the_cache_serves_the_same_audio_until_the_assets_change(tmp_path: Path) -> None:
    engines = {"kokoro": Engine("kokoro", 7), "piper": Engine("piper", 1)}
    run = Run(tmp_path, engines, cache=True)
    first = run(stream=True)
    second = run(stream=True)
    assert (first.cached, second.cached) == (False, True) and second.pcm == first.pcm
    assert engines["kokoro"].calls == 2  # one call per piece: the first sentence, then the rest
    assert second.chunks == 1 and len(run.chunks) == 3 and second.cache_key == first.cache_key  # a hit: sent by the caller
    engines["kokoro"].tag = "v2"  # a retrained voice: old audio must not be served
    assert run().cached is False and engines["kokoro"].calls == 4
    assert run(speed=1.5).cached is False  # other settings, other audio


def test_a_fallback_is_cached_under_piper_not_the_failed_provider(tmp_path: Path) -> None:
    engines = {"kokoro": Engine("kokoro", 7, fail_after=0), "piper": Engine("piper", 1)}
    run = Run(tmp_path, engines, cache=True)
    run()
    engines["kokoro"].fail_after = None
    again = run()
    assert again.provider == "kokoro" and again.cached is False and again.pcm == pcm(7)
    assert run(provider="piper").cached is True


def test_a_provider_that_cannot_name_its_assets_falls_back(tmp_path: Path) -> None:
    class Missing(Engine):
        def asset_tag(self, settings: ProviderSettings, ctx: ProviderContext) -> str:
            raise VoiceNotFoundError("no such voice")

    engines = {"kokoro": Missing("kokoro", 7), "piper": Engine("piper", 1)}
    run = Run(tmp_path, engines, cache=True)
    result = run()
    assert result.provider == "piper" and result.fallback_reason == "no such voice"
    assert engines["kokoro"].calls == 0


def test_first_audio_is_timed_from_the_request(tmp_path: Path) -> None:
    class Slow(Engine):
        def synthesize(self, text: str, settings: ProviderSettings, ctx: ProviderContext) -> Iterator[AudioChunk]:
            time.sleep(0.05)
            yield AudioChunk(b"\x01\x00" * 10, 16000)

    result = Run(tmp_path, {"piper": Slow("piper", 1)})(provider="piper")
    assert 50 <= result.first_audio_ms < 5000


def test_the_engine_gets_the_profiles_settings_with_the_requests_overrides(tmp_path: Path) -> None:
    engines = {"kokoro": Engine("kokoro", 7), "piper": Engine("piper", 1)}
    run = Run(tmp_path, engines)
    assert VoiceConfig().tts.kokoro.voice != "jm_kumo"  # type: ignore[attr-defined]
    result = run(voice="jm_kumo", speed=1.25, lang="en-us")
    text, settings, ctx = engines["kokoro"].asked[0]
    assert [asked[0] for asked in engines["kokoro"].asked] == ["One.", "Two. Three."] and ctx == run.ctx
    assert (settings.voice_name, settings.speed, settings.lang_code) == ("jm_kumo", 1.25, "a")  # type: ignore[attr-defined]
    assert result.voice == "jm_kumo"


def test_the_fallback_keeps_the_requests_speed_but_not_its_voice(tmp_path: Path) -> None:
    engines = {"kokoro": Engine("kokoro", 7, fail_after=0), "piper": Engine("piper", 1)}
    run = Run(tmp_path, engines)
    result = run(voice="jf_alpha", speed=1.25)
    _, settings, _ = engines["piper"].asked[0]
    assert settings.voice_name == VoiceConfig().tts.piper.voice_name  # a Kokoro voice means nothing to Piper
    assert settings.speaking_rate == 1.25  # type: ignore[attr-defined]
    assert (result.provider, result.voice) == ("piper", VoiceConfig().tts.piper.voice_name)


def test_a_cache_hit_says_what_it_is(tmp_path: Path) -> None:
    engines = {"kokoro": Engine("kokoro", 7, rate=24000), "piper": Engine("piper", 1)}
    run = Run(tmp_path, engines, cache=True)
    run(voice="jf_alpha")
    hit = run(voice="jf_alpha", received=time.perf_counter() - 0.5, stream=False)
    assert (hit.provider, hit.voice, hit.sample_rate, hit.cached, hit.chunks) == ("kokoro", "jf_alpha", 24000, True, 1)
    assert hit.pcm == pcm(7) and 500 <= hit.first_audio_ms < 5000 and hit.fallback_reason is None
    assert run.chunks == []  # not streamed: nothing sent chunk by chunk


def test_streamed_chunks_are_the_engines_audio_in_order(tmp_path: Path) -> None:
    run = Run(tmp_path, {"kokoro": Engine("kokoro", 7, rate=24000), "piper": Engine("piper", 1)})
    run(stream=True)
    assert [c.pcm for _, c in run.chunks] == [b"\x07\x00" * 100 * n for n in (1, 2, 3)]
    assert {c.sample_rate for _, c in run.chunks} == {24000}


def test_a_crash_after_streamed_audio_is_a_provider_error_without_fallback(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engines = {"kokoro": Engine("kokoro", 7, fail_after=1, error=KeyError("k")), "piper": Engine("piper", 1)}
    run = Run(tmp_path, engines)
    with pytest.raises(SpeakFailed) as failed:
        run(stream=True)
    assert (failed.value.code, failed.value.provider) == ("provider_error", "kokoro")
    assert str(failed.value) == "kokoro failed: KeyError: 'k'"
    assert engines["piper"].calls == 0 and len(run.chunks) == 1
    assert "provider kokoro crashed" in caplog.text


def test_a_provider_with_no_audio_falls_back(tmp_path: Path) -> None:
    class Mute(Engine):
        def synthesize(self, text: str, settings: ProviderSettings, ctx: ProviderContext) -> Iterator[AudioChunk]:
            return iter(())

    engines = {"kokoro": Mute("kokoro", 7), "piper": Engine("piper", 1)}
    result = Run(tmp_path, engines)()
    assert result.provider == "piper" and result.fallback_reason == "kokoro produced no audio for this text"


def test_a_full_disk_costs_the_cache_not_the_answer(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run(tmp_path, {"piper": Engine("piper", 1)}, cache=True)
    assert run.cache is not None

    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run.cache, "put", full)
    result = run(provider="piper")
    assert result.pcm == pcm(1) and not result.cached
    assert "could not cache audio" in caplog.text and "No space left" in caplog.text


def test_the_cache_key_names_the_voice_and_its_assets(tmp_path: Path) -> None:
    engines = {"kokoro": Engine("kokoro", 7), "piper": Engine("piper", 1)}
    run = Run(tmp_path, engines, cache=True)
    run(voice="jm_kumo")
    settings, ctx = engines["kokoro"].tagged[0]
    assert settings.voice_name == "jm_kumo" and ctx is run.ctx


def test_the_fallback_speaks_in_the_requests_context(tmp_path: Path) -> None:
    engines = {"kokoro": Engine("kokoro", 7, fail_after=0), "piper": Engine("piper", 1)}
    run = Run(tmp_path, engines)
    run()
    assert engines["piper"].asked[0][2] == run.ctx


def test_only_a_streamed_requests_first_piece_has_a_listener_waiting_on_it(tmp_path: Path) -> None:
    engines = {"kokoro": Engine("kokoro", 7), "piper": Engine("piper", 1)}
    run = Run(tmp_path, engines)
    run(stream=True)
    assert [asked[2].listener_waits for asked in engines["kokoro"].asked] == [True, False]
    assert all(asked[2] == replace(run.ctx, listener_waits=asked[2].listener_waits) for asked in engines["kokoro"].asked)
    run()  # a whole file: nobody hears its first sentence before the last is made
    assert [asked[2].listener_waits for asked in engines["kokoro"].asked[2:]] == [False, False]


def test_an_asset_error_keeps_its_code_when_there_is_no_fallback(tmp_path: Path) -> None:
    class Missing(Engine):
        def asset_tag(self, settings: ProviderSettings, ctx: ProviderContext) -> str:
            raise VoiceNotFoundError("no such voice")

    run = Run(tmp_path, {"kokoro": Missing("kokoro", 7), "piper": Engine("piper", 1)}, cache=True)
    config = VoiceConfig.model_validate({"tts": {"kokoro": {"autoFallbackToPiper": False}}})
    with pytest.raises(SpeakFailed) as failed:
        run(config=config)
    assert (failed.value.code, failed.value.provider, str(failed.value)) == ("voice_not_found", "kokoro", "no such voice")


def test_bad_overrides_say_which_field_in_one_line(tmp_path: Path) -> None:
    run = Run(tmp_path, {"piper": Engine("piper", 1), "kokoro": Engine("kokoro", 7)})
    with pytest.raises(SpeakFailed) as failed:
        run(provider="piper", speed=9.0)
    assert str(failed.value) == "not a valid piper request: speakingRate: Input should be less than or equal to 2"
    assert failed.value.provider == "piper"
    with pytest.raises(SpeakFailed) as language:
        run(provider="kokoro", lang="tlh")
    assert language.value.code == "invalid_payload"
    assert str(language.value).startswith("not a valid kokoro request: Kokoro does not speak 'tlh'; it speaks ")


def test_first_audio_is_counted_in_milliseconds_from_the_request(tmp_path: Path) -> None:
    run = Run(tmp_path, {"piper": Engine("piper", 1)}, cache=True)
    def timed(**fields: object) -> tuple[Any, float]:
        """The result, and the most its first audio can honestly be: 10 s plus the call's own time."""
        start = time.perf_counter()
        result = run(provider="piper", received=start - 10, **fields)
        return result, 10000 + (time.perf_counter() - start) * 1000 + 1

    fresh, most = timed()
    assert 10000 <= fresh.first_audio_ms <= most  # milliseconds (seconds would be 10), from the request
    hit, most = timed(stream=True)
    assert hit.cached and 10000 <= hit.first_audio_ms <= most
    assert run.chunks == [] and hit.sample_rate == 16000 and hit.cache_key  # the hit is the caller's to send, whole


def test_without_streaming_a_crash_after_audio_still_falls_back(tmp_path: Path) -> None:
    engines = {"kokoro": Engine("kokoro", 7, fail_after=2, error=KeyError("k")), "piper": Engine("piper", 1)}
    result = Run(tmp_path, engines)(stream=False)
    assert result.provider == "piper" and result.fallback_reason == "kokoro failed: KeyError: 'k'"


def test_log_lines_say_what_happened(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    engines = {"kokoro": Engine("kokoro", 7, fail_after=0, error=KeyError("k")), "piper": Engine("piper", 1)}
    run = Run(tmp_path, engines, cache=True)
    assert run.cache is not None

    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run.cache, "put", full)
    run()
    messages = [r.getMessage() for r in caplog.records]
    assert "provider kokoro crashed" in messages
    assert "could not cache audio: [Errno 28] No space left on device" in messages


def test_a_text_surely_too_long_is_refused_before_any_engine_or_fallback(tmp_path: Path) -> None:
    """"One. Two. Three." makes at least 11 letters x 0.03 s = 0.33 s: over a 0.3 s cap."""
    engines = {"kokoro": Engine("kokoro", 7), "piper": Engine("piper", 1)}
    run = Run(tmp_path, engines, max_seconds=0.3)
    with pytest.raises(SpeakFailed) as refused:
        run(stream=True)
    assert (refused.value.code, refused.value.provider) == ("audio_too_long", "kokoro")
    assert str(refused.value).startswith("this text makes at least 0.33 s of audio; the limit is 0.3 s")
    assert engines["kokoro"].calls == engines["piper"].calls == 0 and not run.fallbacks and not run.chunks


def test_the_estimate_uses_the_speed_in_force(tmp_path: Path) -> None:
    engines = {"piper": Engine("piper", 1)}
    run = Run(tmp_path, engines, max_seconds=0.3)
    assert run(provider="piper", speed=1.25).provider == "piper"  # 0.33 s / 1.25 = 0.264 s
    config = VoiceConfig.model_validate({"tts": {"piper": {"speakingRate": 1.25}}})
    assert run(provider="piper", config=config).provider == "piper"
    with pytest.raises(SpeakFailed):
        run(provider="piper", speed=1.0)


def test_a_cached_text_is_refused_too_once_the_cap_is_below_it(tmp_path: Path) -> None:
    engines = {"piper": Engine("piper", 1)}
    run = Run(tmp_path, engines, cache=True)
    assert run(provider="piper").cached is False
    run.budget = AudioBudget(0.3)
    with pytest.raises(SpeakFailed) as refused:
        run(provider="piper")
    assert refused.value.code == "audio_too_long"


@pytest.mark.parametrize("stream", [True, False])
def test_audio_exactly_at_the_cap_is_spoken_and_one_sample_over_stops(tmp_path: Path, stream: bool) -> None:
    """Three sentences of 100, 200 and 300 samples at 100 Hz: 1 s, then 3 s, then 6 s made."""
    engines = {"kokoro": Engine("kokoro", 7, rate=100), "piper": Engine("piper", 1, rate=100)}
    assert len(Run(tmp_path, engines, max_seconds=6)(stream=stream).pcm) == 600 * 2
    run = Run(tmp_path, engines, max_seconds=5.99)
    with pytest.raises(SpeakFailed) as stopped:
        run(stream=stream)
    assert (stopped.value.code, stopped.value.provider) == ("audio_too_long", "kokoro")
    assert str(stopped.value).startswith("stopped: the text makes more than 5.99 s of audio")
    # the chunk that went over was never sent, and Piper would make as much: no fallback
    assert [seq for seq, _ in run.chunks] == ([0, 1] if stream else [])
    assert engines["piper"].calls == 0 and not run.fallbacks


def test_piper_stopped_at_the_cap_after_a_fallback_says_so(tmp_path: Path) -> None:
    engines = {"kokoro": Engine("kokoro", 7, fail_after=0), "piper": Engine("piper", 1, rate=100)}
    run = Run(tmp_path, engines, max_seconds=2)
    with pytest.raises(SpeakFailed) as stopped:
        run()
    assert (stopped.value.code, stopped.value.provider) == ("audio_too_long", "piper")
    assert run.fallbacks == [("kokoro", "engine broke")]


def test_each_chunk_made_is_progress(tmp_path: Path) -> None:
    run = Run(tmp_path, {"kokoro": Engine("kokoro", 7), "piper": Engine("piper", 1)})
    run(stream=False)
    assert run.progress == 3
    run(text="One. Two.")
    assert run.progress == 5


def test_an_engine_stopped_at_the_cap_is_closed_at_once(tmp_path: Path) -> None:
    """Piper hands its arena back when its generator closes: that must happen when the request
    stops, not when the failure (which references the generator's frame) is collected."""
    closed: list[bool] = []

    class Tidy(Engine):
        def synthesize(self, text: str, settings: ProviderSettings, ctx: ProviderContext) -> Iterator[AudioChunk]:
            try:
                yield from super().synthesize(text, settings, ctx)
            finally:
                closed.append(True)

    run = Run(tmp_path, {"piper": Tidy("piper", 1, rate=100)}, max_seconds=2)
    with pytest.raises(SpeakFailed) as stopped:
        run(provider="piper")
    # the first sentence's call ended; the second's was closed at the cap while the failure is still held here
    assert stopped.value.code == "audio_too_long" and closed == [True, True]
def test_a_door_that_refuses_the_audio_stops_the_request_at_that_sentence(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engines = {"kokoro": Engine("kokoro", 7), "piper": Engine("piper", 1)}
    run = Run(tmp_path, engines)
    handed: list[int] = []

    def gone(seq: int, chunk: AudioChunk) -> None:  # what the Wyoming door's AudioOut does once its client left
        handed.append(seq)
        raise ServiceError("client_gone", "the client has gone")

    job = SpeakJob("j1", "One. Two. Three.", "kokoro", None, None, True, time.perf_counter(), None)  # type: ignore[arg-type]
    with pytest.raises(ServiceError) as stopped:
        run_speak(job, VoiceConfig(), run.ctx, run.pool, None, gone, lambda failed, reason, code: run.fallbacks.append((failed, reason)),
                  budget=run.budget)
    assert stopped.value.code == "client_gone" and handed == [0]
    assert run.fallbacks == [] and engines["piper"].calls == 0, "not a provider failure: nothing falls back"
    assert "crashed" not in caplog.text


# -- never a silent wrong voice (issue 19 §4) ------------------------------------------------------


class PiperVoices(Engine):
    """Piper whose configured voices fail as told; the bundled voice always speaks."""

    def __init__(self, broken: dict[str, Exception]) -> None:
        super().__init__("piper", 1)
        self.broken = broken

    def synthesize(self, text: str, settings: ProviderSettings, ctx: ProviderContext) -> Iterator[AudioChunk]:
        error = self.broken.get(settings.voice_name)
        if error is not None:
            self.calls += 1
            raise error
        return super().synthesize(text, settings, ctx)


LOST = VoiceConfig.model_validate({"tts": {"piper": {"model": "household", "speakerId": 2}}})


@pytest.mark.parametrize("error", [VoiceNotFoundError("household is gone"), VoiceUnavailableError("household is corrupt")])
def test_a_configured_piper_voice_that_cannot_load_is_spoken_by_the_bundled_voice(tmp_path: Path, error: ProviderError) -> None:
    engines = {"piper": PiperVoices({"household": error})}
    run = Run(tmp_path, engines)
    result = run(provider=None, config=LOST)
    assert (result.provider, result.voice, result.pcm) == ("piper", "en_US-joe-medium", pcm(1))
    assert (result.fallback_code, result.fallback_reason) == (error.code, str(error))
    assert run.fallbacks == [("piper", str(error))]
    assert engines["piper"].asked[-1][1].speaker_id is None  # the bundled voice has one speaker


def test_a_voice_the_request_names_is_not_replaced_by_the_bundled_one(tmp_path: Path) -> None:
    run = Run(tmp_path, {"piper": PiperVoices({"household": VoiceNotFoundError("household is gone")})})
    with pytest.raises(SpeakFailed) as failed:
        run(provider="piper", voice="household")
    assert failed.value.code == "voice_not_found" and not run.fallbacks


def test_an_engine_failure_is_not_mended_by_another_voice(tmp_path: Path) -> None:
    run = Run(tmp_path, {"piper": PiperVoices({"household": ProviderError("espeak crashed")})})
    with pytest.raises(SpeakFailed) as failed:
        run(provider=None, config=LOST)
    assert failed.value.code == "provider_error" and not run.fallbacks


def test_a_fallback_whose_piper_voice_is_lost_too_ends_at_the_bundled_voice(tmp_path: Path) -> None:
    engines = {"kokoro": Engine("kokoro", 7, fail_after=0, error=VoiceNotFoundError("no af_heart")),
               "piper": PiperVoices({"household": VoiceUnavailableError("household is corrupt")})}
    run = Run(tmp_path, engines)
    result = run(config=LOST)
    assert (result.voice, result.fallback_code) == ("en_US-joe-medium", "voice_not_found")
    assert result.fallback_reason == "no af_heart; Piper's voice failed too: household is corrupt"


def test_the_fallback_code_is_the_failures_code(tmp_path: Path) -> None:
    run = Run(tmp_path, {"kokoro": Engine("kokoro", 7, fail_after=0, error=VoiceNotFoundError("no af_heart")),
                         "piper": Engine("piper", 1)})
    result = run()
    assert (result.fallback_code, result.fallback_reason) == ("voice_not_found", "no af_heart")
    assert run(provider="piper").fallback_code is None


@pytest.mark.parametrize("provider", ["kokoro", "piper"])
def test_a_voice_the_request_names_that_is_nowhere_is_an_error_for_every_provider(tmp_path: Path, provider: str) -> None:
    """A typo in a request's voice is the request's error, whichever provider it names; a configured
    voice that cannot load still falls back with its reason."""
    missing = VoiceNotFoundError("no voice 'af_hart'; did you mean af_heart?")
    run = Run(tmp_path, {"kokoro": Engine("kokoro", 7, fail_after=0, error=missing),
                         "piper": Engine("piper", 1, fail_after=0 if provider == "piper" else None, error=missing)})
    with pytest.raises(SpeakFailed) as failed:
        run(provider=provider, voice="af_hart")
    assert (failed.value.code, failed.value.provider) == ("voice_not_found", provider) and not run.fallbacks
    if provider == "kokoro":
        config = VoiceConfig.model_validate({"tts": {"kokoro": {"voice": "af_hart"}}})
        assert run(config=config).fallback_reason == str(missing) and run.fallbacks == [("kokoro", str(missing))]
