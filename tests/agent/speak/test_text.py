"""How text is cut for the engines: the first sentence alone, then whole sentences where they
fit, nothing lost."""

from __future__ import annotations

from agent.speak.text import MAX_PIECE_CHARS, MAX_RUN_CHARS, pieces


def test_the_first_sentence_is_a_piece_of_its_own_and_the_rest_are_grouped() -> None:
    assert pieces("Hello there.") == ["Hello there."]
    assert pieces("Hello there. How are you? Fine, I hope.") == ["Hello there.", "How are you? Fine, I hope."]
    assert pieces("こんにちは。今日はいい天気ですね。") == ["こんにちは。", "今日はいい天気ですね。"]
    assert pieces("   \n ") == []


def test_long_text_is_cut_between_sentences_and_keeps_every_word() -> None:
    sentences = [f"This is sentence number {n}, which goes on for a little while." for n in range(30)]
    text = " ".join(sentences)
    cut = pieces(text)
    assert len(cut) > 1 and all(len(p) <= MAX_PIECE_CHARS for p in cut)
    assert all(p.endswith(".") for p in cut)  # whole sentences
    assert " ".join(cut).split() == text.split()


def test_a_run_on_sentence_is_cut_at_commas_then_words() -> None:
    text = ", ".join(f"clause {n} of a sentence that never ends" for n in range(40))
    cut = pieces(text)
    assert all(len(p) <= MAX_PIECE_CHARS for p in cut) and " ".join(cut).split() == text.split()
    assert all(p.endswith(",") for p in cut[:-1])  # at clause ends where they fit


def test_a_5000_letter_word_becomes_runs_an_engine_can_take() -> None:
    cut = pieces("Say " + "a" * 5000 + " please.")
    assert all(len(word) <= MAX_RUN_CHARS for p in cut for word in p.split())
    assert "".join(cut).replace(" ", "") == ("Say" + "a" * 5000 + "please.")
    assert len(cut) == 25  # 5000 / 200 runs, "Say" and "please." joined to their neighbours
