"""Kokoro's ONNX graph as a torch module, so the voicepack trainer can take gradients by style.

ONNX Runtime cannot differentiate, and the original torch weights are not shipped: the graph
we have is the prepared (float-folded) ONNX model. ``onnx2torch`` turns it into a torch.fx
module; it lacks converters for a few nodes this graph has (ONNX Runtime's fused BERT ops,
LSTM, STFT, opset 18-20 versions of common ops), which are registered here. Only the voicepack
trainer imports this module: it pulls in torch.

The sine source's STFT is taken out of the gradient: the decoder takes atan(imag / real) of it,
and for the near-silent bins that ratio is rounding noise, so its gradient would be noise too.
Pitch still reaches the gradient through the decoder's F0 input.
"""

from __future__ import annotations

import sys
import types
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

_REGISTERED = False


def _import_onnx2torch() -> Any:
    # onnx2torch imports torchvision for two detection ops (NMS, RoIAlign) that Kokoro has not;
    # torchvision is a second multi-GB torch build, so it is not installed: a stub stands in.
    if "torchvision" not in sys.modules:
        try:
            import torchvision  # noqa: F401
        except ImportError:
            stub, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
            ops.nms = ops.batched_nms = ops.roi_align = None  # type: ignore[attr-defined]
            stub.ops = ops  # type: ignore[attr-defined]
            sys.modules["torchvision"], sys.modules["torchvision.ops"] = stub, ops
    try:
        import onnx2torch
    except ImportError as exc:
        raise RuntimeError("Kokoro voicepack training needs onnx2torch: pip install --no-deps onnx2torch==1.5.15") from exc
    return onnx2torch


class _Dequantize(nn.Module):
    def forward(self, x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor) -> torch.Tensor:
        return (x.to(torch.float32) - zero_point.to(torch.float32)) * scale


class _FastGelu(nn.Module):
    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        return F.gelu(x if bias is None else x + bias, approximate="tanh")


