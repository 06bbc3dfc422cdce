"""Two rewrites of the float Kokoro graph that ONNX Runtime runs faster, the network unchanged.

- **1-D convolutions as 2-D ones of height 1** (``as_2d_convs``). ONNX Runtime's blocked-layout
  (NCHWc) convolution kernels take only 2-D convolutions; Kokoro's vocoder is 1-D convolutions,
  which run through its generic im2col path. Wrapped as ``Unsqueeze -> Conv 1xk -> Squeeze`` they
  took 2.16 s instead of 2.85 s of a paragraph's 4.7 s of kernels, 12 % off the whole (Intel Xeon,
  2 cores, bench/RESULTS.md "Kokoro's float graph, rewritten"). The tensors keep their names, so
  what reads one by name (the voicepack trainer's pitch curve) still finds it.
- **A square as a product** (``squares_as_products``): every Snake activation squares a sine with
  ``Pow(x, 2)``, which ONNX Runtime computes as a general power; ``Mul(x, x)`` is one multiply.

Both only ever apply to nodes whose weights or exponents are constants of the graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

HEIGHT_AXIS = "fast_graph_height_axis"  # the initializer naming axis 2, the inserted height


@dataclass
class RewriteStats:
    convs: int = 0
    squares: int = 0


def speed_up(model: Any) -> RewriteStats:
    """Both rewrites on ``model`` (an ``onnx.ModelProto``), in place."""
    return RewriteStats(convs=as_2d_convs(model), squares=squares_as_products(model))


def as_2d_convs(model: Any) -> int:
    """Every ``Conv`` with a constant 3-D weight run as a 2-D one of height 1; returns how many.
    A weight is reshaped where it lies (its bytes are already in the 2-D order), so the graph
    holds no second copy; one that another kind of node also reads is left alone, with its
    convolutions."""
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)

    def convertible(node: Any) -> bool:
        weight = inits.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        return weight is not None and len(weight.dims) == 3 and all(
            r.op_type == "Conv" and list(r.input).index(weight.name) == 1 for r in readers[weight.name])

    chosen = [node for node in graph.node if convertible(node)]
    if not chosen:
        return 0
    outputs = {node.output[0] for node in chosen}
    nodes: list[Any] = []
    for node in graph.node:
        if node.op_type != "Conv" or node.output[0] not in outputs:
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        weight = inits[node.input[1]]
        kernel = int(attrs.get("kernel_shape", [weight.dims[-1]])[-1])
        conv_attrs: dict[str, Any] = {"kernel_shape": [1, kernel]}
        if "strides" in attrs:
            conv_attrs["strides"] = [1, int(attrs["strides"][0])]
        if "dilations" in attrs:
            conv_attrs["dilations"] = [1, int(attrs["dilations"][0])]
        if "pads" in attrs:  # [begin, end] -> [h begin, w begin, h end, w end]
            conv_attrs["pads"] = [0, int(attrs["pads"][0]), 0, int(attrs["pads"][1])]
        for kept in ("group", "auto_pad"):
            if kept in attrs:
                conv_attrs[kept] = attrs[kept]
        out = node.output[0]
        name = node.name or out
        nodes.append(helper.make_node("Unsqueeze", [node.input[0], HEIGHT_AXIS], [f"{out}_2d_in"],
                                      name=f"{name}_2d_in"))
        nodes.append(helper.make_node("Conv", [f"{out}_2d_in", *node.input[1:]], [f"{out}_2d"], name=f"{name}_2d",
                                      **conv_attrs))
        nodes.append(helper.make_node("Squeeze", [f"{out}_2d", HEIGHT_AXIS], [out], name=f"{name}_2d_out"))
    for weight in {c.input[1]: inits[c.input[1]] for c in chosen}.values():  # a shared one once
        out_channels, in_channels, kernel = weight.dims
        weight.dims[:] = [out_channels, in_channels, 1, kernel]
    graph.initializer.append(numpy_helper.from_array(np.array([2], np.int64), HEIGHT_AXIS))
    del graph.node[:]
    graph.node.extend(nodes)
    return len(chosen)


def squares_as_products(model: Any) -> int:
    """Every ``Pow(x, 2)`` with a constant exponent as ``Mul(x, x)``; returns how many."""
    from onnx import helper, numpy_helper

    graph = model.graph
    twos = {i.name for i in graph.initializer if _is_two(numpy_helper.to_array(i))}
    twos |= {n.output[0] for n in graph.node if n.op_type == "Constant" and n.attribute
             and n.attribute[0].name == "value" and _is_two(numpy_helper.to_array(n.attribute[0].t))}
    count = 0
    for index, node in enumerate(graph.node):
        if node.op_type == "Pow" and node.input[1] in twos:
            graph.node[index].CopyFrom(helper.make_node("Mul", [node.input[0], node.input[0]], list(node.output),
                                                        name=node.name))
            count += 1
    return count


def _is_two(value: np.ndarray) -> bool:
    return value.size == 1 and value.dtype.kind in "fiu" and float(value.reshape(-1)[0]) == 2.0
