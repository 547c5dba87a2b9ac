"""Encoder on a sentence-transformers model loaded from a local directory (the ``st`` extra).

Nothing is downloaded: the model must already be on disk (``model_dir`` holding the saved
model), and the Hugging Face hub is told to stay offline while it loads. The package is optional;
choosing this encoder without it installed is a clear error naming the extra.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from offline.encode.base import Vectors
from offline.encode.pretrained import PretrainedEncoder
from offline.encode.width import Reduction
from service.contracts.manifest import TextEncoderInfo

NAME = "sentence-transformers"


def _model_digest(model_dir: Path) -> str:
    """Names the weights: the sizes and names of the files, and the bytes of the small ones."""
    digest = hashlib.sha256()
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(model_dir)}:{path.stat().st_size}".encode())
        if path.stat().st_size < 1 << 20:
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


class SentenceTransformerEncoder(PretrainedEncoder):
    """A local sentence-transformers model, brought to ``dim`` by truncation or projection."""

    def __init__(
        self,
        model_dir: Path,
        dim: int = 32,
        reduce: Reduction = "truncate",
        seed: int = 0,
        batch_size: int = 64,
    ) -> None:
        if not model_dir.is_dir():
            raise FileNotFoundError(f"{model_dir} is not a directory holding a saved model")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as error:
            raise ImportError(
                "the sentence-transformers encoder needs the `st` extra: "
                "pip install 'reaseq-ranking[st]'"
            ) from error
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        super().__init__(dim, reduce, seed)
        self.model_dir = model_dir
        self.batch_size = batch_size
        self._model: Any = SentenceTransformer(str(model_dir), device="cpu")

    def _embed(self, texts: Sequence[str]) -> Vectors:
        raw = self._model.encode(
            list(texts), batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        return raw.reshape(len(texts), -1)  # type: ignore[no-any-return]

    def info(self) -> TextEncoderInfo:
        version = f"{self.model_dir.name}-{_model_digest(self.model_dir)}-{self.reduce}{self.dim}"
        return TextEncoderInfo(name=NAME, dim=self.dim, version=version)
