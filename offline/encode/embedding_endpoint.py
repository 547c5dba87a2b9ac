"""Encoder on an OpenAI-compatible ``/v1/embeddings`` endpoint (vLLM, Ollama, a hosted API).

Requests are batched and retried by :class:`offline.llm.EmbeddingsClient`; the model's vectors are
brought to ``dim`` as :mod:`offline.encode.width` documents. A failed or malformed answer is an
error: there is no offline fallback for vectors, since mixing encoders in one table would be
meaningless.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from offline.encode.base import EncoderNotFittedError, TextEncoder, Vectors
from offline.encode.width import Reduction, fit_width
from offline.llm.embeddings import EmbeddingsClient
from offline.llm.settings import EmbeddingSettings
from service.contracts.manifest import TextEncoderInfo

NAME = "openai-embeddings"


class EmbeddingEndpointEncoder(TextEncoder):
    def __init__(
        self,
        settings: EmbeddingSettings,
        dim: int = 32,
        reduce: Reduction = "truncate",
        seed: int = 0,
        expected_dim: int | None = None,
    ) -> None:
        if not settings.model:
            raise ValueError("set the embedding model (REASEQ_EMBED_MODEL)")
        self.settings, self.dim, self.reduce, self.seed = settings, dim, reduce, seed
        self.expected_dim = expected_dim
        self._fitted = False

    def fit(self, texts: Sequence[str]) -> None:
        self._fitted = True  # pretrained: nothing to learn from the corpus

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not self._fitted:
            raise EncoderNotFittedError("fit the encoder before encoding")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return fit_width(asyncio.run(self._embed(texts)), self.dim, self.reduce, self.seed)

    async def _embed(self, texts: Sequence[str]) -> Vectors:
        client = EmbeddingsClient(self.settings, self.expected_dim)
        try:
            return await client.embed(texts)
        finally:
            await client.close()

    def info(self) -> TextEncoderInfo:
        requested = f"d{self.settings.dimensions}-" if self.settings.dimensions else ""
        version = f"{self.settings.model}-{requested}{self.reduce}{self.dim}"
        return TextEncoderInfo(name=NAME, dim=self.dim, version=version)
