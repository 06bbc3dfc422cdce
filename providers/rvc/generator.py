"""The RVC decoder: HiFi-GAN upsampling with multi-receptive-field residual blocks, and for
pitch models an NSF source (a sine at the target pitch, noise where unvoiced) injected at
every upsampling stage. Parameter names match the ``dec.*`` keys of RVC/Applio checkpoints.
Imported only by the RVC engine (torch at the top).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from providers.rvc.layers import LRELU_SLOPE


def _same(kernel: int, dilation: int) -> int:
    return dilation * (kernel - 1) // 2


class ResBlockWide(nn.Module):
    """Resblock "1": pairs of (dilated conv, plain conv), each pair residual."""

    def __init__(self, channels: int, kernel: int, dilations: list[int]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding=_same(kernel, d)) for d in dilations)
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, padding=_same(kernel, 1)) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain in zip(self.convs1, self.convs2):
            x = x + plain(F.leaky_relu(dilated(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class ResBlockNarrow(nn.Module):
    """Resblock "2": one dilated conv per residual step."""

    def __init__(self, channels: int, kernel: int, dilations: list[int]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding=_same(kernel, d)) for d in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, LRELU_SLOPE))
        return x


class HarmonicSource(nn.Module):
    """``m_source``: a sine following f0 (amplitude 0.1) plus noise, merged by a 1x1 linear + tanh."""

    def __init__(self, sample_rate: int, sine_amp: float = 0.1, noise_std: float = 0.003) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.sine_amp = sine_amp
        self.noise_std = noise_std
        self.l_linear = nn.Linear(1, 1)

    def forward(self, f0: torch.Tensor, upsample: int) -> torch.Tensor:
        """f0 [B, T] in Hz (0 = unvoiced) -> excitation [B, 1, T * upsample]."""
        with torch.no_grad():
            per_sample = f0.double().repeat_interleave(upsample, dim=1)  # nearest-neighbour upsampling
            phase = torch.remainder(torch.cumsum(per_sample / self.sample_rate, dim=1), 1.0)
            sine = torch.sin(2 * math.pi * phase).to(f0.dtype) * self.sine_amp
            voiced = (per_sample > 0).to(f0.dtype)
            noise_amp = voiced * self.noise_std + (1 - voiced) * self.sine_amp / 3
            excitation = sine * voiced + noise_amp * torch.randn_like(sine)
        merged = torch.tanh(self.l_linear(excitation.unsqueeze(-1).to(self.l_linear.weight.dtype)))
        return merged.transpose(1, 2)


class HifiGenerator(nn.Module):
    """``dec``: latent frames -> waveform at the model's rate; NSF when ``sample_rate`` is given."""

    def __init__(
        self,
        in_channels: int,
        resblock: str,
        resblock_kernel_sizes: list[int],
        resblock_dilation_sizes: list[list[int]],
        upsample_rates: list[int],
        upsample_initial_channel: int,
        upsample_kernel_sizes: list[int],
        gin_channels: int,
        sample_rate: int | None,
    ) -> None:
        super().__init__()
        self.kernels = len(resblock_kernel_sizes)
        self.upsample = math.prod(upsample_rates)
        block = ResBlockWide if resblock == "1" else ResBlockNarrow
        self.conv_pre = nn.Conv1d(in_channels, upsample_initial_channel, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        if sample_rate is not None:
            self.m_source = HarmonicSource(sample_rate)
            self.noise_convs = nn.ModuleList()
        channels = upsample_initial_channel
        for i, (rate, kernel) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            out = upsample_initial_channel // 2 ** (i + 1)
            # even rates: (k - u) / 2 as RVC WebUI; odd rates as Applio writes them
            pad, extra = ((kernel - rate) // 2, 0) if rate % 2 == 0 else (rate // 2 + rate % 2, rate % 2)
            self.ups.append(nn.ConvTranspose1d(channels, out, kernel, rate, padding=pad, output_padding=extra))
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(block(out, k, list(d)))
            if sample_rate is not None:
                stride = math.prod(upsample_rates[i + 1 :])
                if stride == 1:
                    self.noise_convs.append(nn.Conv1d(1, out, 1))
                else:
                    size = stride * 2 - stride % 2
                    self.noise_convs.append(nn.Conv1d(1, out, size, stride=stride, padding=(size - stride) // 2))
            channels = out
        self.conv_post = nn.Conv1d(channels, 1, 7, padding=3, bias=False)
        if gin_channels:
            self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)

    def forward(self, z: torch.Tensor, f0: torch.Tensor | None, g: torch.Tensor | None) -> torch.Tensor:
        source = self.m_source(f0, self.upsample) if f0 is not None else None
        x = self.conv_pre(z)
        if g is not None:
            x = x + self.cond(g)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            if source is not None:
                x = x + self.noise_convs[i](source)
            blocks = self.resblocks[i * self.kernels : (i + 1) * self.kernels]
            x = sum(block(x) for block in blocks) / self.kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))
