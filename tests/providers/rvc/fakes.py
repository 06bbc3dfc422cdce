"""Small files of the real formats, with random weights: RVC inference models as RVC WebUI and
Applio write them, FAISS indexes, a fairseq HuBERT checkpoint (with the fairseq Dictionary
object real ones carry), the same HuBERT in transformers layout, and an RMVPE state dict.

Key names and shapes are spelled out here from the upstream model definitions, independently
of the code under test, so loading these files checks that code against the real layout.
Sizes are shrunk where the format carries them (config list, conv shapes); the feature sizes
that RVC fixes (256 for v1, 768 for v2, 128 mel bins, 360 pitch bins) are real.
"""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

STANDARD_V2_40K = [1025, 32, 192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11], [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
                   [10, 10, 2, 2], 512, [16, 16, 4, 4], 109, 256, 40000]
RATES = {"32k": ([10, 8, 2, 2], [20, 16, 4, 4], 32000), "40k": ([10, 10, 2, 2], [16, 16, 4, 4], 40000),
         "48k": ([12, 10, 2, 2], [24, 20, 4, 4], 48000)}


def small_config(sr: str = "40k", resblock: str = "1") -> list[Any]:
    """A shrunk model of the same architecture: fewer channels and layers, same upsampling."""
    ups, kernels, rate = RATES[sr]
    dilations = [[1, 3, 5]] if resblock == "1" else [[1, 3]]
    return [1025, 32, 16, 16, 32, 2, 2, 3, 0, resblock, [3], dilations, ups, 32, kernels, 2, 8, rate]


def full_config(sr: str = "40k") -> list[Any]:
    ups, kernels, rate = RATES[sr]
    return STANDARD_V2_40K[:12] + [ups, 512, kernels, 109, 256, rate]