class _SkipLayerNorm(nn.Module):
    def __init__(self, epsilon: float) -> None:
        super().__init__()
        self.epsilon = epsilon

    def forward(self, x: torch.Tensor, skip: torch.Tensor, gamma: torch.Tensor,
                beta: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
        summed = x + skip if bias is None else x + skip + bias
        return F.layer_norm(summed, gamma.shape, gamma, beta, self.epsilon)


class _FusedMatMul(nn.Module):
    def __init__(self, trans_a: bool, trans_b: bool, alpha: float) -> None:
        super().__init__()
        self.trans_a, self.trans_b, self.alpha = trans_a, trans_b, alpha

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a = a.transpose(-1, -2) if self.trans_a else a
        b = b.transpose(-1, -2) if self.trans_b else b
        return self.alpha * torch.matmul(a, b)


class _Stft(nn.Module):
    def forward(self, signal: torch.Tensor, step: torch.Tensor, window: torch.Tensor,
                length: torch.Tensor | None = None) -> torch.Tensor:
        n_fft = int(length) if length is not None else window.shape[0]
        mono = (signal[..., 0] if signal.dim() == 3 else signal).detach()  # see the module docstring
        spectrum = torch.stft(mono, n_fft=n_fft, hop_length=int(step), win_length=n_fft, window=window,
                              center=False, onesided=True, return_complex=True)
        out = torch.view_as_real(spectrum).transpose(1, 2)  # ONNX: (batch, frames, bins, 2)
        # ONNX Runtime's FFT leaves ~1e-7 of rounding noise where torch's gives exact zeros, and
        # the graph takes atan(imag / real) of it: the phase of near-silent bins is noise there.
        # Without noise here every such phase would be 0 and the voice audibly buzzier (speaker
        # similarity to ONNX Runtime's output 0.87-0.88 without, 0.94-0.97 with).
        return out + 1e-7 * torch.randn_like(out)


class _Lstm(nn.Module):
    """ONNX LSTM (gates i, o, f, c; outputs seq x dirs x batch x hidden) on torch's LSTM."""

    def __init__(self, w: torch.Tensor, r: torch.Tensor, b: torch.Tensor, hidden: int) -> None:
        super().__init__()
        self.hidden, self.dirs = hidden, w.shape[0]
        self.lstm = nn.LSTM(w.shape[2], hidden, bidirectional=self.dirs == 2)

        def torch_order(t: torch.Tensor) -> torch.Tensor:
            i, o, f, c = t.chunk(4, 0)
            return torch.cat([i, f, c, o], 0)

        with torch.no_grad():
            for d in range(self.dirs):
                suffix = "_l0_reverse" if d else "_l0"
                getattr(self.lstm, "weight_ih" + suffix).copy_(torch_order(w[d]))
                getattr(self.lstm, "weight_hh" + suffix).copy_(torch_order(r[d]))
                getattr(self.lstm, "bias_ih" + suffix).copy_(torch_order(b[d][: 4 * hidden]))
                getattr(self.lstm, "bias_hh" + suffix).copy_(torch_order(b[d][4 * hidden :]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        y, (h, c) = self.lstm(x)
        steps, batch, _ = y.shape
        return y.view(steps, batch, self.dirs, self.hidden).permute(0, 2, 1, 3), h, c


class _ReduceMean(nn.Module):
    def __init__(self, axes: list[int] | None, keepdims: bool) -> None:
        super().__init__()
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x: torch.Tensor, axes: torch.Tensor | None = None) -> torch.Tensor:
        dims = self.axes if self.axes is not None else [int(a) for a in axes.tolist()]  # type: ignore[union-attr]
        return torch.mean(x, dim=dims, keepdim=self.keepdims)


class _Clip(nn.Module):
    def forward(self, x: torch.Tensor, low: torch.Tensor | None = None, high: torch.Tensor | None = None) -> torch.Tensor:
        return torch.clamp(x, low, high)


# Versions onnx2torch does not list whose differences (new types, new optional modes) this graph does not use.
_SAME_AS = [("Reshape", 19, 14), ("Resize", 19, 13), ("Cast", 19, 13), ("Equal", 19, 13), ("Shape", 19, 15),
            ("Split", 18, 13), ("GreaterOrEqual", 16, 12), ("ConstantOfShape", 20, 9), ("Pad", 19, 13),
            ("ScatterND", 18, 16)]
# onnx2torch names modules after the domain, and "." is not allowed there.
MS_DOMAIN = "com_microsoft"
F0_CURVE = "/encoder/F0_proj/Conv_output_0"  # the predicted pitch per frame (Hz) that the decoder is given


def _register() -> None:
    global _REGISTERED
    if _REGISTERED:
        return
    _import_onnx2torch()
    from onnx2torch.node_converters.registry import (
        _CONVERTER_REGISTRY,
        OperationDescription,
        add_converter,
        get_converter,
    )
    from onnx2torch.utils.common import OnnxMapping, OperationConverterResult, onnx_mapping_from_node

    def simple(module_of: Any) -> Any:
        return lambda node, graph: OperationConverterResult(torch_module=module_of(node), onnx_mapping=onnx_mapping_from_node(node))

    def register(op: str, versions: tuple[int, ...], converter: Any, domain: str = "") -> None:
        for version in versions:
            _CONVERTER_REGISTRY.pop(OperationDescription(domain=domain, operation_type=op, version=version), None)
            add_converter(operation_type=op, version=version, domain=domain)(converter)

    for op, new, old in _SAME_AS:
        register(op, (new,), get_converter(operation_type=op, version=old, domain=""))
    register("DequantizeLinear", (13, 19), simple(lambda node: _Dequantize()))
    register("FastGelu", (1,), simple(lambda node: _FastGelu()), MS_DOMAIN)
    register("FusedMatMul", (1,), simple(lambda node: _FusedMatMul(bool(node.attributes.get("transA", 0)),
                                                                   bool(node.attributes.get("transB", 0)),
                                                                   float(node.attributes.get("alpha", 1.0)))), MS_DOMAIN)
    register("STFT", (17,), simple(lambda node: _Stft()))
    register("Clip", (13,), simple(lambda node: _Clip()))

    def skip_layer_norm(node: Any, graph: Any) -> Any:
        return OperationConverterResult(torch_module=_SkipLayerNorm(float(node.attributes.get("epsilon", 1e-12))),
                                        onnx_mapping=OnnxMapping(inputs=node.input_values, outputs=node.output_values[:1]))

    def lstm(node: Any, graph: Any) -> Any:
        w, r, b = (graph.initializers[name].to_torch() for name in node.input_values[1:4])
        return OperationConverterResult(torch_module=_Lstm(w, r, b, int(node.attributes["hidden_size"])),
                                        onnx_mapping=OnnxMapping(inputs=node.input_values[:1], outputs=node.output_values))

    def reduce_mean(node: Any, graph: Any) -> Any:
        keep = bool(node.attributes.get("keepdims", 1))
        if len(node.input_values) > 1 and node.input_values[1] in graph.initializers:
            axes = [int(a) for a in graph.initializers[node.input_values[1]].to_torch().tolist()]
            return OperationConverterResult(torch_module=_ReduceMean(axes, keep),
                                            onnx_mapping=OnnxMapping(inputs=node.input_values[:1], outputs=node.output_values))
        return OperationConverterResult(torch_module=_ReduceMean(None, keep), onnx_mapping=onnx_mapping_from_node(node))

    register("SkipLayerNormalization", (1,), skip_layer_norm, MS_DOMAIN)
    register("LSTM", (7, 14), lstm)
    register("ReduceMean", (18,), reduce_mean)
    _REGISTERED = True


def load_differentiable(path: Path, extra_outputs: tuple[str, ...] = ()) -> nn.Module:
    """The float Kokoro model at ``path`` as a torch module: (tokens, style, speed) -> the
    graph's outputs (audio first), then the graph's tensors named in ``extra_outputs``.

    Its weights are frozen; gradients flow to the style input only."""
    import onnx

    _register()
    # onnx2torch's Slice and ScatterND index with lists, which torch warns about on every call.
    warnings.filterwarnings("ignore", message="Using a non-tuple sequence for multidimensional indexing")
    model = onnx.load(str(path))
    for node in model.graph.node:
        if node.domain == "com.microsoft":
            node.domain = MS_DOMAIN
    for opset in model.opset_import:
        if opset.domain == "com.microsoft":
            opset.domain = MS_DOMAIN
    module = _import_onnx2torch().convert(model, attach_onnx_mapping=bool(extra_outputs))
    if extra_outputs:
        _expose(module, extra_outputs)
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def _expose(module: Any, names: tuple[str, ...]) -> None:
    """Add the graph's tensors ``names`` to the module's outputs."""
    graph = module.graph
    found = {}
    for node in graph.nodes:
        mapping = getattr(module.get_submodule(node.target), "onnx_mapping", None) if node.op == "call_module" else None
        if mapping is not None and len(mapping.outputs) == 1 and mapping.outputs[0] in names:
            found[mapping.outputs[0]] = node
    missing = [name for name in names if name not in found]
    if missing:
        raise ValueError(f"this Kokoro model has no tensor {missing[0]!r}: an unknown export")
    output = next(node for node in graph.nodes if node.op == "output")
    current = output.args[0]
    current = tuple(current) if isinstance(current, (tuple, list)) else (current,)
    output.args = (current + tuple(found[name] for name in names),)
    module.recompile()


class _Recomputed(nn.Module):
    """A piece of the graph whose activations are not kept: the backward pass runs it again."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *args: Any) -> Any:
        if not torch.is_grad_enabled():
            return self.inner(*args)
        from torch.utils.checkpoint import checkpoint

        # preserve_rng_state (the default): the rerun draws the same phase noise as the first run.
        return checkpoint(self.inner, *args, use_reentrant=False)


def recompute_in_segments(module: nn.Module, example: tuple[torch.Tensor, ...], segments: int) -> nn.Module:
    """``module`` (from ``load_differentiable``) cut into ``segments`` pieces of about equal
    activation size (measured on ``example``, its inputs), each recomputed in the backward pass.

    A gradient step keeps every activation of its audio until the backward pass: about 0.6 GB
    a second of speech (bench/RESULTS.md). Recomputed pieces keep only what passes between them,
    at the price of a second forward pass; the gradient is the same."""
    from torch.fx.passes.shape_prop import ShapeProp
    from torch.fx.passes.split_module import split_module

    assert isinstance(module, torch.fx.GraphModule)
    with torch.no_grad():
        ShapeProp(module).propagate(*example)
    nodes = [node for node in module.graph.nodes if node.op not in ("placeholder", "output", "get_attr")]

    def size(node: torch.fx.Node) -> int:
        meta = node.meta.get("tensor_meta")
        metas: list[Any] = [meta] if hasattr(meta, "shape") else list(meta or ())  # TensorMetadata is a tuple too
        return sum(int(torch.Size(m.shape).numel()) for m in metas if getattr(m, "shape", None) is not None)

    sizes = [size(node) for node in nodes]
    cuts = _cut_points(nodes, sizes, segments)
    piece = {node: sum(index >= cut for cut in cuts) for index, node in enumerate(nodes)}
    split = split_module(module, module, lambda node: piece[node])
    for name, child in list(split.named_children()):
        if name.startswith("submod_"):
            setattr(split, name, _Recomputed(child))
    return split


def _cut_points(nodes: list[torch.fx.Node], sizes: list[int], segments: int) -> list[int]:
    """Where pieces start: near each ``1/segments`` of the activations, at the node after which
    the fewest values are still needed (what crosses a cut is kept until the backward pass)."""
    position = {node: index for index, node in enumerate(nodes)}
    last_use = [max((position.get(user, len(nodes)) for user in node.users), default=index)
                for index, node in enumerate(nodes)]
    ending: dict[int, int] = {}
    for index, last in enumerate(last_use):
        ending[last] = ending.get(last, 0) + sizes[index]
    crossing, live = [], 0
    for index, weight in enumerate(sizes):
        live += weight - ending.get(index, 0)
        crossing.append(live)  # alive after node ``index``
    total, seen, cumulative = max(sum(sizes), 1), 0, []
    for weight in sizes:
        seen += weight
        cumulative.append(seen)
    cuts: list[int] = []
    for k in range(1, segments):
        window = [i for i in range(len(nodes) - 1)
                  if (k - 0.5) * total / segments <= cumulative[i] <= (k + 0.5) * total / segments and (not cuts or i >= cuts[-1])]
        if window:
            cuts.append(min(window, key=lambda i: crossing[i]) + 1)
    return sorted(set(cuts))
