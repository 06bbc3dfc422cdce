"""The torch side of the RVC provider, behind one import so the engine can load it lazily:
loading a speaker (model + index, validated) and everything a conversion needs."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from providers.rvc.convert import Converter, ConvertOptions, LoadedVoice, resample
from providers.rvc.hubert import load_hubert
from providers.rvc.index import read_index
from providers.rvc.modelfile import ModelFileError, read_model, shape_problems
from providers.rvc.pitch import PitchTools, choose_method, rmvpe_loader
from providers.rvc.synthesizer import build_synthesizer

log = logging.getLogger(__name__)

__all__ = [
    "ConvertOptions", "Converter", "LoadedVoice", "PitchTools", "choose_method", "load_hubert", "load_voice",
    "resample", "rmvpe_loader", "warm_up",
]


def load_voice(model_path: Path, index_path: Path | None, device: str) -> LoadedVoice:
    """Read, validate and build a speaker's model; its index must match the feature size."""
    model = read_model(model_path)
    problems = shape_problems(model)
    if problems:
        raise ModelFileError(model_path, problems)
    net = build_synthesizer(model, device)
    index = read_index(index_path, model.feature_dim) if index_path is not None else None
    log.info(
        "loaded RVC model %s (%s, %d Hz, %s pitch, %s)%s", model_path.name, model.version, model.sample_rate,
        "with" if model.with_pitch else "without", model.dtype,
        f" with index {index.path.name} ({len(index.vectors)} frames)" if index else " without index",
    )
    model.weights = {}  # the network holds them now
    return LoadedVoice(net=net, model=model, index=index, device=device)


def warm_up() -> None:
    """Nothing to compile ahead on CPU; keeps torch's thread pool from starting on the first request."""
    torch.zeros(1).add_(1)
