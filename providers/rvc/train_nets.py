"""What training adds to the inference network: the posterior encoder (``enc_q``), the
training-direction forward pass, RVC's v2 discriminators, weight norm on the layers RVC
trains with it, and the key spellings of RVC checkpoints (``weight_g``/``weight_v``).
Imported only by the RVC trainer (torch at the top)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

from providers.rvc.layers import LRELU_SLOPE, WaveNetStack, length_mask
from providers.rvc.modelfile import ModelConfig
from providers.rvc.synthesizer import Synthesizer

PERIODS = (2, 3, 5, 7, 11, 17, 23, 37)
G_SUFFIX, V_SUFFIX = ".parametrizations.weight.original0", ".parametrizations.weight.original1"


class PosteriorEncoder(nn.Module):
    """Linear spectrogram -> latent z (``enc_q``: 16 gated layers, kernel 5)."""

    def __init__(self, spec_channels: int, out_channels: int, hidden: int, gin_channels: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.pre = nn.Conv1d(spec_channels, hidden, 1)
        self.enc = WaveNetStack(hidden, 5, 1, 16, gin_channels)
        self.proj = nn.Conv1d(hidden, out_channels * 2, 1)

    def forward(self, spec: torch.Tensor, lengths: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mask = length_mask(lengths, spec.shape[2]).to(spec.dtype)
        stats = self.proj(self.enc(self.pre(spec) * mask, mask, g)) * mask
        mean, log_scale = torch.split(stats, self.out_channels, dim=1)
        z = (mean + torch.randn_like(mean) * torch.exp(log_scale)) * mask
        return z, mean, log_scale, mask


class TrainingSynthesizer(Synthesizer):
    """The inference network plus ``enc_q``; ``forward`` is one training pass on random slices."""

    def __init__(self, config: ModelConfig, feature_dim: int, with_pitch: bool, speakers: int) -> None:
        super().__init__(config, feature_dim, with_pitch, speakers)
        self.enc_q = PosteriorEncoder(config.spec_channels, config.inter_channels, config.hidden_channels, config.gin_channels)
        self.segment_frames = config.segment_size

    def forward(  # type: ignore[override]
        self, features: torch.Tensor, lengths: torch.Tensor, pitch: torch.Tensor | None, pitchf: torch.Tensor | None,
        spec: torch.Tensor, spec_lengths: torch.Tensor, speakers: torch.Tensor, segment_frames: int,
    ) -> dict[str, torch.Tensor]:
        g = self.emb_g(speakers).unsqueeze(-1)
        m_p, logs_p, _ = self.enc_p(features, pitch if self.with_pitch else None, lengths)
        z, m_q, logs_q, y_mask = self.enc_q(spec, spec_lengths, g)
        z_p = self.flow(z, y_mask, g)
        starts = (torch.rand(z.shape[0]) * (spec_lengths.cpu() - segment_frames + 1).clamp(min=1)).long()
        z_slice = torch.stack([z[i, :, s : s + segment_frames] for i, s in enumerate(starts.tolist())])
        f0 = None
        if self.with_pitch and pitchf is not None:
            f0 = torch.stack([pitchf[i, s : s + segment_frames] for i, s in enumerate(starts.tolist())])
        audio = self.dec(z_slice, f0, g)
        return {"audio": audio, "starts": starts, "z_p": z_p, "m_p": m_p, "logs_p": logs_p,
                "logs_q": logs_q, "mask": y_mask}


def _judged(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A discriminator's scores and every layer's output (the feature maps the generator's
    feature-matching loss compares), for the scale and the period discriminators alike."""
    maps = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        maps.append(x)
    x = post(x)
    maps.append(x)
    return x.flatten(1), maps


class ScaleDiscriminator(nn.Module):
    def __init__(self, width: int = 1) -> None:
        super().__init__()
        c = [16, 64, 256, 1024, 1024, 1024]
        c = [max(x // width, 4) for x in c]
        groups = [1, 4, 16, 64, 256, 1]
        shapes = [(1, c[0], 15, 1, 7), (c[0], c[1], 41, 4, 20), (c[1], c[2], 41, 4, 20), (c[2], c[3], 41, 4, 20),
                  (c[3], c[4], 41, 4, 20), (c[4], c[5], 5, 1, 2)]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv1d(i, o, k, s, padding=p, groups=min(gr, i, o))) for (i, o, k, s, p), gr in zip(shapes, groups)
        )
        self.conv_post = weight_norm(nn.Conv1d(c[5], 1, 3, 1, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return _judged(self.convs, self.conv_post, x)


class PeriodDiscriminator(nn.Module):
    def __init__(self, period: int, width: int = 1) -> None:
        super().__init__()
        self.period = period
        c = [1] + [max(x // width, 4) for x in (32, 128, 512, 1024, 1024)]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(c[i], c[i + 1], (5, 1), (3 if i < 4 else 1, 1), padding=(2, 0))) for i in range(5)
        )
        self.conv_post = weight_norm(nn.Conv2d(c[5], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, ch, t = x.shape
        if t % self.period:
            x = F.pad(x, (0, self.period - t % self.period), "reflect")
        x = x.view(b, ch, -1, self.period)
        return _judged(self.convs, self.conv_post, x)


class Discriminators(nn.Module):
    """RVC v2's MultiPeriodDiscriminatorV2: one scale and eight period discriminators."""

    def __init__(self, width: int = 1) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList([ScaleDiscriminator(width)] + [PeriodDiscriminator(p, width) for p in PERIODS])

    def forward(self, audio: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        scores, maps = [], []
        for d in self.discriminators:
            s, m = d(audio)
            scores.append(s)
            maps.append(m)
        return scores, maps


def add_weight_norm(net: TrainingSynthesizer) -> TrainingSynthesizer:
    """Weight norm on the layers RVC trains with it (so the exported weights have its meaning)."""
    for module in [*net.dec.ups, *net.dec.resblocks.modules()]:
        if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
            weight_norm(module)
    stacks = [m for m in [*net.flow.modules(), *net.enc_q.modules()] if isinstance(m, WaveNetStack)]
    for stack in stacks:
        for module in [*stack.in_layers, *stack.res_skip_layers] + ([stack.cond_layer] if hasattr(stack, "cond_layer") else []):
            weight_norm(module)
    return net


def to_rvc_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """PyTorch's parametrization names -> RVC's ``weight_g``/``weight_v`` (as Applio exports)."""
    out = {}
    for key, value in state.items():
        out[key.replace(G_SUFFIX, ".weight_g").replace(V_SUFFIX, ".weight_v")] = value
    return out


def from_rvc_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.replace(".weight_g", G_SUFFIX).replace(".weight_v", V_SUFFIX): v for k, v in state.items()}
