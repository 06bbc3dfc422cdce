"""What words a take holds, as PocketSphinx (CMU's US English model, from PyPI) hears them:
for the transcript check (``transcript.py``). Runs in the analysis process, like the other models."""

from __future__ import annotations

import numpy as np

from agent.record.decode import ANALYSIS_RATE


class Recogniser:
    """One PocketSphinx decoder, made once per analysis process (its model loads in about a second)."""

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self._decoder = Decoder(samprate=ANALYSIS_RATE, loglevel="FATAL")

    def __call__(self, samples: np.ndarray) -> str:
        """The words heard in 16 kHz float32 mono ``samples`` ("" when none)."""
        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        self._decoder.start_utt()
        self._decoder.process_raw(pcm, full_utt=True)
        self._decoder.end_utt()
        hyp = self._decoder.hyp()
        return hyp.hypstr if hyp is not None else ""
