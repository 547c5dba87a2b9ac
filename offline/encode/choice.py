"""Pick a text encoder by name, with what each one needs; the command line and build use it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from offline.encode.base import TextEncoder
from offline.encode.width import Reduction


class EncoderName(StrEnum):
    tfidf_svd = "tfidf-svd"
    sentence_transformers = "sentence-transformers"
    openai_embeddings = "openai-embeddings"


@dataclass(frozen=True)
class EncoderChoice:
    """Which encoder, at which width, and what it needs to load."""

    name: EncoderName = EncoderName.tfidf_svd
    dim: int = 32
    seed: int = 0
    model_dir: Path | None = None  # sentence-transformers: a local model directory
    reduce: Reduction = "truncate"

    def build(self) -> TextEncoder:
        """The encoder; optional backends are imported only when chosen."""
        if self.name is EncoderName.tfidf_svd:
            from offline.encode.tfidf import TfidfSvdEncoder

            return TfidfSvdEncoder(dim=self.dim, seed=self.seed)
        if self.name is EncoderName.sentence_transformers:
            if self.model_dir is None:
                raise ValueError("the sentence-transformers encoder needs a local model directory")
            from offline.encode.sentence_transformers import SentenceTransformerEncoder

            return SentenceTransformerEncoder(self.model_dir, self.dim, self.reduce, self.seed)
        from offline.encode.embedding_endpoint import EmbeddingEndpointEncoder
        from offline.llm.settings import EmbeddingSettings

        return EmbeddingEndpointEncoder(EmbeddingSettings(), self.dim, self.reduce, self.seed)
