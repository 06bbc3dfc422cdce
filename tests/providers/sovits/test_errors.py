"""Every way a GPT-SoVITS server says no, and what the user reads then."""

from __future__ import annotations

from pathlib import Path

import pytest

from providers.base import ProviderContext, ProviderError, ProviderUnavailableError
from providers.sovits.client import SovitsClient, TtsRequest
from providers.sovits.config import SovitsSettings
from providers.sovits.engine import SovitsProvider
from tests.fake_sovits import FakeOptions, FakeSovits
from tests.mosquitto import free_port
from tests.providers.sovits.conftest import speaker_dir, write_reference


def speak(provider: SovitsProvider, settings: SovitsSettings, ctx: ProviderContext, text: str = "Hello there.") -> list[bytes]:
    return [c.pcm for c in provider.synthesize(text, settings, ctx)]


def test_http_400_message_is_passed_on(provider: SovitsProvider, ctx: ProviderContext, reference: Path) -> None:
    old_model = FakeSovits(FakeOptions(model_version="v1")).start()  # a v1 model speaks no Korean
    try:
        with pytest.raises(ProviderError, match="refused the request: text_lang: ko is not supported in version v1"):
            speak(provider, SovitsSettings(serverUrl=old_model.url, textLang="ko"), ctx)
    finally:
        old_model.stop()


def test_tts_failed_carries_the_exception(provider: SovitsProvider, fake: FakeSovits, ctx: ProviderContext) -> None:
    broken = speaker_dir(ctx) / "broken.mp3"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"this is not audio at all" * 100)
    broken.with_suffix(".txt").write_text("words", encoding="utf-8")

    with pytest.raises(ProviderError, match=r"could not synthesize: Error opening .*broken\.mp3"):
        speak(provider, SovitsSettings(serverUrl=fake.url, streamingMode=0), ctx)


def test_reference_length_refused_by_the_server(provider: SovitsProvider, fake: FakeSovits, ctx: ProviderContext) -> None:
    write_reference(speaker_dir(ctx), kind="mp3", seconds=12.0)  # MP3: only the server can tell its length

    with pytest.raises(ProviderError, match="outside the 3-10 second range"):
        speak(provider, SovitsSettings(serverUrl=fake.url, streamingMode=0), ctx)


def test_long_wav_reference_is_refused_before_asking(provider: SovitsProvider, fake: FakeSovits, ctx: ProviderContext) -> None:
    wav = write_reference(speaker_dir(ctx), seconds=12.0)

    with pytest.raises(ProviderError, match=rf"{wav.name} is 12.0 s long; the server accepts 3-10 s"):
        speak(provider, SovitsSettings(serverUrl=fake.url), ctx)
    assert fake.requests == []


def test_failure_while_streaming_points_at_the_log(provider: SovitsProvider, fake: FakeSovits, ctx: ProviderContext) -> None:
    write_reference(speaker_dir(ctx), kind="mp3", seconds=12.0)

    with pytest.raises(ProviderError, match="broke off its answer.*sovits-server.log.*streamingMode to 0"):
        speak(provider, SovitsSettings(serverUrl=fake.url, streamingMode=1), ctx)
    # the connection was dropped; the next request gets a fresh one
    write_reference(speaker_dir(ctx), kind="mp3", seconds=5.0)
    assert speak(provider, SovitsSettings(serverUrl=fake.url, streamingMode=1), ctx)


def test_v1_error_body(fake_v1: FakeSovits) -> None:
    settings = SovitsSettings(serverUrl=fake_v1.url, apiVersion="v1")
    request = TtsRequest("/", {"text": "x", "text_language": "en", "refer_wav_path": "", "prompt_text": ""})
    client = SovitsClient()
    with pytest.raises(ProviderError, match="refused the request: 未指定参考音频且接口无预设"):
        list(client.speak(settings, request))
    client.close()


def test_v1_failure_mid_answer(provider: SovitsProvider, fake_v1: FakeSovits, ctx: ProviderContext, reference: Path) -> None:
    settings = SovitsSettings(serverUrl=fake_v1.url, apiVersion="v1", textLang="xx")  # api.py fails inside its stream

    with pytest.raises(ProviderError, match="broke off its answer"):
        speak(provider, settings, ctx)


def test_validation_error_names_the_field(fake: FakeSovits) -> None:
    client = SovitsClient()
    with pytest.raises(ProviderError, match=r"HTTP 422\): body.top_k: Input should be a valid integer"):
        list(client.speak(SovitsSettings(serverUrl=fake.url), TtsRequest("/tts", {"text": "x", "top_k": "many"})))
    client.close()


@pytest.mark.parametrize(("server_api", "configured", "advice"), [("v1", "v2", '"v1"'), ("v2", "v1", '"v2"')])
def test_wrong_api_version(
    provider: SovitsProvider, ctx: ProviderContext, reference: Path, server_api: str, configured: str, advice: str
) -> None:
    server = FakeSovits(FakeOptions(api=server_api)).start()
    try:
        with pytest.raises(ProviderUnavailableError, match=f"set tts.sovits.apiVersion to {advice}"):
            speak(provider, SovitsSettings(serverUrl=server.url, apiVersion=configured), ctx)  # type: ignore[arg-type]
    finally:
        server.stop()


def test_timeout(provider: SovitsProvider, fake: FakeSovits, ctx: ProviderContext, reference: Path) -> None:
    fake.options.delay = 2.0
    with pytest.raises(ProviderError, match=r"did not finish within 0.3 s \(tts.sovits.timeout\)"):
        speak(provider, SovitsSettings(serverUrl=fake.url, timeout=0.3), ctx)
    fake.options.delay = 0.0
    assert speak(provider, SovitsSettings(serverUrl=fake.url), ctx)


def test_timeout_while_streaming(provider: SovitsProvider, fake: FakeSovits, ctx: ProviderContext, reference: Path) -> None:
    fake.options.delay = 2.0
    with pytest.raises(ProviderError, match="did not finish within 0.3 s"):
        speak(provider, SovitsSettings(serverUrl=fake.url, timeout=0.3, streamingMode=1), ctx)


def test_connection_refused(provider: SovitsProvider, ctx: ProviderContext, reference: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ProviderUnavailableError, match=r"not running \(connection refused\): start it with `voice-agent sovits start`"):
        speak(provider, SovitsSettings(serverUrl=url), ctx)


def test_not_a_wav(ctx: ProviderContext, reference: Path, fake: FakeSovits) -> None:
    client = SovitsClient()
    body: dict[str, object] = {"text": "Hi.", "text_lang": "en", "ref_audio_path": str(reference), "prompt_lang": "en", "media_type": "raw"}
    with pytest.raises(ProviderError, match="answered something that is not a WAV"):
        list(client.speak(SovitsSettings(serverUrl=fake.url), TtsRequest("/tts", body)))
    client.close()
