"""The boundary every text encoder sits behind.

Item vectors are precomputed offline and stored with the bundle, so an encoder only has to fit on
the catalogue's texts and map texts to fixed-width vectors. Rows are L2-normalised so that a dot
product is a cosine similarity, whatever encoder produced them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from service.contracts.manifest import TextEncoderInfo

Vectors = npt.NDArray[np.float32]


class EncoderNotFittedError(RuntimeError):
    """``encode`` or ``info`` was called before ``fit``."""


class TextEncoder(ABC):
    """Maps texts to L2-normalised float32 vectors."""

    @abstractmethod
    def fit(self, texts: Sequence[str]) -> None:
        """Learn whatever the encoder needs from the corpus (a no-op for a pretrained model)."""

    @abstractmethod
    def encode(self, texts: Sequence[str]) -> Vectors:
        """One unit-norm row per text, shape [len(texts), dim]; a text of unknown words: zeros."""

    @abstractmethod
    def info(self) -> TextEncoderInfo:
        """Name, width and version, recorded in the bundle manifest."""


def l2_normalise(matrix: npt.NDArray[np.floating]) -> Vectors:
    """Rows scaled to unit length; all-zero rows stay zero rather than becoming NaN."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)
