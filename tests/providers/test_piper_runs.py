"""What one text costs a Piper voice: sentences cut into runs of bounded length, and the arena
handed back after a text with a long run (the bundled voice, in this process)."""

from __future__ import annotations

from collections.abc import Generator
from typing import cast
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnxruntime
import psutil
import pytest
from piper import PiperVoice, SynthesisConfig

from providers.base import AudioChunk
from providers.common.process import release_free_memory
from providers.piper import engine as piper_engine
from providers.piper.config import PiperSettings
from providers.piper.engine import PiperProvider, bundled_voice, load_voice
from providers.piper.runs import MAX_RUN_PHONEMES, phoneme_runs, release_arena
from tests.contexts import loose_context

MB = 1024 * 1024
LONG = " ".join(["word"] * 60) + "."  # one sentence of about 300 phonemes


def test_a_run_of_exactly_the_most_is_not_cut() -> None:
    assert phoneme_runs(list("abcde"), 5) == [list("abcde")]
    assert phoneme_runs(list("ab cd"), 5) == [list("ab cd")]  # not cut at its word break either
    assert phoneme_runs(list("abcdef"), 5) == [list("abcde"), list("f")]
    assert phoneme_runs([], 5) == []


def test_runs_end_after_the_last_word_break() -> None:
    assert ["".join(r) for r in phoneme_runs(list("ab cd ef gh"), 7)] == ["ab cd ", "ef gh"]
    assert ["".join(r) for r in phoneme_runs(list("a bcdefghij"), 7)] == ["a ", "bcdefgh", "ij"]


def test_a_pause_in_the_second_half_is_the_better_cut() -> None:
    # most 10: a comma's word break at index 6 (> 10 // 2) wins over the later plain break at 8
    assert ["".join(r) for r in phoneme_runs(list("abcde, g i jkl"), 10)] == ["abcde, ", "g i jkl"]
    # at index 5 (= 10 // 2) it is in the first half: the last break is taken instead
    assert ["".join(r) for r in phoneme_runs(list("abcd, fg i jkl"), 10)] == ["abcd, fg ", "i jkl"]


def test_a_word_break_at_the_very_start_is_no_cut() -> None:
    """A run of nothing but the break would be an empty run for the model."""
    assert ["".join(r) for r in phoneme_runs(list(" abcdef"), 5)] == [" abcd", "ef"]


class Session:
    """What ``release_arena`` hands the model, kept."""

    def run(self, outputs: object, feed: dict[str, np.ndarray], options: onnxruntime.RunOptions) -> None:
        self.feed, self.options = feed, options

    def get_session_options(self) -> SimpleNamespace:
        return SimpleNamespace(enable_cpu_mem_arena=True)


class Voice:
    def __init__(self, speakers: int) -> None:
        self.config = SimpleNamespace(num_speakers=speakers, default_speaker_id=3, noise_scale=0.667,
                                      length_scale=1.0, noise_w_scale=0.8)
        self.session = Session()

    def phonemes_to_ids(self, phonemes: list[str]) -> list[int]:
        return [1, 0, 2]


@pytest.mark.parametrize("speakers", [1, 2])
def test_the_empty_run_says_shrink_and_names_a_speaker_only_for_a_voice_of_several(speakers: int) -> None:
    fake = Voice(speakers)
    release_arena(cast(PiperVoice, fake))
    feed = fake.session.feed
    assert fake.session.options.get_run_config_entry("memory.enable_memory_arena_shrinkage") == "cpu:0"
    assert feed["input"].tolist() == [[1, 0, 2]] and feed["input_lengths"].tolist() == [3]
    assert feed["input"].dtype == feed["input_lengths"].dtype == np.int64
    assert feed["scales"].tolist() == pytest.approx([0.667, 1.0, 0.8]) and feed["scales"].dtype == np.float32
    if speakers == 1:
        assert "sid" not in feed
    else:
        assert feed["sid"].tolist() == [3] and feed["sid"].dtype == np.int64


def test_nothing_is_dropped_and_no_run_is_too_long() -> None:
    phonemes = list("ðə kwˈɪk, bɹˈaʊn fˈɑːks; dʒˈʌmps ˈoʊvɚ ðə lˈeɪzi dˈɑːɡ") * 20 + list("æ" * 500)
    runs = phoneme_runs(phonemes)
    assert [p for run in runs for p in run] == phonemes
    assert max(len(run) for run in runs) == MAX_RUN_PHONEMES


@pytest.fixture(scope="module")
def voice() -> PiperVoice:
    return load_voice(bundled_voice())


def ids_of(voice: PiperVoice, text: str) -> list[int]:
    (sentence,) = voice.phonemize(text)
    return voice.phonemes_to_ids(sentence)


def test_a_long_sentence_is_spoken_in_runs(voice: PiperVoice, tmp_path: Path) -> None:
    (sentence,) = voice.phonemize(LONG)
    expected = len(phoneme_runs(sentence))
    assert len(sentence) > MAX_RUN_PHONEMES and expected >= 2
    ctx = loose_context(tmp_path, (tmp_path / "voices",))
    chunks = list(PiperProvider().synthesize(LONG, PiperSettings(), ctx))
    assert len(chunks) == expected and all(chunk.seconds > 1 for chunk in chunks)


class Releases:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        monkeypatch.setattr(piper_engine, "release_arena", self._release)

    def _release(self, voice: PiperVoice) -> None:
        self.count += 1


def speak(tmp_path: Path, text: str) -> Generator[AudioChunk, None, None]:
    chunks = PiperProvider().synthesize(text, PiperSettings(), loose_context(tmp_path, (tmp_path / "voices",)))
    return cast(Generator[AudioChunk, None, None], chunks)


def test_the_arena_is_kept_up_to_the_limit_and_handed_back_past_it(voice: PiperVoice, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    text = "The kitchen lights are on now, and the door is locked."
    length = len(ids_of(voice, text))
    releases = Releases(monkeypatch)
    monkeypatch.setattr(piper_engine, "KEEP_ARENA_IDS", length)
    list(speak(tmp_path, text))
    assert releases.count == 0
    monkeypatch.setattr(piper_engine, "KEEP_ARENA_IDS", length - 1)
    list(speak(tmp_path, text))
    assert releases.count == 1


def test_the_arena_is_handed_back_when_the_caller_stops_early(voice: PiperVoice, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    releases = Releases(monkeypatch)
    chunks = speak(tmp_path, LONG)
    next(chunks)  # the first run of several: the caller (an audio cap reached) stops here
    assert releases.count == 0
    chunks.close()
    assert releases.count == 1


def test_a_released_arena_goes_back_to_the_system(voice: PiperVoice) -> None:
    rss = psutil.Process().memory_info
    voice.phoneme_ids_to_audio(ids_of(voice, "Hi."), SynthesisConfig())
    release_free_memory()
    before = rss().rss
    voice.phoneme_ids_to_audio(voice.phonemes_to_ids(voice.phonemize(LONG)[0][:MAX_RUN_PHONEMES]), SynthesisConfig())
    release_free_memory()
    grown = rss().rss
    release_arena(voice)
    release_free_memory()
    after = rss().rss
    assert grown - before > 50 * MB, (before / MB, grown / MB)  # what the arena keeps otherwise
    assert after - before < 15 * MB, (before / MB, grown / MB, after / MB)


def test_the_voice_neither_plans_memory_patterns_nor_spins(voice: PiperVoice) -> None:
    """Both cost a small shared machine (memory, CPU stolen from other work) and bought no speed."""
    options = voice.session.get_session_options()
    assert options.enable_mem_pattern is False
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
