"""Each format an import takes, checked by its provider's loader before it lands: a Piper pair
(from either file, a folder or an archive), a Kokoro voicepack (.npy, .pt) or voice table, an RVC
model as people publish it; and what is refused: files that are not what their name says,
pickles that would run code, an existing voice unless replaced."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from agent.errors import ServiceError
from agent.voices.archives import Limits
from agent.voices.imports import ImportOptions, import_voices
from providers.base import ProviderContext
from providers.kokoro.voices import VoiceLibrary
from providers.rvc import assets as rvc_assets
from tests.agent.voices.files import make_zip, npy_bytes, npz_bytes, piper_config, pt_bytes, style, tiny_onnx, write_piper

LIMITS = Limits(total_bytes=64 * 1024 * 1024, member_bytes=64 * 1024 * 1024)


def context(voices: Path) -> ProviderContext:
    return ProviderContext(profile="p", profile_dir=voices.parent, voices_dirs=(voices,), data_dir=voices,
                           run_dir=voices, home=voices.parent, samples_dir=voices / "samples")


def run(source: Path, voices: Path, name: str | None = None, replace: bool = False) -> list[tuple[str, str]]:
    installed = import_voices(source, voices, ImportOptions(name, replace), LIMITS)
    return [(entry["provider"], entry["name"]) for entry in installed]


def refused(source: Path, voices: Path, code: str, name: str | None = None) -> str:
    before = sorted(voices.rglob("*")) if voices.exists() else []
    with pytest.raises(ServiceError) as caught:
        import_voices(source, voices, ImportOptions(name), LIMITS)
    assert caught.value.code == code, caught.value
    assert sorted(voices.rglob("*")) == before, "a refused import changed the voices folder"
    return str(caught.value)


class Evil:
    """A pickle that would create a file when loaded without weights_only."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def voices(tmp_path: Path) -> Path:
    return tmp_path / "profile" / "voices"


# -- Piper ----------------------------------------------------------------------------------------
def test_a_piper_pair_from_either_file_or_its_folder(tmp_path: Path, voices: Path) -> None:
    model = write_piper(tmp_path / "src", "en_US-a-medium")
    assert run(model, voices) == [("piper", "en_US-a-medium")]
    assert run(Path(f"{model}.json"), voices, name="en_US-b-medium") == [("piper", "en_US-b-medium")]
    assert run(model.parent, voices, name="en_US-c-medium") == [("piper", "en_US-c-medium")]
    assert sorted(p.name for p in voices.glob("*.onnx")) == ["en_US-a-medium.onnx", "en_US-b-medium.onnx", "en_US-c-medium.onnx"]
    assert (voices / "en_US-b-medium.onnx.json").read_bytes() == piper_config()


def test_a_piper_model_that_is_not_onnx_or_not_piper_is_refused(tmp_path: Path, voices: Path) -> None:
    assert "not an ONNX model" in refused(write_piper(tmp_path / "a", "x", b"<html>not found</html>"), voices, "not_a_voice")
    assert "ONNX Runtime" in refused(write_piper(tmp_path / "b", "x", b"\x08\x07garbage" * 10), voices, "not_a_voice")
    from tests.agent.voices.files import tiny_onnx as onnx_with

    other = write_piper(tmp_path / "c", "x", onnx_with(("pixels",)))
    assert "not a Piper voice" in refused(other, voices, "not_a_voice")


def test_a_piper_config_that_is_not_piper_is_refused(tmp_path: Path, voices: Path) -> None:
    model = write_piper(tmp_path / "src", "en_US-a-medium")
    Path(f"{model}.json").write_text('{"hello": "world"}')
    assert "not a Piper voice config" in refused(model, voices, "not_a_voice")


def test_a_model_without_its_config_is_refused(tmp_path: Path, voices: Path) -> None:
    archive = make_zip(tmp_path / "half.zip", {"en_US-a-medium.onnx": tiny_onnx()})
    assert "a Piper voice is the pair" in refused(archive, voices, "not_a_voice")


