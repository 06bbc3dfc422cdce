"""``tts.kokoro`` in voice.json (the seed's fields plus where the model and voices come from)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from providers.settings_base import FallbackSettings

LangCode = Literal["a", "b", "e", "f", "h", "i", "j", "p", "z"]


class KokoroSettings(FallbackSettings):
    voice_field = "voice"
    speed_field = "speed"

    voice: str = Field("jf_alpha", min_length=1, description="Built-in voice or a blend 'a:0.6,b:0.4'.")
    lang_code: LangCode = Field("j", description="a en-us, b en-gb, e es, f fr, h hi, i it, j ja, p pt-br, z zh.")
    speed: float = Field(1.0, ge=0.5, le=2.0, description="Speaking speed.")
    use_custom_voicepack: bool = Field(False, description="Use voicepackPath instead of voice.")
    voicepack_path: str = Field(
        "", description="A (510,1,256) voicepack, .pt or .npy: an absolute path or a file name in out/voices/kokoro/."
    )
    model_path: str = Field(
        "", description="A kokoro-v1.0.onnx (fp32 or int8) to use instead of the bundled int8 model; absolute or in out/voices/kokoro/."
    )
    voices_path: str = Field(
        "", description="A voices-v1.0.bin (NPZ, name -> (510,1,256)) whose voices join the bundled Japanese ones."
    )
    optimize: Literal["auto", "float", "int8"] = Field(
        "auto", description="auto: fold an int8 model to float once and keep whichever runs faster here."
    )
    threads: int = Field(0, ge=0, le=64, description="ONNX Runtime threads; 0 = one per CPU core.")

    def with_request(self, voice: str | None, speed: float | None) -> KokoroSettings:
        """A requested voice replaces the custom voicepack too."""
        settings = super().with_request(voice, speed)
        return settings.updated(use_custom_voicepack=False) if voice is not None else settings

    @property
    def voice_name(self) -> str:
        return self.voicepack_path if self.use_custom_voicepack else self.voice

    def cache_key(self) -> str:
        return f"kokoro:{self.lang_code}:{self.voice_name}:{self.speed:g}"
