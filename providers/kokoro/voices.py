"""Kokoro voices: style tables of shape (510, 1, 256), from NPZ files, voicepacks and blends.

A voice has one 256-value style row per phoneme count (row n-1 styles an n-phoneme batch);
the first 128 values drive the decoder (timbre), the last 128 the prosody predictor.
"""

from __future__ import annotations

import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from providers.base import ProviderContext, ProviderError, VoiceNotFoundError
from providers.common.files import file_tag
from providers.common.names import is_voice_file_name
from providers.kokoro import assets

STYLE_SHAPE = (510, 1, 256)
VOICEPACK_SUFFIXES = (".pt", ".npy")


class VoicepackError(ProviderError):
    """A voicepack file that is not a (510, 1, 256) float style table."""


def check_style(array: np.ndarray, source: str) -> np.ndarray:
    """The style as float32 (510, 1, 256); (510, 256) is accepted and reshaped."""
    if array.ndim == 2 and array.shape == (STYLE_SHAPE[0], STYLE_SHAPE[2]):
        array = array.reshape(STYLE_SHAPE)
    if tuple(array.shape) != STYLE_SHAPE:
        raise VoicepackError(f"{source} has shape {tuple(array.shape)}; a Kokoro voicepack must be (510, 1, 256)")
    if not np.issubdtype(array.dtype, np.floating):
        raise VoicepackError(f"{source} holds {array.dtype} values; a Kokoro voicepack holds floats")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise VoicepackError(f"{source} contains NaN or infinite values")
    return array


def load_voicepack(path: Path) -> np.ndarray:
    """A ``.pt`` (torch tensor, loaded with weights_only) or ``.npy`` voicepack."""
    source = f"voicepack {path}"
    try:
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        elif path.suffix == ".pt":
            import torch  # only custom .pt voicepacks need torch

            tensor = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(tensor, torch.Tensor):
                raise VoicepackError(f"{source} holds a {type(tensor).__name__}, not a tensor")
            array = tensor.detach().float().numpy()
        else:
            raise VoicepackError(f"{source}: use a .pt or .npy file")
    except VoicepackError:
        raise
    except Exception as exc:  # corrupt file: pickle, zip and numpy errors alike
        raise VoicepackError(f"cannot read {source}: {type(exc).__name__}: {exc}") from exc
    return check_style(np.asarray(array), source)


def save_voicepack(style: np.ndarray, path: Path) -> None:
    """Write ``style`` as .npy or .pt (by suffix) atomically."""
    import io

    from providers.common.files import atomic_write_bytes

    style = check_style(np.asarray(style, dtype=np.float32), "style")
    buffer = io.BytesIO()
    if path.suffix == ".pt":
        import torch

        torch.save(torch.from_numpy(style.copy()), buffer)
    else:
        np.save(buffer, style, allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


def load_table(path: Path) -> dict[str, np.ndarray]:
    """An NPZ voice table (``voices-v1.0.bin``, ``voices_ja.npz``): name -> style."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: check_style(npz[name], f"voice {name!r} in {path}") for name in npz.files}
    except VoicepackError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ProviderError(f"cannot read Kokoro voices file {path}: {exc}") from exc


@dataclass(frozen=True)
class VoiceSpec:
    """A parsed ``voice`` setting: one name, or a weighted blend ``a:0.6,b:0.4``."""

    parts: tuple[tuple[str, float], ...]

    @classmethod
    def parse(cls, text: str) -> VoiceSpec:
        parts: list[tuple[str, float]] = []
        for item in text.split(","):
            name, _, weight_text = item.strip().partition(":")
            name = name.strip()
            if not is_voice_file_name(name):
                raise VoiceNotFoundError(f"invalid Kokoro voice name {name!r} in {text!r}")
            try:
                weight = float(weight_text) if weight_text.strip() else 1.0
            except ValueError:
                raise VoiceNotFoundError(f"invalid blend weight {weight_text!r} in Kokoro voice {text!r}") from None
            if not (weight > 0 and np.isfinite(weight)):
                raise VoiceNotFoundError(f"blend weights must be positive numbers: {text!r}")
            parts.append((name, weight))
        return cls(tuple(parts))


class VoiceLibrary:
    """Loads voice tables and voicepacks once per file version; safe to share between threads. A
    ``.pt`` voicepack is read by ``convert.read_pt`` (torch in a child process, never here)."""

    def __init__(self) -> None:
        self._files: dict[Path, tuple[str, dict[str, np.ndarray]]] = {}
        self._lock = threading.Lock()

    def _table(self, path: Path) -> dict[str, np.ndarray]:
        tag = file_tag(path)
        with self._lock:
            known = self._files.get(path)
            if known is not None and known[0] == tag:
                return known[1]
        if path.suffix == ".pt":  # torch reads it, in a short-lived process of its own
            from providers.kokoro.convert import read_pt

            table = {path.stem: read_pt(path)}
        else:
            table = {path.stem: load_voicepack(path)} if path.suffix == ".npy" else load_table(path)
        with self._lock:
            self._files[path] = (tag, table)
        return table

    def sources(self, voices_path: str, ctx: ProviderContext) -> list[Path]:
        """Where named voices come from, later ones shadowing earlier ones: the bundled
        Japanese voices, the user's voices file, then voicepacks in ``out/voices/kokoro``
        (global, then the profile's)."""
        found = [assets.bundled_voices_file()]
        if voices_path:
            path = assets.find_file(voices_path, ctx)
            if path is None:
                raise VoiceNotFoundError(
                    f"Kokoro voices file {voices_path!r} not found: give an absolute path or put it in "
                    + " or ".join(str(d / "kokoro") for d in ctx.voices_dirs)
                )
            found.append(path)
        for directory in reversed(ctx.voices_dirs):
            folder = directory / "kokoro"
            if folder.is_dir():
                found.extend(sorted(p for p in folder.iterdir() if p.suffix in VOICEPACK_SUFFIXES and p.is_file()))
        return found

    def names(self, voices_path: str, ctx: ProviderContext) -> dict[str, Path]:
        """Every voice name this profile can use -> the file it comes from."""
        names: dict[str, Path] = {}
        for path in self.sources(voices_path, ctx):
            if path.suffix in VOICEPACK_SUFFIXES:
                names[path.stem] = path
            else:
                for name in self._table(path):
                    names[name] = path
        return names

    def style(self, voice: str, voices_path: str, ctx: ProviderContext) -> tuple[np.ndarray, list[Path]]:
        """The style for a name or blend, and the files it was made from."""
        spec = VoiceSpec.parse(voice)
        known = self.names(voices_path, ctx)
        missing = [name for name, _ in spec.parts if name not in known]
        if missing:
            raise VoiceNotFoundError(
                f"Kokoro voice {missing[0]!r} not found; available: {', '.join(sorted(known))}"
            )
        total = sum(weight for _, weight in spec.parts)
        style = np.zeros(STYLE_SHAPE, np.float32)
        for name, weight in spec.parts:
            style += self._table(known[name])[name] * (weight / total)
        return style, sorted({known[name] for name, _ in spec.parts})

    def voicepack(self, path_text: str, ctx: ProviderContext) -> tuple[np.ndarray, Path]:
        path = assets.find_file(path_text, ctx)
        if path is None:
            raise VoiceNotFoundError(
                f"Kokoro voicepack {path_text!r} not found: give an absolute path or a file name in "
                + " or ".join(str(d / "kokoro") for d in ctx.voices_dirs)
            )
        if path.suffix not in VOICEPACK_SUFFIXES:
            raise VoicepackError(f"voicepack {path}: use a .pt or .npy file")
        return self._table(path)[path.stem], path
