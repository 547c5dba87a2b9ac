"""TF-IDF followed by truncated SVD: a small, dependency-light, deterministic text encoder.

It needs no weights and no network, so the pipeline runs anywhere; it is the baseline that an
embedding-model encoder must beat. Word and word-pair counts capture the shared vocabulary of the
knowledge texts (a cookware item mentions "olive oil" as a complement, an olive oil item is in the
"olive oil" category), and the SVD folds co-occurring terms into a few dense dimensions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from offline.encode.base import EncoderNotFittedError, TextEncoder, Vectors, l2_normalise
from service.contracts.manifest import TextEncoderInfo

NAME = "tfidf-svd"
ALGORITHM_VERSION = "1"


class TfidfSvdEncoder(TextEncoder):
    """TF-IDF over words and word pairs, then truncated SVD to ``dim`` dimensions.

    The SVD cannot have more components than the corpus has distinct terms or texts, so on tiny
    corpora the width is clipped to ``min(dim, terms - 1, texts - 1)``; :meth:`info` and
    :attr:`fitted_dim` report the width actually produced.
    """

    def __init__(self, dim: int = 32, seed: int = 0) -> None:
        if dim < 1:
            raise ValueError("dim must be positive")
        self.dim, self.seed = dim, seed
        self._vectorizer: TfidfVectorizer | None = None
        self._svd: TruncatedSVD | None = None

    def fit(self, texts: Sequence[str]) -> None:
        vectorizer = TfidfVectorizer(
            ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b[\w-]+\b", dtype=np.float32
        )
        tfidf = vectorizer.fit_transform(list(texts))
        width = min(self.dim, tfidf.shape[1] - 1, tfidf.shape[0] - 1)
        if width < 1:
            raise ValueError("need at least two texts and two distinct terms to fit")
        svd = TruncatedSVD(n_components=width, algorithm="randomized", random_state=self.seed)
        svd.fit(tfidf)
        self._vectorizer, self._svd = vectorizer, svd

    @property
    def fitted_dim(self) -> int:
        return int(self._fitted()[1].n_components)

    def encode(self, texts: Sequence[str]) -> Vectors:
        vectorizer, svd = self._fitted()
        if len(texts) == 0:
            return np.zeros((0, self.fitted_dim), dtype=np.float32)
        return l2_normalise(svd.transform(vectorizer.transform(list(texts))))

    def info(self) -> TextEncoderInfo:
        """The version names the fitted state, so vectors from different fits never mix silently."""
        vectorizer, svd = self._fitted()
        digest = hashlib.sha256()
        digest.update("\n".join(vectorizer.get_feature_names_out()).encode())
        digest.update(np.ascontiguousarray(svd.components_, dtype=np.float32).tobytes())
        return TextEncoderInfo(
            name=NAME, dim=self.fitted_dim, version=f"{ALGORITHM_VERSION}-{digest.hexdigest()[:12]}"
        )

    def _fitted(self) -> tuple[TfidfVectorizer, TruncatedSVD]:
        if self._vectorizer is None or self._svd is None:
            raise EncoderNotFittedError("fit the encoder before encoding")
        return self._vectorizer, self._svd
