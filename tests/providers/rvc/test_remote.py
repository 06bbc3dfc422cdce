"""RVC speech on another node (providers/rvc/remote.py): the files a conversion needs at home, and
the same settings on the worker pointed at the fetched copies."""

from __future__ import annotations

from pathlib import Path

from providers.rvc import assets
from providers.rvc.config import RvcSettings
from providers.rvc.remote import inputs, place
from tests.contexts import loose_context


def test_the_inputs_are_the_speakers_files_and_the_shared_assets(tmp_path: Path) -> None:
    voices = tmp_path / "voices" / "rvc-models"
    for name, data in (("anna/anna.pth", b"m"), ("anna/anna.index", b"i"), ("hubert_base.pt", b"h"), ("rmvpe.pt", b"r")):
        (voices / name).parent.mkdir(parents=True, exist_ok=True)
        (voices / name).write_bytes(data)
    ctx = loose_context(tmp_path, (tmp_path / "voices",))
    found = inputs(RvcSettings.model_validate({"speakerId": "anna"}), ctx)
    assert {role: path.name for role, path in found.items()} == {
        "model": "anna.pth", "index": "anna.index", "encoder": "hubert_base.pt", "rmvpe": "rmvpe.pt"}
    harvest = inputs(RvcSettings.model_validate({"speakerId": "anna", "f0Method": "harvest"}), ctx)
    assert "rmvpe" not in harvest  # not needed, not sent


def test_place_links_the_fetched_files_where_the_engine_looks_and_follows_a_new_model(tmp_path: Path) -> None:
    cache = tmp_path / "blobs"
    cache.mkdir()
    for name in ("m1", "m2", "i1", "h1"):
        (cache / name).write_bytes(name.encode())
    settings = RvcSettings.model_validate({"speakerId": "anna", "contentEncoderPath": "relative/at/home.pt"})
    folder = tmp_path / "work"
    placed = place(settings, {"model": cache / "m1", "index": cache / "i1", "encoder": cache / "h1"}, folder)
    ctx = loose_context(tmp_path, (folder,))
    files = assets.find_speaker("anna", ctx)
    assert files.model.read_bytes() == b"m1" and files.index is not None and files.index.read_bytes() == b"i1"
    assert Path(placed.content_encoder_path).read_bytes() == b"h1"  # type: ignore[attr-defined]
    placed = place(settings, {"model": cache / "m2"}, folder)  # a retrained model, no index, the worker's encoder
    files = assets.find_speaker("anna", ctx)
    assert files.model.read_bytes() == b"m2" and files.index is None
    assert placed.content_encoder_path == "" and placed.rmvpe_path == ""  # type: ignore[attr-defined]
