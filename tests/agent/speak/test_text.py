"""How text is cut for the engines: the first sentence alone, then whole sentences where they
fit, nothing lost."""

from __future__ import annotations

from agent.speak.text import FIRST_CLAUSE_CHARS, FIRST_CUT_CHARS, MAX_PIECE_CHARS, MAX_RUN_CHARS, pieces


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
    assert cut[0] == "This is sentence number 0," and cut[1].startswith("which goes on")  # the first cut
    assert all(p.endswith(".") for p in cut[1:])  # then whole sentences
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


def test_a_long_first_sentence_is_cut_at_its_first_clause_end_and_only_the_first() -> None:
    weather = "The weather today is mild, with a light breeze from the west. Later, clouds come in from the sea."
    assert pieces(weather) == ["The weather today is mild,", "with a light breeze from the west. Later, clouds come in from the sea."]
    assert pieces("Well, good morning to everyone in the kitchen and the hall today.") == [
        "Well, good morning to everyone in the kitchen and the hall today."]  # "Well," is too short to stand alone
    assert pieces("Good morning, kitchen. It is seven.") == ["Good morning, kitchen.", "It is seven."]  # short: whole
    assert pieces("これは長い文の最初の部分で、そのあとに続く部分もまだまだ長くなっていきますね。") == [
        "これは長い文の最初の部分で、", "そのあとに続く部分もまだまだ長くなっていきますね。"]  # 、 needs no space after it
    assert pieces("今日は、いい天気ですね。") == ["今日は、いい天気ですね。"]  # 12 characters: said whole


def test_wide_characters_count_twice_towards_the_first_cut() -> None:
    head = "あ" * (FIRST_CLAUSE_CHARS // 2 - 1) + "、"  # FIRST_CLAUSE_CHARS with its comma, counted as said
    tail = "い" * ((FIRST_CUT_CHARS - 2 * len(head)) // 2)  # the sentence exactly FIRST_CUT_CHARS long
    assert pieces(head + tail) == [head + tail]
    assert pieces(head + tail + "い") == [head, tail + "い"]
    assert pieces(head[1:] + tail + "いい") == [head[1:] + tail + "いい"]  # the clause one character too short


def test_fullwidth_punctuation_counts_twice_as_the_characters_beside_it() -> None:
    head = "今" * (FIRST_CLAUSE_CHARS // 2 - 1) + "，"  # the fullwidth comma of Chinese (width F, not W)
    tail = "天" * (FIRST_CUT_CHARS // 2) + "。"
    assert pieces(head + tail) == [head, tail]  # FIRST_CLAUSE_CHARS with its comma: long enough to stand alone
    assert pieces(head[1:] + tail) == [head[1:] + tail]


def test_the_first_cut_starts_just_past_its_bounds() -> None:
    clause = "a" * (FIRST_CLAUSE_CHARS - 1) + ","  # exactly FIRST_CLAUSE_CHARS with its comma
    tail = "b" * (FIRST_CUT_CHARS - len(clause) - 1)  # the sentence exactly FIRST_CUT_CHARS long
    assert pieces(f"{clause} {tail}") == [f"{clause} {tail}"]
    assert pieces(f"{clause} {tail}b") == [clause, f"{tail}b"]
    short = clause[1:]  # one letter less: too short to stand alone
    assert pieces(f"{short} {tail}bb") == [f"{short} {tail}bb"]


def test_a_sentence_or_a_word_of_exactly_the_limit_is_taken_as_it_came() -> None:
    assert pieces("aaa  bbb.", max_chars=9) == ["aaa  bbb."]  # whole: its spacing kept
    assert pieces("aaa  bbbb.", max_chars=9) == ["aaa bbbb."]  # one more: cut between words, which fit again
    word = "a" * MAX_RUN_CHARS
    assert pieces(f"{word}  b.") == [f"{word}  b."]
    assert pieces(f"{word}a  b.") == [f"{word} a b."]  # a run too long: cut, and the words joined again


def test_parts_and_pieces_are_joined_up_to_exactly_the_limit() -> None:
    assert pieces("aa, bb, cc.", max_chars=7) == ["aa, bb,", "cc."]  # clauses of a long sentence
    assert pieces("aa, bb, cc.", max_chars=6) == ["aa,", "bb,", "cc."]
    assert pieces("A. Bb. Cc.", max_chars=7) == ["A.", "Bb. Cc."]  # sentences after the first
    assert pieces("A. Bb. Cc.", max_chars=6) == ["A.", "Bb.", "Cc."]
