"""Reading the files users bring: RVC inference models (``.pth``, as RVC WebUI and Applio write
them) and PyTorch checkpoints in general, without ever running code from them.

``.pth`` files are pickles. They are opened with ``torch.load(weights_only=True)``, which only
rebuilds tensors and plain containers; anything else is refused. torch is imported inside the
functions that need it.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SAMPLE_RATES = {"32k": 32000, "40k": 40000, "48k": 48000}
FEATURE_DIMS = {"v1": 256, "v2": 768}
CONFIG_FIELDS = (
    "spec_channels", "segment_size", "inter_channels", "hidden_channels", "filter_channels", "n_heads",
    "n_layers", "kernel_size", "p_dropout", "resblock", "resblock_kernel_sizes", "resblock_dilation_sizes",
    "upsample_rates", "upsample_initial_channel", "upsample_kernel_sizes", "spk_embed_dim", "gin_channels", "sr",
)
APPLIO_KEYS = ("epoch", "step", "creation_date", "model_hash", "dataset_length", "model_name", "author",
               "embedder_model", "speakers_id", "vocoder")


class ModelFileError(Exception):
    """A file is not a usable model; ``problems`` says what is wrong, one item each."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


class _Opaque:
    """Stands in for a class a checkpoint names but we never need (fairseq's Dictionary,
    argparse.Namespace): its arguments and fields are kept as data, no code of it runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state


def safe_load(path: Path, placeholders: tuple[str, ...] = ()) -> Any:
    """``torch.load`` restricted to tensors and plain data. ``placeholders`` are class names
    (``module.Class``) to rebuild as inert data holders instead of refusing the file."""
    import pickle

    import torch

    if not path.is_file():
        raise ModelFileError(path, ["file not found"])
    if path.stat().st_size == 0:
        raise ModelFileError(path, ["file is empty"])
    stand_ins: list[Any] = [(_Opaque, name) for name in placeholders]
    try:
        with torch.serialization.safe_globals(stand_ins):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        offending = re.search(r"GLOBAL ([\w.]+)|global[:\s]+`?([\w.]+)", str(exc))
        if offending is None:
            raise ModelFileError(path, ["cannot be read: not a PyTorch file, or damaged; copy it again"]) from exc
        name = offending.group(1) or offending.group(2)
        raise ModelFileError(path, [
            f"refused: loading it would run Python code it names ({name}), not just read weights. It is not "
            "loaded. Use a model from a source you trust, or one saved with its weights only"
        ]) from exc
    except Exception as exc:  # the restricted unpickler ran no code: whatever broke, the file is damaged
        raise ModelFileError(
            path, [f"cannot be read: damaged or truncated ({type(exc).__name__}: {str(exc)[:160]}); copy it again"]
        ) from exc


@dataclass(frozen=True)
class ModelConfig:
    """The 18-item ``config`` list of an RVC model, by name."""

    spec_channels: int
    segment_size: int
    inter_channels: int
    hidden_channels: int
    filter_channels: int
    n_heads: int
    n_layers: int
    kernel_size: int
    p_dropout: float
    resblock: str
    resblock_kernel_sizes: list[int]
    resblock_dilation_sizes: list[list[int]]
    upsample_rates: list[int]
    upsample_initial_channel: int
    upsample_kernel_sizes: list[int]
    spk_embed_dim: int
    gin_channels: int
    sample_rate: int

    @property
    def hop(self) -> int:
        return math.prod(self.upsample_rates)


def parse_config(items: Any) -> tuple[ModelConfig | None, list[str]]:
    if not isinstance(items, (list, tuple)):
        return None, [f"'config' must be a list, not {type(items).__name__}"]
    if len(items) != len(CONFIG_FIELDS):
        return None, [f"'config' has {len(items)} items; an RVC model has {len(CONFIG_FIELDS)}"]
    named = dict(zip(CONFIG_FIELDS, items))
    problems = []

    def whole(name: str) -> int:
        value = named[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problems.append(f"config {name} must be a whole number, not {value!r}")
            return 1
        return value

    def whole_list(name: str) -> list[int]:
        value = named[name]
        if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, int) and v > 0 for v in value):
            problems.append(f"config {name} must be a list of positive whole numbers, not {value!r}")
            return [1]
        return [int(v) for v in value]

    dilations = named["resblock_dilation_sizes"]
    if not isinstance(dilations, (list, tuple)) or not all(
        isinstance(d, (list, tuple)) and d and all(isinstance(v, int) and v > 0 for v in d) for d in dilations
    ):
        problems.append(f"config resblock_dilation_sizes must be lists of whole numbers, not {dilations!r}")
        dilations = [[1]]
    resblock = str(named["resblock"])
    if resblock not in ("1", "2"):
        problems.append(f"config resblock must be '1' or '2', not {named['resblock']!r}")
    config = ModelConfig(
        spec_channels=whole("spec_channels"), segment_size=whole("segment_size"),
        inter_channels=whole("inter_channels"), hidden_channels=whole("hidden_channels"),
        filter_channels=whole("filter_channels"), n_heads=whole("n_heads"), n_layers=whole("n_layers"),
        kernel_size=whole("kernel_size"), p_dropout=float(named["p_dropout"] or 0), resblock=resblock,
        resblock_kernel_sizes=whole_list("resblock_kernel_sizes"),
        resblock_dilation_sizes=[[int(v) for v in d] for d in dilations],
        upsample_rates=whole_list("upsample_rates"), upsample_initial_channel=whole("upsample_initial_channel"),
        upsample_kernel_sizes=whole_list("upsample_kernel_sizes"), spk_embed_dim=whole("spk_embed_dim"),
        gin_channels=whole("gin_channels"), sample_rate=whole("sr"),
    )
    if len(config.upsample_rates) != len(config.upsample_kernel_sizes):
        problems.append("config upsample_rates and upsample_kernel_sizes differ in length")
    if len(config.resblock_kernel_sizes) != len(config.resblock_dilation_sizes):
        problems.append("config resblock_kernel_sizes and resblock_dilation_sizes differ in length")
    if config.sample_rate and config.hop * 100 != config.sample_rate:
        problems.append(
            f"config upsampling {config.upsample_rates} gives {config.hop} samples per frame, but "
            f"{config.sample_rate} Hz needs {config.sample_rate // 100} (100 frames per second)"
        )
    if config.n_heads and config.hidden_channels % config.n_heads:
        problems.append(f"config hidden_channels {config.hidden_channels} does not split into {config.n_heads} heads")
    return (config if not problems else None), problems


@dataclass
class RvcModelFile:
    """An RVC inference model as read from disk (weights still as stored)."""

    path: Path
    weights: dict[str, Any]
    config: ModelConfig
    version: str
    sample_rate: int
    with_pitch: bool
    speakers: int
    info: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def feature_dim(self) -> int:
        return FEATURE_DIMS[self.version]

    @property
    def dtype(self) -> str:
        kinds = {str(v.dtype).removeprefix("torch.") for v in self.weights.values() if v.is_floating_point()}
        return "/".join(sorted(kinds)) or "none"

    @property
    def weight_norm_spelling(self) -> str:
        if any(k.endswith(".weight_g") for k in self.weights):
            return "weight_g/weight_v"
        if any(".parametrizations.weight." in k for k in self.weights):
            return "parametrizations"
        return "folded"


def read_model(path: Path) -> RvcModelFile:
    """Load and interpret an RVC inference model; ModelFileError says why a file is not one."""
    import torch

    data = safe_load(path)
    if not isinstance(data, dict):
        raise ModelFileError(path, [f"not an RVC model: it holds a {type(data).__name__}, not a dict"])
    if "weight" not in data or "config" not in data:
        if "model" in data and "iteration" in data:
            hint = "this is a training checkpoint (G_*.pth/D_*.pth); use the small model RVC exports from it"
        elif data and all(isinstance(v, torch.Tensor) for v in data.values()):
            hint = "this is a bare state dict without RVC's 'config' (an RMVPE or other network?)"
        else:
            hint = f"keys found: {', '.join(sorted(map(str, data))[:8])}"
        raise ModelFileError(path, [f"not an RVC model: no 'weight' and 'config' entries ({hint})"])
    weights = data["weight"]
    if not isinstance(weights, dict) or not weights or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise ModelFileError(path, ["not an RVC model: 'weight' is not a dict of tensors"])
    config, problems = parse_config(data["config"])
    phone = weights.get("enc_p.emb_phone.weight")
    speakers_w = weights.get("emb_g.weight")
    if phone is None or speakers_w is None:
        problems.append("not an RVC model: the weights lack enc_p.emb_phone and emb_g")
    version = str(data.get("version") or ("v2" if phone is not None and phone.shape[-1] == 768 else "v1"))
    if version not in FEATURE_DIMS:
        problems.append(f"unknown version {version!r} (RVC models are v1 or v2)")
    elif phone is not None and phone.shape[-1] != FEATURE_DIMS[version]:
        problems.append(f"version {version} takes {FEATURE_DIMS[version]}-d features, but the weights take {phone.shape[-1]}-d")
    sr_value = data.get("sr")
    sample_rate = SAMPLE_RATES.get(str(sr_value)) if not isinstance(sr_value, int) else sr_value
    if sample_rate is None:
        problems.append(f"unknown sample rate {sr_value!r} (expected 32k, 40k or 48k)")
    elif config is not None and config.sample_rate != sample_rate:
        problems.append(f"'sr' says {sample_rate} Hz but the config list says {config.sample_rate} Hz")
    f0 = data.get("f0")
    with_pitch = bool(int(f0)) if isinstance(f0, (int, bool)) else "enc_p.emb_pitch.weight" in weights
    vocoder = data.get("vocoder")
    if vocoder not in (None, "HiFi-GAN"):
        problems.append(f"vocoder {vocoder!r} is not supported (only HiFi-GAN, RVC's own)")
    if problems or config is None or sample_rate is None or speakers_w is None:
        raise ModelFileError(path, problems)
    return RvcModelFile(
        path=path, weights=weights, config=config, version=version, sample_rate=sample_rate,
        with_pitch=with_pitch, speakers=int(speakers_w.shape[0]), info=str(data.get("info", "")),
        metadata={k: data[k] for k in APPLIO_KEYS if k in data},
    )


def shape_problems(model: RvcModelFile) -> list[str]:
    """Keys and shapes of the weights against the network their config describes."""
    from providers.rvc.synthesizer import expected_shapes

    expected = expected_shapes(model)
    found: dict[str, tuple[int, ...]] = {}
    for key, value in model.weights.items():
        if key.startswith("enc_q."):  # the posterior encoder is only used in training
            continue
        for g, v in ((".weight_g", ".weight_v"), (".parametrizations.weight.original0", ".parametrizations.weight.original1")):
            if key.endswith(g):
                break
            if key.endswith(v):
                key = key[: -len(v)] + ".weight"
                break
        else:
            found[key] = tuple(value.shape)
            continue
        if key.endswith(".weight"):
            found[key] = tuple(value.shape)
    problems = []
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing:
        problems.append(f"{len(missing)} weight(s) missing, e.g. {', '.join(missing[:3])}")
    if extra:
        problems.append(f"{len(extra)} unexpected weight(s), e.g. {', '.join(extra[:3])}")
    wrong = [f"{k} is {found[k]}, expected {expected[k]}" for k in sorted(set(found) & set(expected)) if found[k] != expected[k]]
    if wrong:
        problems.append(f"{len(wrong)} weight(s) of the wrong shape, e.g. {'; '.join(wrong[:3])}")
    return problems
