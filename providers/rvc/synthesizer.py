"""The RVC inference network (v1/v2, with or without pitch) and how a checkpoint's weights
are put into it. Imported only by the RVC engine (torch at the top)."""

from __future__ import annotations

import torch
from torch import nn

from providers.rvc.generator import HifiGenerator
from providers.rvc.layers import ContentEncoder, CouplingFlow
from providers.rvc.modelfile import ModelConfig, RvcModelFile

PRIOR_NOISE = 0.66666  # the sampling temperature RVC uses at inference
DECODER_MARGIN = 16  # frames decoded beyond a kept region: more than the decoder's receptive field


def fold_weight_norm(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace weight-norm pairs (``.weight_g``/``.weight_v`` or PyTorch's
    ``.parametrizations.weight.original0/1``) by the plain ``.weight`` they stand for, in fp32."""
    pairs = {".weight_g": ".weight_v", ".parametrizations.weight.original0": ".parametrizations.weight.original1"}
    out: dict[str, torch.Tensor] = {}
    for key, value in weights.items():
        if key.endswith(tuple(pairs.values())):
            continue
        for g_suffix, v_suffix in pairs.items():
            if key.endswith(g_suffix):
                base = key[: -len(g_suffix)]
                v = weights[base + v_suffix].float()
                g = value.float()
                dims = [d for d in range(v.dim()) if g.shape[d] == 1]
                norm = v.pow(2).sum(dim=dims, keepdim=True).sqrt()
                out[base + ".weight"] = g * v / norm
                break
        else:
            out[key] = value.float() if value.is_floating_point() else value
    return out


class Synthesizer(nn.Module):
    """Content features + pitch -> waveform at the model's sample rate (``net_g.infer``)."""

    def __init__(self, config: ModelConfig, feature_dim: int, with_pitch: bool, speakers: int) -> None:
        super().__init__()
        c = config
        self.with_pitch = with_pitch
        self.enc_p = ContentEncoder(
            feature_dim, c.inter_channels, c.hidden_channels, c.filter_channels,
            c.n_heads, c.n_layers, c.kernel_size, with_pitch,
        )
        self.dec = HifiGenerator(
            c.inter_channels, c.resblock, c.resblock_kernel_sizes, c.resblock_dilation_sizes,
            c.upsample_rates, c.upsample_initial_channel, c.upsample_kernel_sizes, c.gin_channels,
            c.sample_rate if with_pitch else None,
        )
        self.flow = CouplingFlow(c.inter_channels, c.hidden_channels, 5, 1, 3, c.gin_channels)
        self.emb_g = nn.Embedding(speakers, c.gin_channels)

    @torch.no_grad()
    def infer(
        self,
        features: torch.Tensor,
        pitch: torch.Tensor | None,
        pitchf: torch.Tensor | None,
        speaker: int = 0,
        keep: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """features [1, T, D] at 100 frames/s, pitch [1, T] coarse (1..255), pitchf [1, T] Hz
        -> waveform of frames ``keep`` = [start, end) (all T by default), ``hop`` samples per frame.

        The prior and flow always see every frame; the decoder - most of the cost - only runs
        over the kept frames plus DECODER_MARGIN on each side, which covers its receptive field."""
        frames = features.shape[1]
        start, end = keep if keep is not None else (0, frames)
        lengths = torch.tensor([frames], device=features.device)
        g = self.emb_g(torch.tensor([speaker], device=features.device)).unsqueeze(-1)
        mean, log_scale, mask = self.enc_p(features, pitch if self.with_pitch else None, lengths)
        z_p = (mean + torch.exp(log_scale) * torch.randn_like(mean) * PRIOR_NOISE) * mask
        z = self.flow.reverse(z_p, mask, g) * mask
        lo, hi = max(start - DECODER_MARGIN, 0), min(end + DECODER_MARGIN, frames)
        f0 = pitchf[:, lo:hi] if self.with_pitch and pitchf is not None else None
        wave = self.dec(z[:, :, lo:hi], f0, g)[0, 0]
        hop = self.dec.upsample
        return wave[(start - lo) * hop : (end - lo) * hop]


def expected_shapes(model: RvcModelFile) -> dict[str, tuple[int, ...]]:
    """Every parameter the network for ``model`` has, with its shape (built on the meta device: no memory)."""
    with torch.device("meta"):
        net = Synthesizer(model.config, model.feature_dim, model.with_pitch, model.speakers)
    return {name: tuple(t.shape) for name, t in net.state_dict().items()}


def build_synthesizer(model: RvcModelFile, device: str = "cpu") -> Synthesizer:
    """The network with the file's weights (fp16 files are computed in fp32)."""
    weights = fold_weight_norm({k: v for k, v in model.weights.items() if not k.startswith("enc_q.")})
    net = Synthesizer(model.config, model.feature_dim, model.with_pitch, model.speakers)
    net.load_state_dict(weights, strict=True)
    return net.eval().to(device)
