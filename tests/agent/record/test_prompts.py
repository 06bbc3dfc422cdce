"""The Record card's prompts: shipped with the package, covering English phonemes, offered in an
order that never asks again for a sentence a kept sample holds (unless its words were not it)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from agent.record.prompts import PROMPTS_FILE, load, next_prompts
from agent.record.store import SampleStore

# The 39 phonemes of the CMU Pronouncing Dictionary (ARPAbet, stress marks dropped).
PHONEMES = set("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH".split())


def cmu_dictionary() -> dict[str, list[str]]:
    import pocketsphinx

    path = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
    entries: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        word, *phones = line.split()
        if "(" not in word:
            entries[word] = [p.rstrip("012") for p in phones]
    return entries


def test_a_few_hundred_prompts_ship_and_cover_every_english_phoneme_many_times() -> None:
    from agent.record.transcript import words

    prompts = load()
    assert 250 <= len(prompts) and len(set(prompts)) == len(prompts)
    assert PROMPTS_FILE.is_relative_to(Path(__file__).resolve().parents[3] / "agent")  # in the package (package-data)
    dictionary = cmu_dictionary()
    counts: Counter[str] = Counter()
    unknown = []
    for prompt in prompts:
        for word in words(prompt):
            if word in dictionary:
                counts.update(dictionary[word])
            else:
                unknown.append(word)
    assert len(unknown) <= 5, unknown  # words a reader (and PocketSphinx) knows
    assert set(counts) == PHONEMES
    assert min(counts.values()) >= 10, counts.most_common()[-5:]
    long = [p for p in prompts if len(p.split()) >= 15]
    assert len(long) >= 20  # five to ten seconds: a GPT-SoVITS reference


def test_the_order_is_the_files_less_the_sentences_read() -> None:
    prompts = ["One cat sat.", "Two dogs ran.", "Three birds sang.", "Four fish swam."]
    assert next_prompts(prompts, [], 2) == ["One cat sat.", "Two dogs ran."]
    # a kept reading, whatever its case and punctuation, is never asked for again
    assert next_prompts(prompts, ["two DOGS ran", "One cat sat."], 3) == ["Three birds sang.", "Four fish swam."]
    assert next_prompts(prompts, prompts, 5) == []


def test_a_take_of_other_words_leaves_its_prompt_to_be_read_again(tmp_path: Path) -> None:
    import numpy as np

    store = SampleStore(tmp_path / "samples", tmp_path / "db" / "samples.db")
    audio = np.zeros(16000, np.float32)
    store.add(audio, 16000, 80, {}, {}, "One cat sat.", "web", 0.9)
    store.add(audio, 16000, 80, {}, {}, "Two dogs ran.", "web", 0.9, transcript_mismatch="the words heard differ")
    store.add(audio, 16000, 80, {}, {}, None, "web", 0.9)
    assert store.transcripts() == ["One cat sat."]
    prompts = ["One cat sat.", "Two dogs ran.", "Three birds sang."]
    assert next_prompts(prompts, store.transcripts(), 5) == ["Two dogs ran.", "Three birds sang."]
    store.close()
    assert os.path.exists(tmp_path / "db" / "samples.db")
