"""The synthesizer's parts against their definitions written out the slow way."""

from __future__ import annotations

import math

import numpy as np
import torch

from providers.rvc.generator import HarmonicSource
from providers.rvc.layers import RelativeSelfAttention


def _naive_relative_attention(att: RelativeSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """score(i,j) = q_i.k_j/sqrt(d) + q_i.Ek[j-i]/sqrt(d) (|j-i| <= w); out_i = sum_j p_ij (v_j + Ev[j-i])."""
    _, channels, frames = x.shape
    d, w = att.head_dim, att.window
    q, k, v = (conv(x)[0].T.reshape(frames, att.heads, d) for conv in (att.conv_q, att.conv_k, att.conv_v))
    ek, ev = att.emb_rel_k[0], att.emb_rel_v[0]
    out = torch.zeros(frames, att.heads, d)
    for h in range(att.heads):
        for i in range(frames):
            scores = []
            for j in range(frames):
                s = q[i, h] @ k[j, h]
                if abs(j - i) <= w:
                    s = s + q[i, h] @ ek[j - i + w]
                scores.append(s / math.sqrt(d))
            p = torch.softmax(torch.stack(scores), 0)
            for j in range(frames):
                out[i, h] += p[j] * v[j, h]
                if abs(j - i) <= w:
                    out[i, h] += p[j] * ev[j - i + w]
    return att.conv_o(out.reshape(frames, channels).T[None])


def test_relative_attention_matches_its_definition() -> None:
    torch.manual_seed(0)
    att = RelativeSelfAttention(8, 2, window=3)
    with torch.no_grad():
        for p in att.parameters():
            p.normal_(0, 0.5)
        x = torch.randn(1, 8, 11)
        fast = att(x, torch.ones(1, 1, 11, 11))
        slow = _naive_relative_attention(att, x)
    assert torch.allclose(fast, slow, atol=1e-4)


def test_harmonic_source_follows_f0_and_is_noise_when_unvoiced() -> None:
    torch.manual_seed(0)
    source = HarmonicSource(40000)
    with torch.no_grad():
        source.l_linear.weight.fill_(5.0)
        source.l_linear.bias.zero_()
        f0 = torch.cat([torch.full((1, 50), 200.0), torch.zeros(1, 50)], dim=1)
        wave = source(f0, 400)[0, 0].numpy()
    voiced, unvoiced = wave[: 50 * 400], wave[50 * 400 :]
    spectrum = np.abs(np.fft.rfft(voiced))
    assert abs(np.argmax(spectrum) * 40000 / len(voiced) - 200) < 2
    assert np.abs(np.fft.rfft(unvoiced)).max() < spectrum.max() / 5  # no tone where f0 is 0


def test_decoding_only_the_kept_frames_matches_decoding_everything(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from providers.rvc.modelfile import read_model
    from providers.rvc.synthesizer import build_synthesizer
    from tests.providers.rvc.fakes import RvcFile, write_rvc_model

    net = build_synthesizer(read_model(write_rvc_model(tmp_path / "m.pth", RvcFile(f0=False, half=False))))
    monkeypatch.setattr(torch, "randn_like", torch.zeros_like)  # no sampling noise: outputs comparable
    features = torch.randn(1, 90, 768, generator=torch.Generator().manual_seed(0))
    whole = net.infer(features, None, None)
    kept = net.infer(features, None, None, keep=(30, 60))
    assert kept.shape == (30 * 400,)
    assert torch.allclose(kept, whole[30 * 400 : 60 * 400], atol=1e-6 + 1e-4 * float(whole.abs().max()))
