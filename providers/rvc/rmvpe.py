"""RMVPE pitch estimation, implemented here, with the weights of the user's ``rmvpe.pt``.

A deep U-Net over a log-mel spectrogram, a bidirectional GRU and a 360-bin salience output
(20 cents per bin); pitch is the salience-weighted average of the 9 bins around the peak.
Sizes are read from the state dict. Imported only by the RVC engine (torch at the top).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from providers.rvc.modelfile import ModelFileError, safe_load

log = logging.getLogger(__name__)

N_MELS, N_BINS, HOP, WINDOW = 128, 360, 160, 1024
CENTS_OFFSET = 1997.3794084376191
THRESHOLD = 0.03


class _ResConv(nn.Module):
    """Two 3x3 conv+BN+ReLU with a residual (1x1 conv when the channels change)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
        )
        if cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + (self.shortcut(x) if hasattr(self, "shortcut") else x)


class _Stage(nn.Module):
    def __init__(self, cin: int, cout: int, blocks: int) -> None:
        super().__init__()
        self.conv = nn.ModuleList([_ResConv(cin, cout)] + [_ResConv(cout, cout) for _ in range(blocks - 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.conv:
            x = block(x)
        return x


class _UpStage(nn.Module):
    def __init__(self, cin: int, cout: int, blocks: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(),
        )
        self.conv2 = nn.ModuleList([_ResConv(cout * 2, cout)] + [_ResConv(cout, cout) for _ in range(blocks - 1)])

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.conv1(x), skip], dim=1)
        for block in self.conv2:
            x = block(x)
        return x


class _Encoder(nn.Module):
    def __init__(self, base: int, depth: int, blocks: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(1)
        self.layers = nn.ModuleList(_Stage(1 if i == 0 else base * 2 ** (i - 1), base * 2**i, blocks) for i in range(depth))
        self.pool = nn.AvgPool2d(2)


class _Middle(nn.Module):
    def __init__(self, cin: int, depth: int, blocks: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(_Stage(cin if i == 0 else cin * 2, cin * 2, blocks) for i in range(depth))


class _Decoder(nn.Module):
    def __init__(self, cin: int, depth: int, blocks: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(_UpStage(cin // 2**i, cin // 2 ** (i + 1), blocks) for i in range(depth))


class _UNet(nn.Module):
    def __init__(self, base: int, depth: int, middle: int, blocks: int) -> None:
        super().__init__()
        self.encoder = _Encoder(base, depth, blocks)
        top = base * 2 ** (depth - 1)
        self.intermediate = _Middle(top, middle, blocks)
        self.decoder = _Decoder(top * 2, depth, blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.encoder.bn(x)
        skips = []
        for stage in self.encoder.layers:
            x = stage(x)
            skips.append(x)
            x = self.encoder.pool(x)
        for stage in self.intermediate.layers:
            x = stage(x)
        for stage, skip in zip(self.decoder.layers, reversed(skips)):
            x = stage(x, skip)
        return x


class _BiGru(nn.Module):
    def __init__(self, features: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.gru = nn.GRU(features, hidden, num_layers=layers, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[0]


class RmvpeNet(nn.Module):
    """log-mel [B, 128, T] (T a multiple of 2**depth) -> salience [B, T, 360]."""

    def __init__(self, base: int, depth: int, middle: int, blocks: int, gru_hidden: int, gru_layers: int) -> None:
        super().__init__()
        self.unet = _UNet(base, depth, middle, blocks)
        self.cnn = nn.Conv2d(base, 3, 3, padding=1)
        self.fc = nn.Sequential(_BiGru(3 * N_MELS, gru_hidden, gru_layers), nn.Linear(2 * gru_hidden, N_BINS),
                                nn.Dropout(0.25), nn.Sigmoid())

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.cnn(self.unet(mel.transpose(1, 2).unsqueeze(1)))  # [B, 3, T, 128]
        return self.fc(x.transpose(1, 2).flatten(2))


def _sizes(state: dict[str, torch.Tensor], source: Path) -> dict[str, int]:
    def count(pattern: str) -> int:
        rx = re.compile(pattern)
        return len({m.group(1) for k in state if (m := rx.match(k))})

    try:
        base = int(state["unet.encoder.layers.0.conv.0.conv.0.weight"].shape[0])
        gru_hidden = int(state["fc.0.gru.weight_hh_l0"].shape[1])
    except KeyError as exc:
        raise ModelFileError(source, [f"not an RMVPE model: no {exc.args[0]}"]) from exc
    return {
        "base": base,
        "depth": count(r"unet\.encoder\.layers\.(\d+)\."),
        "middle": count(r"unet\.intermediate\.layers\.(\d+)\."),
        "blocks": count(r"unet\.encoder\.layers\.0\.conv\.(\d+)\."),
        "gru_hidden": gru_hidden,
        "gru_layers": count(r"fc\.0\.gru\.weight_ih_l(\d+)$"),
    }


class Rmvpe:
    """rmvpe.pt loaded on ``device``; ``f0(audio16k)`` gives Hz per 10 ms frame (0 = unvoiced)."""

    def __init__(self, path: Path, device: str = "cpu") -> None:
        from providers.common.librosa_loader import load_librosa

        librosa = load_librosa()
        state = safe_load(path)
        if isinstance(state, dict) and isinstance(state.get("model"), dict):
            state = state["model"]
        if not isinstance(state, dict):
            raise ModelFileError(path, ["not an RMVPE model (expected a state dict)"])
        sizes = _sizes(state, path)
        self.net = RmvpeNet(**sizes)
        try:
            self.net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
        except RuntimeError as exc:
            raise ModelFileError(path, [f"RMVPE weights do not fit: {str(exc)[:200]}"]) from exc
        self.net.eval().to(device)
        self.device = device
        self.depth = sizes["depth"]
        mel = librosa.filters.mel(sr=16000, n_fft=WINDOW, n_mels=N_MELS, fmin=30, fmax=8000, htk=True)
        self.mel_basis = torch.from_numpy(mel).float().to(device)
        self.window = torch.hann_window(WINDOW, device=device)
        cents = CENTS_OFFSET + 20 * np.arange(N_BINS)
        self.cents = np.pad(cents, (4, 4))
        log.info("loaded RMVPE %s", path)

    @torch.no_grad()
    def salience(self, audio: np.ndarray) -> np.ndarray:
        wave = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).to(self.device)[None]
        spec = torch.stft(wave, WINDOW, HOP, WINDOW, window=self.window, center=True, return_complex=True).abs()
        mel = torch.log(torch.clamp(self.mel_basis @ spec, min=1e-5))
        frames = mel.shape[-1]
        multiple = 2**self.depth
        mel = nn.functional.pad(mel, (0, (-frames) % multiple))
        return self.net(mel)[0, :frames].float().cpu().numpy()

    def f0(self, audio: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
        return decode_salience(self.salience(audio), self.cents, threshold)


def decode_salience(salience: np.ndarray, padded_cents: np.ndarray, threshold: float) -> np.ndarray:
    """Weighted mean of the 9 bins around each frame's peak, in Hz; weak peaks are unvoiced."""
    peak = salience.argmax(axis=1)
    padded = np.pad(salience, ((0, 0), (4, 4)))
    window = peak[:, None] + np.arange(9)[None, :]  # indices into the padded axis
    weights = np.take_along_axis(padded, window, axis=1)
    cents = (weights * padded_cents[window]).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-12)
    f0 = 10 * 2 ** (cents / 1200)
    f0[salience.max(axis=1) <= threshold] = 0
    return f0
