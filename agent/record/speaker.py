"""Who is speaking: Resemblyzer embeddings compared with the profile's voice.

The profile's voice is an enrolled reference when there is one, else the running mean of the
accepted samples' embeddings. Imports torch (through Resemblyzer) only when first used.
"""

from __future__ import annotations

import numpy as np

from agent.record.decode import ANALYSIS_RATE
from providers.common.librosa_loader import load_librosa


class SpeakerEncoder:
    def __init__(self, threads: int = 1) -> None:
        import torch
        from resemblyzer import VoiceEncoder

        load_librosa()  # Resemblyzer's mel spectrograms are librosa's
        torch.set_num_threads(threads)
        self._encoder = VoiceEncoder("cpu", verbose=False)

    def embed(self, samples: np.ndarray) -> np.ndarray:
        from resemblyzer.audio import normalize_volume

        wav = normalize_volume(samples.astype(np.float32), -30, increase_only=True)
        if len(wav) < ANALYSIS_RATE // 2:
            wav = np.pad(wav, (0, ANALYSIS_RATE // 2 - len(wav)))
        return np.asarray(self._encoder.embed_utterance(wav), dtype=np.float32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))
