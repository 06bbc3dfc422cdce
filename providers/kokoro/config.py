"""``tts.kokoro`` in voice.json (the seed's fields plus where the model and voices come from)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from providers.settings_base import FallbackSettings, LocalPath

LangCode = Literal["a", "b", "e", "f", "h", "i", "j", "p", "z"]
LANG_CODES = "abefhijpz"
# Language tags (as Hermes and Home Assistant send them) -> Kokoro's codes.
TAGS: dict[str, LangCode] = {
    "en": "a", "en-us": "a", "en-gb": "b", "es": "e", "fr": "f", "fr-fr": "f", "hi": "h", "it": "i", "ja": "j",
    "pt": "p", "pt-br": "p", "zh": "z", "cmn": "z",
}


# The voice a language gets when the profile names none: the first of Kokoro's stock voices of that
# language (its catalog: providers/kokoro/catalog.py), af_heart as every Kokoro guide names it first.
DEFAULT_VOICES: dict[LangCode, str] = {
    "a": "af_heart", "b": "bf_emma", "e": "ef_dora", "f": "ff_siwis", "h": "hf_alpha", "i": "if_sara", "j": "jf_alpha",
    "p": "pf_dora", "z": "zf_xiaobei",
}


def script_language(text: str) -> LangCode | None:
    """The language a text's script gives away, when it does: kana is Japanese, Han without kana
    Mandarin, Devanagari Hindi. Latin script says nothing (English, Spanish, French, ...)."""
    han = False
    for char in text:
        code = ord(char)
        if 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9F:
            return "j"
        if 0x0900 <= code <= 0x097F:
            return "h"
        han = han or 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF
    return "z" if han else None


def voice_language(voice: str) -> LangCode | None:
    """Kokoro names a voice by its language and sex: af_heart is en-us, jm_kumo Japanese. For a
    blend, the first voice's."""
    name = voice.split(",")[0].split(":")[0].strip()
    if len(name) > 2 and name[0] in LANG_CODES and name[1] in "fm" and name[2] == "_":
        return name[0]  # type: ignore[return-value]
    return None


def lang_code_of(tag: str) -> LangCode | None:
    """``a`` as it is, ``en-GB`` as ``b``; None for a language Kokoro does not speak."""
    tag = tag.strip().lower().replace("_", "-")
    if len(tag) == 1 and tag in LANG_CODES:
        return tag  # type: ignore[return-value]
    return TAGS.get(tag) or TAGS.get(tag.split("-")[0])


class KokoroSettings(FallbackSettings):
    voice_field = "voice"
    speed_field = "speed"

    voice: str = Field(
        "", description="A Kokoro voice (af_heart) or a blend 'a:0.6,b:0.4'. Empty: the language's own voice (langCode, "
        "else the text's script: kana jf_alpha, Han zf_xiaobei, Devanagari hf_alpha; else American English af_heart)."
    )
    lang_code: LangCode | None = Field(
        None, description="a en-us, b en-gb, e es, f fr, h hi, i it, j ja, p pt-br, z zh; unset: the voice name's first letter."
    )
    speed: float = Field(1.0, ge=0.5, le=2.0, description="Speaking speed.")
    use_custom_voicepack: bool = Field(False, description="Use voicepackPath instead of voice.")
    voicepack_path: LocalPath = Field(
        "", description="A (510,1,256) voicepack, .pt or .npy: an absolute path or a file name in out/voices/kokoro/."
    )
    model_path: LocalPath = Field(
        "", description="A kokoro-v1.0.onnx (fp32 or int8) to use instead of the bundled int8 model; absolute or in out/voices/kokoro/."
    )
    voices_path: LocalPath = Field(
        "", description="A voices-v1.0.bin (NPZ, name -> (510,1,256)) whose voices join the bundled Japanese ones."
    )
    optimize: Literal["auto", "float", "int8"] = Field(
        "auto", description="auto: fold an int8 model to float once and keep whichever runs faster here."
    )
    threads: int = Field(0, ge=0, le=64, description="ONNX Runtime threads; 0 = one per CPU core.")

    def with_request(self, voice: str | None, speed: float | None, lang: str | None = None) -> KokoroSettings:
        """A requested voice replaces the custom voicepack, and speaks its own language (unless the
        request names one)."""
        settings = super().with_request(voice, speed, lang)
        if voice is not None:
            settings = settings.updated(use_custom_voicepack=False)
            if lang is None:
                settings = settings.updated(lang_code=voice_language(voice) or settings.lang_code)
        return settings

    def for_text(self, text: str) -> KokoroSettings:
        """No voice named: the voice of langCode, else of the text's script, else af_heart; a
        named voice or a custom voicepack is as it is."""
        if self.voice or self.use_custom_voicepack:
            return self
        language = self.lang_code or script_language(text) or "a"
        return self.updated(voice=DEFAULT_VOICES[language], lang_code=language)

    def language_update(self, lang: str) -> dict[str, object]:
        code = lang_code_of(lang)
        if code is None:
            raise ValueError(f"Kokoro does not speak {lang!r}; it speaks {', '.join(sorted(TAGS))}")
        return {"lang_code": code}

    @property
    def language(self) -> LangCode:
        """The language it speaks: langCode, else the voice name's, else American English."""
        if self.lang_code is not None:
            return self.lang_code
        return (None if self.use_custom_voicepack else voice_language(self.voice)) or "a"

    @property
    def voice_name(self) -> str:
        """The voice it speaks with: the voicepack, the named voice, or its language's own."""
        if self.use_custom_voicepack:
            return self.voicepack_path
        return self.voice or DEFAULT_VOICES[self.language]

    @property
    def voice_chosen(self) -> bool:
        """An empty voice is the language's own, picked per text: not chosen."""
        return self.use_custom_voicepack or bool(self.voice)

    def cache_key(self) -> str:
        return f"kokoro:{self.language}:{self.voice_name}:{self.speed:g}"
