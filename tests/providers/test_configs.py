"""Each provider's settings (providers/*/config.py): the bounds of each field, the defaults a user
gets, and the cache keys (each field of each key changes the key: two different voices never
share cached audio)."""

from __future__ import annotations

import pytest

from providers.kokoro.config import KokoroSettings, lang_code_of, voice_language
from providers.piper.config import PiperSettings
from providers.rvc.config import RvcSettings
from providers.sovits.config import SovitsSettings

# -- Piper ---------------------------------------------------------------------------------------


def test_piper_keys_name_the_voice_the_speaker_and_the_rate() -> None:
    assert PiperSettings().cache_key() == "piper:en_US-joe-medium:1"
    assert PiperSettings(model="amy", speakingRate=1.25, speakerId=0).cache_key() == "piper:amy:0:1.25"
    assert PiperSettings(model="amy", speakerId=3).cache_key() == "piper:amy:3:1"


@pytest.mark.parametrize(("model", "kept"), [
    ("amy.onnx", "amy"), ("amy", "amy"), ("/abs/amy.onnx", "/abs/amy.onnx"), ("/abs/..", "/abs/.."),
    ("out/voices/amy/amy.onnx", "out/voices/amy/amy.onnx"), ("a..b/amy.onnx", "a..b/amy.onnx"),
])
def test_a_piper_model_name_is_read_as_the_user_meant_it(model: str, kept: str) -> None:
    assert PiperSettings(model=model).model == kept


@pytest.mark.parametrize("model", ["../amy.onnx", "out/../../amy.onnx", "out/voices/amy", "out/amy.onnxx"])
def test_a_relative_piper_path_stays_below_and_names_an_onnx(model: str) -> None:
    with pytest.raises(ValueError, match="must stay below the profile or the home and end in .onnx"):
        PiperSettings(model=model)


# -- Kokoro --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("voice", "code"), [
    ("af_heart", "a"), ("jm_kumo", "j"), (" bf_emma :0.6,af_sky:0.4", "b"), ("zf_x", "z"), ("ef_dora", "e"),
    ("hf_alpha", "h"), ("pm_santa", "p"), ("if_sara", "i"), ("ff_siwis", "f"),
    ("owner", None), ("xf_y", None), ("ax_y", None), ("afxy", None), ("af", None), ("af_", "a"), ("a_b", None),
    ("Af_heart", None), ("aX_y", None),
])
def test_a_kokoro_voice_name_gives_its_language(voice: str, code: str | None) -> None:
    assert voice_language(voice) == code


@pytest.mark.parametrize(("tag", "code"), [
    ("a", "a"), ("z", "z"), ("x", None), ("en", "a"), (" EN_us ", "a"), ("en-GB", "b"), ("fr-CA", "f"),
    ("pt-BR", "p"), ("pt-PT", "p"), ("cmn", "z"), ("de", None), ("de-DE", None), ("", None), ("ab", None),
])
def test_a_language_tag_gives_kokoros_code(tag: str, code: str | None) -> None:
    assert lang_code_of(tag) == code


def test_kokoro_keys_name_the_language_the_voice_and_the_speed() -> None:
    assert KokoroSettings().cache_key() == "kokoro:a:af_heart:1"


@pytest.mark.parametrize(("settings", "text", "voice", "lang"), [
    ({}, "Good morning.", "af_heart", "a"),  # an English household: English, not jf_alpha
    ({"langCode": "b"}, "Good morning.", "bf_emma", "b"),
    ({"langCode": "j"}, "Good morning.", "jf_alpha", "j"),  # the setting wins over the script
    ({}, "こんにちは。", "jf_alpha", "j"),
    ({}, "你好。", "zf_xiaobei", "z"),
    ({}, "नमस्ते", "hf_alpha", "h"),
    ({"voice": "am_adam"}, "こんにちは。", "am_adam", "a"),  # a named voice is as it is
])
def test_kokoros_default_voice_follows_the_language(settings: dict[str, str], text: str, voice: str, lang: str) -> None:
    spoken = KokoroSettings.model_validate(settings).for_text(text)
    assert (spoken.voice_name, spoken.language) == (voice, lang)
    assert KokoroSettings(voice="af_heart", speed=1.5).cache_key() == "kokoro:a:af_heart:1.5"
    assert KokoroSettings(voice="af_heart", langCode="b").cache_key() == "kokoro:b:af_heart:1"
    pack = KokoroSettings(voice="af_heart", useCustomVoicepack=True, voicepackPath="owner.npy")
    assert pack.cache_key() == "kokoro:a:owner.npy:1"  # a voicepack has no language of its own: American English
    assert pack.voice_name == "owner.npy"
    assert KokoroSettings(voice="bf_emma", useCustomVoicepack=True, voicepackPath="o.npy", langCode="j").language == "j"


