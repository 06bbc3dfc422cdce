from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.config.model import MAX_CACHE_MB, ConfigError, VoiceConfig, deep_merge, load_voice_config

REPO = Path(__file__).resolve().parents[2]


def test_shipped_files_are_valid() -> None:
    config = load_voice_config(REPO / "etc" / "voice.json", REPO / "profiles" / "default" / "etc" / "voice.json")
    assert config.tts.provider == "piper"
    assert config.tts.piper.model == "en_US-joe-medium"
    assert config.cache.max_size_mb == 200


def test_profile_overrides_only_what_it_names(tmp_path: Path) -> None:
    (tmp_path / "g.json").write_text(json.dumps({"tts": {"piper": {"speakingRate": 1.5}, "rvc": {"pitchShift": 3}}}))
    (tmp_path / "p.json").write_text(json.dumps({"tts": {"rvc": {"protect": 0.1}}}))
    config = load_voice_config(tmp_path / "g.json", tmp_path / "p.json")
    assert config.tts.piper.speaking_rate == 1.5
    assert config.tts.rvc.pitch_shift == 3 and config.tts.rvc.protect == 0.1


def test_missing_files_mean_defaults(tmp_path: Path) -> None:
    assert load_voice_config(tmp_path / "none.json", tmp_path / "none2.json") == VoiceConfig()


