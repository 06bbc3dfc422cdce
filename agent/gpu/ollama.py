"""Keep Ollama to a share of the VRAM for good: a systemd drop-in for ollama.service.

Ollama has no "fraction" setting; OLLAMA_GPU_OVERHEAD reserves bytes per GPU that it will not
use, so the rest of the card stays free for speech and training.
"""

from __future__ import annotations

from pathlib import Path

DROP_IN = Path("/etc/systemd/system/ollama.service.d/voice-agent.conf")

# VRAM (MB) -> share Ollama may use: small cards keep more for voice work
RECOMMENDED = [(8192, 0.6), (12288, 0.7), (16384, 0.75), (24576, 0.8)]


def recommended_fraction(total_mb: int) -> float:
    for limit, fraction in RECOMMENDED:
        if total_mb <= limit:
            return fraction
    return 0.85


def drop_in(fraction: float, total_mb: int) -> tuple[Path, str]:
    reserve = int((1.0 - fraction) * total_mb * 2**20) if total_mb else 0
    lines = [
        "# Written by voice-agent gpu configure-ollama",
        f"# Ollama may use {fraction:.0%} of {total_mb or 'an unknown amount of'} MB VRAM;"
        " the rest stays free for speech and training.",
        "[Service]",
        f'Environment="OLLAMA_GPU_OVERHEAD={reserve}"',
        'Environment="OLLAMA_MAX_LOADED_MODELS=1"',
    ]
    return DROP_IN, "\n".join(lines) + "\n"
