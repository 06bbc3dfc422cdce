"""Building blocks of the RVC synthesizer's prior path: the content ("text") encoder with
relative-position self-attention, the WaveNet-style stack, and the coupling flow.

Parameter names follow the checkpoints RVC WebUI and Applio write, so their state dicts load
as they are (weight norm folded beforehand, see ``synthesizer.fold_weight_norm``). This module
imports torch at its top: only the RVC engine imports it, and only when a model is loaded.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

LRELU_SLOPE = 0.1


def length_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """[B, 1, T] float mask: 1 for frames before each length."""
    steps = torch.arange(frames, device=lengths.device)
    return (steps[None, :] < lengths[:, None]).unsqueeze(1).float()


class ChannelNorm(nn.Module):
    """LayerNorm over the channel axis of a [B, C, T] tensor (parameters ``gamma``/``beta``)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.transpose(1, 2), (x.shape[1],), self.gamma, self.beta, self.eps)
        return y.transpose(1, 2)


class RelativeSelfAttention(nn.Module):
    """Multi-head self-attention whose scores and values get a learned term for each relative
    offset within ``window`` frames (one table shared by all heads)."""

    def __init__(self, channels: int, heads: int, window: int = 10) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"{channels} channels do not split into {heads} heads")
        self.heads = heads
        self.head_dim = channels // heads
        self.window = window
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, channels, 1)
        self.emb_rel_k = nn.Parameter(torch.zeros(1, 2 * window + 1, self.head_dim))
        self.emb_rel_v = nn.Parameter(torch.zeros(1, 2 * window + 1, self.head_dim))

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, frames = x.shape
        return x.view(batch, self.heads, self.head_dim, frames).transpose(2, 3)  # [B, H, T, D]

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, channels, frames = x.shape
        q = self._split(self.conv_q(x)) / math.sqrt(self.head_dim)
        k = self._split(self.conv_k(x))
        v = self._split(self.conv_v(x))
        # offset[i, j] = j - i; only |offset| <= window has a learned term
        steps = torch.arange(frames, device=x.device)
        offset = steps[None, :] - steps[:, None]
        inside = (offset.abs() <= self.window).to(q.dtype)
        slot = (offset + self.window).clamp(0, 2 * self.window)  # [T, T] index into the tables

        scores = q @ k.transpose(-1, -2)
        rel_logits = q @ self.emb_rel_k[0].transpose(0, 1)  # [B, H, T, 2w+1]
        scores = scores + torch.gather(rel_logits, 3, slot.expand(batch, self.heads, frames, frames)) * inside
        scores = scores.masked_fill(mask == 0, -1e4)
        probs = torch.softmax(scores, dim=-1)

        out = probs @ v
        # probability mass per relative offset: sum over j with j - i == offset
        per_offset = torch.zeros(batch, self.heads, frames, 2 * self.window + 1, dtype=probs.dtype, device=x.device)
        per_offset.scatter_add_(3, slot.expand(batch, self.heads, frames, frames), probs * inside)
        out = out + per_offset @ self.emb_rel_v[0]
        out = out.transpose(2, 3).reshape(batch, channels, frames)
        return self.conv_o(out)


