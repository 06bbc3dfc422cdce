"""The transcript check's rule: lenient with what PocketSphinx mishears in a true reading, firm
with other words; a flagged sample stays out of the datasets that learn from transcripts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from agent.record.store import Sample, SampleStore
from agent.record.transcript import MAX_WER, mismatch, wer
from providers.kokoro.spec import with_transcripts
from providers.sovits.spec import best_reference

PROMPT = "The rain in the valley fell all through the night."


def test_word_error_rate_counts_substitutions_insertions_and_deletions_of_words() -> None:
    assert wer(PROMPT, "the rain in the valley fell all through the night") == 0.0  # case, punctuation
    assert wer("a b c d", "a x c d") == 0.25
    assert wer("a b c d", "a b c") == 0.25
    assert wer("a b c d", "a b c d e f") == 0.5
    assert wer("a b", "") == 1.0


def test_what_pocketsphinx_mishears_in_a_true_reading_passes() -> None:
    # heard by PocketSphinx in the Piper voice reading prompts (bench/transcript_check.py)
    assert mismatch("The old clock in the hall stopped at noon.", "the old clock in the whole stop at noon") is None
    assert mismatch("Our cottage sits at the foot of a steep hill.", "our coverage so it's up to put the steep hill") is None
    assert mismatch(PROMPT, "") is not None  # nothing heard at all is not a reading


def test_other_words_are_flagged_with_the_reason() -> None:
    heard = "would you like tea or coffee with your breakfast"
    reason = mismatch(PROMPT, heard)
    assert reason is not None
    assert f"> {MAX_WER:g}" in reason and heard in reason
    # the lenient limit: well above a true reading's errors
    assert 0.6 <= MAX_WER <= 0.8


def sample(n: int, transcript: str | None, flagged: str | None = None, seconds: float = 7.0) -> Sample:
    return Sample(f"s{n}", 0, f"s{n}.wav", seconds, 16000, transcript, 80 + n, {}, {}, None, 0.9, flagged)


def test_a_flagged_sample_stays_out_of_the_transcript_datasets() -> None:
    samples = [sample(1, "true words"), sample(2, "prompt", "the words heard differ"), sample(3, None)]
    assert [s.id for s in with_transcripts(samples)] == ["s1"]
    assert [s.id for s in best_reference(samples)] == ["s1"]  # s2 scores higher, but its words are not its transcript


def test_the_verdict_is_stored_with_the_sample_and_an_old_database_gains_the_column(tmp_path: Path) -> None:
    db = tmp_path / "samples.db"
    old = sqlite3.connect(db)
    old.executescript("""CREATE TABLE samples (id TEXT PRIMARY KEY, created REAL NOT NULL, file TEXT NOT NULL,
        duration REAL NOT NULL, sample_rate INTEGER NOT NULL, transcript TEXT, score REAL NOT NULL,
        components TEXT NOT NULL, measurements TEXT NOT NULL, source TEXT, speaker_similarity REAL);""")
    old.close()
    store = SampleStore(tmp_path / "samples", db)
    kept = store.add(np.zeros(16000, np.float32), 16000, 80, {}, {}, PROMPT, "web", 0.9, "other words")
    assert store.get(kept.id) == kept and kept.transcript_mismatch == "other words"
    store.close()