def test_an_existing_voice_is_replaced_only_when_asked(tmp_path: Path, voices: Path) -> None:
    model = write_piper(tmp_path / "src", "en_US-a-medium")
    run(model, voices)
    (voices / "en_US-a-medium.onnx").write_bytes(b"old")
    assert "replace" in refused(model, voices, "voice_exists")
    assert (voices / "en_US-a-medium.onnx").read_bytes() == b"old"
    run(model, voices, replace=True)
    assert (voices / "en_US-a-medium.onnx").read_bytes() == tiny_onnx()


def test_a_name_for_several_voices_or_a_bad_name_is_refused(tmp_path: Path, voices: Path) -> None:
    write_piper(tmp_path / "two", "en_US-a-medium")
    write_piper(tmp_path / "two", "en_US-b-medium")
    refused(tmp_path / "two", voices, "invalid_payload", name="mine")
    assert run(tmp_path / "two", voices) == [("piper", "en_US-a-medium"), ("piper", "en_US-b-medium")]
    odd = write_piper(tmp_path / "odd", "-dash")
    refused(odd, voices, "invalid_name")


def test_two_voices_of_one_name_in_one_import_are_refused(tmp_path: Path, voices: Path) -> None:
    packs = make_zip(tmp_path / "packs.zip", {"a/af_x.npy": npy_bytes(style(1)), "b/af_x.npy": npy_bytes(style(2))})
    assert "two kokoro voices" in refused(packs, voices, "invalid_name")
    write_piper(tmp_path / "pipers" / "a", "en_US-a-medium")
    write_piper(tmp_path / "pipers" / "b", "en_US-a-medium")
    assert "two piper voices" in refused(tmp_path / "pipers", voices, "invalid_name")


def test_a_failed_landing_takes_back_what_landed_and_puts_back_what_it_replaced(
        tmp_path: Path, voices: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_piper(tmp_path / "two", "en_US-a-medium")
    write_piper(tmp_path / "two", "en_US-b-medium")
    voices.mkdir(parents=True)
    (voices / "en_US-a-medium.onnx").write_bytes(b"old")
    (voices / "en_US-a-medium.onnx.json").write_bytes(b"{}")
    real = os.replace

    def failing(source: object, target: object) -> None:  # the disk fills as the second voice lands
        if str(target).endswith("en_US-b-medium.onnx.json"):
            raise OSError(28, "No space left on device")
        real(source, target)  # type: ignore[arg-type]

    monkeypatch.setattr("agent.voices.imports.os.replace", failing)
    with pytest.raises(OSError):
        import_voices(tmp_path / "two", voices, ImportOptions(replace=True), LIMITS)
    assert sorted(p.name for p in voices.iterdir()) == ["en_US-a-medium.onnx", "en_US-a-medium.onnx.json"]
    assert (voices / "en_US-a-medium.onnx").read_bytes() == b"old"


# -- Kokoro ---------------------------------------------------------------------------------------
def test_kokoro_voicepacks_land_as_npy_the_engine_finds(tmp_path: Path, voices: Path) -> None:
    (tmp_path / "af_mine.npy").write_bytes(npy_bytes(style(1)))
    import torch

    (tmp_path / "am_other.pt").write_bytes(pt_bytes(torch.from_numpy(style(2))))
    assert run(tmp_path / "af_mine.npy", voices) == [("kokoro", "af_mine")]
    assert run(tmp_path / "am_other.pt", voices) == [("kokoro", "am_other")]
    assert sorted(p.name for p in (voices / "kokoro").iterdir()) == ["af_mine.npy", "am_other.npy"]
    found, _ = VoiceLibrary().style("am_other", "", context(voices))
    assert np.array_equal(found, style(2))


def test_a_kokoro_voices_table_lands_voice_by_voice(tmp_path: Path, voices: Path) -> None:
    (tmp_path / "voices-v1.0.bin").write_bytes(npz_bytes({"af_one": style(3), "bm_two": style(4)}))
    assert run(tmp_path / "voices-v1.0.bin", voices) == [("kokoro", "af_one"), ("kokoro", "bm_two")]
    assert VoiceLibrary().names("", context(voices))["bm_two"] == voices / "kokoro" / "bm_two.npy"


def test_kokoro_files_that_are_not_styles_are_refused(tmp_path: Path, voices: Path) -> None:
    (tmp_path / "wrong.npy").write_bytes(npy_bytes(np.zeros((10, 256), np.float32)))
    assert "(510, 1, 256)" in refused(tmp_path / "wrong.npy", voices, "not_a_voice")
    nan = style()
    nan[0, 0, 0] = np.nan
    (tmp_path / "nan.npy").write_bytes(npy_bytes(nan))
    assert "NaN" in refused(tmp_path / "nan.npy", voices, "not_a_voice")
    (tmp_path / "renamed.npy").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert "not a numpy array" in refused(tmp_path / "renamed.npy", voices, "not_a_voice")
    (tmp_path / "table.bin").write_bytes(npz_bytes({"af_x": np.zeros((3, 3), np.float32)}))
    refused(tmp_path / "table.bin", voices, "not_a_voice")


def test_a_voicepack_pickle_that_would_run_code_is_refused(tmp_path: Path, voices: Path) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "af_evil.pt").write_bytes(pt_bytes(Evil(marker)))
    refused(tmp_path / "af_evil.pt", voices, "not_a_voice")
    assert not marker.exists()


