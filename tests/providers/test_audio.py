"""Whole sentences from parts (providers/common/audio.py): what RVC converts."""

from __future__ import annotations

from providers.base import AudioChunk
from providers.common.audio import whole_sentences


def test_parts_are_joined_up_to_the_sentences_last_and_wholes_pass_as_they_are() -> None:
    whole = AudioChunk(b"\x01\x00" * 3, 16000, "Whole.")
    chunks = [AudioChunk(b"ab", 22050, partial=True), AudioChunk(b"cd", 22050, partial=True),
              AudioChunk(b"ef", 22050, "First."), whole, AudioChunk(b"gh", 22050, "Tail", partial=True)]
    joined = list(whole_sentences(chunks))
    assert joined[0] == AudioChunk(b"abcdef", 22050, "First.") and joined[1] is whole
    assert joined[2] == AudioChunk(b"gh", 22050, "Tail")  # an engine that ended on a part: said as it is
    assert list(whole_sentences([])) == []
