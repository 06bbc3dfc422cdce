"""The content encoder from the user's hubert_base.pt (fairseq layout, with the fairseq objects
real checkpoints carry) or from a transformers folder; both give the same features."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from providers.rvc.hubert import load_hubert
from providers.rvc.modelfile import ModelFileError
from tests.providers.rvc.fakes import HubertSize, write_fairseq_hubert, write_transformers_hubert

SIZE = HubertSize(layers=2)


@pytest.fixture(scope="module")
def speech() -> torch.Tensor:
    t = np.arange(16000) / 16000
    wave = 0.3 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.01 * np.random.default_rng(0).normal(size=16000)
    return torch.from_numpy(wave.astype(np.float32))[None]


def test_fairseq_checkpoint_with_fairseq_objects_loads_safely(tmp_path: Path, speech: torch.Tensor) -> None:
    path = write_fairseq_hubert(tmp_path / "hubert_base.pt", SIZE)
    with pytest.raises(pickle.UnpicklingError):  # what a plain weights-only load says about the real file
        torch.load(path, weights_only=True)
    model = load_hubert(path)

    v2 = model.rvc_features(speech, "v2")
    v1 = model.rvc_features(speech, "v1")
    assert v2.shape == (1, 49, 768)  # 50 frames/s: (16000 - 400) // 320 + 1
    assert v1.shape == (1, 49, 256)
    assert torch.isfinite(v2).all()


@pytest.mark.parametrize("parametrized", [True, False], ids=["parametrizations", "weight_g"])
def test_transformers_layout_gives_the_same_features(tmp_path: Path, speech: torch.Tensor, parametrized: bool) -> None:
    fairseq = load_hubert(write_fairseq_hubert(tmp_path / "hubert_base.pt", SIZE, seed=3))
    folder = load_hubert(write_transformers_hubert(tmp_path / "contentvec", SIZE, seed=3, parametrized=parametrized))
    for version in ("v1", "v2"):
        assert torch.allclose(fairseq.rvc_features(speech, version), folder.rvc_features(speech, version), atol=1e-5)


def test_safetensors_weights_load(tmp_path: Path, speech: torch.Tensor) -> None:
    from safetensors.torch import save_file

    folder = write_transformers_hubert(tmp_path / "contentvec", SIZE, seed=1)
    weights = torch.load(folder / "pytorch_model.bin", weights_only=True)
    (folder / "pytorch_model.bin").unlink()
    save_file({k: v.contiguous() for k, v in weights.items()}, str(folder / "model.safetensors"))
    reference = load_hubert(write_fairseq_hubert(tmp_path / "h.pt", SIZE, seed=1))
    assert torch.allclose(load_hubert(folder).rvc_features(speech, "v2"), reference.rvc_features(speech, "v2"), atol=1e-5)


def test_v1_needs_final_proj(tmp_path: Path, speech: torch.Tensor) -> None:
    folder = write_transformers_hubert(tmp_path / "hubert", SIZE)
    weights = torch.load(folder / "pytorch_model.bin", weights_only=True)
    torch.save({k: v for k, v in weights.items() if not k.startswith("final_proj")}, folder / "pytorch_model.bin")
    model = load_hubert(folder)
    assert model.rvc_features(speech, "v2").shape[-1] == 768
    with pytest.raises(ModelFileError, match="no final_proj"):
        model.rvc_features(speech, "v1")


def test_refuses_what_is_not_a_hubert(tmp_path: Path) -> None:
    path = tmp_path / "hubert_base.pt"
    torch.save({"model": {"something.weight": torch.zeros(2)}}, path)
    with pytest.raises(ModelFileError, match="not a HuBERT checkpoint"):
        load_hubert(path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}")
    with pytest.raises(ModelFileError, match="no model.safetensors or pytorch_model.bin"):
        load_hubert(tmp_path / "empty")


def test_only_the_named_fairseq_classes_are_tolerated(tmp_path: Path) -> None:
    class Sneaky:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("ran",))

    path = tmp_path / "hubert_base.pt"
    torch.save({"model": {}, "task_state": Sneaky()}, path)
    with pytest.raises(ModelFileError, match="refused"):
        load_hubert(path)
