"""Did the owner read the prompt? A take's words as PocketSphinx heard them against its
transcript, judged leniently.

PocketSphinx (CMU's small US English model) mishears clean speech: the bundled Piper voice
reading the prompts measures a word error rate of 0.18 against them (median; up to 1.0), the
same takes against another prompt 1.0 (median; down to 0.70). The rule flags only a take beyond
``MAX_WER``, one whose words plainly differ (another sentence, chatter): such a sample is kept
(RVC needs no transcript) but out of the datasets that learn from transcripts
(``transcript_mismatch``).
"""

from __future__ import annotations

import re

# Measured with bench/transcript_check.py on 245 of the 281 prompts (README "Recording in the browser"):
# at 0.75, 3 true readings are flagged and 4 takes checked against another prompt pass.
MAX_WER = 0.75
WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def words(text: str) -> list[str]:
    """Lower-case words, punctuation dropped (``Don't`` stays one word)."""
    return WORD.findall(text.lower().replace("’", "'"))


def word_errors(reference: list[str], heard: list[str]) -> int:
    """Levenshtein distance in words: substitutions, insertions and deletions."""
    row = list(range(len(heard) + 1))
    for i, said in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, got in enumerate(heard, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (said != got))
    return row[-1]


def wer(reference: str, heard: str) -> float:
    """Word error rate of ``heard`` against ``reference`` (0 = the same words; may exceed 1)."""
    said = words(reference)
    return word_errors(said, words(heard)) / max(len(said), 1)


def mismatch(transcript: str, heard: str, limit: float = MAX_WER) -> str | None:
    """Why ``heard`` is not a reading of ``transcript``, or None when it may well be."""
    rate = wer(transcript, heard)
    if rate <= limit:
        return None
    shown = heard if len(heard) <= 120 else heard[:117] + "..."
    return f"the words heard differ from the transcript (word error rate {rate:.2f} > {limit:g}; heard: \"{shown}\")"
