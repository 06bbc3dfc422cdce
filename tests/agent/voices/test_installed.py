"""The one answer to "which voices does this profile have installed" (agent/voices/installed.py):
the engine is asked again only when a voice folder changed, so a speak request naming a catalog
voice costs a few stat calls, and a voice that arrives is seen at the next ask."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from agent.voices import installed as installed_module
from agent.voices.installed import InstalledVoices
from providers.base import ProviderContext, VoiceInfo
from tests.contexts import loose_context

LONG_AGO = 1_000_000_000  # seconds since the epoch: an mtime far from "racy"


class Engine:
    """Stands in for an engine's ``voices(ctx)``: the .onnx files of the folders, and how often asked."""

    def __init__(self) -> None:
        self.calls = 0

    def voices(self, provider: str, ctx: ProviderContext) -> list[VoiceInfo]:
        self.calls += 1
        found = [p.stem for d in ctx.voices_dirs if d.is_dir() for p in d.glob("*.onnx")]
        found += [p.stem for d in ctx.voices_dirs if (d / "kokoro").is_dir() for p in (d / "kokoro").glob("*.npy")]
        return [VoiceInfo(name, provider) for name in sorted(found)]


def settled(*folders: Path) -> None:
    """Folders last changed long ago (as on a running household): their listing can be trusted."""
    for folder in folders:
        os.utime(folder, (LONG_AGO, LONG_AGO))


@pytest.fixture()
def ctx(tmp_path: Path) -> ProviderContext:
    profile, household = tmp_path / "profile" / "voices", tmp_path / "voices"
    for folder in (profile, household, household / "kokoro"):
        folder.mkdir(parents=True)
    (household / "a.onnx").write_bytes(b"")
    settled(profile, household, household / "kokoro")
    return loose_context(tmp_path, (profile, household))


def test_a_second_ask_does_not_list_again_until_a_voice_arrives(ctx: ProviderContext) -> None:
    engine = Engine()
    voices = InstalledVoices(engine.voices)
    assert voices.names("piper", ctx) == ["a"]
    assert voices.has("piper", ctx, "a") and not voices.has("piper", ctx, "b")
    assert engine.calls == 1  # three asks, one listing
    (ctx.voices_dirs[1] / "b.onnx").write_bytes(b"")  # a download renames its file into place
    assert voices.has("piper", ctx, "b")
    assert engine.calls == 2


@pytest.mark.parametrize("where", ["profile", "kokoro"])
def test_a_voice_in_the_profile_folder_or_kokoro_subfolder_is_seen(ctx: ProviderContext, where: str) -> None:
    engine = Engine()
    voices = InstalledVoices(engine.voices)
    assert not voices.has("kokoro", ctx, "af_heart")
    folder = ctx.voices_dirs[0] if where == "profile" else ctx.voices_dirs[1] / "kokoro"
    (folder / ("af_heart.onnx" if where == "profile" else "af_heart.npy")).write_bytes(b"")
    assert voices.has("kokoro", ctx, "af_heart")


def test_a_folder_that_changed_just_now_is_listed_again(ctx: ProviderContext) -> None:
    """Two changes within one mtime tick look like one: a listing made right after a change is not kept."""
    engine = Engine()
    voices = InstalledVoices(engine.voices)
    (ctx.voices_dirs[1] / "b.onnx").write_bytes(b"")
    voices.names("piper", ctx)
    voices.names("piper", ctx)
    assert engine.calls == 2


def test_a_voices_file_is_read_again_only_when_it_changes(ctx: ProviderContext, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    table = tmp_path / "voices.npz"
    with zipfile.ZipFile(table, "w") as archive:
        archive.writestr("x_one.npy", b"")
    reads: list[Path] = []
    real = installed_module.table_names

    def counted(path: Path) -> list[str]:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(installed_module, "table_names", counted)
    voices = InstalledVoices(Engine().voices)
    assert voices.names("kokoro", ctx, table) == ["a", "x_one"]
    assert voices.names("kokoro", ctx, table) == ["a", "x_one"]
    assert len(reads) == 1
    with zipfile.ZipFile(table, "w") as archive:
        archive.writestr("x_two.npy", b"")
    os.utime(table, ns=(table.stat().st_mtime_ns + 10**9,) * 2)  # a new tag even within one mtime tick
    assert voices.names("kokoro", ctx, table) == ["a", "x_two"]


def test_an_engine_that_cannot_list_has_nothing_installed(ctx: ProviderContext) -> None:
    def broken(provider: str, _: ProviderContext) -> list[VoiceInfo]:
        raise RuntimeError("no engine")

    assert not InstalledVoices(broken).has("piper", ctx, "a")
