"""RVC model files as RVC WebUI and Applio write them: loaded, validated, and refused when they
are not RVC models, are damaged, or come with an index of the wrong feature size."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from providers.rvc.index import read_index
from providers.rvc.modelfile import ModelFileError, read_model, safe_load, shape_problems
from providers.rvc.synthesizer import build_synthesizer
from providers.rvc.validate import validate
from tests.providers.rvc.fakes import RvcFile, rmvpe_state, write_index, write_rvc_model

VARIANTS = [
    RvcFile(version="v2", sr="40k", style="webui", spelling="weight_g", half=True),
    RvcFile(version="v2", sr="48k", style="applio", spelling="weight_g", half=False),
    RvcFile(version="v1", sr="40k", style="webui", spelling="parametrizations", half=True),
    RvcFile(version="v1", sr="48k", style="applio", spelling="parametrizations", half=True),
    RvcFile(version="v2", sr="32k", style="webui", f0=False, half=True),
]


@pytest.mark.parametrize("spec", VARIANTS, ids=lambda s: f"{s.style}-{s.version}-{s.sr}-{'f0' if s.f0 else 'nono'}-{s.spelling}")
def test_loads_and_runs_every_variant(tmp_path: Path, spec: RvcFile) -> None:
    model = read_model(write_rvc_model(tmp_path / "voice.pth", spec))

    rate = {"32k": 32000, "40k": 40000, "48k": 48000}[spec.sr]
    assert (model.version, model.sample_rate, model.with_pitch) == (spec.version, rate, spec.f0)
    assert model.feature_dim == (256 if spec.version == "v1" else 768)
    assert model.dtype == ("float16" if spec.half else "float32")
    assert shape_problems(model) == []
    if spec.style == "applio":
        assert model.metadata["model_name"] == "voice" and model.metadata["vocoder"] == "HiFi-GAN"
    net = build_synthesizer(model)
    frames = 37
    pitch = torch.full((1, frames), 60) if spec.f0 else None
    pitchf = torch.full((1, frames), 180.0) if spec.f0 else None
    wave = net.infer(torch.randn(1, frames, model.feature_dim), pitch, pitchf)
    assert wave.shape == (frames * rate // 100,)
    assert torch.isfinite(wave).all() and wave.abs().max() < 1


def test_both_weight_norm_spellings_give_the_same_network(tmp_path: Path) -> None:
    a = build_synthesizer(read_model(write_rvc_model(tmp_path / "a.pth", RvcFile(spelling="weight_g", seed=7))))
    b = build_synthesizer(read_model(write_rvc_model(tmp_path / "b.pth", RvcFile(spelling="parametrizations", seed=7))))
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_weight_norm_is_folded_as_torch_defines_it(tmp_path: Path) -> None:
    from providers.rvc.synthesizer import fold_weight_norm

    conv = torch.nn.utils.parametrizations.weight_norm(torch.nn.ConvTranspose1d(6, 3, 4, 2))
    folded = fold_weight_norm({f"dec.ups.0.{k}": v.detach() for k, v in conv.state_dict().items()})
    assert torch.allclose(folded["dec.ups.0.weight"], conv.weight.detach(), atol=1e-6)
    pos = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv1d(8, 8, 5, groups=2), dim=2)
    folded = fold_weight_norm({f"pos_conv.{k}": v.detach() for k, v in pos.state_dict().items()})
    assert torch.allclose(folded["pos_conv.weight"], pos.weight.detach(), atol=1e-6)


def test_validate_reports_a_good_model_and_its_index(tmp_path: Path) -> None:
    model = write_rvc_model(tmp_path / "voice.pth", RvcFile(style="applio"))
    index = write_index(tmp_path / "voice.index", 768)
    report = validate(model, index)

    assert report.ok, report.text()
    text = report.text()
    assert "version: v2 (768-d" in text and "sample rate: 40000 Hz" in text and "Applio" in text
    assert "768-d features: matches" in text and text.endswith("result: OK\n")


class _Payload:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("touch pwned-by-pickle",))


def test_refuses_a_pickle_that_runs_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"weight": _Payload(), "config": []}, protocol=2))
    with pytest.raises(ModelFileError, match=r"refused: loading it would run Python code it names \(\w+\.system\)") as refused:
        read_model(path)
    assert "weights_only" not in str(refused.value)  # no advice that reads like "just turn the check off"
    assert not (tmp_path / "pwned-by-pickle").exists()
    torch.save({"weight": {}, "config": _Payload()}, tmp_path / "evil2.pth")
    assert not validate(tmp_path / "evil2.pth").ok
    assert not (tmp_path / "pwned-by-pickle").exists()


@pytest.mark.parametrize(
    "document, message",
    [
        (rmvpe_state(), "bare state dict"),
        ({"model": {"a": torch.zeros(1)}, "iteration": 3, "optimizer": {}, "learning_rate": 1e-4}, "training checkpoint"),
        ([1, 2, 3], "holds a list"),
        ({"weight": {"x": torch.zeros(1)}, "config": [1, 2]}, "has 2 items"),
    ],
    ids=["rmvpe", "training-checkpoint", "list", "short-config"],
)
def test_refuses_pickles_that_are_not_rvc_models(tmp_path: Path, document: object, message: str) -> None:
    path = tmp_path / "x.pth"
    torch.save(document, path)
    with pytest.raises(ModelFileError, match=message):
        read_model(path)


def test_refuses_a_truncated_file(tmp_path: Path) -> None:
    path = write_rvc_model(tmp_path / "voice.pth")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="damaged or truncated"):
        read_model(path)
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty"):
        safe_load(tmp_path / "empty.pth")


def test_shapes_that_do_not_match_the_config_are_reported(tmp_path: Path) -> None:
    path = write_rvc_model(tmp_path / "voice.pth")
    document = torch.load(path, weights_only=True)
    document["config"][3] = 24  # hidden_channels no longer fits the weights
    document["weight"]["enc_p.extra.weight"] = torch.zeros(2)
    torch.save(document, path)
    problems = shape_problems(read_model(path))
    assert any("wrong shape" in p and "enc_p.emb_phone.weight" in p for p in problems)
    assert any("unexpected" in p and "enc_p.extra.weight" in p for p in problems)


def test_inconsistent_metadata_is_refused(tmp_path: Path) -> None:
    path = write_rvc_model(tmp_path / "voice.pth")
    document = torch.load(path, weights_only=True)
    document["sr"] = "48k"
    document["version"] = "v1"
    torch.save(document, path)
    with pytest.raises(ModelFileError) as caught:
        read_model(path)
    text = str(caught.value)
    assert "'sr' says 48000 Hz but the config list says 40000 Hz" in text and "v1 takes 256-d" in text


def test_refuses_a_mismatched_index(tmp_path: Path) -> None:
    model = write_rvc_model(tmp_path / "voice.pth", RvcFile(version="v1"))
    index = write_index(tmp_path / "voice.index", 768)
    with pytest.raises(ModelFileError, match="768-d features but the model uses 256-d"):
        read_index(index, 256)
    report = validate(model, index)
    assert not report.ok and "index holds 768-d features" in report.text()


def test_refuses_an_empty_or_foreign_index(tmp_path: Path) -> None:
    import faiss

    empty = tmp_path / "trained_IVF4_Flat_nprobe_1_x_v2.index"
    index = faiss.index_factory(768, "IVF4,Flat")
    index.train(torch.randn(200, 768).numpy())
    faiss.write_index(index, str(empty))
    with pytest.raises(ModelFileError, match="empty"):
        read_index(empty, 768)
    junk = tmp_path / "junk.index"
    junk.write_bytes(b"not an index at all")
    with pytest.raises(ModelFileError, match="not a FAISS index"):
        read_index(junk, 768)


def crafted(tmp_path: Path, pickled: bytes, name: str) -> Path:
    """A real torch zip whose data.pkl is replaced by ``pickled``."""
    import zipfile

    torch.save({"a": 1}, tmp_path / "plain.pt")
    with zipfile.ZipFile(tmp_path / "plain.pt") as source, zipfile.ZipFile(tmp_path / name, "w") as out:
        for item in source.infolist():
            out.writestr(item, pickled if item.filename.endswith("data.pkl") else source.read(item.filename))
    return tmp_path / name


@pytest.mark.parametrize("pickled", [b"\x80\x020.", b"\x80\x02h\x05.", b"\x80\x02K\x01K\x02\x86\x94t."])
def test_a_crafted_pickle_is_a_clear_refusal_not_a_crash(tmp_path: Path, pickled: bytes) -> None:
    with pytest.raises(ModelFileError, match="cannot be read|refused"):
        safe_load(crafted(tmp_path, pickled, "crafted.pt"))


def test_an_allowed_class_called_with_arguments_is_kept_as_data(tmp_path: Path) -> None:
    """fairseq's Dictionary, named by hubert_base.pt, may be rebuilt with arguments."""
    pickled = b"\x80\x02cfairseq.data.dictionary\nDictionary\nq\x00K\x01\x85q\x01Rq\x02."
    loaded = safe_load(crafted(tmp_path, pickled, "dictionary.pt"), ("fairseq.data.dictionary.Dictionary",))
    assert loaded.args == (1,)