def rvc_shapes(config: list[Any], feature_dim: int, f0: bool) -> dict[str, tuple[tuple[int, ...], bool]]:
    """name -> (shape, weight-normed?) for the inference weights of SynthesizerTrnMs{256,768}NSFsid[_nono]."""
    (_, _, inter, hidden, filt, heads, layers, kernel, _, resblock, rk, rd, ups, uic, uk, spk, gin, _) = config
    s: dict[str, tuple[tuple[int, ...], bool]] = {}

    def conv(name: str, cout: int, cin: int, k: int, bias: bool = True, wn: bool = False) -> None:
        s[f"{name}.weight"] = ((cout, cin, k), wn)
        if bias:
            s[f"{name}.bias"] = ((cout,), False)

    s["enc_p.emb_phone.weight"] = ((hidden, feature_dim), False)
    s["enc_p.emb_phone.bias"] = ((hidden,), False)
    if f0:
        s["enc_p.emb_pitch.weight"] = ((256, hidden), False)
    for i in range(layers):
        a = f"enc_p.encoder.attn_layers.{i}"
        for c in "qkvo":
            conv(f"{a}.conv_{c}", hidden, hidden, 1)
        s[f"{a}.emb_rel_k"] = ((1, 21, hidden // heads), False)
        s[f"{a}.emb_rel_v"] = ((1, 21, hidden // heads), False)
        for n in (1, 2):
            s[f"enc_p.encoder.norm_layers_{n}.{i}.gamma"] = ((hidden,), False)
            s[f"enc_p.encoder.norm_layers_{n}.{i}.beta"] = ((hidden,), False)
        conv(f"enc_p.encoder.ffn_layers.{i}.conv_1", filt, hidden, kernel)
        conv(f"enc_p.encoder.ffn_layers.{i}.conv_2", hidden, filt, kernel)
    conv("enc_p.proj", 2 * inter, hidden, 1)
    conv("dec.conv_pre", uic, inter, 7)
    if f0:
        s["dec.m_source.l_linear.weight"] = ((1, 1), False)
        s["dec.m_source.l_linear.bias"] = ((1,), False)
    channels = uic
    for i, (u, k) in enumerate(zip(ups, uk)):
        out = uic // 2 ** (i + 1)
        s[f"dec.ups.{i}.weight"] = ((channels, out, k), True)  # ConvTranspose1d: [in, out, k]
        s[f"dec.ups.{i}.bias"] = ((out,), False)
        if f0:
            stride = int(np.prod(ups[i + 1 :])) if i + 1 < len(ups) else 1
            conv(f"dec.noise_convs.{i}", out, 1, 1 if stride == 1 else 2 * stride)
        for j, (bk, dil) in enumerate(zip(rk, rd)):
            r = f"dec.resblocks.{i * len(rk) + j}"
            groups = ("convs1", "convs2") if resblock == "1" else ("convs",)
            for g in groups:
                for m in range(len(dil)):
                    conv(f"{r}.{g}.{m}", out, out, bk, wn=True)
        channels = out
    conv("dec.conv_post", 1, channels, 7, bias=False)
    conv("dec.cond", uic, gin, 1)
    for f in (0, 2, 4, 6):
        p = f"flow.flows.{f}"
        conv(f"{p}.pre", hidden, inter // 2, 1)
        for j in range(3):
            conv(f"{p}.enc.in_layers.{j}", 2 * hidden, hidden, 5, wn=True)
            conv(f"{p}.enc.res_skip_layers.{j}", 2 * hidden if j < 2 else hidden, hidden, 1, wn=True)
        conv(f"{p}.enc.cond_layer", 2 * hidden * 3, gin, 1, wn=True)
        conv(f"{p}.post", inter // 2, hidden, 1)
    s["emb_g.weight"] = ((spk, gin), False)
    return s


def rvc_weights(config: list[Any], feature_dim: int, f0: bool, spelling: str, half: bool, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    g_name, v_name = (("weight_g", "weight_v") if spelling == "weight_g"
                      else ("parametrizations.weight.original0", "parametrizations.weight.original1"))
    for name, (shape, wn) in rvc_shapes(config, feature_dim, f0).items():
        scale = 0.02 if not name.endswith(("gamma",)) else 1.0
        value = torch.randn(shape, generator=gen) * scale + (1.0 if name.endswith("gamma") else 0.0)
        if name.endswith("post.weight") or name.endswith("post.bias"):
            value = value * 0.1
        if wn:
            base = name.removesuffix(".weight")
            out[f"{base}.{v_name}"] = value
            out[f"{base}.{g_name}"] = value.flatten(1).norm(dim=1).view(-1, *([1] * (len(shape) - 1))) * 1.3
        else:
            out[name] = value
    return {k: (v.half() if half else v) for k, v in out.items()}


@dataclass(frozen=True)
class RvcFile:
    version: str = "v2"
    sr: str = "40k"
    f0: bool = True
    style: str = "webui"  # "webui" | "applio"
    spelling: str = "weight_g"  # "weight_g" | "parametrizations"
    half: bool = True
    full_size: bool = False
    seed: int = 0


def write_rvc_model(path: Path, spec: RvcFile = RvcFile()) -> Path:
    config = full_config(spec.sr) if spec.full_size else small_config(spec.sr)
    feature_dim = 256 if spec.version == "v1" else 768
    document: dict[str, Any] = {
        "weight": rvc_weights(config, feature_dim, spec.f0, spec.spelling, spec.half, spec.seed),
        "config": config,
    }
    if spec.style == "webui":
        document.update(info="300epoch", sr=spec.sr, f0=int(spec.f0), version=spec.version)
    else:
        document.update(
            epoch=300, step=9000, sr=config[-1], f0=spec.f0, version=spec.version,
            creation_date="2025-01-01T00:00:00", model_hash="0" * 64, dataset_length=612.5,
            model_name=path.stem, author="tests", embedder_model="contentvec", speakers_id=1, vocoder="HiFi-GAN",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(document, path)
    return path


def write_index(path: Path, dim: int, frames: int = 400, seed: int = 0) -> Path:
    """An IVF,Flat index as RVC builds it (n_ivf = min(16 sqrt(N), N // 39))."""
    import faiss

    vectors = np.random.default_rng(seed).normal(size=(frames, dim)).astype(np.float32)
    n_ivf = max(1, min(int(16 * np.sqrt(frames)), frames // 39))
    index = faiss.index_factory(dim, f"IVF{n_ivf},Flat")
    faiss.extract_index_ivf(index).nprobe = 1
    index.train(vectors)
    index.add(vectors)
    path.parent.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index, str(path))
    return path


# -- content encoder -----------------------------------------------------------------------
@dataclass(frozen=True)
class HubertSize:
    dim: int = 768
    layers: int = 2
    heads: int = 12
    ffn: int = 64
    conv_dim: int = 32
    conv_pos: int = 16
    conv_pos_groups: int = 16
    proj: int = 256


CONV_SPEC = [(10, 5), (3, 2), (3, 2), (3, 2), (3, 2), (2, 2), (2, 2)]


def fairseq_hubert_weights(size: HubertSize, seed: int = 0) -> dict[str, torch.Tensor]:
    """fairseq HubertModel state dict names, with pos_conv weight-normed over dim 2."""
    gen = torch.Generator().manual_seed(seed)

    def r(*shape: int, scale: float = 0.05) -> torch.Tensor:
        return torch.randn(shape, generator=gen) * scale

    w: dict[str, torch.Tensor] = {}
    cin = 1
    for i, (k, _) in enumerate(CONV_SPEC):
        w[f"feature_extractor.conv_layers.{i}.0.weight"] = r(size.conv_dim, cin, k, scale=0.3)
        cin = size.conv_dim
    w["feature_extractor.conv_layers.0.2.weight"] = torch.ones(size.conv_dim)
    w["feature_extractor.conv_layers.0.2.bias"] = torch.zeros(size.conv_dim)
    w["layer_norm.weight"], w["layer_norm.bias"] = torch.ones(size.conv_dim), torch.zeros(size.conv_dim)
    w["post_extract_proj.weight"], w["post_extract_proj.bias"] = r(size.dim, size.conv_dim), r(size.dim)
    v = r(size.dim, size.dim // size.conv_pos_groups, size.conv_pos)
    w["encoder.pos_conv.0.weight_v"] = v
    w["encoder.pos_conv.0.weight_g"] = v.pow(2).sum(dim=(0, 1), keepdim=True).sqrt()
    w["encoder.pos_conv.0.bias"] = r(size.dim)
    w["encoder.layer_norm.weight"], w["encoder.layer_norm.bias"] = torch.ones(size.dim), torch.zeros(size.dim)
    for i in range(size.layers):
        p = f"encoder.layers.{i}"
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            w[f"{p}.self_attn.{n}.weight"], w[f"{p}.self_attn.{n}.bias"] = r(size.dim, size.dim), r(size.dim)
        for n in ("self_attn_layer_norm", "final_layer_norm"):
            w[f"{p}.{n}.weight"], w[f"{p}.{n}.bias"] = torch.ones(size.dim) + r(size.dim), r(size.dim)
        w[f"{p}.fc1.weight"], w[f"{p}.fc1.bias"] = r(size.ffn, size.dim), r(size.ffn)
        w[f"{p}.fc2.weight"], w[f"{p}.fc2.bias"] = r(size.dim, size.ffn), r(size.dim)
    w["final_proj.weight"], w["final_proj.bias"] = r(size.proj, size.dim), r(size.proj)
    w["label_embs_concat"] = r(504, size.proj)
    w["mask_emb"] = r(size.dim)
    return w


def _fairseq_dictionary_class() -> type:
    """A class pickled under fairseq's name, as real checkpoints carry ``task_state['dictionaries']``."""
    class Dictionary:
        def __init__(self) -> None:
            self.symbols = ["<s>", "<pad>", "</s>", "<unk>"] + [str(i) for i in range(10)]
            self.count = [1] * len(self.symbols)
            self.indices = {s: i for i, s in enumerate(self.symbols)}

    Dictionary.__module__ = "fairseq.data.dictionary"
    Dictionary.__qualname__ = "Dictionary"
    return Dictionary


def write_fairseq_hubert(path: Path, size: HubertSize = HubertSize(), seed: int = 0) -> Path:
    """hubert_base.pt's layout: {'args': None, 'cfg': {...}, 'model': state_dict, 'task_state': {...}, ...}."""
    cls = _fairseq_dictionary_class()
    names = ("fairseq", "fairseq.data", "fairseq.data.dictionary")
    saved = {n: sys.modules.get(n) for n in names}
    fake = {n: types.ModuleType(n) for n in names}
    fake["fairseq.data.dictionary"].Dictionary = cls  # type: ignore[attr-defined]
    sys.modules.update(fake)
    cfg = {
        "model": {"_name": "hubert", "extractor_mode": "default", "encoder_layers": size.layers,
                  "encoder_embed_dim": size.dim, "encoder_ffn_embed_dim": size.ffn,
                  "encoder_attention_heads": size.heads, "activation_fn": "gelu", "layer_norm_first": False,
                  "conv_feature_layers": f"[({size.conv_dim},10,5)] + [({size.conv_dim},3,2)] * 4 + [({size.conv_dim},2,2)] * 2",
                  "conv_bias": False, "conv_pos": size.conv_pos, "conv_pos_groups": size.conv_pos_groups,
                  "final_dim": size.proj},
        "task": {"_name": "hubert_pretraining", "normalize": False, "sample_rate": 16000, "labels": ["km"]},
    }
    try:
        torch.save({"args": None, "cfg": cfg, "model": fairseq_hubert_weights(size, seed),
                    "task_state": {"dictionaries": [cls()]}, "optimizer_history": [], "extra_state": {}}, path)
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m
    return path


def write_transformers_hubert(folder: Path, size: HubertSize = HubertSize(), seed: int = 0, parametrized: bool = True) -> Path:
    """The same weights as ``write_fairseq_hubert(seed)`` under transformers' names (HubertModel + final_proj)."""
    w = fairseq_hubert_weights(size, seed)
    hf: dict[str, torch.Tensor] = {}
    for i in range(len(CONV_SPEC)):
        hf[f"feature_extractor.conv_layers.{i}.conv.weight"] = w[f"feature_extractor.conv_layers.{i}.0.weight"]
    hf["feature_extractor.conv_layers.0.layer_norm.weight"] = w["feature_extractor.conv_layers.0.2.weight"]
    hf["feature_extractor.conv_layers.0.layer_norm.bias"] = w["feature_extractor.conv_layers.0.2.bias"]
    pairs = {"feature_projection.layer_norm": "layer_norm", "feature_projection.projection": "post_extract_proj",
             "encoder.layer_norm": "encoder.layer_norm", "final_proj": "final_proj"}
    for i in range(size.layers):
        for a, b in (("attention.q_proj", "self_attn.q_proj"), ("attention.k_proj", "self_attn.k_proj"),
                     ("attention.v_proj", "self_attn.v_proj"), ("attention.out_proj", "self_attn.out_proj"),
                     ("layer_norm", "self_attn_layer_norm"), ("feed_forward.intermediate_dense", "fc1"),
                     ("feed_forward.output_dense", "fc2"), ("final_layer_norm", "final_layer_norm")):
            pairs[f"encoder.layers.{i}.{a}"] = f"encoder.layers.{i}.{b}"
    for a, b in pairs.items():
        hf[f"{a}.weight"], hf[f"{a}.bias"] = w[f"{b}.weight"], w[f"{b}.bias"]
    g, v = w["encoder.pos_conv.0.weight_g"], w["encoder.pos_conv.0.weight_v"]
    if parametrized:
        hf["encoder.pos_conv_embed.conv.parametrizations.weight.original0"] = g
        hf["encoder.pos_conv_embed.conv.parametrizations.weight.original1"] = v
    else:
        hf["encoder.pos_conv_embed.conv.weight_g"], hf["encoder.pos_conv_embed.conv.weight_v"] = g, v
    hf["encoder.pos_conv_embed.conv.bias"] = w["encoder.pos_conv.0.bias"]
    hf["masked_spec_embed"] = w["mask_emb"]
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(hf, folder / "pytorch_model.bin")
    config = {"model_type": "hubert", "hidden_size": size.dim, "num_hidden_layers": size.layers,
              "num_attention_heads": size.heads, "intermediate_size": size.ffn, "conv_dim": [size.conv_dim] * 7,
              "conv_kernel": [k for k, _ in CONV_SPEC], "conv_stride": [s for _, s in CONV_SPEC], "conv_bias": False,
              "feat_extract_norm": "group", "do_stable_layer_norm": False, "num_conv_pos_embeddings": size.conv_pos,
              "num_conv_pos_embedding_groups": size.conv_pos_groups, "classifier_proj_size": size.proj}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


# -- RMVPE ----------------------------------------------------------------------------------
def rmvpe_state(base: int = 2, depth: int = 5, middle: int = 4, blocks: int = 1, gru: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    """E2E(n_blocks, n_gru=1, (2,2)) state dict names; the real file has base 16, blocks 4, gru 256."""
    gen = torch.Generator().manual_seed(seed)
    s: dict[str, torch.Tensor] = {}

    def bn(name: str, c: int) -> None:
        s[f"{name}.weight"], s[f"{name}.bias"] = torch.ones(c), torch.zeros(c)
        s[f"{name}.running_mean"], s[f"{name}.running_var"] = torch.zeros(c), torch.ones(c)
        s[f"{name}.num_batches_tracked"] = torch.tensor(0)

    def res(name: str, cin: int, cout: int) -> None:
        s[f"{name}.conv.0.weight"] = torch.randn(cout, cin, 3, 3, generator=gen) * (2 / (cin * 9)) ** 0.5
        bn(f"{name}.conv.1", cout)
        s[f"{name}.conv.3.weight"] = torch.randn(cout, cout, 3, 3, generator=gen) * (2 / (cout * 9)) ** 0.5
        bn(f"{name}.conv.4", cout)
        if cin != cout:
            s[f"{name}.shortcut.weight"] = torch.randn(cout, cin, 1, 1, generator=gen) * (1 / cin) ** 0.5
            s[f"{name}.shortcut.bias"] = torch.zeros(cout)

    bn("unet.encoder.bn", 1)
    cin = 1
    for i in range(depth):
        cout = base * 2**i
        for j in range(blocks):
            res(f"unet.encoder.layers.{i}.conv.{j}", cin if j == 0 else cout, cout)
        cin = cout
    for i in range(middle):
        for j in range(blocks):
            res(f"unet.intermediate.layers.{i}.conv.{j}", cin if (i == 0 and j == 0) else cin * 2, cin * 2)
    c = cin * 2
    for i in range(depth):
        out = c // 2
        s[f"unet.decoder.layers.{i}.conv1.0.weight"] = torch.randn(c, out, 3, 3, generator=gen) * (2 / (c * 9)) ** 0.5
        bn(f"unet.decoder.layers.{i}.conv1.1", out)
        for j in range(blocks):
            res(f"unet.decoder.layers.{i}.conv2.{j}", out * 2 if j == 0 else out, out)
        c = out
    s["cnn.weight"], s["cnn.bias"] = torch.randn(3, base, 3, 3, generator=gen) * 0.3, torch.zeros(3)
    for suffix in ("", "_reverse"):
        s[f"fc.0.gru.weight_ih_l0{suffix}"] = torch.randn(3 * gru, 384, generator=gen) * 0.05
        s[f"fc.0.gru.weight_hh_l0{suffix}"] = torch.randn(3 * gru, gru, generator=gen) * 0.05
        s[f"fc.0.gru.bias_ih_l0{suffix}"] = torch.zeros(3 * gru)
        s[f"fc.0.gru.bias_hh_l0{suffix}"] = torch.zeros(3 * gru)
    s["fc.1.weight"], s["fc.1.bias"] = torch.randn(360, 2 * gru, generator=gen) * 0.3, torch.zeros(360)
    return s


def write_rmvpe(path: Path, **sizes: int) -> Path:
    torch.save(rmvpe_state(**sizes), path)
    return path


def install_rvc_assets(voices_dir: Path, speaker: str = "default", spec: RvcFile = RvcFile(),
                       index: bool = True, hubert: bool = True, rmvpe: bool = True) -> Path:
    """A voices folder as a user sets it up: rvc-models/<speaker>/<speaker>.pth + .index, hubert_base.pt, rmvpe.pt."""
    root = voices_dir / "rvc-models"
    write_rvc_model(root / speaker / f"{speaker}.pth", spec)
    if index:
        write_index(root / speaker / f"{speaker}.index", 256 if spec.version == "v1" else 768)
    if hubert:
        write_fairseq_hubert(root / "hubert_base.pt")
    if rmvpe:
        write_rmvpe(root / "rmvpe.pt")
    return root
