"""Which audio format an HTTP speech request wants: its body's ``format``, else its ``Accept``
header (``audio/mpeg``, ``audio/ogg``, ``audio/flac``, ``audio/wav``), else WAV.

A header that names only audio types the agent cannot write (``audio/aac``) and no wildcard is
refused with ``unsupported_format``, as an unknown ``format`` is; types that are not audio
(``application/json``, which generic clients send by habit) are passed over: WAV, as before.
"""

from __future__ import annotations

from typing import Any

from agent.errors import ServiceError
from agent.speak.encoding import FORMATS, UNSUPPORTED, audio_format

# media type -> format; the common aliases too (what browsers and players send)
MEDIA_TYPES = {
    "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/vnd.wave": "wav",
    "audio/mpeg": "mp3", "audio/mp3": "mp3",
    "audio/ogg": "opus", "audio/opus": "opus",
    "audio/flac": "flac", "audio/x-flac": "flac",
}
ANY = ("*/*", "audio/*")


def format_of(document: dict[str, Any], accept: str | None) -> str:
    """The format's name: ``format`` from the body (checked here: a clear ``unsupported_format``
    naming the known ones), else the best the ``Accept`` header takes, else ``wav``."""
    named = document.get("format")
    if named is not None:
        if not isinstance(named, str):
            raise ServiceError("invalid_payload", "format: must be a string such as \"mp3\"")
        return audio_format(named).name
    return from_accept(accept or "")


def from_accept(accept: str) -> str:
    """The format the header prefers (highest ``q``, then the order written); ``wav`` for none."""
    ranked: list[tuple[float, int, str]] = []
    for order, part in enumerate(accept.split(",")):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        if not media:
            continue
        quality = _quality(params)
        if quality > 0:
            ranked.append((-quality, order, media))
    ranked.sort()
    refused = [media for _, _, media in ranked if media.startswith("audio/") and media not in MEDIA_TYPES
               and media not in ANY]
    for _, _, media in ranked:
        if media in MEDIA_TYPES:
            return MEDIA_TYPES[media]
        if media in ANY:
            return "wav"
    if refused:
        raise ServiceError(UNSUPPORTED, f"no audio format here is {', '.join(refused)}; Accept one of "
                           f"{', '.join(sorted(set(MEDIA_TYPES)))}", {"supported": list(FORMATS)})
    return "wav"


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value)))
            except ValueError:
                return 1.0
    return 1.0
