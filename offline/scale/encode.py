"""Encoding on Ray Data: the encoder fitted once in the driver, its ``encode`` spread over actors.

:func:`encode_records_ray` is :func:`offline.encode.encode_records` itself with a
:class:`ShardedEncoder`: the same distinct texts, the same fit, and each text's vector computed by
a worker holding a copy of the fitted encoder. Encoders that map each text on its own (TF-IDF +
SVD, the default) give the same vectors as a single process; a model that pads texts per batch
(sentence-transformers) may differ in the last bits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import ray
import ray.data

from offline.encode.base import TextEncoder, Vectors
from offline.encode.pipeline import encode_records
from offline.knowledge.schema import ItemKnowledge
from offline.scale.session import WorkerPool
from offline.scale.shards import (
    collected,
    concatenated,
    ranges,
    shard_arrays,
    shard_dataset,
    shard_row,
)
from service.contracts.manifest import TextEncoderInfo


class TextShardEncoder:
    """A Ray Data callable class: a worker's copy of the fitted encoder, encoding shards of
    texts. Output rows: ``row`` (the text's index) and ``vector``."""

    def __init__(self, encoder: Any) -> None:  # an ObjectRef of the fitted encoder
        self.encoder: TextEncoder = ray.get(encoder)

    def __call__(self, batch: pa.Table) -> dict[str, npt.NDArray[Any]]:
        parts = []
        for row in range(len(batch)):
            shard = shard_arrays(batch, row)
            vectors = self.encoder.encode(shard["text"].tolist())
            rows = shard["start"] + np.arange(len(vectors), dtype=np.int64)
            parts.append({"row": rows, "vector": vectors})
        return concatenated(parts)


class ShardedEncoder(TextEncoder):
    """``encoder`` fitted here, its ``encode`` run over Ray in shards of ``pool.shard_rows``."""

    def __init__(self, encoder: TextEncoder, pool: WorkerPool | None = None) -> None:
        self.encoder = encoder
        self.pool = pool or WorkerPool()

    def fit(self, texts: Sequence[str]) -> None:
        self.encoder.fit(texts)

    def info(self) -> TextEncoderInfo:
        return self.encoder.info()

    def encode(self, texts: Sequence[str]) -> Vectors:
        if len(texts) == 0:
            return self.encoder.encode(texts)
        texts = list(texts)
        shards = shard_dataset(
            shard_row({"text": np.asarray(texts[start:stop], np.str_)}, {"start": start})
            for start, stop in ranges(len(texts), self.pool.shard_rows)
        )
        encoded = shards.map_batches(
            TextShardEncoder,
            batch_size=1,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=self.pool.size(shards.count())),
            num_gpus=self.pool.gpus_per_worker or None,
            fn_constructor_kwargs={"encoder": ray.put(self.encoder)},
        )
        vectors: Vectors | None = None
        for batch in collected(encoded):
            if vectors is None:
                vectors = np.zeros((len(texts), batch["vector"].shape[1]), np.float32)
            vectors[batch["row"]] = batch["vector"]
        assert vectors is not None
        return vectors


def encode_records_ray(
    records: Sequence[ItemKnowledge], encoder: TextEncoder, pool: WorkerPool | None = None
) -> tuple[Vectors, TextEncoderInfo]:
    """:func:`offline.encode.encode_records` with the encoding spread over Ray."""
    return encode_records(records, ShardedEncoder(encoder, pool))
