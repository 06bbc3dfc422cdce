"""The float graph's rewrites for ONNX Runtime (1-D convolutions as 2-D, squares as products) on
a small network of the same kinds of nodes: the same numbers out, the old nodes gone."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from providers.kokoro.fast_graph import as_2d_convs, speed_up, squares_as_products


def small_vocoder() -> onnx.ModelProto:
    """Conv1d stacks as Kokoro's vocoder has them (padding, dilation, stride, groups, a bias, a
    weight read twice, a convolution with no optional attributes) with a Snake between them."""
    rng = np.random.default_rng(1)

    def weight(*shape: int) -> np.ndarray:
        return rng.normal(0, 0.3, shape).astype(np.float32)

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["pitch"], kernel_shape=[3], pads=[1, 1], dilations=[1], strides=[1],
                         group=1),
        helper.make_node("Mul", ["pitch", "alpha"], ["ax"]),
        helper.make_node("Sin", ["ax"], ["s"]),
        helper.make_node("Pow", ["s", "two"], ["s2"]),
        helper.make_node("Add", ["pitch", "s2"], ["snake"]),
        helper.make_node("Conv", ["snake", "w2"], ["c2"], kernel_shape=[5], pads=[6, 6], dilations=[3], group=2),
        helper.make_node("Conv", ["c2", "w3"], ["c3"], kernel_shape=[4], strides=[2], pads=[2, 1]),
        helper.make_node("Conv", ["c3", "w3"], ["c4"]),  # the same weight again, no pads: shorter
        helper.make_node("Pow", ["c4", "three"], ["p3"]),  # not a square: kept
        helper.make_node("Conv", ["p3", "w4"], ["c5"], kernel_shape=[1]),
        helper.make_node("ReduceSum", ["w4"], ["w4_sum"], keepdims=0),  # w4 read by another kind of node too
        helper.make_node("Add", ["c5", "w4_sum"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "vocoder",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, "T"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("pitch", TensorProto.FLOAT, None)],
        [
            numpy_helper.from_array(weight(8, 4, 3), "w1"),
            numpy_helper.from_array(weight(8), "b1"),
            numpy_helper.from_array(np.full((1, 8, 1), 1.3, np.float32), "alpha"),
            numpy_helper.from_array(np.array(2.0, np.float32), "two"),
            numpy_helper.from_array(np.array(3.0, np.float32), "three"),
            numpy_helper.from_array(weight(8, 4, 5), "w2"),
            numpy_helper.from_array(weight(8, 8, 4), "w3"),
            numpy_helper.from_array(weight(8, 8, 1), "w4"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def outputs(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in session.run(None, {"x": x})]


def test_the_rewritten_graph_computes_what_the_original_did() -> None:
    x = np.random.default_rng(2).normal(0, 1, (1, 4, 38)).astype(np.float32)
    before = outputs(small_vocoder(), x)
    model = small_vocoder()
    stats = speed_up(model)
    after = outputs(model, x)
    assert (stats.convs, stats.squares) == (4, 1)  # not the one whose weight is read elsewhere
    assert [a.shape for a in after] == [b.shape for b in before]
    for a, b in zip(after, before):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)  # float rounding, through a cube


def test_no_1d_convolution_or_square_is_left_and_tensors_keep_their_names() -> None:
    model = small_vocoder()
    as_2d_convs(model)
    squares_as_products(model)
    weights = {i.name: list(i.dims) for i in model.graph.initializer}
    convs = {n.input[1] for n in model.graph.node if n.op_type == "Conv"}
    assert convs == {"w1", "w2", "w3", "w4"}
    assert len(model.graph.initializer) == len(small_vocoder().graph.initializer) + 1  # the height axis only
    assert weights["w3"] == [8, 8, 1, 4]  # read by two convolutions, reshaped once (in place: no copy beside it)
    assert weights["w4"] == [8, 8, 1]  # another kind of node reads it: left as it was, and so is its convolution
    ops = Counter(n.op_type for n in model.graph.node)
    assert ops["Pow"] == 1 and ops["Unsqueeze"] == ops["Squeeze"] == 4
    produced = {o for n in model.graph.node for o in n.output}
    assert {"pitch", "c2", "c3", "c4", "s2", "y"} <= produced  # what reads a tensor by name finds it


def test_a_graph_without_1d_convolutions_is_left_as_it_was() -> None:
    model = small_vocoder()
    as_2d_convs(model)
    again = onnx.ModelProto()
    again.CopyFrom(model)
    assert as_2d_convs(again) == 0 and again == model
