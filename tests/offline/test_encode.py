"""Text encoders and the catalogue-to-semantic-vector pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from offline.data.canonical import Dataset
from offline.data.synthetic import GroundTruth
from offline.encode import EncoderNotFittedError, TextEncoder, TfidfSvdEncoder, semantic_vectors
from offline.knowledge import OfflineKnowledgeBackend

Generated = tuple[Dataset, GroundTruth]
TEXTS = [
    "category: home kitchen cookware | style: modern | complements: olive oil",
    "category: grocery pantry olive oil | style: rustic | complements: cookware",
    "category: toys games board games | style: playful | complements: chips",
    "category: grocery snacks chips | style: classic | complements: board games",
    "category: electronics audio headphones | style: sporty | complements: smartphones",
]


@pytest.fixture(scope="module")
def tiny_vectors(tiny: Generated) -> tuple[np.ndarray, object]:
    return semantic_vectors(tiny[0].catalogue, OfflineKnowledgeBackend(), TfidfSvdEncoder(dim=16))


def _random_pairs(items: int, seed: int) -> np.ndarray:
    """``[2, 5000]`` indices of item pairs drawn at random (an item may meet itself)."""
    return np.random.default_rng(seed).integers(0, items, (2, 5000))


def _pair_similarity(vectors: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The dot product of the rows ``a[n]`` and ``b[n]`` of ``vectors``, for each ``n``."""
    return np.einsum("nd,nd->n", vectors[a], vectors[b])


def test_rows_are_unit_norm_float32() -> None:
    encoder = TfidfSvdEncoder(dim=3)
    encoder.fit(TEXTS)
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (5, 3) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, 3)
    assert not encoder.encode(["zzz unseen words"]).any()


def test_width_is_clipped_on_a_tiny_corpus() -> None:
    encoder = TfidfSvdEncoder(dim=32)
    encoder.fit(TEXTS[:3])
    assert encoder.fitted_dim == 2 and encoder.info().dim == 2
    assert encoder.encode(TEXTS).shape == (5, 2)
    with pytest.raises(ValueError, match="at least two"):
        TfidfSvdEncoder().fit(["alone"])


def test_info_names_the_fitted_state() -> None:
    first, second, other = TfidfSvdEncoder(dim=3), TfidfSvdEncoder(dim=3), TfidfSvdEncoder(dim=3)
    first.fit(TEXTS)
    second.fit(TEXTS)
    other.fit([*TEXTS, "category: pets dogs dog toys"])
    assert first.info().name == "tfidf-svd" and first.info().dim == 3
    assert first.info() == second.info() and first.info().version != other.info().version
    np.testing.assert_array_equal(first.encode(TEXTS), second.encode(TEXTS))


def test_encoding_before_fitting_is_an_error() -> None:
    with pytest.raises(EncoderNotFittedError):
        TfidfSvdEncoder().encode(TEXTS)
    with pytest.raises(TypeError):
        TextEncoder()  # type: ignore[abstract]


def test_semantic_vectors_cover_the_catalogue(tiny: Generated, tiny_vectors: tuple) -> None:
    vectors, info = tiny_vectors
    assert vectors.shape == (300, 16) and info.dim == 16 and info.name == "tfidf-svd"
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_items_of_one_kind_are_closer_than_random_pairs(
    tiny: Generated, tiny_vectors: tuple
) -> None:
    vectors, _ = tiny_vectors
    leaf = tiny[1].item_leaf
    a, b = _random_pairs(len(leaf), seed=0)
    similarity = _pair_similarity(vectors, a, b)
    same = (leaf[a] == leaf[b]) & (a != b)
    assert similarity[same].mean() > similarity[~same].mean() + 0.3


def test_semantic_similarity_tracks_the_hidden_item_similarity(
    tiny: Generated, tiny_vectors: tuple
) -> None:
    vectors, _ = tiny_vectors
    latent = tiny[1].item_latent
    a, b = _random_pairs(len(latent), seed=1)
    semantic, hidden = _pair_similarity(vectors, a, b), _pair_similarity(latent, a, b)
    assert np.corrcoef(semantic, hidden)[0, 1] > 0.25
