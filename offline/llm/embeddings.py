"""An ``/embeddings`` client on the SDK: batched, concurrent, and strict about what comes back.

A vector of the wrong width or a missing row is an error, never padded or skipped: semantic
vectors from a broken answer would silently mislead the ranker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from offline.llm.endpoint import ModelEndpoint
from offline.llm.settings import EmbeddingSettings


class EmbeddingError(RuntimeError):
    """The endpoint's answer cannot be used as embeddings."""


class EmbeddingsClient:
    def __init__(self, settings: EmbeddingSettings, expected_dim: int | None = None) -> None:
        self.settings = settings
        self.expected_dim = expected_dim
        self.endpoint = ModelEndpoint(settings)

    async def close(self) -> None:
        await self.endpoint.close()

    async def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """``[len(texts), width]`` float32, rows in the order of ``texts``."""
        size = self.settings.batch_size
        batches = [list(texts[i : i + size]) for i in range(0, len(texts), size)]
        parts = await asyncio.gather(*(self._batch(batch) for batch in batches))
        if not parts:
            return np.zeros((0, self.expected_dim or 0), dtype=np.float32)
        widths = {part.shape[1] for part in parts}
        if len(widths) > 1:
            raise EmbeddingError(f"batches came back with different widths {sorted(widths)}")
        return np.concatenate(parts).astype(np.float32)

    async def _batch(self, texts: list[str]) -> npt.NDArray[np.float32]:
        # Floats, not the SDK's default base64: every OpenAI-compatible server speaks floats.
        params: dict[str, Any] = {
            "model": self.settings.model,
            "input": texts,
            "encoding_format": "float",
        }
        if self.settings.dimensions is not None:
            params["dimensions"] = self.settings.dimensions
        answer = await self.endpoint.embeddings(**params)
        try:
            rows = sorted(answer.data, key=lambda row: int(row.index))
            vectors = [list(row.embedding) for row in rows]
        except (AttributeError, TypeError, ValueError) as error:
            raise EmbeddingError(f"malformed embeddings answer: {error!r}") from None
        if len(vectors) != len(texts):
            raise EmbeddingError(f"asked for {len(texts)} embeddings, got {len(vectors)}")
        widths = {len(vector) for vector in vectors}
        if len(widths) != 1:
            raise EmbeddingError(f"embeddings of different widths {sorted(widths)} in one answer")
        width = widths.pop()
        if self.expected_dim is not None and width != self.expected_dim:
            raise EmbeddingError(f"expected {self.expected_dim}-dim embeddings, got {width}")
        return np.asarray(vectors, dtype=np.float32)
