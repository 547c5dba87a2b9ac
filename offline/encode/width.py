"""Bring a pretrained model's embeddings to the configured width, then to unit length.

A pretrained model has its own output width (384, 768, 1536, ...), while the bundle's semantic
width is a configuration choice. Two ways to get there, named in the encoder's identity:

* ``truncate`` keeps the first ``dim`` coordinates. Right for models trained with nested
  (Matryoshka) representations, such as OpenAI's text-embedding-3 family, whose leading
  coordinates carry most of the meaning.
* ``project`` multiplies by a fixed random matrix with orthonormal columns, drawn from a seed
  (a Johnson-Lindenstrauss projection): it roughly preserves cosine similarities for any model.

A model narrower than ``dim`` is zero-padded (no information is invented). Rows are then
L2-normalised, so a dot product is a cosine similarity whatever the encoder.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from offline.encode.base import Vectors, l2_normalise

Reduction = Literal["truncate", "project"]


def projection_matrix(width: int, dim: int, seed: int) -> npt.NDArray[np.float64]:
    """``[width, dim]`` with orthonormal columns; the same arguments give the same matrix."""
    gaussian = np.random.default_rng(seed).standard_normal((width, dim))
    q, r = np.linalg.qr(gaussian)
    return q * np.sign(np.diag(r))  # sign fix: QR is unique only up to column signs


def fit_width(
    matrix: npt.ArrayLike, dim: int, how: Reduction = "truncate", seed: int = 0
) -> Vectors:
    """``[rows, dim]`` unit-norm float32 rows from ``[rows, width]`` embeddings."""
    values = np.asarray(matrix, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"expected a 2-d matrix of embeddings, got shape {values.shape}")
    rows, width = values.shape
    if width > dim:
        values = (
            values[:, :dim] if how == "truncate" else values @ projection_matrix(width, dim, seed)
        )
    elif width < dim:
        values = np.hstack([values, np.zeros((rows, dim - width))])
    return l2_normalise(values)
