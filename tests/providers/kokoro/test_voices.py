"""Voice tables, voicepacks (.pt and .npy), blends, and the errors users see for bad ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from providers.base import ProviderContext, VoiceNotFoundError
from providers.kokoro.voices import STYLE_SHAPE, VoiceLibrary, VoicepackError, VoiceSpec, load_voicepack, save_voicepack
from tests.contexts import home_context


@pytest.fixture()
def ctx(tmp_path: Path) -> ProviderContext:
    return home_context(tmp_path)


def test_bundled_japanese_voices_are_listed(ctx: ProviderContext) -> None:
    names = VoiceLibrary().names("", ctx)
    assert {"jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"} <= set(names)


def test_blend_is_the_weighted_mean(ctx: ProviderContext) -> None:
    library = VoiceLibrary()
    alpha, _ = library.style("jf_alpha", "", ctx)
    kumo, _ = library.style("jm_kumo", "", ctx)
    blend, files = library.style("jf_alpha:0.6,jm_kumo:0.4", "", ctx)
    np.testing.assert_allclose(blend, 0.6 * alpha + 0.4 * kumo, rtol=1e-6, atol=1e-6)
    unnormalised, _ = library.style("jf_alpha:3,jm_kumo:2", "", ctx)
    np.testing.assert_allclose(unnormalised, blend, rtol=1e-6, atol=1e-6)
    assert len(files) == 1 and files[0].name == "voices_ja.npz"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("jf_alpha:zero", "invalid blend weight"),
        ("jf_alpha:-1", "must be positive"),
        ("../etc/passwd", "invalid Kokoro voice name"),
        ("jf_alpha,", "invalid Kokoro voice name"),
    ],
)
def test_bad_voice_settings_are_clear(text: str, message: str) -> None:
    with pytest.raises(VoiceNotFoundError, match=message):
        VoiceSpec.parse(text)


def test_unknown_voice_lists_the_known_ones(ctx: ProviderContext) -> None:
    with pytest.raises(VoiceNotFoundError, match=r"Kokoro voice 'af_heart' not found; available: .*jf_alpha"):
        VoiceLibrary().style("jf_alpha:0.5,af_heart:0.5", "", ctx)


def test_voicepacks_in_the_voices_folder_become_voices(ctx: ProviderContext, tmp_path: Path) -> None:
    style = np.random.default_rng(0).normal(0, 0.2, STYLE_SHAPE).astype(np.float32)
    folder = tmp_path / "out" / "voices" / "kokoro"
    save_voicepack(style, folder / "owner.pt")
    save_voicepack(style * 2, folder / "other.npy")
    library = VoiceLibrary()
    assert {"owner", "other"} <= set(library.names("", ctx))
    np.testing.assert_array_equal(library.style("owner", "", ctx)[0], style)
    np.testing.assert_array_equal(library.voicepack("other.npy", ctx)[0], style * 2)


def test_pt_voicepack_is_a_plain_tensor(tmp_path: Path) -> None:
    style = np.random.default_rng(1).normal(0, 0.2, STYLE_SHAPE).astype(np.float32)
    path = tmp_path / "pack.pt"
    torch.save(torch.from_numpy(style), path)
    np.testing.assert_array_equal(load_voicepack(path), style)
    flat = tmp_path / "flat.npy"
    np.save(flat, style.reshape(510, 256))
    assert load_voicepack(flat).shape == STYLE_SHAPE


def test_voices_file_extends_the_bundled_ones(ctx: ProviderContext, tmp_path: Path) -> None:
    path = tmp_path / "voices-v1.0.bin"
    with path.open("wb") as handle:
        np.savez(handle, af_test=np.ones(STYLE_SHAPE, np.float32))
    names = VoiceLibrary().names(str(path), ctx)
    assert names["af_test"] == path and "jf_alpha" in names
    with pytest.raises(VoiceNotFoundError, match="voices file 'nothere.bin' not found"):
        VoiceLibrary().names("nothere.bin", ctx)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda p: np.save(p, np.zeros((510, 256, 1), np.float32)), r"shape \(510, 256, 1\); a Kokoro voicepack must be \(510, 1, 256\)"),
        (lambda p: np.save(p, np.zeros(STYLE_SHAPE, np.int32)), "holds int32 values"),
        (lambda p: np.save(p, np.full(STYLE_SHAPE, np.nan, np.float32)), "NaN"),
        (lambda p: p.write_bytes(b"garbage, not numpy"), "cannot read voicepack"),
    ],
)
def test_bad_npy_voicepacks(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "bad.npy"
    content(path)  # type: ignore[operator]
    with pytest.raises(VoicepackError, match=message):
        load_voicepack(path)


def test_bad_pt_voicepacks(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pt"
    torch.save(torch.zeros(510, 256, 2), wrong)
    with pytest.raises(VoicepackError, match=r"shape \(510, 256, 2\)"):
        load_voicepack(wrong)
    pickled = tmp_path / "pickled.pt"
    torch.save({"not": "a tensor"}, pickled)
    with pytest.raises(VoicepackError, match="holds a dict, not a tensor"):
        load_voicepack(pickled)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(VoicepackError, match="cannot read voicepack"):
        load_voicepack(corrupt)


def test_a_voice_speaks_the_language_of_its_name_unless_told_otherwise() -> None:
    from providers.kokoro.config import KokoroSettings, lang_code_of, voice_language

    assert [voice_language(v) for v in ("af_heart", "jm_kumo", "bf_emma:0.6,af_sky:0.4", "owner", "xx_y")] == [
        "a", "j", "b", None, None]
    assert [lang_code_of(t) for t in ("en-US", "en_gb", "ja", "pt-BR", "zh", "b", "de")] == ["a", "b", "j", "p", "z", "b", None]
    assert KokoroSettings().language == "a"  # no voice, no langCode: American English (af_heart)
    assert KokoroSettings(voice="af_heart").language == "a"
    assert KokoroSettings(voice="af_heart", langCode="b").language == "b"  # set: it wins
    configured = KokoroSettings(langCode="j")
    assert configured.with_request("af_heart", None).language == "a"  # a requested voice speaks its own language
    assert configured.with_request("af_heart", None, "en-gb").language == "b"  # ...unless the request says which
    assert configured.with_request(None, None, "en").language == "a"
    assert KokoroSettings(voice="af_heart").cache_key() != KokoroSettings(voice="af_heart", langCode="b").cache_key()
    with pytest.raises(ValueError, match="does not speak 'de'"):
        configured.with_request(None, None, "de")
    assert KokoroSettings(useCustomVoicepack=True, voicepackPath="owner.npy").language == "a"


def test_a_hand_placed_pt_voicepack_is_read_without_torch_in_the_engines_process(ctx: ProviderContext, tmp_path: Path) -> None:
    style = np.random.default_rng(2).normal(0, 0.2, STYLE_SHAPE).astype(np.float32)
    folder = tmp_path / "out" / "voices" / "kokoro"
    save_voicepack(style, folder / "owner.pt")
    torch.save({"not": "a tensor"}, folder / "pickled.pt")
    probe = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from providers.kokoro.voices import VoiceLibrary, VoicepackError\n"
        "from tests.contexts import loose_context\n"
        f"ctx = loose_context(Path({str(tmp_path)!r}), (Path({str(tmp_path / 'out' / 'voices')!r}),))\n"
        "library = VoiceLibrary()\n"
        "np.save(sys.argv[1], library.style('owner', '', ctx)[0])\n"
        "try:\n    library.style('pickled', '', ctx)\nexcept VoicepackError as exc:\n    print('refused:', exc)\n"
        "print('torch' in sys.modules)\n"
    )
    out = tmp_path / "read.npy"
    done = subprocess.run([sys.executable, "-c", probe, str(out)], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parents[3])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "False" and "not a tensor" in lines[0]
    np.testing.assert_array_equal(np.load(out), style)
