"""Folding dynamic quantization back to float, on a small network quantized the way Kokoro was."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

from providers.kokoro.fold import fold_dynamic_quantization

HIDDEN = 16


def small_network(path: Path) -> None:
    """Conv1d(+bias) -> LSTM (bidirectional) -> MatMul shared twice (as ALBERT shares layers) -> Add."""
    rng = np.random.default_rng(0)
    conv_w = rng.normal(0, 0.3, (8, 4, 3)).astype(np.float32)
    conv_b = rng.normal(0, 0.1, (8,)).astype(np.float32)
    lstm_w = rng.normal(0, 0.3, (2, 4 * HIDDEN, 8)).astype(np.float32)
    lstm_r = rng.normal(0, 0.3, (2, 4 * HIDDEN, HIDDEN)).astype(np.float32)
    lstm_b = rng.normal(0, 0.1, (2, 8 * HIDDEN)).astype(np.float32)
    dense = rng.normal(0, 0.3, (2 * HIDDEN, 2 * HIDDEN)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "conv_w", "conv_b"], ["c"], pads=[1, 1], kernel_shape=[3]),
        helper.make_node("Transpose", ["c"], ["c_t"], perm=[2, 0, 1]),  # [T, batch, 8]
        helper.make_node("LSTM", ["c_t", "lstm_w", "lstm_r", "lstm_b"], ["h"], direction="bidirectional", hidden_size=HIDDEN),
        helper.make_node("Transpose", ["h"], ["h_t"], perm=[1, 0, 2, 3]),  # [batch, T, 2, H]
        helper.make_node("Reshape", ["h_t", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "dense"], ["m1"]),
        helper.make_node("MatMul", ["m1", "dense"], ["m2"]),
        helper.make_node("Add", ["m1", "m2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, "T"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            numpy_helper.from_array(conv_w, "conv_w"),
            numpy_helper.from_array(conv_b, "conv_b"),
            numpy_helper.from_array(lstm_w, "lstm_w"),
            numpy_helper.from_array(lstm_r, "lstm_r"),
            numpy_helper.from_array(lstm_b, "lstm_b"),
            numpy_helper.from_array(dense, "dense"),
            numpy_helper.from_array(np.array([1, -1, 2 * HIDDEN], np.int64), "shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0])


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("fold")
    original, quantized, folded = root / "float.onnx", root / "int8.onnx", root / "folded.onnx"
    small_network(original)
    quantize_dynamic(original, quantized, op_types_to_quantize=["Conv", "MatMul", "LSTM"], weight_type=QuantType.QInt8)
    model = onnx.load(str(quantized))
    stats = fold_dynamic_quantization(model)
    assert (stats.conv, stats.lstm, stats.matmul, stats.skipped) == (1, 1, 2, [])
    onnx.checker.check_model(model)
    onnx.save(model, folded)
    return original, quantized, folded


def test_quantized_ops_are_gone(models: tuple[Path, Path, Path]) -> None:
    _, quantized, folded = models
    before = Counter(n.op_type for n in onnx.load(str(quantized)).graph.node)
    after = Counter(n.op_type for n in onnx.load(str(folded)).graph.node)
    assert before["ConvInteger"] == 1 and before["DynamicQuantizeLSTM"] == 1 and before["DynamicQuantizeLinear"] >= 2
    for op in ("ConvInteger", "MatMulInteger", "DynamicQuantizeLinear", "DynamicQuantizeLSTM", "Cast"):
        assert after[op] == 0, op
    assert (after["Conv"], after["LSTM"], after["MatMul"]) == (1, 1, 2)


def test_shared_weight_is_folded_once(models: tuple[Path, Path, Path]) -> None:
    graph = onnx.load(str(models[2])).graph
    weights = {n.input[1] for n in graph.node if n.op_type == "MatMul"}
    assert len(weights) == 1
    names = [i.name for i in graph.initializer]
    assert len(names) == len(set(names))


def test_folded_output_is_the_int8_weights_without_activation_rounding(models: tuple[Path, Path, Path]) -> None:
    original, quantized, folded = models
    x = np.random.default_rng(1).normal(0, 1, (1, 4, 40)).astype(np.float32)
    want, int8, got = run(original, x), run(quantized, x), run(folded, x)
    assert got.shape == want.shape
    scale = float(np.abs(want).max())
    # Folded keeps the int8 weights but not the per-call activation rounding: it sits closer
    # to the float network than the int8 graph does, and well within weight-rounding error.
    assert np.abs(got - want).max() < 0.05 * scale
    assert np.abs(got - want).mean() < np.abs(int8 - want).mean()
