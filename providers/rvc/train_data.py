"""Training data for RVC, prepared the way RVC WebUI prepares it: 48 Hz high-pass, 3.7 s chunks
overlapping by 0.3 s, peak normalisation ``x/peak*0.675 + 0.25*x``, then per chunk the
spectrogram at the model's rate, pitch (Hz and coarse) and content features at 16 kHz, all
aligned at 100 frames/s. Imported only by the RVC trainer (torch at the top)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from providers.common.audio import read_audio_file
from providers.rvc.convert import resample
from providers.rvc.hubert import Hubert
from providers.rvc.pitch import PitchTools, coarse, estimate_f0

log = logging.getLogger(__name__)

CHUNK_S, OVERLAP_S, MIN_CHUNK_S = 3.7, 0.3, 0.5


@dataclass(frozen=True)
class AudioShape:
    """STFT and mel settings of RVC's training configs per sample rate."""

    rate: int
    n_fft: int
    hop: int
    n_mels: int
    segment: int  # samples per training slice

    @property
    def spec_channels(self) -> int:
        return self.n_fft // 2 + 1


SHAPES = {
    32000: AudioShape(32000, 1024, 320, 80, 12800),
    40000: AudioShape(40000, 2048, 400, 125, 12800),
    48000: AudioShape(48000, 2048, 480, 128, 17280),
}


def spectrogram(audio: torch.Tensor, shape: AudioShape) -> torch.Tensor:
    """[B, samples] -> linear magnitude [B, n_fft/2+1, samples/hop] (reflect-padded, not centred)."""
    pad = (shape.n_fft - shape.hop) // 2
    x = torch.nn.functional.pad(audio.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    window = torch.hann_window(shape.n_fft, device=audio.device)
    spec = torch.stft(x, shape.n_fft, shape.hop, shape.n_fft, window=window, center=False, return_complex=True)
    return torch.sqrt(spec.real**2 + spec.imag**2 + 1e-6)


class MelScale:
    def __init__(self, shape: AudioShape, device: str) -> None:
        from providers.common.librosa_loader import load_librosa

        librosa = load_librosa()
        self.shape = shape
        basis = librosa.filters.mel(sr=shape.rate, n_fft=shape.n_fft, n_mels=shape.n_mels, fmin=0.0, fmax=None)
        self.basis = torch.from_numpy(basis).float().to(device)

    def __call__(self, audio: torch.Tensor) -> torch.Tensor:
        return torch.log(torch.clamp(self.basis @ spectrogram(audio, self.shape), min=1e-5))


def _high_pass(audio: np.ndarray, rate: int) -> np.ndarray:
    from scipy.signal import butter, lfilter

    b, a = butter(5, 48, btype="high", fs=rate)
    return lfilter(b, a, audio)


def chunks(audio: np.ndarray, rate: int) -> list[np.ndarray]:
    size, step = int(CHUNK_S * rate), int((CHUNK_S - OVERLAP_S) * rate)
    pieces, start = [], 0
    while start < len(audio):
        piece = audio[start : start + size]
        if len(piece) >= MIN_CHUNK_S * rate:
            pieces.append(piece)
        if start + size >= len(audio):
            break
        start += step
    return pieces


def prepare(
    wavs: list[Path], shape: AudioShape, hubert: Hubert, version: str, tools: PitchTools, method: str, device: str
) -> list[dict[str, torch.Tensor]]:
    """One dict of tensors per chunk: features [T, D], pitch [T], pitchf [T], spec [F, T], audio [T*hop]."""
    items = []
    for path in wavs:
        try:
            audio, rate = read_audio_file(path)
        except (OSError, ValueError, RuntimeError) as exc:  # soundfile's errors are RuntimeErrors
            log.warning("skipping %s: %s", path.name, exc)
            continue
        audio = _high_pass(resample(audio, rate, shape.rate), shape.rate)
        for piece in chunks(audio, shape.rate):
            peak = float(np.abs(piece).max())
            if peak == 0 or peak > 2.5:
                continue
            piece = (piece / peak * 0.675 + 0.25 * piece).astype(np.float32)
            items.append(_features(piece, shape, hubert, version, tools, method, device))
    return items


@torch.no_grad()
def _features(
    piece: np.ndarray, shape: AudioShape, hubert: Hubert, version: str, tools: PitchTools, method: str, device: str
) -> dict[str, torch.Tensor]:
    wave16 = resample(piece, shape.rate, 16000)
    f0 = estimate_f0(wave16, method, tools) if method != "none" else np.zeros(len(wave16) // 160 + 1)
    feats = hubert.rvc_features(torch.from_numpy(wave16).to(device)[None], version)[0].float().cpu()
    feats = feats.repeat_interleave(2, dim=0)
    audio = torch.from_numpy(piece)
    spec = spectrogram(audio[None], shape)[0]
    n = min(spec.shape[1], feats.shape[0], len(f0))
    return {
        "features": feats[:n].contiguous(), "pitch": torch.from_numpy(coarse(f0[:n].copy())),
        "pitchf": torch.from_numpy(f0[:n].astype(np.float32)), "spec": spec[:, :n].contiguous(),
        "audio": audio[: n * shape.hop].contiguous(),
    }


def collate(items: list[dict[str, torch.Tensor]], min_frames: int, hop: int) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest item (and at least one training slice)."""
    from torch.nn.functional import pad

    frames = max(max(it["features"].shape[0] for it in items), min_frames)
    return {
        "lengths": torch.tensor([max(it["features"].shape[0], min_frames) for it in items]),
        "features": torch.stack([pad(it["features"], (0, 0, 0, frames - it["features"].shape[0])) for it in items]),
        "pitch": torch.stack([pad(it["pitch"], (0, frames - it["pitch"].shape[0]), value=1) for it in items]),
        "pitchf": torch.stack([pad(it["pitchf"], (0, frames - it["pitchf"].shape[0])) for it in items]),
        "spec": torch.stack([pad(it["spec"], (0, frames - it["spec"].shape[1])) for it in items]),
        "audio": torch.stack([pad(it["audio"], (0, frames * hop - it["audio"].shape[0])) for it in items]),
    }
