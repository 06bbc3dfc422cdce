"""How Wyoming lists voice names: the descriptions Home Assistant's voice picker shows.

The names themselves (``[<profile>/][<provider>:]<voice>``), which the OpenAI-compatible door reads
too, are the core's: agent/voices/picks.py. ``describe`` lists every voice the core knows as
``<provider>:<voice>`` for the ``default`` profile and ``<profile>/<provider>:<voice>`` for the
others, so a name Home Assistant stored keeps meaning the same provider whatever a profile's
voice.json says later; and ``<profile>/`` for each profile's own voice.
"""

from __future__ import annotations

from agent.voices.picks import DEFAULT_PROFILE


def profile_voice_description(profile: str) -> str:
    return f"{profile}: its own voice (voice.json)"


def voice_description(profile: str, provider: str, voice: str, download: int | None = None) -> str:
    """What Home Assistant's voice picker shows (it sorts by this). ``download``: the bytes a
    voice that is not installed yet would fetch (the picker shows the description alone)."""
    spoken = f"{voice} ({provider})" if download is None else f"{voice} ({provider}, download {_size(download)})"
    return spoken if profile == DEFAULT_PROFILE else f"{profile}: {spoken}"


def _size(size: int) -> str:
    if size <= 0:
        return "size unknown"  # Kokoro's catalog publishes none (a voice is about 0.5 MB)
    return f"{size / 1e6:.0f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"
