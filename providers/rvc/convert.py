"""One utterance through RVC, following RVC WebUI's inference pipeline step by step so a model
sounds here as it does there: high-pass, long input cut at quiet points, reflect padding, pitch
once for the whole input, content features per segment, index retrieval, consonant protection,
synthesis, volume envelope, peak limit. Imported only by the RVC engine (torch at the top)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from math import gcd

import numpy as np
import torch

from providers.rvc.hubert import Hubert
from providers.rvc.index import FeatureIndex
from providers.rvc.modelfile import RvcModelFile
from providers.rvc.pitch import HOP, RATE, PitchTools, coarse, estimate_f0, shift
from providers.rvc.synthesizer import Synthesizer

log = logging.getLogger(__name__)

# RVC WebUI's fp32 timing constants, in seconds: padding, search span around a cut, cut spacing, uncut limit
X_PAD, X_QUERY, X_CENTER, X_MAX = 1, 6, 38, 41


@dataclass(frozen=True)
class ConvertOptions:
    semitones: float = 0.0
    index_rate: float = 0.75
    volume_envelope: float = 0.25
    protect: float = 0.33
    f0_method: str = "rmvpe"
    filter_radius: int = 3


@dataclass
class LoadedVoice:
    """One speaker's model ready to run: network, facts from its file, optional index."""

    net: Synthesizer
    model: RvcModelFile
    index: FeatureIndex | None
    device: str

    @property
    def sample_rate(self) -> int:
        return self.model.sample_rate


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    if rate_in == rate_out:
        return audio.astype(np.float32)
    from scipy.signal import resample_poly

    g = gcd(rate_in, rate_out)
    return resample_poly(audio, rate_out // g, rate_in // g).astype(np.float32)


def high_pass(audio: np.ndarray) -> np.ndarray:
    """5th-order Butterworth at 48 Hz, zero phase (removes rumble the models never heard)."""
    from scipy.signal import butter, filtfilt

    b, a = butter(5, 48, btype="high", fs=RATE)
    if len(audio) <= 3 * max(len(a), len(b)):
        return audio.astype(np.float64)
    return filtfilt(b, a, audio)


def cut_points(audio: np.ndarray) -> list[int]:
    """Where to split input longer than X_MAX: the quietest 10 ms near every X_CENTER seconds."""
    if len(audio) + HOP <= int(RATE * X_MAX):
        return []
    padded = np.pad(np.abs(audio), (HOP // 2, HOP // 2), mode="reflect")
    csum = np.concatenate([[0.0], np.cumsum(padded)])
    loudness = csum[HOP : HOP + len(audio)] - csum[: len(audio)]  # sum of |x| over the 160 samples from i
    points = []
    query, spacing = int(RATE * X_QUERY), int(RATE * X_CENTER)
    for centre in range(spacing, len(audio), spacing):
        lo, hi = max(centre - query, 0), min(centre + query, len(audio))
        points.append(lo + int(np.argmin(loudness[lo:hi])))
    return points


def volume_envelope(source: np.ndarray, source_rate: int, out: np.ndarray, out_rate: int, rate: float) -> np.ndarray:
    """Blend the output's loudness envelope with the input's (one RMS point per 0.5 s)."""

    def envelope(x: np.ndarray, sr: int) -> np.ndarray:
        frame, hop = sr // 2 * 2, sr // 2
        padded = np.pad(x.astype(np.float64) ** 2, (frame // 2, frame // 2))
        csum = np.concatenate([[0.0], np.cumsum(padded)])
        starts = np.arange(1 + len(x) // hop) * hop
        rms = np.sqrt(np.maximum(csum[np.minimum(starts + frame, len(padded))] - csum[starts], 0) / frame)
        positions = (np.arange(len(out)) + 0.5) * (len(rms) / len(out)) - 0.5
        return np.interp(positions, np.arange(len(rms)), rms)

    rms_in = envelope(source, source_rate)
    rms_out = np.maximum(envelope(out, out_rate), 1e-6)
    return out * rms_in ** (1 - rate) * rms_out ** (rate - 1)


def to_int16(audio: np.ndarray) -> np.ndarray:
    scale = 32768 / max(np.abs(audio).max() / 0.99, 1.0) if len(audio) else 32768
    return np.clip(audio * scale, -32768, 32767).astype(np.int16)


class Converter:
    """Holds the content encoder and pitch tools; converts 16 kHz audio with a LoadedVoice."""

    def __init__(self, hubert: Hubert, pitch: PitchTools, device: str) -> None:
        self.hubert = hubert
        self.pitch = pitch
        self.device = device

    def convert(self, audio: np.ndarray, voice: LoadedVoice, options: ConvertOptions, method: str) -> np.ndarray:
        """16 kHz float audio -> int16 at the model's rate (same duration)."""
        peak = np.abs(audio).max() if len(audio) else 0.0
        if peak > 0.95:
            audio = audio / (peak / 0.95)
        audio = high_pass(audio)
        t_pad = RATE * X_PAD
        cuts = cut_points(audio)
        padded = np.pad(audio, (t_pad, t_pad), mode="reflect")
        frames = len(padded) // HOP
        pitch = pitchf = None
        if voice.model.with_pitch:
            f0 = shift(estimate_f0(padded, method, self.pitch, options.filter_radius), options.semitones)[:frames]
            pitch, pitchf = coarse(f0.copy()), f0.astype(np.float32)
        pieces = []
        start = 0
        for cut in [c // HOP * HOP for c in cuts] + [None]:
            end = None if cut is None else cut + 2 * t_pad + HOP
            segment = padded[start:end]
            first, last = start // HOP, None if cut is None else (cut + 2 * t_pad) // HOP
            out = self._segment(
                segment, voice, options,
                None if pitch is None else pitch[first:last], None if pitchf is None else pitchf[first:last],
            )
            pieces.append(out)
            if cut is not None:
                start = cut
        result = np.concatenate(pieces)
        if options.volume_envelope != 1:
            result = volume_envelope(audio, RATE, result, voice.sample_rate, options.volume_envelope)
        return to_int16(result)

    @torch.no_grad()
    def _segment(
        self, segment: np.ndarray, voice: LoadedVoice, options: ConvertOptions,
        pitch: np.ndarray | None, pitchf: np.ndarray | None,
    ) -> np.ndarray:
        wave = torch.from_numpy(segment.astype(np.float32)).to(self.device)[None]
        feats = self.hubert.rvc_features(wave, voice.model.version)[0]  # [frames50, dim]
        protect = options.protect < 0.5 and pitchf is not None
        original = feats.clone() if protect else None
        if voice.index is not None and options.index_rate > 0:
            blended = voice.index.blend(feats.float().cpu().numpy(), options.index_rate)
            feats = torch.from_numpy(blended).to(self.device)
        feats = feats.repeat_interleave(2, dim=0)  # 50 -> 100 frames/s
        n = min(len(segment) // HOP, feats.shape[0], len(pitch) if pitch is not None else feats.shape[0])
        feats = feats[:n]
        pitch_t = pitchf_t = None
        if pitch is not None and pitchf is not None:
            pitch_t = torch.from_numpy(pitch[:n]).to(self.device)[None]
            pitchf_t = torch.from_numpy(pitchf[:n]).to(self.device)[None]
            if original is not None:
                keep = torch.where(pitchf_t[0] > 0, 1.0, options.protect).to(feats.dtype)[:, None]
                feats = feats * keep + original.repeat_interleave(2, dim=0)[:n] * (1 - keep)
        pad_frames = RATE * X_PAD // HOP  # the reflect padding, dropped from the output
        if n <= 2 * pad_frames:
            return np.zeros(0, dtype=np.float32)
        wave_out = voice.net.infer(feats[None], pitch_t, pitchf_t, keep=(pad_frames, n - pad_frames))
        return wave_out.float().cpu().numpy()