@pytest.mark.parametrize(
    ("document", "field", "words"),
    [
        ({"tts": {"provider": "espeak"}}, "tts.provider", "Input should be"),
        ({"tts": {"piper": {"speakingRate": 0.1}}}, "tts.piper.speakingRate", "greater than or equal to 0.5"),
        ({"tts": {"rvc": {"protect": 0.9}}}, "tts.rvc.protect", "less than or equal to 0.5"),
        ({"tts": {"rvc": {"f0Method": "yin"}}}, "tts.rvc.f0Method", "rmvpe"),
        ({"tts": {"sovits": {"serverUrl": "not a url"}}}, "tts.sovits.serverUrl", "URL"),
        ({"tts": {"sovits": {"speakerId": "../../etc"}}}, "tts.sovits.speakerId", "pattern"),
        ({"tts": {"kokoro": {"langCode": "x"}}}, "tts.kokoro.langCode", "Input should be"),
        ({"cache": {"maxSizeMB": -1}}, "cache.maxSizeMB", "greater than or equal to 0"),
        ({"cache": {"directory": "../../elsewhere"}}, "cache.directory", "'..'"),
        ({"cache": {"sizeMB": 3}}, "cache.sizeMB", "Extra inputs"),
        ({"unknown": 1}, "unknown", "Extra inputs"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, document: dict[str, object], field: str, words: str) -> None:
    path = tmp_path / "voice.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError) as caught:
        load_voice_config(path)
    problems = {p.field: p.message for p in caught.value.problems}
    assert field in problems, problems
    assert words in problems[field]


@pytest.mark.parametrize(("content", "words"), [("{", "not valid JSON"), ("[]", "JSON object"), (b"\xff\xfe", "not valid JSON")])
def test_unreadable_documents(tmp_path: Path, content: str | bytes, words: str) -> None:
    path = tmp_path / "voice.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ConfigError, match=words):
        load_voice_config(path)


def test_deep_merge_does_not_mutate() -> None:
    base = {"a": {"b": 1, "c": 2}}
    assert deep_merge(base, {"a": {"b": 3}}) == {"a": {"b": 3, "c": 2}}
    assert base == {"a": {"b": 1, "c": 2}}


def test_cache_keys_follow_the_seed() -> None:
    tts = VoiceConfig().tts
    assert tts.kokoro.cache_key() == "kokoro:a:af_heart:1"  # no voice named: American English's own (issue 19)
    assert tts.kokoro.for_text("こんにちは").cache_key() == "kokoro:j:jf_alpha:1"
    assert tts.sovits.cache_key() == "sovits:default:1:1"
    assert tts.rvc.cache_key().startswith("rvc:default:0")
    assert tts.piper.with_request(None, 1.5).cache_key() != tts.piper.cache_key()


# The seed's voice document, in the shapes its users wrote it: these must load as they are.
SEED_DOCUMENTS = [
    {"tts": {"provider": "gpt-sovits", "sovits": {"serverUrl": "http://127.0.0.1:9880", "speakerId": "default",
                                                  "temperature": 1.0, "speed": 1.0, "autoStart": False}}},
    {"tts": {"provider": "piper", "piper": {"model": "out/voices/amy/amy.onnx", "speakingRate": 1.0}}},
    {"tts": {"provider": "rvc", "rvc": {"speakerId": "default", "pitchShift": 0, "indexRate": 0.75, "volumeEnvelope": 0.25,
                                        "protect": 0.33, "f0Method": "rmvpe", "pauseOllamaDuringInference": False}}},
    {"tts": {"provider": "kokoro", "kokoro": {"voice": "af_heart", "speed": 1.0, "useCustomVoicepack": False,
                                              "voicepackPath": ""}}},
    {"cache": {"enabled": True, "directory": "out/cache/tts", "maxSizeMB": 200}},
]


@pytest.mark.parametrize("document", SEED_DOCUMENTS)
def test_the_seeds_documents_load(tmp_path: Path, document: dict[str, object]) -> None:
    path = tmp_path / "voice.json"
    path.write_text(json.dumps(document))
    config = load_voice_config(REPO / "etc" / "voice.json", path)
    assert config.tts.provider in ("piper", "sovits", "rvc", "kokoro")


def test_the_seeds_names_mean_what_they_meant(tmp_path: Path) -> None:
    path = tmp_path / "voice.json"
    path.write_text(json.dumps(SEED_DOCUMENTS[0]))
    assert load_voice_config(path).tts.provider == "sovits"  # "gpt-sovits" is GPT-SoVITS
    path.write_text(json.dumps(SEED_DOCUMENTS[1]))
    assert load_voice_config(path).tts.piper.model == "out/voices/amy/amy.onnx"
    path.write_text(json.dumps(SEED_DOCUMENTS[3]))
    assert load_voice_config(path).tts.kokoro.language == "a"  # af_heart speaks American English
    for escape in ("../amy/amy.onnx", "out/../../amy.onnx", "out/voices/amy/amy.json"):
        path.write_text(json.dumps({"tts": {"piper": {"model": escape}}}))
        with pytest.raises(ConfigError, match="tts.piper.model"):
            load_voice_config(path)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999999", "-1e999999"])
@pytest.mark.parametrize("key", ["cache", "tts"])
def test_a_number_that_is_not_finite_is_refused_in_the_file(tmp_path: Path, number: str, key: str) -> None:
    """As the agent once wrote it (``Infinity``), or as a person may: the profile's file is
    refused, with its name, and the agent speaks with the household's settings meanwhile."""
    path = tmp_path / "voice.json"
    inner = '{"maxSizeMB": %s}' if key == "cache" else '{"piper": {"speakingRate": %s}}'
    path.write_text('{"%s": %s}' % (key, inner % number))
    with pytest.raises(ConfigError, match=f"{path}: not valid JSON: numbers must be finite, and {number} is not"):
        load_voice_config(REPO / "etc" / "voice.json", path)


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_a_number_that_is_not_finite_is_refused_by_the_model(number: float) -> None:
    with pytest.raises(ValidationError, match="finite number"):
        VoiceConfig.model_validate({"cache": {"maxSizeMB": number}})


def test_the_cache_size_has_a_ceiling_that_fits_in_bytes() -> None:
    """1e308 MB is finite, and as bytes an overflow on every speak of the profile."""
    assert VoiceConfig.model_validate({"cache": {"maxSizeMB": MAX_CACHE_MB}}).cache.max_size_mb == MAX_CACHE_MB
    for over in (MAX_CACHE_MB + 0.001, 1.7976931348623157e308):
        with pytest.raises(ValidationError, match="less than or equal to 1048576"):
            VoiceConfig.model_validate({"cache": {"maxSizeMB": over}})


def test_a_path_with_a_nul_is_no_path(tmp_path: Path) -> None:
    """Where access.paths is anywhere nothing else stands between it and the file system."""
    path = tmp_path / "voice.json"
    path.write_text(json.dumps({"tts": {"kokoro": {"voicesPath": "/tmp/v\u0000.bin"}}}))
    with pytest.raises(ConfigError, match="tts.kokoro.voicesPath: Value error, a path cannot contain a NUL character"):
        load_voice_config(path)


def test_run_on_names_where_a_providers_speech_is_made() -> None:
    from agent.config.model import VoiceConfig

    config = VoiceConfig.model_validate({"runOn": {"speak": {"rvc": "gpu-desktop"}}})
    assert config.run_on.speak_on("rvc") == "gpu-desktop" and config.run_on.speak_on("kokoro") == "local"
    assert VoiceConfig().run_on.speak_on("rvc") == "local"
    assert VoiceConfig.model_validate({"runOn": {"speak": {"piper": "local"}}}).run_on.speak_on("piper") == "local"
    assert VoiceConfig().run_on.train == "local"
    assert VoiceConfig.model_validate({"runOn": {"train": "gpu-desktop"}}).run_on.train == "gpu-desktop"


@pytest.mark.parametrize("bad, says", [
    ({"speak": {"piper": "auto"}}, "another node can speak for: sovits, rvc"),  # Piper runs where its profile is
    ({"speak": {"rvc": "a/b"}}, "runOn.speak.rvc"),  # not a node name (a topic level)
    ({"speak": {"rvc": "$SYS"}}, "runOn.speak.rvc"),
    ({"speak": {"nobody": "auto"}}, "runOn.speak.nobody"),
    ({"train": {"rvc": "auto"}}, "runOn.train"),  # one place for every trainer
    ({"train": "a/b"}, "runOn.train"),
])
def test_a_run_on_that_cannot_be_is_refused_with_its_key(bad: dict[str, object], says: str) -> None:
    from pydantic import ValidationError

    from agent.config.model import VoiceConfig

    with pytest.raises(ValidationError) as refused:
        VoiceConfig.model_validate({"runOn": bad})
    assert says in str(refused.value).replace("\n", " ")
