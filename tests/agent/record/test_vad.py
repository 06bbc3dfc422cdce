from __future__ import annotations

import numpy as np

from agent.record.decode import Audio, resample
from agent.record.vad import Segmenter, VadOptions, segment
from tests.speech import OWNER_RATE, owner

SR = 16000


def speech(text: str) -> np.ndarray:
    return resample(Audio(owner(text), OWNER_RATE)).samples


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(SR * seconds), np.float32)


def test_two_utterances_and_a_short_one_dropped() -> None:
    a, b = speech("This is the first thing I say today."), speech("And this is the second thing.")
    stream = np.concatenate([silence(1), a, silence(1.2), b, silence(1), speech("Hi."), silence(1)])
    found, segmenter = segment(stream, VadOptions(min_seconds=1.0))
    assert len(found) == 2
    # hangover keeps the edges: each utterance covers its speech plus at most the padding kept on
    # each side (and a frame of rounding); Piper's VITS noise moves the voiced edges run to run
    options = VadOptions()
    pad = (2 * options.hangover_ms + options.frame_ms) / 1000
    for utterance, said in zip(found, (a, b)):
        assert len(said) / SR - 0.5 < utterance.seconds <= len(said) / SR + pad
    assert 0.6 < found[0].start < 1.1
    assert [reason for _, reason in segmenter.dropped] == ["shorter than 1 s"]


def test_utterances_come_out_as_they_end_not_at_flush() -> None:
    segmenter = Segmenter(VadOptions())
    stream = np.concatenate([silence(0.5), speech("Streaming works one utterance at a time."), silence(1.0)])
    got = []
    for i in range(0, len(stream), 480):
        got.extend(segmenter.feed(stream[i : i + 480]))
    assert len(got) == 1
    assert list(segmenter.flush()) == []


def test_long_speech_is_split_at_a_pause() -> None:
    parts = [speech(f"Sentence number {n} goes on for a while without stopping.") for n in range(5)]
    stream = np.concatenate([p for part in parts for p in (part, silence(0.2))])
    found, _ = segment(stream, VadOptions(max_seconds=6.0, hangover_ms=300))
    assert len(found) >= 2
    assert all(u.seconds <= 6.0 + 0.05 for u in found)
    # the cuts fall in the pauses: no utterance starts in the middle of loud speech
    for utterance in found[1:]:
        assert np.abs(utterance.samples[:160]).max() < 0.1


def test_silence_and_a_quiet_room_give_nothing() -> None:
    rng = np.random.default_rng(0)
    assert segment(silence(5), VadOptions())[0] == []
    for aggressiveness in range(4):
        room = rng.normal(0, 0.001, SR * 5).astype(np.float32)  # -60 dBFS
        assert segment(room, VadOptions(aggressiveness=aggressiveness))[0] == []


def test_loud_noise_passes_the_vad_so_the_scorer_must_refuse_it() -> None:
    """webrtcvad hears white noise at -20 dBFS as speech at every setting (measured): the
    record path cannot rely on the VAD alone to keep a fan or a shower out of the samples."""
    from agent.record.quality import measure, score

    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.1, SR * 5).astype(np.float32)
    found, _ = segment(noise, VadOptions(aggressiveness=3))
    assert len(found) == 1 and found[0].speech_ratio > 0.9
    result = score(measure(found[0]), None)
    assert any("steady noise" in reason for reason in result.reasons), result
    said_text = np.concatenate([silence(0.5), speech("A sentence said in a loud room."), silence(0.5)])
    noisy_speech = said_text + rng.normal(0, 0.02, len(said_text)).astype(np.float32)
    said, _ = segment(noisy_speech, VadOptions())
    assert said and not any("steady noise" in r for u in said for r in score(measure(u), None).reasons)
