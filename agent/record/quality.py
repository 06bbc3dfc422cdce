"""Score an utterance 0-100 from named components, each 0-100 and kept for inspection.

The total is the weighted mean of the audio-quality components times the speaker match:
a perfect recording of the wrong person is worth nothing for training the owner's voice.
The signal components are plain numpy; DNSMOS and speaker similarity come from models
(``dnsmos.py``, ``speaker.py``) and are passed in. A component that could not be measured
is left out rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from agent.record.vad import Utterance

# How much each audio-quality component counts. DNSMOS, a model of what listeners rate,
# weighs most; the signal checks catch the cheap-to-detect failures.
WEIGHTS = {
    "speech_ratio": 10.0,
    "snr": 20.0,
    "clipping": 10.0,
    "level": 10.0,
    "duration": 10.0,
    "dnsmos": 30.0,
}
# Speaker similarity (Resemblyzer cosine): same speaker is typically 0.75-0.95, others 0.3-0.7.
SPEAKER_NONE, SPEAKER_FULL = 0.55, 0.80
# webrtcvad calls loud steady noise (a fan, a shower) speech. Speech rises above its own pauses,
# noise does not: white noise measures 0.4 dB here, speech under noise 6 dB below it still 7 dB.
MIN_SNR_DB = 3.0


@dataclass(frozen=True)
class Measurements:
    speech_ratio: float
    snr_db: float
    clipped_fraction: float
    level_dbfs: float
    seconds: float
    dnsmos: dict[str, float] | None = None  # sig, bak, ovrl (P.835)
    speaker_similarity: float | None = None


@dataclass(frozen=True)
class Score:
    total: float
    components: dict[str, float]
    measurements: Measurements
    reasons: list[str] = field(default_factory=list)  # why it should not be kept, if anything
    codes: list[str] = field(default_factory=list)  # the same reasons as codes (``words.py`` says them plainly)


def ramp(value: float, bad: float, good: float) -> float:
    """0 at ``bad``, 100 at ``good``, linear between (either direction)."""
    if good == bad:
        return 100.0
    return float(np.clip((value - bad) / (good - bad), 0.0, 1.0) * 100.0)


def frame_energies(samples: np.ndarray, frame_len: int) -> np.ndarray:
    n = len(samples) // frame_len
    frames = samples[: n * frame_len].reshape(n, frame_len).astype(np.float64)
    return (frames**2).mean(axis=1) + 1e-12


def measure(utterance: Utterance) -> Measurements:
    samples = utterance.samples
    energies = frame_energies(samples, utterance.frame_len)
    voiced = utterance.voiced[: len(energies)]
    speech = energies[voiced] if voiced.any() else energies
    # Noise floor: the quietest tenth of the frames (an utterance carries little pure silence).
    noise = float(np.percentile(energies, 10))
    if (~voiced).sum() >= 3:
        noise = min(noise, float(np.median(energies[~voiced])))
    snr = 10 * np.log10(float(np.mean(speech)) / noise)
    peak_hits = np.abs(samples) >= 0.999
    return Measurements(
        speech_ratio=utterance.speech_ratio,
        snr_db=float(snr),
        clipped_fraction=float(peak_hits.mean()),
        level_dbfs=float(10 * np.log10(np.mean(speech))),
        seconds=utterance.seconds,
    )


def score(m: Measurements, min_similarity: float | None) -> Score:
    components = {
        "speech_ratio": ramp(m.speech_ratio, 0.2, 0.6),
        "snr": ramp(m.snr_db, 5.0, 30.0),
        "clipping": ramp(m.clipped_fraction, 0.01, 0.0),
        "level": min(ramp(m.level_dbfs, -50.0, -32.0), ramp(m.level_dbfs, -3.0, -12.0)),
        "duration": min(ramp(m.seconds, 0.5, 3.0), ramp(m.seconds, 20.0, 10.0)),
    }
    if m.dnsmos is not None:
        components["dnsmos"] = ramp(m.dnsmos["ovrl"], 2.0, 3.4)
    total = sum(WEIGHTS[k] * v for k, v in components.items()) / sum(WEIGHTS[k] for k in components)
    if m.speaker_similarity is not None:
        components["speaker"] = ramp(m.speaker_similarity, SPEAKER_NONE, SPEAKER_FULL)
        total *= components["speaker"] / 100.0
    refusals: list[tuple[str, str]] = []
    if m.clipped_fraction > 0.01:
        refusals.append(("clipped", f"clipped ({m.clipped_fraction:.1%} of samples at full scale)"))
    if m.speech_ratio < 0.2:
        refusals.append(("little_speech", f"little speech ({m.speech_ratio:.0%} of frames)"))
    if m.snr_db < MIN_SNR_DB:
        refusals.append(("steady_noise", f"steady noise, not speech (nothing rises above it: SNR {m.snr_db:.1f} dB)"))
    if min_similarity is not None and m.speaker_similarity is not None and m.speaker_similarity < min_similarity:
        refusals.append(("another_speaker",
                         f"another speaker (similarity {m.speaker_similarity:.2f} < {min_similarity:.2f})"))
    return Score(round(total, 1), {k: round(v, 1) for k, v in components.items()}, m,
                 [text for _, text in refusals], [code for code, _ in refusals])
