"""The generated-behaviour log the ranker trains on, from a generator trained before the split.

The generator sees only the events before the dataset's split time, and every request's block is
generated from that user's items first engaged strictly before the request
(:func:`offline.gbr.generated_blocks_for_examples`). Evaluation requests therefore get blocks from
a model that never saw anything at or after them. A training request's block cannot see its own
future either; the weights may have seen later training-period events of the same user, which
``folds > 1`` removes by cross-fitting (each user's blocks from a model trained on the others),
at ``folds`` times the training cost.

The same generator then writes the nearline blocks the service reads, so the ranker serves with
blocks from the generator it was trained with, whose version the bundle records.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from model_export.dataset import GeneratedBlocksLog, example_requests
from offline.data.canonical import Dataset
from offline.gbr import (
    GBRModel,
    GBRTrainConfig,
    GenerationConfig,
    UserFolds,
    generated_blocks_for_examples,
    train_gbr,
    train_user_folds,
)
from offline.gbr.beyond import item_groups

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GeneratorSetup:
    """How the generator behind a ranker's generated blocks is trained and sampled."""

    train: GBRTrainConfig = field(default_factory=lambda: GBRTrainConfig(epochs=2))
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    #: Training examples use the block of a history length on a grid of this step (never a
    #: longer history than the request had): a block per few items instead of one per request.
    stride: int = 4
    #: 1: one generator trained before the split; more: cross-fitted over folds of users.
    folds: int = 1

    @property
    def k(self) -> int:
        return self.generation.k


def train_split_generator(
    dataset: Dataset, semantic_vectors: npt.NDArray[np.float32], setup: GeneratorSetup
) -> GBRModel | UserFolds:
    """The generator(s) trained on the events before ``dataset.split_ts`` only."""
    if setup.folds > 1:
        return train_user_folds(
            dataset, semantic_vectors, setup.train, folds=setup.folds, until_ts=dataset.split_ts
        )
    return train_gbr(dataset, semantic_vectors, setup.train, until_ts=dataset.split_ts)


def generator_version(model: GBRModel | UserFolds) -> str:
    """One name for a generator or a set of cross-fitted ones."""
    if isinstance(model, GBRModel):
        return model.version
    return "+".join(fold.version for fold in model.models)


def generated_log(
    model: GBRModel | UserFolds, dataset: Dataset, setup: GeneratorSetup
) -> GeneratedBlocksLog:
    """One block per request of :func:`example_requests`, from the request's past only."""
    started = time.perf_counter()
    users, ts = example_requests(dataset)
    groups = item_groups(dataset.catalogue) if setup.generation.beyond_slots else None
    items, _ = generated_blocks_for_examples(
        model, dataset, users, ts, setup.k, generation=setup.generation, stride=setup.stride,
        groups=groups,
    )  # fmt: skip
    log.info(
        "generated %d request blocks (K=%d) in %.1f s",
        len(items),
        setup.k,
        time.perf_counter() - started,
    )
    return GeneratedBlocksLog(
        items=items,
        version=generator_version(model),
        beyond_slots=setup.generation.beyond_slots,
        log_weight=setup.generation.log_weight,
    )
