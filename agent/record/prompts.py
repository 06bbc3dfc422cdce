"""The sentences the web page's Record card asks the owner to read, one per take.

They ship with the package (``data/prompts.txt``: short everyday English that, all together,
holds every English phoneme many times over). The order is the file's, less every sentence a
kept sample already holds as its true transcript: a kept reading is never asked for again, a
take whose words were not the prompt's (``transcript.py``) leaves its prompt to be read again.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from agent.record.transcript import words

PROMPTS_FILE = Path(__file__).resolve().parent / "data" / "prompts.txt"


def load(path: Path = PROMPTS_FILE) -> list[str]:
    """The prompts, in their order (comments and blank lines left out)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def key(text: str) -> str:
    """What two readings of one sentence share whatever their case and punctuation."""
    return " ".join(words(text))


def next_prompts(prompts: list[str], read: Iterable[str], count: int) -> list[str]:
    """The first ``count`` prompts not yet ``read`` (the true transcripts of the kept samples)."""
    done = {key(text) for text in read}
    return [p for p in prompts if key(p) not in done][:count]
