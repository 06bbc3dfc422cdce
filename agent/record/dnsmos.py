"""DNSMOS P.835 (SIG, BAK, OVRL) with the models and calibration the ``speechmos`` package ships.

Only the P.835 model runs: the P.808 model next to it doubles the cost and is not part of the
score. Clips shorter than the model's 9.01 s window are repeated to fill it, as DNSMOS does; the
reference script then averages several one-second-shifted windows of that repeated clip, which
costs up to six times as much for windows that hold the same audio, so a short clip is scored
on one window here. Longer clips get DNSMOS's one-second hop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

WINDOW = 144160  # samples at 16 kHz: the model's fixed input (9.01 s)


class Dnsmos:
    def __init__(self, threads: int = 1) -> None:
        import onnxruntime as ort
        import speechmos
        from speechmos.dnsmos import DNSMOS

        models = Path(speechmos.__file__).parent / "dnsmos_models"
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(models / "sig_bak_ovr.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self._calibrate: Any = DNSMOS.get_polyfit_val  # speechmos' published polynomial fit

    def __call__(self, samples: np.ndarray) -> dict[str, float]:
        audio = samples.astype(np.float32)
        if len(audio) < WINDOW:
            audio = np.tile(audio, int(np.ceil(WINDOW / max(1, len(audio)))))[:WINDOW]
        starts = range(0, len(audio) - WINDOW + 1, 16000)  # one-second hop, as DNSMOS
        batch = np.stack([audio[s : s + WINDOW] for s in starts])
        raw = self._session.run(None, {"input_1": batch})[0]
        sig, bak, ovrl = self._calibrate(None, raw[:, 0], raw[:, 1], raw[:, 2], False)
        return {"sig": float(np.mean(sig)), "bak": float(np.mean(bak)), "ovrl": float(np.mean(ovrl))}
