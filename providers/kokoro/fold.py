"""Undo dynamic int8 quantization in an ONNX graph: the same network with float weights.

The shipped Kokoro model was quantized with ONNX Runtime's dynamic quantizer: every
MatMul/Conv became ``DynamicQuantizeLinear -> MatMulInteger/ConvInteger -> Cast -> Mul`` and
every LSTM a ``DynamicQuantizeLSTM``. On CPUs without fast int8 kernels (no AVX-512 VNNI) these
integer ops run several times slower than float ones. The int8 weights are what we have, so
folding dequantizes them once, ``w = (q - zero_point) * scale``, and wires the float
activations straight into plain MatMul/Conv/LSTM nodes. The weights stay the quantized ones;
only the per-call activation quantization (and its rounding) disappears, so the output is the
int8 model's, minus activation rounding noise.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class FoldStats:
    matmul: int = 0
    conv: int = 0
    lstm: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def folded(self) -> int:
        return self.matmul + self.conv + self.lstm


class _Graph:
    """Producer/consumer indexes over an ``onnx.GraphProto`` that is edited in place."""

    def __init__(self, graph: Any) -> None:
        self.graph = graph
        self.inits = {i.name: i for i in graph.initializer}
        self.producer = {o: n for n in graph.node for o in n.output}
        self.consumers: dict[str, list[Any]] = defaultdict(list)
        for node in graph.node:
            for name in node.input:
                self.consumers[name].append(node)

    def array(self, name: str) -> np.ndarray:
        from onnx import numpy_helper

        return numpy_helper.to_array(self.inits[name])

    def only_consumer(self, name: str, op_type: str) -> Any | None:
        found = self.consumers.get(name, [])
        if len(found) == 1 and found[0].op_type == op_type:
            return found[0]
        return None


def fold_dynamic_quantization(model: Any) -> FoldStats:
    """Rewrite ``model`` (an ``onnx.ModelProto``) in place; returns what was folded."""
    from onnx import helper, numpy_helper

    g = _Graph(model.graph)
    stats = FoldStats()
    new_inits: list[Any] = []
    replace: dict[int, Any] = {}  # id(first removed node) -> new node, kept at its place
    removed: set[int] = set()
    folded: dict[tuple[str, str, str], str] = {}  # shared weights (ALBERT's layers) fold once

    for node in list(model.graph.node):
        if node.op_type not in ("MatMulInteger", "ConvInteger"):
            continue
        chain = _integer_chain(g, node)
        if chain is None:
            stats.skipped.append(node.name)
            continue
        x, bias_add, cast, tail, w_scale = chain
        zero_name = node.input[3] if len(node.input) > 3 else ""
        key = (node.input[1], w_scale, zero_name)
        w_name = folded.get(key, "")
        if not w_name:
            w_name = f"{node.input[1]}_folded{len(folded)}"
            weight = _dequantize(g, node.input[1], w_scale, zero_name, conv=node.op_type == "ConvInteger")
            new_inits.append(numpy_helper.from_array(weight, w_name))
            folded[key] = w_name
        inputs = [x, w_name]
        if node.op_type == "ConvInteger":
            if bias_add is not None:
                bias = _float_bias(g, bias_add.input[1])
                if bias is None:
                    stats.skipped.append(node.name)
                    continue
                inputs.append(bias)
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            new = helper.make_node("Conv", inputs, [tail.output[0]], name=f"{node.name or node.output[0]}_folded", **attrs)
            stats.conv += 1
        else:
            new = helper.make_node("MatMul", inputs, [tail.output[0]], name=f"{node.name or node.output[0]}_folded")
            stats.matmul += 1
        replace[id(node)] = new
        removed.update(id(n) for n in (node, bias_add, cast, tail) if n is not None)

    for node in list(model.graph.node):
        if node.op_type == "DynamicQuantizeLSTM":
            new, weights = _float_lstm(g, node)
            new_inits.extend(weights)
            replace[id(node)] = new
            removed.add(id(node))
            stats.lstm += 1

    kept = []
    for node in model.graph.node:
        if id(node) in replace:
            kept.append(replace[id(node)])
        elif id(node) not in removed:
            kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)
    model.graph.initializer.extend(new_inits)
    _prune(model)
    log.info("folded %d MatMul, %d Conv, %d LSTM (%d left quantized)", stats.matmul, stats.conv, stats.lstm, len(stats.skipped))
    return stats


def _dequantize(g: _Graph, q_name: str, s_name: str, z_name: str, conv: bool) -> np.ndarray:
    q = g.array(q_name).astype(np.float32)
    zero = g.array(z_name).astype(np.float32) if z_name else np.float32(0)
    scale = g.array(s_name).astype(np.float32)
    if conv:  # per-output-channel values broadcast along axis 0 of [out, in, k...]
        shape = (-1,) + (1,) * (q.ndim - 1)
        zero = np.reshape(zero, shape) if zero.ndim == 1 else zero
        scale = np.reshape(scale, shape) if scale.ndim == 1 else scale
    return ((q - zero) * scale).astype(np.float32)


def _integer_chain(g: _Graph, node: Any) -> tuple[str, Any, Any, Any, str] | None:
    """(float input, int bias Add or None, Cast, scaling Mul, weight-scale initializer)."""
    dql = g.producer.get(node.input[0])
    if dql is None or dql.op_type != "DynamicQuantizeLinear" or node.input[1] not in g.inits:
        return None
    out = node.output[0]
    bias_add = g.only_consumer(out, "Add")
    if bias_add is not None:
        out = bias_add.output[0]
    cast = g.only_consumer(out, "Cast")
    if cast is None:
        return None
    tail = g.only_consumer(cast.output[0], "Mul")
    if tail is None:
        return None
    factor = next((i for i in tail.input if i != cast.output[0]), None)
    scale_mul = g.producer.get(factor or "")
    if scale_mul is None or scale_mul.op_type != "Mul" or dql.output[1] not in scale_mul.input:
        return None
    w_scale = next((i for i in scale_mul.input if i != dql.output[1]), "")
    if w_scale not in g.inits:
        return None
    return dql.input[0], bias_add, cast, tail, w_scale


def _float_bias(g: _Graph, name: str) -> str | None:
    """The float bias initializer that the quantizer divided by the runtime scale."""
    for _ in range(6):
        node = g.producer.get(name)
        if node is None:
            return None
        if node.op_type == "Div" and node.input[0] in g.inits:
            return str(node.input[0])
        name = node.input[0]
    return None


def _float_lstm(g: _Graph, node: Any) -> tuple[Any, list[Any]]:
    """DynamicQuantizeLSTM keeps W/R transposed ([dir, in, 4h]); ONNX LSTM wants [dir, 4h, in]."""
    from onnx import helper, numpy_helper

    def dequant(q_name: str, s_name: str, z_name: str) -> np.ndarray:
        q = g.array(q_name).astype(np.float32)
        scale = g.array(s_name).astype(np.float32).reshape(-1, 1, 1)
        zero = g.array(z_name).astype(np.float32).reshape(-1, 1, 1)
        return np.ascontiguousarray(np.transpose((q - zero) * scale, (0, 2, 1)))

    ins = list(node.input) + [""] * (12 - len(node.input))
    w = numpy_helper.from_array(dequant(ins[1], ins[8], ins[9]), f"{ins[1]}_folded")
    r = numpy_helper.from_array(dequant(ins[2], ins[10], ins[11]), f"{ins[2]}_folded")
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    inputs = [ins[0], w.name, r.name, *ins[3:8]]
    while inputs and not inputs[-1]:
        inputs.pop()
    new = helper.make_node("LSTM", inputs, list(node.output), name=f"{node.name or node.output[0]}_folded", **attrs)
    return new, [w, r]


def _prune(model: Any) -> None:
    """Drop nodes whose outputs nobody reads, then initializers nobody reads."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    while True:
        used = {i for n in graph.node for i in n.input} | outputs
        dead = [n for n in graph.node if not any(o in used for o in n.output if o)]
        if not dead:
            break
        dead_ids = {id(n) for n in dead}
        kept = [n for n in graph.node if id(n) not in dead_ids]
        del graph.node[:]
        graph.node.extend(kept)
    used = {i for n in graph.node for i in n.input} | outputs
    kept_inits = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept_inits)
    produced = {o for n in graph.node for o in n.output}
    kept_info = [v for v in graph.value_info if v.name in produced]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
