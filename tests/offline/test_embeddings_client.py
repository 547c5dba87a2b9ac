"""The embeddings encoder on a real local server: batches, retries, and answers it must refuse."""

from __future__ import annotations

import numpy as np
import pytest

from offline.encode import EncoderChoice, EncoderName, fit_width
from offline.encode.embedding_endpoint import EmbeddingEndpointEncoder
from offline.llm import EmbeddingError, EmbeddingSettings, EndpointError
from tests.offline.llm_server import ServerScript

TEXTS = [f"category: kind {n} | style: modern" for n in range(7)]


def encoder(url: str, dim: int = 4, reduce: str = "truncate") -> EmbeddingEndpointEncoder:
    settings = EmbeddingSettings(
        base_url=url,
        model="embed-test",
        batch_size=3,
        max_retries=2,
        timeout_s=2,
    )
    built = EmbeddingEndpointEncoder(settings, dim=dim, reduce=reduce, expected_dim=8)  # type: ignore[arg-type]
    built.fit(TEXTS)
    return built


def test_vectors_are_batched_in_order_and_unit_norm(script: ServerScript, url: str) -> None:
    vectors = encoder(url).encode(TEXTS)
    assert vectors.shape == (7, 4) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert len(script.seen) == 3  # 7 texts in batches of 3
    # The server answers rows in reverse; the client restores the order of the texts.
    again = encoder(url).encode(TEXTS[::-1])
    np.testing.assert_allclose(again[::-1], vectors, atol=1e-6)
    info = encoder(url).info()
    assert info.name == "openai-embeddings" and info.dim == 4 and "embed-test" in info.version


def test_projection_keeps_width_and_is_deterministic(url: str) -> None:
    projected = encoder(url, dim=6, reduce="project").encode(TEXTS)
    assert projected.shape == (7, 6)
    np.testing.assert_array_equal(projected, encoder(url, dim=6, reduce="project").encode(TEXTS))
    padded = encoder(url, dim=12).encode(TEXTS)
    assert padded.shape == (7, 12) and not padded[:, 8:].any()


def test_a_server_error_is_retried(script: ServerScript, url: str) -> None:
    script.embed_behaviour = "500-once"
    assert encoder(url).encode(TEXTS).shape == (7, 4)


def test_persistent_server_errors_fail_clearly(script: ServerScript, url: str) -> None:
    script.embed_behaviour = "500-always"
    with pytest.raises(EndpointError, match="server_error"):
        encoder(url).encode(TEXTS)


def test_wrong_dimensions_are_refused(script: ServerScript, url: str) -> None:
    script.embed_behaviour = "wrong-dims"
    with pytest.raises(EmbeddingError, match=r"widths|expected"):
        encoder(url).encode(TEXTS)


def test_fit_width_truncates_projects_and_pads() -> None:
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(20, 64))
    truncated = fit_width(matrix, 8, "truncate")
    np.testing.assert_allclose(
        truncated, matrix[:, :8] / np.linalg.norm(matrix[:, :8], axis=1, keepdims=True), rtol=1e-5
    )
    projected = fit_width(matrix, 32, "project", seed=3)
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    # A random orthonormal projection roughly keeps cosine similarities.
    error = np.abs(projected @ projected.T - unit @ unit.T).mean()
    assert error < 0.15
    assert fit_width(np.zeros((2, 3)), 5).tolist() == [[0.0] * 5] * 2


def test_sentence_transformers_needs_a_local_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("sentence_transformers")
    with pytest.raises(FileNotFoundError):
        EncoderChoice(EncoderName.sentence_transformers, model_dir=tmp_path / "missing").build()
