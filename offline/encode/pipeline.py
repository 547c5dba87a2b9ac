"""Knowledge records to semantic vectors: their text, an encoder fitted on that text.

Many items share the same knowledge text (same kind, brand, style, material, band and audience),
so each distinct text is encoded once and the vectors are gathered back per item. The encoder is
fitted on the distinct texts too: it then weighs words by how many kinds of item use them, not by
how many copies of one popular description the catalogue holds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from offline.data.canonical import Catalogue
from offline.encode.base import TextEncoder, Vectors
from offline.knowledge.backend import KnowledgeBackend
from offline.knowledge.schema import ItemKnowledge
from offline.knowledge.text import knowledge_text
from service.contracts.manifest import TextEncoderInfo


def encode_records(
    records: Sequence[ItemKnowledge], encoder: TextEncoder
) -> tuple[Vectors, TextEncoderInfo]:
    """One unit-norm vector per record (same order) and the encoder's info."""
    row_of_text: dict[str, int] = {}
    item_row = np.fromiter(
        (row_of_text.setdefault(knowledge_text(record), len(row_of_text)) for record in records),
        dtype=np.int64,
        count=len(records),
    )
    corpus = list(row_of_text)
    encoder.fit(corpus)
    return encoder.encode(corpus)[item_row], encoder.info()


def semantic_vectors(
    catalogue: Catalogue, backend: KnowledgeBackend, encoder: TextEncoder
) -> tuple[Vectors, TextEncoderInfo]:
    """One unit-norm semantic vector per catalogue row (catalogue order) and the encoder's info."""
    records = backend.describe(catalogue)
    if len(records) != len(catalogue):
        raise ValueError(
            f"backend {backend.identity} described {len(records)} of {len(catalogue)} items"
        )
    return encode_records(records, encoder)
