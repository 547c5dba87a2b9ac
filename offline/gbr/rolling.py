"""Beyond-log recall rolled through a period: an evaluation point at every new click.

:func:`offline.gbr.evaluate.evaluate_generator` judges each user once, from their history at
the split, against everything they click after it. On a public log whose last period few users
are active in, that is a handful of users, and it is not how blocks are served either: the
ranker's block of a request is generated from the user's items before that request. So here
every click in the period on an item new to the user is a point, once per history length:

* the **history** is every distinct item the user engaged before it, earlier clicks of the
  period included (what the nearline job would have read);
* the **targets** are the user's next ``horizon`` new clicked items of the period, from that
  point on (itself first).

Users without any history before a point have no point there. The generator's weights and the
baselines' statistics (co-occurrence, popularity) stay those of the events before the split.
Recall@K is averaged over a user's points, then over users, so a user with hundreds of ratings
weighs what a user with three does; each generator is compared with co-occurrence user by user
(:func:`offline.gbr.evaluate.paired_gap`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from offline.data.canonical import Dataset
from offline.gbr import baselines
from offline.gbr.beyond import beyond_fill, generate_blocks
from offline.gbr.checkpoint import GBRModel
from offline.gbr.evaluate import CLICK, Window, paired_gap, user_recall
from offline.gbr.generate import GenerationConfig
from offline.gbr.sequences import BehaviourSequences, behaviour_sequences

Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class RollingPoints:
    """Point ``p``: user ``users[p]`` with the first ``lengths[p]`` items of their sequence as
    history, and ``targets[p]`` the new clicks to find."""

    users: Ints
    lengths: Ints
    targets: list[set[int]]

    def __len__(self) -> int:
        return len(self.users)


def rolling_points(
    dataset: Dataset, sequences: BehaviourSequences, window: Window, horizon: int
) -> RollingPoints:
    """Every (user, history length) before a new click in ``window``, with the next
    ``horizon`` new clicked items from there; ``sequences`` hold every user's whole log."""
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")
    beh = dataset.behaviours
    start, end = window
    clicked = (beh.event == CLICK) & (beh.ts >= start)
    if end is not None:
        clicked &= beh.ts < end
    clicks = set(zip(beh.user_idx[clicked].tolist(), beh.item_idx[clicked].tolist(), strict=True))
    users: list[int] = []
    lengths: list[int] = []
    targets: list[set[int]] = []
    in_window = sequences.ts >= start
    if end is not None:
        in_window &= sequences.ts < end
    for user in range(sequences.n_users):
        first, last = int(sequences.offsets[user]), int(sequences.offsets[user + 1])
        items, times = sequences.items[first:last], sequences.ts[first:last]
        # Positions whose first engagement is a click in the window: new clicked items.
        new = [
            position
            for position in np.flatnonzero(in_window[first:last]).tolist()
            if (user, int(items[position])) in clicks
        ]
        if not new:
            continue
        # A point's history is every item engaged strictly before the click's time (a user's
        # sequence is in time order).
        before = np.searchsorted(times, times[new], side="left")
        for length in sorted(set(before.tolist())):
            if length < 1:
                continue
            ahead = [position for position in new if position >= length][:horizon]
            users.append(user)
            lengths.append(length)
            targets.append({int(items[position]) for position in ahead})
    return RollingPoints(np.asarray(users, np.int64), np.asarray(lengths, np.int64), targets)


def per_user_mean(values: npt.NDArray[np.floating], users: Ints) -> npt.NDArray[np.float64]:
    """The mean of ``values`` over each user's points, one figure per user in user order."""
    _, owner, counts = np.unique(users, return_inverse=True, return_counts=True)
    return np.bincount(owner, weights=values, minlength=len(counts)) / counts


