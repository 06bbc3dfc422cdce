"""Text to Kokoro phonemes for every language code of the seed, and the length limit."""

from __future__ import annotations

import pytest
from kokoro_onnx.config import DEFAULT_VOCAB

from providers.kokoro.phonemes import (
    LANGUAGES,
    MAX_PHONEMES,
    Phonemizer,
    TextTooLongError,
    UnsupportedLanguageError,
    check_length,
    split_sentences,
)

SAMPLES = {
    "a": "Good morning.",
    "b": "Good morning.",
    "e": "Buenos días.",
    "f": "Bonjour à tous.",
    "h": "नमस्ते दुनिया।",
    "i": "Buongiorno a tutti.",
    "j": "おはようございます。",
    "p": "Bom dia a todos.",
    "z": "你好，世界。",
}


@pytest.fixture(scope="module")
def phonemizer() -> Phonemizer:
    return Phonemizer(DEFAULT_VOCAB)


@pytest.mark.parametrize("code", sorted(LANGUAGES))
def test_every_language_code_gives_model_phonemes(phonemizer: Phonemizer, code: str) -> None:
    phonemes = phonemizer(SAMPLES[code], code)
    assert len(phonemes.replace(" ", "")) >= 4
    assert all(p in DEFAULT_VOCAB for p in phonemes)
    assert "(" not in phonemes  # espeak's language-switch flags are removed, not spoken


def test_english_accents_differ(phonemizer: Phonemizer) -> None:
    assert phonemizer("Tomato water.", "a") != phonemizer("Tomato water.", "b")


def test_unknown_language_code_is_refused(phonemizer: Phonemizer) -> None:
    with pytest.raises(UnsupportedLanguageError, match="language code 'x' is not supported; use one of a, b, e"):
        phonemizer("Hello.", "x")


def test_sentences_split_at_ends_and_line_breaks() -> None:
    assert split_sentences("One. Two! Three?\nFour") == ["One.", "Two!", "Three?", "Four"]
    assert split_sentences("こんにちは。元気ですか？はい") == ["こんにちは。", "元気ですか？", "はい"]
    assert split_sentences("Version 1.5 is out.") == ["Version 1.5 is out."]
    assert split_sentences("  \n ") == []


def test_a_run_longer_than_the_context_is_refused() -> None:
    check_length("ok " + "a" * MAX_PHONEMES, "fine")
    with pytest.raises(TextTooLongError, match="at most 510 phonemes without a break, and 'Supercal") as caught:
        check_length("ok " + "a" * (MAX_PHONEMES + 1), "Supercalifragilistic")
    assert caught.value.code == "text_too_long"