class ConvFeedForward(nn.Module):
    def __init__(self, channels: int, filter_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.pad = ((kernel_size - 1) // 2, kernel_size // 2)
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv_1(F.pad(x * mask, self.pad)))
        return self.conv_2(F.pad(x * mask, self.pad)) * mask


class AttentionStack(nn.Module):
    """Post-norm transformer over content frames (``enc_p.encoder``)."""

    def __init__(self, channels: int, filter_channels: int, heads: int, layers: int, kernel_size: int) -> None:
        super().__init__()
        self.attn_layers = nn.ModuleList(RelativeSelfAttention(channels, heads) for _ in range(layers))
        self.norm_layers_1 = nn.ModuleList(ChannelNorm(channels) for _ in range(layers))
        self.ffn_layers = nn.ModuleList(ConvFeedForward(channels, filter_channels, kernel_size) for _ in range(layers))
        self.norm_layers_2 = nn.ModuleList(ChannelNorm(channels) for _ in range(layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pair_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)  # [B, 1, T, T]
        x = x * mask
        for attn, norm1, ffn, norm2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2):
            x = norm1(x + attn(x, pair_mask))
            x = norm2(x + ffn(x, mask))
        return x * mask


class ContentEncoder(nn.Module):
    """Content features (+ coarse pitch) -> mean and log-scale of the prior (``enc_p``)."""

    def __init__(
        self, feature_dim: int, out_channels: int, hidden: int, filter_channels: int,
        heads: int, layers: int, kernel_size: int, with_pitch: bool,
    ) -> None:
        super().__init__()
        self.hidden = hidden
        self.out_channels = out_channels
        self.emb_phone = nn.Linear(feature_dim, hidden)
        if with_pitch:
            self.emb_pitch = nn.Embedding(256, hidden)
        self.encoder = AttentionStack(hidden, filter_channels, heads, layers, kernel_size)
        self.proj = nn.Conv1d(hidden, out_channels * 2, 1)

    def forward(
        self, features: torch.Tensor, pitch: torch.Tensor | None, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.emb_phone(features)
        if pitch is not None:
            x = x + self.emb_pitch(pitch)
        x = F.leaky_relu(x * math.sqrt(self.hidden), LRELU_SLOPE).transpose(1, 2)  # [B, H, T]
        mask = length_mask(lengths, x.shape[2]).to(x.dtype)
        x = self.encoder(x * mask, mask)
        mean, log_scale = torch.split(self.proj(x) * mask, self.out_channels, dim=1)
        return mean, log_scale, mask


class WaveNetStack(nn.Module):
    """Gated dilated convolutions with a speaker condition (the flow's ``enc``)."""

    def __init__(self, hidden: int, kernel_size: int, dilation_rate: int, layers: int, gin_channels: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.layers = layers
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        if gin_channels:
            self.cond_layer = nn.Conv1d(gin_channels, 2 * hidden * layers, 1)
        for i in range(layers):
            dilation = dilation_rate**i
            self.in_layers.append(
                nn.Conv1d(hidden, 2 * hidden, kernel_size, dilation=dilation, padding=dilation * (kernel_size - 1) // 2)
            )
            self.res_skip_layers.append(nn.Conv1d(hidden, 2 * hidden if i < layers - 1 else hidden, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        skip = torch.zeros_like(x)
        cond = self.cond_layer(g) if g is not None and hasattr(self, "cond_layer") else None
        h = self.hidden
        for i, (in_layer, res_skip) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            z = in_layer(x)
            if cond is not None:
                z = z + cond[:, i * 2 * h : (i + 1) * 2 * h]
            acts = res_skip(torch.tanh(z[:, :h]) * torch.sigmoid(z[:, h:]))
            if i < self.layers - 1:
                x = (x + acts[:, :h]) * mask
                skip = skip + acts[:, h:]
            else:
                skip = skip + acts
        return skip * mask


class ChannelFlip(nn.Module):
    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        return torch.flip(x, [1])


class MeanCoupling(nn.Module):
    """Affine coupling with a mean only: half the channels shift the other half."""

    def __init__(self, channels: int, hidden: int, kernel_size: int, dilation_rate: int, layers: int, gin_channels: int) -> None:
        super().__init__()
        self.split = channels // 2
        self.pre = nn.Conv1d(self.split, hidden, 1)
        self.enc = WaveNetStack(hidden, kernel_size, dilation_rate, layers, gin_channels)
        self.post = nn.Conv1d(hidden, self.split, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None, sign: int = -1) -> torch.Tensor:
        """sign -1: the inverse direction (prior -> latent), all inference needs; +1: training's."""
        x0, x1 = x[:, : self.split], x[:, self.split :]
        shift = self.post(self.enc(self.pre(x0) * mask, mask, g)) * mask
        return torch.cat([x0, (x1 + sign * shift) * mask], dim=1)


class CouplingFlow(nn.Module):
    """``flow``: coupling layers at even indices, channel flips between them."""

    def __init__(self, channels: int, hidden: int, kernel_size: int, dilation_rate: int, layers: int,
                 gin_channels: int, n_flows: int = 4) -> None:
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(MeanCoupling(channels, hidden, kernel_size, dilation_rate, layers, gin_channels))
            self.flows.append(ChannelFlip())

    def reverse(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        for flow in reversed(self.flows):
            x = flow(x, mask, g)
        return x

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        """Latent -> prior (training)."""
        for flow in self.flows:
            x = flow(x, mask, g, 1) if isinstance(flow, MeanCoupling) else flow(x, mask, g)
        return x