def rolling_recall(
    model: GBRModel,
    dataset: Dataset,
    generation: GenerationConfig,
    groups: Ints | None,
    window: Window,
    *,
    horizon: int | None = None,
) -> dict[str, Any]:
    """Recall@K of the generator's blocks as ``generation`` makes them (``gbr_world``) and
    greedy alone (``gbr``: no beyond-log slots, no blending), of co-occurrence and
    popularity, rolled through ``window`` (targets: the next ``horizon`` new clicks, default
    K); with each generator's paired gap to co-occurrence, as a JSON-ready dict."""
    _check_period(model, dataset, window)
    k, n_items = generation.k, model.n_items
    n_users = len(dataset.user_ids)
    whole = behaviour_sequences(dataset.behaviours, n_users)
    fit = behaviour_sequences(dataset.behaviours, n_users, dataset.split_ts)
    points = rolling_points(dataset, whole, window, horizon or k)
    users, lengths = points.users, points.lengths
    plain = replace(generation, beyond_slots=0, log_weight=0.0)
    greedy = generate_blocks(model, whole, users, lengths, plain, None)
    methods = {"gbr": greedy.item_idx}
    if (generation.beyond_slots and groups is not None) or generation.log_weight > 0:
        served = generate_blocks(model, whole, users, lengths, generation, groups)
        methods["gbr_world"] = served.item_idx
    else:
        methods["gbr_world"] = greedy.item_idx
    methods["cooccurrence"] = baselines.cooccurrence(whole, users, k, n_items, lengths, fit)
    methods["popularity"] = baselines.popularity(whole, users, k, n_items, lengths, fit)
    per_point = {name: user_recall(items, points.targets) for name, items in methods.items()}
    per_user = {name: per_user_mean(recall, users) for name, recall in per_point.items()}
    hits = {
        name: per_user_mean((recall > 0).astype(np.float64), users)
        for name, recall in per_point.items()
    }
    return {
        "points": len(points),
        "users": len(np.unique(users)),
        "horizon": horizon or k,
        "k": k,
        "recall": {name: _mean(values) for name, values in per_user.items()},
        "hit_rate": {name: _mean(values) for name, values in hits.items()},
        "versus_cooccurrence": {
            name: paired_gap(per_user[name], per_user["cooccurrence"])
            for name in ("gbr_world", "gbr")
        },
    }


def choose_blend(
    model: GBRModel,
    dataset: Dataset,
    generation: GenerationConfig,
    groups: Ints | None,
    weights: Sequence[float],
    slot_choices: Sequence[int],
    window: Window,
) -> tuple[GenerationConfig, dict[str, float]]:
    """``generation`` with the co-occurrence weight (:mod:`offline.gbr.fusion`) and beyond-log
    slot count whose blocks recall the most, rolled through ``window`` (a validation period),
    and each pair's recall, keyed ``"weight/slots"``; a tie goes to the smaller weight, then the
    fewer slots. Weights above 0 need an item-token generator that kept its training logs."""
    _check_period(model, dataset, window)
    model.check_catalogue(dataset.catalogue.item_ids)
    whole = behaviour_sequences(dataset.behaviours, len(dataset.user_ids))
    points = rolling_points(dataset, whole, window, generation.k)
    if not len(points):
        raise ValueError("the validation window holds no new click of a user with history")
    recall: dict[tuple[float, int], float] = {}
    users, lengths = points.users, points.lengths
    for weight in sorted(set(weights)):
        config = replace(generation, log_weight=weight, beyond_slots=0)
        base = generate_blocks(model, whole, users, lengths, config, None)
        for slots in sorted(set(slot_choices)) if groups is not None else [0]:
            block = base
            if slots and groups is not None:  # as generate_blocks fills them, on one base
                block = beyond_fill(
                    model, whole, users, lengths, base, groups, slots=slots,
                    batch_size=config.batch_size, lift=config.beyond_lift,
                )  # fmt: skip
            per_user = per_user_mean(user_recall(block.item_idx, points.targets), users)
            recall[(weight, slots)] = _mean(per_user)
    weight, slots = max(recall, key=lambda pair: (recall[pair], -pair[0], -pair[1]))
    chosen = replace(generation, log_weight=weight, beyond_slots=slots)
    return chosen, {f"{w:g}/{n}": value for (w, n), value in recall.items()}


def _check_period(model: GBRModel, dataset: Dataset, window: Window) -> None:
    """Refuse a generator trained past the split, or a window that starts before it."""
    if model.until_ts is None or model.until_ts > dataset.split_ts:
        raise ValueError(
            f"GBR {model.version} trained on events up to {model.until_ts}; rolling it through "
            f"a later period needs a model trained before the split ({dataset.split_ts})"
        )
    if window[0] < dataset.split_ts:
        raise ValueError(f"the window must start at or after the split ({dataset.split_ts})")


def _mean(values: npt.NDArray[np.float64]) -> float:
    return round(float(values.mean()), 4) if len(values) else 0.0
