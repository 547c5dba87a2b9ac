"""Encoder on an OpenAI-compatible ``/v1/embeddings`` endpoint (vLLM, Ollama, a hosted API).

Requests are batched and retried by :class:`offline.llm.EmbeddingsClient`; the model's vectors are
brought to ``dim`` as :mod:`offline.encode.width` documents. A failed or malformed answer is an
error: there is no offline fallback for vectors, since mixing encoders in one table would be
meaningless.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from offline.encode.base import Vectors
from offline.encode.pretrained import PretrainedEncoder
from offline.encode.width import Reduction
from offline.llm.embeddings import EmbeddingsClient
from offline.llm.settings import EmbeddingSettings
from service.contracts.manifest import TextEncoderInfo

NAME = "openai-embeddings"


class EmbeddingEndpointEncoder(PretrainedEncoder):
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
        super().__init__(dim, reduce, seed)
        self.settings = settings
        self.expected_dim = expected_dim

    def _embed(self, texts: Sequence[str]) -> Vectors:
        return asyncio.run(self._request(texts))

    async def _request(self, texts: Sequence[str]) -> Vectors:
        client = EmbeddingsClient(self.settings, self.expected_dim)
        try:
            return await client.embed(texts)
        finally:
            await client.close()

    def info(self) -> TextEncoderInfo:
        requested = f"d{self.settings.dimensions}-" if self.settings.dimensions else ""
        version = f"{self.settings.model}-{requested}{self.reduce}{self.dim}"
        return TextEncoderInfo(name=NAME, dim=self.dim, version=version)
