"""The graph recomputed in pieces (the voicepack step's memory): same outputs, same gradient."""

from __future__ import annotations

import torch
from torch import nn

from providers.kokoro.torch_graph import _Recomputed, recompute_in_segments


def noisy_tanh(x: torch.Tensor) -> torch.Tensor:
    """Noise drawn where its result is kept for the backward pass (as the phase of Kokoro's STFT)."""
    return torch.tanh(x + 0.5 * torch.randn_like(x))


torch.fx.wrap("noisy_tanh")  # one node: the noise and what keeps it always fall in the same piece


class Toy(nn.Module):
    """Layers of different widths, a branch used twice, and noise drawn inside."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(8, 256), nn.Linear(256, 16), nn.Linear(16, 1)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        wide = noisy_tanh(self.a(x) * style.repeat(32))
        narrow = torch.tanh(self.b(wide)) + wide[..., :16]
        return self.c(narrow).sum(), narrow.mean()


def step(module: nn.Module, x: torch.Tensor, style: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    style = style.clone().requires_grad_(True)
    torch.manual_seed(seed)
    out, side = module(x, style)
    (out + side).backward()
    assert style.grad is not None
    return out.detach(), style.grad


def test_pieces_give_the_whole_graphs_outputs_and_gradient() -> None:
    torch.manual_seed(1)
    whole = torch.fx.symbolic_trace(Toy())
    x, style = torch.randn(40, 8), torch.randn(8)
    expected = step(whole, x, style, seed=7)

    pieces = recompute_in_segments(whole, (x, style), 3)
    got = step(pieces, x, style, seed=7)

    assert sum(isinstance(child, _Recomputed) for child in pieces.children()) == 3
    torch.testing.assert_close(got[0], expected[0], rtol=0, atol=0)
    torch.testing.assert_close(got[1], expected[1], rtol=0, atol=0)  # the noise drawn again is the same noise
    assert not torch.equal(step(pieces, x, style, seed=8)[1], expected[1])  # and the noise does reach the gradient


def test_pieces_divide_the_activations() -> None:
    whole = torch.fx.symbolic_trace(Toy())
    x, style = torch.randn(40, 8), torch.randn(8)
    pieces = recompute_in_segments(whole, (x, style), 2)
    parts = [child.inner for child in pieces.children() if isinstance(child, _Recomputed)]

    # the wide layer's activations (40 x 256, most of the graph's) are not all in one piece with everything else
    assert len(parts) == 2
    assert all(any(node.op == "call_module" for node in part.graph.nodes) for part in parts)
