"""The content encoder: HuBERT / ContentVec, implemented here, loaded from the user's
``hubert_base.pt`` (a fairseq checkpoint) or a transformers-layout folder (config.json +
pytorch_model.bin or model.safetensors). Sizes are read from the checkpoint, so any
HuBERT-shaped model loads. Imported only by the RVC engine (torch at the top).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from providers.rvc.hubert_keys import HubertLayout, fairseq_layout, transformers_layout
from providers.rvc.modelfile import ModelFileError

log = logging.getLogger(__name__)

V1_LAYER, V2_LAYER = 9, 12  # RVC v1: final_proj(layer 9) 256-d; v2: layer 12 output 768-d


class _EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int, norm_first: bool) -> None:
        super().__init__()
        self.heads = heads
        self.norm_first = norm_first
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.attn_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn)
        self.fc2 = nn.Linear(ffn, dim)
        self.final_norm = nn.LayerNorm(dim)

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        batch, frames, dim = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, frames, self.heads, dim // self.heads).transpose(1, 2)

        y = F.scaled_dot_product_attention(heads(self.q(x)), heads(self.k(x)), heads(self.v(x)))
        return self.out(y.transpose(1, 2).reshape(batch, frames, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_first:
            x = x + self._attend(self.attn_norm(x))
            return x + self.fc2(F.gelu(self.fc1(self.final_norm(x))))
        x = self.attn_norm(x + self._attend(x))
        return self.final_norm(x + self.fc2(F.gelu(self.fc1(x))))


class Hubert(nn.Module):
    """Waveform at 16 kHz -> features at 50 frames/s from any encoder layer."""

    def __init__(self, layout: HubertLayout) -> None:
        super().__init__()
        self.layout = layout
        channels_in = 1
        self.convs = nn.ModuleList()
        for dim, kernel, stride in layout.conv_layers:
            self.convs.append(nn.Conv1d(channels_in, dim, kernel, stride=stride, bias=layout.conv_bias))
            channels_in = dim
        if layout.conv_norm == "group":
            first = layout.conv_layers[0][0]
            self.first_norm = nn.GroupNorm(first, first)  # one group per channel, as fairseq's
        elif layout.conv_norm == "layer":
            self.conv_norms = nn.ModuleList(nn.LayerNorm(dim) for dim, _, _ in layout.conv_layers)
        self.feature_norm = nn.LayerNorm(channels_in)
        self.projection = nn.Linear(channels_in, layout.dim)
        self.pos_conv = nn.Conv1d(layout.dim, layout.dim, layout.conv_pos, padding=layout.conv_pos // 2,
                                  groups=layout.conv_pos_groups)
        self.encoder_norm = nn.LayerNorm(layout.dim)
        self.layers = nn.ModuleList(
            _EncoderLayer(layout.dim, layout.heads, layout.ffn, layout.norm_first) for _ in range(layout.layers)
        )
        if layout.proj_dim:
            self.final_proj = nn.Linear(layout.dim, layout.proj_dim)

    @torch.no_grad()
    def features(self, wave: torch.Tensor, output_layer: int, project: bool) -> torch.Tensor:
        """wave [1, samples] -> [1, frames, dim] after ``output_layer`` layers (final_proj if ``project``)."""
        if self.layout.normalize_input:
            wave = F.layer_norm(wave, wave.shape[-1:])
        x = wave.unsqueeze(1)
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i == 0 and self.layout.conv_norm == "group":
                x = self.first_norm(x)
            elif self.layout.conv_norm == "layer":
                x = self.conv_norms[i](x.transpose(1, 2)).transpose(1, 2)
            x = F.gelu(x)
        x = self.projection(self.feature_norm(x.transpose(1, 2)))
        pos = self.pos_conv(x.transpose(1, 2))
        if self.layout.conv_pos % 2 == 0:
            pos = pos[..., :-1]  # even kernel: drop the extra frame so lengths stay equal
        x = x + F.gelu(pos).transpose(1, 2)
        if not self.layout.norm_first:
            x = self.encoder_norm(x)
        for layer in self.layers[: min(output_layer, len(self.layers))]:
            x = layer(x)
        if project:
            x = self.final_proj(x)
        return x

    def rvc_features(self, wave: torch.Tensor, version: str) -> torch.Tensor:
        """What an RVC model of ``version`` was trained on."""
        if version == "v1":
            if not hasattr(self, "final_proj"):
                raise ModelFileError(self.layout.source, ["this content encoder has no final_proj, which v1 models need"])
            return self.features(wave, V1_LAYER, project=True)
        return self.features(wave, V2_LAYER, project=False)


def load_hubert(path: Path, device: str = "cpu") -> Hubert:
    """A fairseq ``.pt`` file or a transformers folder; ModelFileError explains a bad one."""
    if path.is_dir():
        layout, weights = transformers_layout(path, _read_hf_weights(path), _read_json(path / "config.json"),
                                              _read_json(path / "preprocessor_config.json", required=False))
    else:
        from providers.rvc.modelfile import safe_load

        state = safe_load(path, placeholders=("fairseq.data.dictionary.Dictionary", "argparse.Namespace"))
        layout, weights = fairseq_layout(path, state)
    model = Hubert(layout)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise ModelFileError(path, [f"content encoder weights do not fit: missing {missing[:3]}, unexpected {unexpected[:3]}"])
    log.info("loaded content encoder %s (%d layers, %d-d)", path, layout.layers, layout.dim)
    return model.eval().to(device)


def _read_json(path: Path, required: bool = True) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        if not required:
            return {}
        raise ModelFileError(path.parent, [f"{path.name} is missing"]) from exc
    except (OSError, ValueError) as exc:
        raise ModelFileError(path, [f"not readable JSON: {exc}"]) from exc
    if not isinstance(data, dict):
        raise ModelFileError(path, ["must be a JSON object"])
    return data


def _read_hf_weights(folder: Path) -> dict[str, torch.Tensor]:
    safetensors_file = folder / "model.safetensors"
    if safetensors_file.is_file():
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise ModelFileError(folder, ["model.safetensors needs the safetensors package: pip install safetensors"]) from exc
        try:
            return load_file(str(safetensors_file))
        except Exception as exc:  # safetensors raises its own error type
            raise ModelFileError(safetensors_file, [f"cannot be read: {exc}"]) from exc
    bin_file = folder / "pytorch_model.bin"
    if bin_file.is_file():
        from providers.rvc.modelfile import safe_load

        data = safe_load(bin_file)
        if not isinstance(data, dict):
            raise ModelFileError(bin_file, ["not a state dict"])
        return data
    raise ModelFileError(folder, ["no model.safetensors or pytorch_model.bin beside config.json"])
