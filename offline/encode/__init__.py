"""Text encoders that turn item knowledge into semantic vectors."""

from offline.encode.base import EncoderNotFittedError, TextEncoder, Vectors
from offline.encode.pipeline import semantic_vectors
from offline.encode.tfidf import TfidfSvdEncoder

__all__ = [
    "EncoderNotFittedError",
    "TextEncoder",
    "TfidfSvdEncoder",
    "Vectors",
    "semantic_vectors",
]
