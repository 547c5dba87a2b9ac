"""Generated blocks for the ranker's training examples, from each example's past only.

A training request at time ``t`` gets the block GBR generates from the user's items first engaged
strictly before ``t``, i.e. the first ``n`` items of the user's sequence
(:class:`offline.gbr.sequences.BehaviourSequences`). Many requests of one user share ``n``, so
each distinct (user, n) is generated once. With ``stride > 1`` a request uses the block of the
largest history length ``h <= n`` on a grid (every length below ``stride``, then multiples of
``stride``): fewer generations, a block that may lag a few items behind, never one that saw
anything at or after ``t``, since ``h <= n``.

Weights can leak where inputs cannot: a generator trained on a user's whole training period has
seen what the user did after an early request. :class:`UserFolds` cross-fits: each user's blocks
come from a model trained on the other users only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from offline.data.canonical import Dataset
from offline.gbr.beyond import generate_blocks
from offline.gbr.checkpoint import GBRModel
from offline.gbr.generate import GenerationConfig
from offline.gbr.sequences import behaviour_sequences
from offline.gbr.train import GBRTrainConfig, train_gbr

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float32]


@dataclass(frozen=True)
class UserFolds:
    """Cross-fitted generators: ``models[f]`` never trained on a user with ``fold_of_user == f``."""

    models: list[GBRModel]
    fold_of_user: Ints  # [n_users]


def train_user_folds(
    dataset: Dataset,
    semantic_vectors: Floats,
    config: GBRTrainConfig,
    *,
    folds: int = 2,
    until_ts: int | None = None,
    progress: bool = False,
) -> UserFolds:
    """One generator per fold of users, each trained on every other fold (seeded split)."""
    n_users = len(dataset.user_ids)
    fold_of_user = np.random.default_rng(config.seed).integers(0, folds, n_users).astype(np.int64)
    models = [
        train_gbr(
            dataset,
            semantic_vectors,
            config,
            until_ts=until_ts,
            users=np.flatnonzero(fold_of_user != fold),
            progress=progress,
        )
        for fold in range(folds)
    ]
    return UserFolds(models=models, fold_of_user=fold_of_user)


def checkpoint_lengths(lengths: Ints, stride: int) -> Ints:
    """The history length whose block a request with ``lengths`` prior items uses (``<=``)."""
    lengths = np.asarray(lengths, np.int64)
    if stride <= 1:
        return lengths
    return np.where(lengths < stride, lengths, lengths - lengths % stride)


def generated_blocks_for_examples(
    model: GBRModel | UserFolds,
    dataset: Dataset,
    request_user_idx: Ints,
    request_ts: Ints,
    k: int,
    *,
    generation: GenerationConfig | None = None,
    stride: int = 1,
    min_history: int = 1,
    progress: bool = False,
    groups: Ints | None = None,
) -> tuple[Ints, Floats]:
    """Catalogue rows ``[n, k]`` (-1 = padding) and confidences ``[n, k]`` of each request's
    block, generated from the user's events strictly before ``request_ts``; with ``groups``
    (each item's department), ``generation.beyond_slots`` go beyond the history's department.

    Requests whose user has fewer than ``min_history`` prior items get an all-padding block.
    """
    users = np.asarray(request_user_idx, np.int64)
    ts = np.asarray(request_ts, np.int64)
    config = GenerationConfig(k=k) if generation is None else generation
    if config.k != k:
        raise ValueError(f"generation.k={config.k} but k={k}")
    sequences = behaviour_sequences(dataset.behaviours, len(dataset.user_ids))
    lengths = checkpoint_lengths(sequences.length_before(users, ts), stride)
    items = np.full((len(users), k), -1, np.int64)
    confidence = np.zeros((len(users), k), np.float32)
    wanted = np.flatnonzero(lengths >= max(1, min_history))
    pairs, inverse = np.unique(
        np.stack([users[wanted], lengths[wanted]], axis=1), axis=0, return_inverse=True
    )
    inverse = inverse.reshape(-1)
    folds = _as_folds(model, len(dataset.user_ids))
    pair_items = np.full((len(pairs), k), -1, np.int64)
    pair_confidence = np.zeros((len(pairs), k), np.float32)
    for fold, fold_model in enumerate(folds.models):
        fold_model.check_catalogue(dataset.catalogue.item_ids)
        mine = np.flatnonzero(folds.fold_of_user[pairs[:, 0]] == fold)
        if len(mine) == 0:
            continue
        block = generate_blocks(
            fold_model, sequences, pairs[mine, 0], pairs[mine, 1], config, groups,
            progress=progress,
        )  # fmt: skip
        pair_items[mine], pair_confidence[mine] = block.item_idx, block.confidence
    items[wanted] = pair_items[inverse]
    confidence[wanted] = pair_confidence[inverse]
    return items, confidence


def _as_folds(model: GBRModel | UserFolds, n_users: int) -> UserFolds:
    if isinstance(model, UserFolds):
        return model
    return UserFolds(models=[model], fold_of_user=np.zeros(n_users, np.int64))
