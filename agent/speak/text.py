"""Text cut into pieces an engine takes one call at a time: whole sentences, grouped up to
``MAX_PIECE_CHARS``. A sentence longer than that is cut at its commas, then between words, and a
run of letters longer than ``MAX_RUN_CHARS`` (a 5000-letter "word") into runs of that length, so
one request never costs an engine more memory than a short paragraph does (one 5000-letter word
once took Piper to 1.1 GB and 46 s of audio in a single call).

The first sentence is a piece of its own (the sentence-first cut): the first audio of every door
that streams waits for one sentence, never for a paragraph an engine makes in one call (a
provider that synthesizes a piece whole, or phonemizes it all first, would otherwise make the
listener wait for all of it). A long first sentence is cut once more, at its first clause end
(``first_cut``): "The weather today is mild," is heard while "with a light breeze from the west." is
made, which halves the first audio of a typical paragraph for an engine that makes a sentence in
one call (Kokoro: about 1.8 s for its first 14 words on 2 idle cores). Every door speaks through
this one cut, in the core."""

from __future__ import annotations

import re
import unicodedata

MAX_PIECE_CHARS = 400
MAX_RUN_CHARS = 200  # longer than any real word, and than a sentence of Japanese without a break

SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])\s*(?=\S)")  # CJK ends need no space after them
CLAUSE_END = re.compile(r"(?<=[,;:])\s+|(?<=[、，；：])\s*(?=\S)")
FIRST_CUT_CHARS = 48  # a first sentence longer than this is cut at its first clause end ...
FIRST_CLAUSE_CHARS = 16  # ... where that clause has at least this many (never "Well," alone)
# (counted in ``span``: a kana or kanji is a syllable or two, so it counts as two letters)


def pieces(text: str, max_chars: int = MAX_PIECE_CHARS, max_run: int = MAX_RUN_CHARS) -> list[str]:
    """``text`` as pieces of at most ``max_chars``, in order; nothing is dropped but whitespace.
    The first sentence (or the first part of a long one) stands alone; later ones are grouped."""
    found: list[str] = []
    for index, sentence in enumerate(SENTENCE_END.split(text.strip())):
        for part in _fit(sentence, max_chars, max_run) if index else first_cut(_fit(sentence, max_chars, max_run)):
            if len(found) > 1 and len(found[-1]) + 1 + len(part) <= max_chars:
                found[-1] = f"{found[-1]} {part}"
            else:
                found.append(part)
    return [piece for piece in found if piece]


def first_cut(parts: list[str]) -> list[str]:
    """The first sentence's first part cut at its first clause end, when the part is long and the
    clause is not a word or two; otherwise as it is."""
    if not parts or span(parts[0]) <= FIRST_CUT_CHARS:
        return parts
    head, *rest = CLAUSE_END.split(parts[0], maxsplit=1)
    if not rest or span(head) < FIRST_CLAUSE_CHARS:
        return parts
    return [head, rest[0], *parts[1:]]


def span(text: str) -> int:
    """Length as speech goes: a wide (CJK) character counts twice, so a Japanese sentence of 30
    characters, about as long to say as 60 letters of English, is cut as one of those would be."""
    return len(text) + sum(unicodedata.east_asian_width(c) in "WF" for c in text)


def _fit(sentence: str, max_chars: int, max_run: int) -> list[str]:
    """One sentence as parts of at most ``max_chars``: whole clauses where they fit, else words,
    and runs of letters cut to ``max_run``."""
    if _fits(sentence, max_chars, max_run):
        return [sentence]
    parts: list[str] = []
    for clause in CLAUSE_END.split(sentence):
        units = [clause] if _fits(clause, max_chars, max_run) else [
            word[i : i + max_run] for word in clause.split() for i in range(0, len(word), max_run)
        ]
        for unit in units:
            if parts and len(parts[-1]) + 1 + len(unit) <= max_chars:
                parts[-1] = f"{parts[-1]} {unit}"
            else:
                parts.append(unit)
    return parts


def _fits(text: str, max_chars: int, max_run: int) -> bool:
    return len(text) <= max_chars and all(len(word) <= max_run for word in text.split())
