"""``voice-agent rvc validate``: is this file really an RVC model, and does its index fit?

The same checks run when the provider loads a model; here they produce a report a person can
read. Nothing in the files is executed (see ``modelfile.safe_load``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from providers.rvc.modelfile import ModelFileError, RvcModelFile, read_model, shape_problems


@dataclass
class ValidationReport:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        verdict = "result: OK" if self.ok else "result: NOT USABLE\n" + "\n".join(f"  - {p}" for p in self.problems)
        return "\n".join(self.lines + [verdict]) + "\n"


def _describe(model: RvcModelFile) -> list[str]:
    import torch

    params = sum(int(v.numel()) for v in model.weights.values() if isinstance(v, torch.Tensor))
    meta = model.metadata
    if meta:
        maker = "Applio (" + ", ".join(f"{k} {meta[k]}" for k in ("model_name", "author", "epoch", "embedder_model", "vocoder") if meta.get(k) is not None) + ")"
    else:
        maker = "RVC WebUI" + (f" ({model.info})" if model.info else "")
    c = model.config
    return [
        f"model: {model.path}",
        f"  written by: {maker}",
        f"  version: {model.version} ({model.feature_dim}-d content features)",
        f"  sample rate: {model.sample_rate} Hz ({c.hop} samples per 10 ms frame)",
        f"  pitch: {'yes (NSF decoder)' if model.with_pitch else 'no (_nono model)'}",
        f"  speakers: {model.speakers}",
        f"  weights: {len(model.weights)} tensors, {params / 1e6:.1f}M parameters, {model.dtype}, "
        f"weight norm as {model.weight_norm_spelling}",
        f"  network: hidden {c.hidden_channels}, {c.n_layers} attention layers x {c.n_heads} heads, "
        f"upsampling {c.upsample_rates} from {c.upsample_initial_channel} channels",
    ]


def validate(model_path: Path, index_path: Path | None = None) -> ValidationReport:
    report = ValidationReport()
    try:
        model = read_model(model_path)
    except ModelFileError as exc:
        report.lines.append(f"model: {model_path}")
        report.problems.extend(exc.problems)
        return report
    report.lines.extend(_describe(model))
    report.problems.extend(shape_problems(model))
    embedder = model.metadata.get("embedder_model")
    if embedder not in (None, "contentvec", "hubert_base", "hubert"):
        report.lines.append(f"  note: trained on '{embedder}' features; give that encoder as contentEncoderPath")
    if index_path is None:
        report.lines.append("index: none (retrieval off; indexRate has no effect)")
        return report
    from providers.rvc.index import read_index

    try:
        index = read_index(index_path, model.feature_dim)
    except ModelFileError as exc:
        report.lines.append(f"index: {index_path}")
        report.problems.extend(f"index: {p}" for p in exc.problems)
        return report
    kind = type(index.index).__name__
    report.lines.append(f"index: {index_path} ({kind}, {len(index.vectors)} frames of {index.dim}-d features: matches)")
    return report
