"""The speaker's FAISS feature index: checked against the model's feature size, then used to
pull the content features towards the training voice (``index_rate``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from providers.rvc.modelfile import ModelFileError

log = logging.getLogger(__name__)

NEIGHBOURS = 8


@dataclass
class FeatureIndex:
    path: Path
    index: object  # faiss.Index
    vectors: np.ndarray  # every stored feature frame, [N, dim]

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def blend(self, features: np.ndarray, rate: float) -> np.ndarray:
        """Mix each frame with the inverse-square-distance average of its 8 nearest stored frames."""
        if rate <= 0:
            return features
        query = np.ascontiguousarray(features, dtype=np.float32)
        distances, ids = self.index.search(query, NEIGHBOURS)  # type: ignore[attr-defined]
        found = ids >= 0
        weights = np.where(found, (1.0 / np.maximum(distances.astype(np.float64), 1e-12)) ** 2, 0.0)
        weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
        retrieved = np.einsum("fk,fkd->fd", weights, self.vectors[np.where(found, ids, 0)])
        return (rate * retrieved + (1 - rate) * features).astype(np.float32)


def read_index(path: Path, expected_dim: int | None = None) -> FeatureIndex:
    """Load an ``.index`` file; a wrong feature size or an empty index is a ModelFileError."""
    try:
        import faiss
    except ImportError as exc:
        raise ModelFileError(path, ["reading .index files needs faiss: pip install 'voice-agent[rvc]'"]) from exc
    if not path.is_file():
        raise ModelFileError(path, ["file not found"])
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        raise ModelFileError(path, [f"not a FAISS index, or damaged: {str(exc).splitlines()[0][:160]}"]) from exc
    if expected_dim is not None and index.d != expected_dim:
        raise ModelFileError(
            path, [f"index holds {index.d}-d features but the model uses {expected_dim}-d ones "
                   f"({'v1' if index.d == 256 else 'v2' if index.d == 768 else 'unknown'} index for a "
                   f"{'v1' if expected_dim == 256 else 'v2'} model): use the index trained with this model"]
        )
    if index.ntotal == 0:
        raise ModelFileError(path, ["index is empty (RVC's trained_*.index holds no features; use added_*.index)"])
    try:
        vectors = index.reconstruct_n(0, index.ntotal)
    except RuntimeError as exc:
        raise ModelFileError(path, [f"cannot read the stored features back: {str(exc).splitlines()[0][:160]}"]) from exc
    return FeatureIndex(path, index, np.asarray(vectors, dtype=np.float32))
