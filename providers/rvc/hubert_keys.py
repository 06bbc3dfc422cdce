"""How fairseq and transformers name a HuBERT's weights, mapped onto ``hubert.Hubert``'s names,
with the model's sizes read from the weights themselves (and its config where weights can't tell)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from providers.rvc.modelfile import ModelFileError

# kernel -> stride of the standard wav2vec2/HuBERT feature extractor, for checkpoints without a config
STANDARD_STRIDES = {10: 5, 3: 2, 2: 2}


@dataclass(frozen=True)
class HubertLayout:
    source: Path
    conv_layers: tuple[tuple[int, int, int], ...]  # (channels, kernel, stride)
    conv_bias: bool
    conv_norm: str  # "group" (first layer only), "layer" (every layer) or "none"
    dim: int
    heads: int
    layers: int
    ffn: int
    conv_pos: int
    conv_pos_groups: int
    norm_first: bool
    proj_dim: int
    normalize_input: bool


def _field(container: Any, name: str, default: Any = None) -> Any:
    """A setting from a dict or from an object's attributes (fairseq ``args`` namespaces)."""
    if isinstance(container, dict):
        return container.get(name, default)
    return getattr(container, "__dict__", {}).get(name, default)


def _literal_layers(spec: Any) -> list[tuple[int, int, int]] | None:
    """fairseq's ``conv_feature_layers`` string, e.g. "[(512,10,5)] + [(512,3,2)] * 4", read without eval."""
    if not isinstance(spec, str):
        return None

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [value(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = value(node.left), value(node.right)
            return left + right if isinstance(node.op, ast.Add) else left * right
        raise ValueError("unsupported expression")

    try:
        layers = value(ast.parse(spec, mode="eval").body)
        return [tuple(int(v) for v in layer) for layer in layers]  # type: ignore[misc]
    except (SyntaxError, ValueError, TypeError):
        return None


def _count(weights: dict[str, Any], pattern: str) -> int:
    rx = re.compile(pattern)
    found = {int(m.group(1)) for k in weights if (m := rx.match(k))}
    return max(found) + 1 if found else 0


def _folded(weights: dict[str, Any], prefix: str) -> Any:
    """The plain weight behind a possibly weight-normed conv (either spelling)."""
    from providers.rvc.synthesizer import fold_weight_norm

    part = {k: v for k, v in weights.items() if k.startswith(prefix + ".weight") or k.startswith(prefix + ".parametrizations")}
    folded = fold_weight_norm({k.removeprefix(prefix): v for k, v in part.items()})
    if ".weight" not in folded:
        raise KeyError(prefix + ".weight")
    return folded[".weight"]


def _strides(kernels: list[int], configured: list[tuple[int, int, int]] | None, source: Path) -> list[int]:
    if configured and len(configured) == len(kernels) and all(c[1] == k for c, k in zip(configured, kernels)):
        return [c[2] for c in configured]
    if all(k in STANDARD_STRIDES for k in kernels):
        return [STANDARD_STRIDES[k] for k in kernels]
    raise ModelFileError(source, ["cannot tell the feature extractor's strides (no usable conv_feature_layers setting)"])


def fairseq_layout(path: Path, state: Any) -> tuple[HubertLayout, dict[str, Any]]:
    """A fairseq HuBERT checkpoint ({'cfg' or 'args', 'model': state_dict, ...})."""
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise ModelFileError(path, ["not a fairseq checkpoint: no 'model' state dict"])
    w = state["model"]
    cfg = state.get("cfg")
    model_cfg = _field(cfg, "model") if cfg is not None else state.get("args")
    task_cfg = _field(cfg, "task") if cfg is not None else state.get("args")
    n_conv = _count(w, r"feature_extractor\.conv_layers\.(\d+)\.0\.weight$")
    n_layers = _count(w, r"encoder\.layers\.(\d+)\.fc1\.weight$")
    if not n_conv or not n_layers or "post_extract_proj.weight" not in w:
        raise ModelFileError(path, ["not a HuBERT checkpoint: no feature extractor / encoder layers in 'model'"])
    kernels = [int(w[f"feature_extractor.conv_layers.{i}.0.weight"].shape[2]) for i in range(n_conv)]
    dims = [int(w[f"feature_extractor.conv_layers.{i}.0.weight"].shape[0]) for i in range(n_conv)]
    strides = _strides(kernels, _literal_layers(_field(model_cfg, "conv_feature_layers")), path)
    conv_norm = ("group" if "feature_extractor.conv_layers.0.2.weight" in w
                 else "layer" if "feature_extractor.conv_layers.0.2.1.weight" in w else "none")
    mapped: dict[str, Any] = {}
    for i in range(n_conv):
        mapped[f"convs.{i}.weight"] = w[f"feature_extractor.conv_layers.{i}.0.weight"]
        if f"feature_extractor.conv_layers.{i}.0.bias" in w:
            mapped[f"convs.{i}.bias"] = w[f"feature_extractor.conv_layers.{i}.0.bias"]
        if conv_norm == "layer":
            for p in ("weight", "bias"):
                mapped[f"conv_norms.{i}.{p}"] = w[f"feature_extractor.conv_layers.{i}.2.1.{p}"]
    renames = {"layer_norm": "feature_norm", "post_extract_proj": "projection",
               "encoder.layer_norm": "encoder_norm", "final_proj": "final_proj"}
    if conv_norm == "group":
        renames["feature_extractor.conv_layers.0.2"] = "first_norm"
    for i in range(n_layers):
        src = f"encoder.layers.{i}"
        for a, b in (("self_attn.q_proj", "q"), ("self_attn.k_proj", "k"), ("self_attn.v_proj", "v"),
                     ("self_attn.out_proj", "out"), ("self_attn_layer_norm", "attn_norm"), ("fc1", "fc1"),
                     ("fc2", "fc2"), ("final_layer_norm", "final_norm")):
            renames[f"{src}.{a}"] = f"layers.{i}.{b}"
    for a, b in renames.items():
        for p in ("weight", "bias"):
            if f"{a}.{p}" in w:
                mapped[f"{b}.{p}"] = w[f"{a}.{p}"]
    try:
        pos = _folded(w, "encoder.pos_conv.0")
    except KeyError as exc:
        raise ModelFileError(path, ["not a HuBERT checkpoint: no encoder.pos_conv"]) from exc
    mapped["pos_conv.weight"] = pos
    mapped["pos_conv.bias"] = w["encoder.pos_conv.0.bias"]
    dim = int(w["post_extract_proj.weight"].shape[0])
    layout = HubertLayout(
        source=path, conv_layers=tuple(zip(dims, kernels, strides)),
        conv_bias="feature_extractor.conv_layers.0.0.bias" in w, conv_norm=conv_norm, dim=dim,
        heads=int(_field(model_cfg, "encoder_attention_heads", max(dim // 64, 1))), layers=n_layers,
        ffn=int(w["encoder.layers.0.fc1.weight"].shape[0]), conv_pos=int(pos.shape[2]),
        conv_pos_groups=dim // int(pos.shape[1]), norm_first=bool(_field(model_cfg, "layer_norm_first", False)),
        proj_dim=int(w["final_proj.weight"].shape[0]) if "final_proj.weight" in w else 0,
        normalize_input=bool(_field(task_cfg, "normalize", False)),
    )
    return layout, {k: v.float() for k, v in mapped.items()}


def transformers_layout(
    folder: Path, weights: dict[str, Any], config: dict[str, Any], preprocessor: dict[str, Any]
) -> tuple[HubertLayout, dict[str, Any]]:
    """A transformers HubertModel (optionally with ``final_proj``, as ContentVec conversions have)."""
    w = {k.removeprefix("hubert."): v for k, v in weights.items()}
    n_conv = _count(w, r"feature_extractor\.conv_layers\.(\d+)\.conv\.weight$")
    n_layers = _count(w, r"encoder\.layers\.(\d+)\.feed_forward\.intermediate_dense\.weight$")
    if not n_conv or not n_layers or "feature_projection.projection.weight" not in w:
        raise ModelFileError(folder, ["not a HuBERT model: no feature extractor / encoder layers in the weights"])
    kernels = [int(w[f"feature_extractor.conv_layers.{i}.conv.weight"].shape[2]) for i in range(n_conv)]
    dims = [int(w[f"feature_extractor.conv_layers.{i}.conv.weight"].shape[0]) for i in range(n_conv)]
    configured = None
    if isinstance(config.get("conv_stride"), list) and isinstance(config.get("conv_kernel"), list):
        configured = [(d, int(k), int(s)) for d, k, s in zip(dims, config["conv_kernel"], config["conv_stride"])]
    strides = _strides(kernels, configured, folder)
    norm = str(config.get("feat_extract_norm", "group"))
    conv_norm = "layer" if norm == "layer" else "group" if "feature_extractor.conv_layers.0.layer_norm.weight" in w else "none"
    renames = {"feature_projection.layer_norm": "feature_norm", "feature_projection.projection": "projection",
               "encoder.layer_norm": "encoder_norm", "final_proj": "final_proj"}
    for i in range(n_conv):
        renames[f"feature_extractor.conv_layers.{i}.conv"] = f"convs.{i}"
        if conv_norm == "layer":
            renames[f"feature_extractor.conv_layers.{i}.layer_norm"] = f"conv_norms.{i}"
    if conv_norm == "group":
        renames["feature_extractor.conv_layers.0.layer_norm"] = "first_norm"
    for i in range(n_layers):
        src = f"encoder.layers.{i}"
        for a, b in (("attention.q_proj", "q"), ("attention.k_proj", "k"), ("attention.v_proj", "v"),
                     ("attention.out_proj", "out"), ("layer_norm", "attn_norm"),
                     ("feed_forward.intermediate_dense", "fc1"), ("feed_forward.output_dense", "fc2"),
                     ("final_layer_norm", "final_norm")):
            renames[f"{src}.{a}"] = f"layers.{i}.{b}"
    mapped: dict[str, Any] = {}
    for a, b in renames.items():
        for p in ("weight", "bias"):
            if f"{a}.{p}" in w:
                mapped[f"{b}.{p}"] = w[f"{a}.{p}"]
    try:
        pos = _folded(w, "encoder.pos_conv_embed.conv")
    except KeyError as exc:
        raise ModelFileError(folder, ["not a HuBERT model: no encoder.pos_conv_embed"]) from exc
    mapped["pos_conv.weight"] = pos
    mapped["pos_conv.bias"] = w["encoder.pos_conv_embed.conv.bias"]
    dim = int(w["feature_projection.projection.weight"].shape[0])
    layout = HubertLayout(
        source=folder, conv_layers=tuple(zip(dims, kernels, strides)),
        conv_bias="feature_extractor.conv_layers.0.conv.bias" in w, conv_norm=conv_norm, dim=dim,
        heads=int(config.get("num_attention_heads", max(dim // 64, 1))), layers=n_layers,
        ffn=int(w["encoder.layers.0.feed_forward.intermediate_dense.weight"].shape[0]), conv_pos=int(pos.shape[2]),
        conv_pos_groups=dim // int(pos.shape[1]), norm_first=bool(config.get("do_stable_layer_norm", False)),
        proj_dim=int(w["final_proj.weight"].shape[0]) if "final_proj.weight" in w else 0,
        normalize_input=bool(preprocessor.get("do_normalize", False)),
    )
    return layout, {k: v.float() for k, v in mapped.items()}
