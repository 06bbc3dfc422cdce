"""Pitch (f0) of 16 kHz speech at 100 frames/s, by the method the settings ask for, or the next
one that can run here when its asset or package is missing (said in the log)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from providers.base import ProviderUnavailableError

log = logging.getLogger(__name__)

RATE, HOP = 16000, 160
F0_MIN, F0_MAX = 50.0, 1100.0
MEL_MIN = 1127 * np.log(1 + F0_MIN / 700)
MEL_MAX = 1127 * np.log(1 + F0_MAX / 700)
# crepe's full model runs at about a tenth of real time on a small CPU: last resort there
FALLBACK_ORDER = {"cpu": ("rmvpe", "harvest", "dio", "crepe"), "cuda": ("rmvpe", "crepe", "harvest", "dio")}


@dataclass
class PitchTools:
    """What the methods need: a loaded RMVPE (or why there is none) and the device."""

    rmvpe: Callable[[np.ndarray], np.ndarray] | None
    rmvpe_missing: str
    device: str = "cpu"


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def why_unavailable(method: str, tools: PitchTools) -> str | None:
    if method == "rmvpe":
        return None if tools.rmvpe is not None else tools.rmvpe_missing
    if method == "crepe":
        return None if _has("torchcrepe") else "torchcrepe is not installed (pip install 'voice-agent[rvc]')"
    return None if _has("pyworld") else "pyworld is not installed (pip install 'voice-agent[rvc]')"


def choose_method(requested: str, tools: PitchTools) -> str:
    """``requested`` if it can run, else the first that can in the device's fallback order."""
    order = FALLBACK_ORDER["cuda" if tools.device.startswith("cuda") else "cpu"]
    reasons: list[str] = []
    for method in (requested, *[m for m in order if m != requested]):
        reason = why_unavailable(method, tools)
        if reason is None:
            if reasons:
                log.warning("f0 method %s cannot run (%s); using %s", requested, reasons[0], method)
            return method
        reasons.append(reason)
    raise ProviderUnavailableError("no pitch estimator can run: " + "; ".join(reasons))


def estimate_f0(audio: np.ndarray, method: str, tools: PitchTools, filter_radius: int = 3) -> np.ndarray:
    """f0 in Hz per 10 ms frame (len(audio) // 160 + 1 frames), 0 where unvoiced."""
    frames = len(audio) // HOP + 1
    if method == "rmvpe":
        assert tools.rmvpe is not None
        f0 = tools.rmvpe(audio)
    elif method == "crepe":
        f0 = _crepe(audio, tools.device)
    else:
        import pyworld

        x = audio.astype(np.float64)
        if method == "harvest":
            raw, times = pyworld.harvest(x, RATE, f0_floor=F0_MIN, f0_ceil=F0_MAX, frame_period=1000 * HOP / RATE)
        else:
            raw, times = pyworld.dio(x, RATE, f0_floor=F0_MIN, f0_ceil=F0_MAX, frame_period=1000 * HOP / RATE)
        f0 = pyworld.stonemask(x, raw, times, RATE)
        if method == "harvest" and filter_radius > 2:
            from scipy.signal import medfilt

            f0 = medfilt(f0, 3)
    f0 = np.nan_to_num(np.asarray(f0, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    f0[f0 < 0] = 0  # unvoiced, whatever an estimator says
    if len(f0) < frames:
        f0 = np.pad(f0, (0, frames - len(f0)))
    return f0[:frames]


def _crepe(audio: np.ndarray, device: str) -> np.ndarray:
    import torch
    import torchcrepe

    from providers.common.librosa_loader import load_librosa

    load_librosa()  # torchcrepe decodes with librosa's Viterbi
    wave = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
    f0, periodicity = torchcrepe.predict(
        wave, RATE, HOP, F0_MIN, F0_MAX, "full", batch_size=512, device=device, return_periodicity=True
    )
    periodicity = torchcrepe.filter.median(periodicity, 3)
    f0 = torchcrepe.filter.mean(f0, 3)
    f0[periodicity < 0.1] = 0
    return f0[0].cpu().numpy()


def shift(f0: np.ndarray, semitones: float) -> np.ndarray:
    return f0 * 2 ** (semitones / 12)


def coarse(f0: np.ndarray) -> np.ndarray:
    """The 1..255 pitch index RVC embeds: mel-spaced between 50 and 1100 Hz, 1 = unvoiced."""
    mel = 1127 * np.log(1 + f0 / 700)
    voiced = mel > 0
    mel[voiced] = (mel[voiced] - MEL_MIN) * 254 / (MEL_MAX - MEL_MIN) + 1
    return np.rint(np.clip(mel, 1, 255)).astype(np.int64)


def median_f0(audio: np.ndarray) -> float | None:
    """Median pitch of the voiced frames of 16 kHz audio. harvest: dio is faster but lands well
    above the true pitch of some voices (Piper's joe: 175 Hz against about 125 Hz)."""
    import pyworld

    x = audio.astype(np.float64)
    f0, _ = pyworld.harvest(x, RATE, f0_floor=F0_MIN, f0_ceil=F0_MAX, frame_period=10.0)
    voiced = f0[f0 > 0]
    return float(np.median(voiced)) if len(voiced) >= 10 else None


def rmvpe_loader(path: Path | None, device: str, looked: str) -> PitchTools:
    """PitchTools with RMVPE loaded from ``path`` (or the reason it can't be)."""
    if path is None:
        return PitchTools(None, f"rmvpe.pt not found ({looked})", device)
    from providers.rvc.modelfile import ModelFileError
    from providers.rvc.rmvpe import Rmvpe

    try:
        model = Rmvpe(path, device)
    except ModelFileError as exc:
        return PitchTools(None, str(exc), device)
    return PitchTools(model.f0, "", device)
