"""Where a profile's RVC files are: per speaker ``rvc-models/<speaker>/<speaker>.pth`` + ``.index``
(the seed's ``default.pth``/``default.index`` and RVC WebUI's ``added_*.index`` too), and the shared
content encoder and rmvpe.pt. The profile's voices come first, then the household's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from providers.base import ProviderContext, ProviderUnavailableError, VoiceNotFoundError
from providers.common.names import is_plain_name

MODELS_DIR = "rvc-models"
ENCODER_NAMES = ("hubert_base.pt", "hubert/hubert_base.pt", "contentvec", "hubert_base", "hubert")
RMVPE_NAMES = ("rmvpe.pt", "rmvpe/rmvpe.pt")


@dataclass(frozen=True)
class SpeakerFiles:
    model: Path
    index: Path | None


def model_dirs(ctx: ProviderContext) -> list[Path]:
    return [d / MODELS_DIR for d in ctx.voices_dirs]


def pick_index(folder: Path, speaker: str) -> Path | None:
    for name in (f"{speaker}.index", "default.index"):
        if (folder / name).is_file():
            return folder / name
    candidates = [p for p in folder.glob("*.index") if not p.name.startswith("trained_")]
    added = sorted((p for p in candidates if p.name.startswith("added_")), key=lambda p: p.stat().st_mtime_ns)
    if added:
        return added[-1]
    return candidates[0] if len(candidates) == 1 else None


def find_speaker(speaker: str, ctx: ProviderContext) -> SpeakerFiles:
    """The model (and index, when there is one) of ``speaker``."""
    if not is_plain_name(speaker):
        raise VoiceNotFoundError(f"invalid RVC speaker name: {speaker!r}")
    for root in model_dirs(ctx):
        folder = root / speaker
        if not folder.is_dir():
            continue
        model = next((folder / n for n in (f"{speaker}.pth", "default.pth") if (folder / n).is_file()), None)
        if model is None:
            others = sorted(folder.glob("*.pth"))
            if len(others) > 1:
                raise VoiceNotFoundError(
                    f"{folder} holds several models ({', '.join(p.name for p in others)}): name the one to use {speaker}.pth"
                )
            model = others[0] if others else None
        if model is not None:
            return SpeakerFiles(model, pick_index(folder, speaker))
    raise ProviderUnavailableError(
        f"no RVC model for speaker '{speaker}': put {speaker}.pth (and its .index) in "
        + " or ".join(str(root / speaker) for root in model_dirs(ctx))
    )


def _configured(value: str, ctx: ProviderContext) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else ctx.profile_dir / path


def _is_encoder(path: Path) -> bool:
    return path.is_file() or (path.is_dir() and (path / "config.json").is_file())


def find_content_encoder(setting: str, ctx: ProviderContext) -> Path:
    """hubert_base.pt or a transformers folder (config.json + weights)."""
    if setting:
        path = _configured(setting, ctx)
        if _is_encoder(path):
            return path
        raise ProviderUnavailableError(
            f"RVC content encoder not found at {path} (contentEncoderPath): give hubert_base.pt "
            "or a folder with config.json and the weights"
        )
    for root in model_dirs(ctx):
        for name in ENCODER_NAMES:
            if _is_encoder(root / name):
                return root / name
    raise ProviderUnavailableError(
        "RVC needs a content encoder: put hubert_base.pt (from RVC WebUI's assets/hubert) in "
        + " or ".join(str(r) for r in model_dirs(ctx)) + ", or set tts.rvc.contentEncoderPath"
    )


def find_rmvpe(setting: str, ctx: ProviderContext) -> tuple[Path | None, str]:
    """(rmvpe.pt or None, where it was looked for)."""
    if setting:
        path = _configured(setting, ctx)
        return (path if path.is_file() else None), str(path)
    candidates = [root / name for root in model_dirs(ctx) for name in RMVPE_NAMES]
    found = next((p for p in candidates if p.is_file()), None)
    return found, " or ".join(str(root / "rmvpe.pt") for root in model_dirs(ctx))
