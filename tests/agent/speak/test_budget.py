"""The cap on a request's audio: the floor estimated from the text, and the running total."""

from __future__ import annotations

import pytest

from agent.speak.budget import (
    AUDIO_TOO_LONG,
    LETTER_SECONDS,
    SYLLABLE_SECONDS,
    AudioBudget,
    AudioTooLong,
    is_syllabic,
    least_seconds,
)


def test_each_character_counts_at_its_scripts_pace() -> None:
    assert least_seconds("中") == SYLLABLE_SECONDS
    assert least_seconds("か") == SYLLABLE_SECONDS
    assert least_seconds("한") == SYLLABLE_SECONDS
    assert least_seconds("a") == LETTER_SECONDS
    assert least_seconds("ж") == LETTER_SECONDS
    assert least_seconds("7") == LETTER_SECONDS
    assert least_seconds(" .,!?-\n") == 0
    assert least_seconds("中文 ab") == pytest.approx(2 * SYLLABLE_SECONDS + 2 * LETTER_SECONDS)


def test_a_faster_speed_shortens_the_floor() -> None:
    assert least_seconds("abcd", speed=2.0) == pytest.approx(least_seconds("abcd") / 2)
    assert least_seconds("abcd", speed=0.5) == pytest.approx(least_seconds("abcd") * 2)


@pytest.mark.parametrize(("point", "syllabic"), [
    (0x303F, False), (0x3040, True), (0x30FF, True), (0x3100, False),  # kana
    (0x33FF, False), (0x3400, True), (0x4DBF, True), (0x4DC0, False),  # extension A; Yijing hexagrams
    (0x4DFF, False), (0x4E00, True), (0x9FFF, True), (0xA000, False),  # unified ideographs; Yi
    (0xABFF, False), (0xAC00, True), (0xD7AF, True), (0xD7B0, False),  # hangul syllables
    (0xF8FF, False), (0xF900, True), (0xFAFF, True), (0xFB00, False),  # compatibility ideographs
    (0x1FFFF, False), (0x20000, True), (0x3FFFF, True), (0x40000, False),  # extension B and later
])
def test_the_syllabic_ranges_end_where_they_should(point: int, syllabic: bool) -> None:
    assert is_syllabic(chr(point)) is syllabic


def test_text_whose_floor_is_exactly_the_cap_passes_and_one_letter_more_is_refused() -> None:
    text = "中文 and words"
    budget = AudioBudget(least_seconds(text))
    budget.check_text(text, 1.0)
    budget.check_text(text + " !", 1.0)  # spaces and punctuation cost nothing
    with pytest.raises(AudioTooLong, match=r"at least 0.43 s of audio; the limit is 0.4 s") as refused:
        budget.check_text(text + "s", 1.0)
    assert refused.value.code == AUDIO_TOO_LONG == "audio_too_long"


def test_the_speed_in_force_decides_the_estimate() -> None:
    budget = AudioBudget(100 * LETTER_SECONDS)
    with pytest.raises(AudioTooLong):
        budget.check_text("a" * 150, 1.0)
    budget.check_text("a" * 150, 1.5)
    budget.check_text("a" * 200, 2.0)


def test_the_message_names_the_floor_and_the_cap() -> None:
    with pytest.raises(AudioTooLong) as refused:
        AudioBudget(300).check_text("中" * 5000, 1.0)
    assert str(refused.value).startswith("this text makes at least 400 s of audio; the limit is 300 s")
    assert "VOICE_AGENT_MAX_AUDIO_SECONDS" in str(refused.value)


def test_audio_exactly_at_the_cap_passes_and_one_sample_over_stops() -> None:
    budget = AudioBudget(2.5)
    budget.check_made(40000, 16000)
    with pytest.raises(AudioTooLong, match=r"more than 2.5 s of audio") as stopped:
        budget.check_made(40001, 16000)
    assert stopped.value.code == "audio_too_long"


def test_the_messages_say_what_to_do() -> None:
    """Both refusals end with the setting and the remedy; the floor is given to a hundredth."""
    budget = AudioBudget(0.1)
    with pytest.raises(AudioTooLong) as refused:
        budget.check_text("a" * 5, 1.3)  # 0.115 s
    assert str(refused.value) == ("this text makes at least 0.12 s of audio; the limit is 0.1 s "
                                  "(VOICE_AGENT_MAX_AUDIO_SECONDS): send it in parts")
    with pytest.raises(AudioTooLong) as stopped:
        budget.check_made(1601, 16000)
    assert str(stopped.value) == ("stopped: the text makes more than 0.1 s of audio, the limit "
                                  "(VOICE_AGENT_MAX_AUDIO_SECONDS): send it in parts")