def test_a_requested_kokoro_voice_replaces_the_voicepack_and_speaks_its_language() -> None:
    pack = KokoroSettings(useCustomVoicepack=True, voicepackPath="owner.npy", langCode="j")
    asked = pack.with_request("bf_emma", None)
    assert (asked.use_custom_voicepack, asked.voice, asked.lang_code) == (False, "bf_emma", "b")
    kept = pack.with_request("owner_blend", None)  # a name with no language keeps the configured one
    assert (kept.use_custom_voicepack, kept.lang_code) == (False, "j")
    told = pack.with_request("bf_emma", None, "fr")
    assert told.lang_code == "f"
    untouched = pack.with_request(None, 1.5)
    assert (untouched.use_custom_voicepack, untouched.lang_code, untouched.speed) == (True, "j", 1.5)
    assert pack.with_request(None, None, "en-gb").lang_code == "b"


def test_a_language_kokoro_does_not_speak_is_refused_with_those_it_does() -> None:
    with pytest.raises(ValueError) as caught:
        KokoroSettings().language_update("de")
    assert str(caught.value) == (
        "Kokoro does not speak 'de'; it speaks cmn, en, en-gb, en-us, es, fr, fr-fr, hi, it, ja, pt, pt-br, zh")
    assert KokoroSettings().language_update("ja") == {"lang_code": "j"}


# -- RVC -----------------------------------------------------------------------------------------


def test_each_rvc_field_of_the_key_changes_it() -> None:
    assert RvcSettings().cache_key() == "rvc:default:0:1:0.75:0.25:0.33:rmvpe:3:piper:"
    changed = RvcSettings(speakerId="owner", pitchShift="auto", speed=1.5, indexRate=0.5, volumeEnvelope=1.0,
                          protect=0.5, f0Method="crepe", filterRadius=7, baseProvider="kokoro", baseVoice="af_heart")
    assert changed.cache_key() == "rvc:owner:auto:1.5:0.5:1:0.5:crepe:7:kokoro:af_heart"


# -- GPT-SoVITS ----------------------------------------------------------------------------------


def test_sovits_keys_and_audio_knobs() -> None:
    assert SovitsSettings().cache_key() == "sovits:default:1:1"
    assert SovitsSettings(speakerId="owner", temperature=0.5, speed=1.5).cache_key() == "sovits:owner:0.5:1.5"
    assert SovitsSettings().audio_knobs() == "v2|http://127.0.0.1:9880|auto|auto|15|1.0|cut5"
    knobs = SovitsSettings(apiVersion="v1", serverUrl="http://gpu.lan:9000/", textLang="ja", promptLang="en", topK=5,
                           topP=0.5, textSplitMethod="cut0").audio_knobs()
    assert knobs == "v1|http://gpu.lan:9000|ja|en|5|0.5|cut0"


def test_a_sovits_server_is_reached_and_started_where_its_url_says() -> None:
    default = SovitsSettings()
    assert (default.base_url, default.host, default.port) == ("http://127.0.0.1:9880", "127.0.0.1", 9880)
    assert default.server_argv() == ["api_v2.py", "-a", "127.0.0.1", "-p", "9880", "-c", "GPT_SoVITS/configs/tts_infer.yaml"]
    v1 = SovitsSettings(apiVersion="v1", serverUrl="http://[::1]:9000")
    assert v1.server_argv() == ["api.py", "-a", "::1", "-p", "9000"]
    plain = SovitsSettings(serverUrl="http://gpu.lan/", serverArgs=["x.py", "--at={host}:{port}"])
    assert (plain.base_url, plain.port) == ("http://gpu.lan", 80)
    assert plain.server_argv() == ["x.py", "--at=gpu.lan:80"]
    assert SovitsSettings(serverArgs=[]).server_argv() == []


def test_a_sovits_language_tag_is_its_first_part() -> None:
    assert SovitsSettings().language_update(" EN_us ") == {"text_lang": "en"}
    assert SovitsSettings().with_request(None, None, "ja-JP").text_lang == "ja"


@pytest.mark.parametrize("path_map", [{"/srv": "/data"}, {"/": "D:/"}])
def test_a_path_map_maps_absolute_prefixes(path_map: dict[str, str]) -> None:
    assert SovitsSettings(pathMap=path_map).path_map == path_map


@pytest.mark.parametrize("path_map", [{"srv": "/data"}, {"/srv": ""}, {"/srv": "/data", "rel": "/x"}])
def test_a_path_map_refuses_relative_prefixes_and_empty_targets(path_map: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="maps absolute local prefixes to non-empty server prefixes"):
        SovitsSettings(pathMap=path_map)
