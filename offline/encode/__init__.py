"""Text encoders that turn item knowledge into semantic vectors.

``tfidf-svd`` (the default, no weights), ``sentence-transformers`` (a local model directory, the
optional ``st`` extra) and ``openai-embeddings`` (any OpenAI-compatible ``/v1/embeddings``).
"""

from offline.encode.base import EncoderNotFittedError, TextEncoder, Vectors
from offline.encode.choice import EncoderChoice, EncoderName
from offline.encode.pipeline import encode_records, semantic_vectors
from offline.encode.tfidf import TfidfSvdEncoder
from offline.encode.width import fit_width

__all__ = [
    "EncoderChoice",
    "EncoderName",
    "EncoderNotFittedError",
    "TextEncoder",
    "TfidfSvdEncoder",
    "Vectors",
    "encode_records",
    "fit_width",
    "semantic_vectors",
]
