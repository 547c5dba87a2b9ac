"""Semantic IDs: residual k-means codes decode back to their item; exclusions are honoured."""

from __future__ import annotations

import numpy as np

from offline.gbr.semantic_ids import CodeDecoder, fit_codebook
from offline.gbr.tokens import SemanticIdTokens
from tests.support.gbr import unit_vectors


def test_codes_decode_to_their_item_for_most_items() -> None:
    vectors = unit_vectors(600, 16, seed=1)
    codebook = fit_codebook(vectors, levels=3, codes=32)
    assert codebook.item_codes.shape == (600, 3)
    assert codebook.item_codes.max() < 32
    decoder = CodeDecoder(codebook)
    codes = codebook.item_codes[:, None, :]
    items, _ = decoder.decode(codes, np.ones((600, 1), np.float32), np.full((600, 1), -1))
    assert (items[:, 0] == np.arange(600)).mean() > 0.9
    # Each level refines the previous: reconstruction error falls level by level.
    partial = np.zeros_like(vectors)
    errors = []
    for level in range(3):
        partial = partial + codebook.centroids[level][codebook.item_codes[:, level]]
        errors.append(float(np.linalg.norm(vectors - partial, axis=1).mean()))
    assert errors[0] > errors[1] > errors[2]


def test_decoding_skips_excluded_and_taken_items() -> None:
    vectors = unit_vectors(200, 8, seed=2)
    layout = SemanticIdTokens(fit_codebook(vectors, levels=2, codes=16))
    tokens = layout.encode(np.array([[5, 5, 9]]))  # two slots ask for item 5
    items, confidence = layout.decode(
        tokens, np.full(tokens.shape, 0.5, np.float32), np.array([[9]])
    )
    assert items.shape == (1, 3)
    assert 9 not in items[0] and len(set(items[0].tolist())) == 3
    assert 5 in items[0]
    assert confidence.shape == (1, 3)
