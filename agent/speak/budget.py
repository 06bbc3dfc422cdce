"""How much audio one speak request may make (``VOICE_AGENT_MAX_AUDIO_SECONDS``). Characters do
not bound it: 5000 Chinese characters read by an English voice made 35.6 minutes of audio. So the
text is checked first against the least audio it can make, and the audio as it is made.

The estimate is a floor, so a text that would fit is never refused from it: each character is
counted at a pace faster than anyone reads (``SYLLABLE_SECONDS`` for a Chinese, Japanese or
Korean character, ``LETTER_SECONDS`` for any other letter or digit, nothing for spaces and
punctuation), divided by the request's speed. What the floor lets through, the running total of
samples stops: the audio a request makes never passes the cap."""

from __future__ import annotations

from dataclasses import dataclass

AUDIO_TOO_LONG = "audio_too_long"
SYLLABLE_SECONDS = 0.08  # 12.5 syllables a second; fast Japanese is 8 morae a second
LETTER_SECONDS = 0.03  # 33 letters a second; English read aloud is about 15

# Code points spoken as a syllable each: kana, CJK ideographs (and their extensions), hangul.
SYLLABIC = (
    (0x3040, 0x30FF),  # hiragana, katakana
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xAC00, 0xD7AF),  # hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x3FFFF),  # CJK extensions B and later
)


class AudioTooLong(Exception):
    """A request's audio is, or would be, longer than the cap."""

    code = AUDIO_TOO_LONG


def is_syllabic(char: str) -> bool:
    point = ord(char)
    return any(low <= point <= high for low, high in SYLLABIC)


def least_seconds(text: str, speed: float = 1.0) -> float:
    """The shortest audio ``text`` can make at ``speed``: a floor, never more than any voice needs."""
    syllables = letters = 0
    for char in text:
        if is_syllabic(char):
            syllables += 1
        elif char.isalnum():
            letters += 1
    return (syllables * SYLLABLE_SECONDS + letters * LETTER_SECONDS) / speed


@dataclass(frozen=True)
class AudioBudget:
    """The cap on one request's audio, in seconds."""

    max_seconds: float

    def check_text(self, text: str, speed: float) -> None:
        """Raise ``AudioTooLong`` when ``text`` surely makes more audio than the cap."""
        floor = least_seconds(text, speed)
        if floor > self.max_seconds:
            raise AudioTooLong(
                f"this text makes at least {round(floor, 2):g} s of audio; the limit is {self.max_seconds:g} s "
                "(VOICE_AGENT_MAX_AUDIO_SECONDS): send it in parts"
            )

    def check_made(self, samples: int, sample_rate: int) -> None:
        """Raise ``AudioTooLong`` once ``samples`` at ``sample_rate`` are more than the cap."""
        if samples > self.max_seconds * sample_rate:
            raise AudioTooLong(
                f"stopped: the text makes more than {self.max_seconds:g} s of audio, the limit "
                "(VOICE_AGENT_MAX_AUDIO_SECONDS): send it in parts"
            )
