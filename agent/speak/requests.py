"""A speak request, whichever door it came through."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agent.requests import ProviderName, Request, Text


class SpeakRequest(Request):
    text: Text = Field(
        min_length=1, description="What to say; tab, line feed and carriage return are its only control characters."
    )
    provider: ProviderName | None = Field(None, description="Overrides tts.provider.")
    voice: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:,-]{0,127}$", description="Voice name.")
    speed: float | None = Field(None, ge=0.5, le=2.0, description="Overrides the provider's speed.")
    lang: str | None = Field(
        None, pattern=r"^[A-Za-z]{1,8}([-_][A-Za-z0-9]{1,8})*$",
        description="Language of the text (en-us, ja, ...) for providers that speak several (Kokoro, GPT-SoVITS).",
    )
    speaker: str | None = Field(
        None, pattern=r"^[^\x00-\x1f\x7f]{1,128}$",
        description="A multi-speaker voice's speaker, by name (Piper: a key of the voice's speaker_id_map).",
    )
    stream: bool = Field(False, description="One audio file per sentence as each is ready.")
    format: Literal["wav", "mp3", "opus", "flac", "pcm"] = Field(
        "wav", description="The audio's format (agent/speak/encoding.py): wav, mp3, opus (Ogg/Opus at 24 kHz), flac, "
        "or pcm (raw 16-bit little-endian at 24 kHz, as OpenAI clients read it).",
    )
    trained: str | None = Field(
        None, pattern=r"^[0-9]{14}-[0-9a-f]{6}$",
        description="A finished training job of this profile: say the text with the voice it made, for this request "
        "only (to listen before choosing it).",
    )
