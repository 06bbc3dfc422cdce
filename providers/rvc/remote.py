"""RVC speech made on another node for a profile that lives here: the files a conversion needs
(the speaker's ``.pth`` and ``.index``, the content encoder and rmvpe.pt when this node has them
as files) and, on the worker, the same settings pointed at those files once fetched. The base
voice (Piper or Kokoro) is named in the settings; the worker uses its own copy of it. No torch here.
"""

from __future__ import annotations

from pathlib import Path

from providers.base import ProviderContext
from providers.common.files import link_now
from providers.rvc import assets
from providers.rvc.config import RvcSettings
from providers.settings_base import ProviderSettings


def inputs(settings: ProviderSettings, ctx: ProviderContext) -> dict[str, Path]:
    """role -> file: ``model`` always, ``index``, ``encoder`` and ``rmvpe`` when there are such files."""
    assert isinstance(settings, RvcSettings)
    files = assets.find_speaker(settings.speaker_id, ctx)
    found = {"model": files.model}
    if files.index is not None:
        found["index"] = files.index
    encoder = assets.find_content_encoder(settings.content_encoder_path, ctx)
    if encoder.is_file():  # a transformers folder stays the worker's own
        found["encoder"] = encoder
    if settings.f0_method == "rmvpe":
        rmvpe, _ = assets.find_rmvpe(settings.rmvpe_path, ctx)
        if rmvpe is not None:
            found["rmvpe"] = rmvpe
    return found


def place(settings: ProviderSettings, files: dict[str, Path], folder: Path) -> ProviderSettings:
    """``settings`` for the worker: the model (and index) linked as ``folder/rvc-models/<speaker>/``,
    the encoder and rmvpe.pt by their paths (else the worker's own, looked up as usual)."""
    assert isinstance(settings, RvcSettings)
    speaker = folder / assets.MODELS_DIR / settings.speaker_id
    speaker.mkdir(parents=True, exist_ok=True)
    link_now(files["model"], speaker / f"{settings.speaker_id}.pth")
    index = speaker / f"{settings.speaker_id}.index"
    if "index" in files:
        link_now(files["index"], index)
    else:
        index.unlink(missing_ok=True)
    return settings.updated(content_encoder_path=str(files["encoder"]) if "encoder" in files else "",
                            rmvpe_path=str(files["rmvpe"]) if "rmvpe" in files else "")

