from __future__ import annotations

import numpy as np
import pytest

from agent.record.decode import AudioDecodeError, decode_wav, resample
from agent.record.quality import Measurements, score
from agent.record.store import Sample
from providers.kokoro.spec import readiness as kokoro
from providers.rvc.spec import readiness as rvc
from providers.sovits.spec import readiness as sovits
from tests.speech import wav


@pytest.mark.parametrize(("subtype", "channels"), [("PCM_16", 1), ("PCM_24", 2), ("PCM_32", 1), ("FLOAT", 2), ("PCM_U8", 1)])
def test_formats_decode_to_mono_float(subtype: str, channels: int) -> None:
    tone = (0.5 * np.sin(np.arange(44100) * 2 * np.pi * 440 / 44100)).astype(np.float32)
    audio = decode_wav(wav(tone, 44100, subtype, channels))
    assert audio.rate == 44100 and audio.samples.ndim == 1 and abs(audio.seconds - 1.0) < 1e-3
    assert np.abs(audio.samples - tone).max() < 0.02
    assert resample(audio).rate == 16000 and abs(len(resample(audio).samples) - 16000) <= 1


@pytest.mark.parametrize(
    ("data", "words"),
    [(b"", "empty"), (b"RIFF....WAVEjunk", "not a readable WAV"), (b"\x00" * 64, "not a WAV, FLAC")],
)
def test_bad_payloads(data: bytes, words: str) -> None:
    with pytest.raises(AudioDecodeError, match=words):
        decode_wav(data)


def test_empty_wav_is_refused() -> None:
    with pytest.raises(AudioDecodeError, match="no samples"):
        decode_wav(wav(np.zeros(0, np.float32), 16000))


def measurements(**overrides: float) -> Measurements:
    base = dict(speech_ratio=0.8, snr_db=35.0, clipped_fraction=0.0, level_dbfs=-20.0, seconds=5.0,
                dnsmos={"sig": 3.5, "bak": 4.0, "ovrl": 3.3}, speaker_similarity=0.9)
    base.update(overrides)
    return Measurements(**base)  # type: ignore[arg-type]


def test_each_defect_lowers_the_score() -> None:
    clean = score(measurements(), 0.7).total
    assert clean > 95
    for defect in ({"snr_db": 12.0}, {"clipped_fraction": 0.005}, {"level_dbfs": -45.0}, {"seconds": 1.2},
                   {"dnsmos": {"sig": 3.0, "bak": 2.5, "ovrl": 2.4}}, {"speech_ratio": 0.3}):
        assert score(measurements(**defect), 0.7).total < clean, defect


def test_another_speaker_scores_zero_and_says_why() -> None:
    result = score(measurements(speaker_similarity=0.5), 0.7)
    assert result.total == 0 and "another speaker" in result.reasons[0]
    assert score(measurements(speaker_similarity=None), 0.7).reasons == []


def sample(n: int, seconds: float, score_: float = 80, transcript: str | None = None) -> Sample:
    return Sample(f"s{n}", 0, f"s{n}.wav", seconds, 16000, transcript, score_, {}, {}, None, 0.9)


def test_readiness_rules_of_the_seed() -> None:
    many = [sample(i, 13.0) for i in range(50)]
    assert rvc(many, 70).ready
    assert not rvc(many[:49], 70).ready
    assert "average quality" in rvc([sample(i, 13, 60) for i in range(50)], 70).missing[0]
    assert not kokoro(many, 70).ready  # no transcripts
    assert kokoro([sample(i, 11, transcript="x") for i in range(30)], 70).ready
    assert not sovits([sample(1, 12, transcript="x"), sample(2, 4, transcript="x"), sample(3, 7)], 70).ready
    assert sovits([sample(1, 7, transcript="x")], 70).ready
