"""What the pretrained encoders share: nothing to learn from the corpus, and the model's own
embeddings brought to the configured width (:mod:`offline.encode.width`)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

import numpy as np

from offline.encode.base import EncoderNotFittedError, TextEncoder, Vectors
from offline.encode.width import Reduction, fit_width


class PretrainedEncoder(TextEncoder):
    """``fit`` only marks the encoder ready; ``encode`` fits the model's vectors to ``dim``."""

    def __init__(self, dim: int, reduce: Reduction, seed: int) -> None:
        self.dim, self.reduce, self.seed = dim, reduce, seed
        self._fitted = False

    def fit(self, texts: Sequence[str]) -> None:
        self._fitted = True  # pretrained: nothing to learn from the corpus

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not self._fitted:
            raise EncoderNotFittedError("fit the encoder before encoding")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return fit_width(self._embed(texts), self.dim, self.reduce, self.seed)

    @abstractmethod
    def _embed(self, texts: Sequence[str]) -> Vectors:
        """The model's own vectors, ``[len(texts), its width]``."""
