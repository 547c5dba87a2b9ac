"""Blocks that blend the generator with the co-occurrence of its own training logs.

The generator and item-to-item co-occurrence find different new items. A diffusion model over
sequences ranks what follows a history as a whole (its order, the world corpus it pretrained on);
co-occurrence sums what the platform's users engaged alongside each history item. On real logs
the two recall about as many of a user's next new clicks, and their errors differ, so a blend of
the two recalls more than either: the weight of co-occurrence is a generation setting
(:attr:`offline.gbr.generate.GenerationConfig.log_weight`), chosen on a validation period.

The co-occurrence statistics are the generator's own training logs, saved in its checkpoint
(:class:`offline.gbr.log_prior.LogPrior`): the same events as its weights, so a blended block
never sees an event the generator could not (nothing after its ``until_ts``, none of a held-out
fold's users).

A blended block is one forward pass: each item's probability at an open slot
(:func:`offline.gbr.complements.slot_probabilities`) and its co-occurrence score, each divided by
its row's largest, mixed ``(1 - w) * generator + w * co-occurrence``; the block is the top K
items outside the history, best first, each with the generator's probability as its confidence.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from offline.gbr.checkpoint import GBRModel
from offline.gbr.complements import slot_probabilities
from offline.gbr.generate import GeneratedItems, GenerationConfig
from offline.gbr.sequences import BehaviourSequences

Ints = npt.NDArray[np.int64]


def blended_scores(
    probabilities: npt.NDArray[np.floating],
    cooccurrence: npt.NDArray[np.floating],
    weight: float,
) -> npt.NDArray[np.float64]:
    """``(1 - weight) * p + weight * c``, each row of each divided by its largest value."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"the co-occurrence weight must lie in [0, 1], got {weight}")
    return (1.0 - weight) * _row_scaled(probabilities) + weight * _row_scaled(cooccurrence)


def blended_blocks(
    model: GBRModel,
    sequences: BehaviourSequences,
    users: Ints,
    lengths: Ints,
    config: GenerationConfig,
) -> GeneratedItems:
    """Blocks of ``config.k`` items per (user, first ``lengths`` items), blended with weight
    ``config.log_weight``, in batches of ``config.batch_size``. Item tokens only."""
    if model.layout.kind != "items":
        raise ValueError("blended blocks need an item-token generator")
    if model.log_prior is None:
        raise ValueError(
            f"GBR {model.version} keeps no training logs to blend with; retrain it, or "
            "generate with log_weight 0"
        )
    users, lengths = np.asarray(users, np.int64), np.asarray(lengths, np.int64)
    k = config.k
    if k > model.n_items:
        raise ValueError(f"k={k} exceeds the catalogue's {model.n_items} items")
    items = np.full((len(users), k), -1, np.int64)
    confidence = np.zeros((len(users), k), np.float32)
    width = model.config.window_items - k
    for first in range(0, len(users), config.batch_size):
        rows = slice(first, first + config.batch_size)
        windows = sequences.windows(users[rows], lengths[rows], width)
        probabilities = slot_probabilities(model, windows, k)
        histories = sequences.histories(users[rows], lengths[rows])
        score = blended_scores(probabilities, model.log_prior.scores(histories), config.log_weight)
        taken_rows, taken_cols = np.nonzero(histories >= 0)
        score[taken_rows, histories[taken_rows, taken_cols]] = -np.inf
        top = np.argpartition(-score, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(score, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        free = np.isfinite(np.take_along_axis(score, top, axis=1))
        items[rows] = np.where(free, top, -1)
        chosen = np.take_along_axis(probabilities, top, axis=1)
        confidence[rows] = np.where(free, chosen, 0.0)
    return GeneratedItems(items, confidence)


def _row_scaled(values: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    values = np.asarray(values, np.float64)
    top = values.max(axis=1, keepdims=True, initial=0.0)
    return values / np.where(top > 0, top, 1.0)