# -- RVC ------------------------------------------------------------------------------------------
def rvc_zip(path: Path, extra: dict[str, bytes] | None = None) -> Path:
    from tests.providers.rvc.fakes import write_index, write_rvc_model

    model = write_rvc_model(path.parent / "src" / "Alice.pth")
    index = write_index(path.parent / "src" / "x.index", 768)
    return make_zip(path, {
        "Alice RVC v2/Alice.pth": model.read_bytes(),
        "Alice RVC v2/added_IVF7_Flat_nprobe_1_Alice_v2.index": index.read_bytes(),
        "Alice RVC v2/trained_IVF7_Flat_nprobe_1_Alice_v2.index": index.read_bytes(),
        **(extra or {}),
    }, compress=zipfile.ZIP_DEFLATED)


def test_an_rvc_zip_as_published_lands_where_the_engine_looks(tmp_path: Path, voices: Path) -> None:
    archive = rvc_zip(tmp_path / "alice.zip")
    assert run(archive, voices) == [("rvc", "Alice")]
    assert run(archive, voices, name="alice2") == [("rvc", "alice2")]
    files = rvc_assets.find_speaker("alice2", context(voices))
    assert files.model == voices / "rvc-models" / "alice2" / "alice2.pth"
    assert files.index == voices / "rvc-models" / "alice2" / "alice2.index"
    refused(archive, voices, "voice_exists")
    assert run(archive, voices, replace=True) == [("rvc", "Alice")]
    assert sorted(p.name for p in (voices / "rvc-models" / "Alice").iterdir()) == ["Alice.index", "Alice.pth"]


def test_an_rvc_model_that_is_not_one_is_refused(tmp_path: Path, voices: Path) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "evil.pth").write_bytes(pt_bytes({"weight": Evil(marker)}))
    refused(tmp_path / "evil.pth", voices, "not_a_voice")
    assert not marker.exists()
    (tmp_path / "text.pth").write_text("not a model")
    assert "not a torch file" in refused(tmp_path / "text.pth", voices, "not_a_voice")
    import torch

    (tmp_path / "empty.pth").write_bytes(pt_bytes({"weight": {"x": torch.zeros(2)}, "config": [1]}))
    assert "not a usable RVC model" in refused(tmp_path / "empty.pth", voices, "not_a_voice")


def test_an_index_that_does_not_fit_the_model_is_refused(tmp_path: Path, voices: Path) -> None:
    from tests.providers.rvc.fakes import write_index, write_rvc_model

    write_rvc_model(tmp_path / "bob" / "bob.pth")
    write_index(tmp_path / "bob" / "added_bob.index", 256)  # a v1 index beside a v2 model
    assert "index" in refused(tmp_path / "bob", voices, "not_a_voice")


def test_nothing_voice_like_is_not_a_voice(tmp_path: Path, voices: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    refused(tmp_path / "notes.txt", voices, "not_a_voice")
    refused(make_zip(tmp_path / "empty.zip", {"readme.md": b"x"}), voices, "not_a_voice")
    refused(tmp_path / "missing.zip", voices, "file_not_found")
