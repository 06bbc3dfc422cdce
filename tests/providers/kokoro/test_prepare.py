"""Preparing the model: the fold runs in a child process, an earlier fold is not kept or trusted."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnxruntime.quantization import QuantType, quantize_dynamic

from providers.base import ProviderError
from providers.kokoro import prepare
from providers.kokoro.assets import ModelSource
from providers.kokoro.prepare import FOLD_VERSION, folded, folded_path, machine_id, ready_runtime
from tests.providers.kokoro.test_fast_graph import small_vocoder


@pytest.fixture
def source(tmp_path: Path) -> ModelSource:
    """A small quantized network the way Kokoro was quantized."""
    onnx.save(small_vocoder(), tmp_path / "float.onnx")
    path = tmp_path / "model.onnx"
    quantize_dynamic(tmp_path / "float.onnx", path, op_types_to_quantize=["Conv"], weight_type=QuantType.QInt8)
    return ModelSource(path=path, key="k")


def test_the_fold_runs_in_a_process_of_its_own(source: ModelSource, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """In the agent's process it held the interpreter for seconds, stalling speech meanwhile."""
    def not_here(*args: object) -> None:
        raise AssertionError("folded in the agent's process")

    monkeypatch.setattr(prepare, "fold_to", not_here)
    path = folded(source, tmp_path / "data")
    model = onnx.load(str(path))
    ops = {n.op_type for n in model.graph.node}
    assert "ConvInteger" not in ops and "Conv" in ops and "Unsqueeze" in ops  # folded, then rewritten


def test_a_fold_that_fails_says_why_and_leaves_nothing(tmp_path: Path) -> None:
    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"not a model")
    data = tmp_path / "data"
    with pytest.raises(ProviderError, match="folding Kokoro model model.onnx failed: .+"):
        folded(ModelSource(path=broken, key="b"), data)
    assert not data.exists() or not any(data.iterdir())


def test_an_earlier_fold_is_removed_and_its_timing_not_trusted(source: ModelSource, tmp_path: Path) -> None:
    """A fold of an older FOLD_VERSION is another graph: its file goes, and the choice timed on it
    is made again rather than read."""
    older = tmp_path / f"kokoro-k.float{FOLD_VERSION - 1}.onnx"
    older.write_bytes(b"an earlier fold")
    record = tmp_path / "kokoro-k.runtime.json"
    path = folded(source, tmp_path)
    assert path == folded_path(source, tmp_path) and path.is_file() and not older.exists()

    document = {"variant": "float", "threads": 2, "timings": {"int8": 1.0, "float": 0.5}, "machine": machine_id(),
                "fold_version": FOLD_VERSION, "chooser": 2}
    record.write_text(json.dumps(document))
    assert ready_runtime(source, tmp_path, "auto", 2) is not None
    record.write_text(json.dumps({**document, "fold_version": FOLD_VERSION - 1}))
    assert ready_runtime(source, tmp_path, "auto", 2) is None
