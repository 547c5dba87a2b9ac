"""How well generated behaviours reach beyond the log, how coherent they are, what they cost.

* **Beyond-log recall@K**: the generator sees each user's events before the dataset's split
  time; the targets are the items the user clicks after it that were not already in their
  history (every method excludes history items, so repeats would be unreachable for all).
  Recall is the share of a user's targets among the K items, averaged over users; the hit rate
  is the share of users with at least one target among them. A generator is compared with
  co-occurrence user by user: the mean of the paired differences with a 95% bootstrap interval
  over the users, so a gap on a few dozen users reads with its noise.
* **Semantic consistency**: the mean cosine similarity between generated items and the user's
  history items in the semantic space (for unit vectors, the dot product of the two means).
* **Hidden-interest share** (synthetic data only, with its ground truth): the share of generated
  items in the user's hidden secondary interest, which exposure rarely shows; and how visible
  that interest is at all: in the training-period histories, and among the knowledge
  complements of those histories (:mod:`offline.gbr.complements`).
* **Cost**: users generated per second for a few (K, S) on this machine.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from offline.data.canonical import Dataset
from offline.data.synthetic import GroundTruth
from offline.experiments.bootstrap import UserSums, interval, replicate_ratios
from offline.gbr import baselines
from offline.gbr.beyond import generate_blocks, main_group
from offline.gbr.checkpoint import GBRModel
from offline.gbr.complements import KindComplements, complement_fill
from offline.gbr.generate import GenerationConfig, generate_for_users
from offline.gbr.sequences import BehaviourSequences, behaviour_sequences

Ints = npt.NDArray[np.int64]
#: A period of target clicks: from its start (inclusive) to its end (exclusive; ``None``: on).
Window = tuple[float, float | None]
CLICK = 1
DEFAULT_COST_GRID: tuple[tuple[int, int], ...] = ((8, 2), (16, 4), (16, 8), (32, 8))


def future_targets(
    dataset: Dataset, history: BehaviourSequences, window: Window | None = None
) -> tuple[Ints, list[set[int]]]:
    """Users with history and new clicks after the split, and each one's set of new clicks;
    with ``window`` (start, end or ``None``), only the clicks from its start and before its end."""
    beh = dataset.behaviours
    start, end = window or (dataset.split_ts, None)
    after = (beh.ts >= start) & (beh.event == CLICK)
    if end is not None:
        after &= beh.ts < end
    targets: list[set[int]] = [set() for _ in range(history.n_users)]
    for user, item in zip(beh.user_idx[after].tolist(), beh.item_idx[after].tolist(), strict=True):
        targets[user].add(item)
    lengths = history.lengths()
    users = []
    for user in range(history.n_users):
        targets[user] -= set(history.of(user).tolist())
        if lengths[user] > 0 and targets[user]:
            users.append(user)
    chosen = np.asarray(users, np.int64)
    return chosen, [targets[user] for user in chosen.tolist()]


def user_recall(generated: Ints, targets: list[set[int]]) -> npt.NDArray[np.float64]:
    """Each user's recall@K: the share of their targets ``generated [U, K]`` holds."""
    return np.asarray(
        [
            len(set(row[row >= 0].tolist()) & goal) / max(len(goal), 1)
            for row, goal in zip(generated, targets, strict=True)
        ],
        np.float64,
    )


def recall_and_hits(generated: Ints, targets: list[set[int]]) -> tuple[float, float]:
    """Mean recall@K and hit rate of ``generated [U, K]`` against each user's target set."""
    return _mean_recall_and_hits(user_recall(generated, targets))


def _mean_recall_and_hits(recall: npt.NDArray[np.float64]) -> tuple[float, float]:
    if len(recall) == 0:
        return 0.0, 0.0
    return float(recall.mean()), float(np.mean(recall > 0))


def paired_gap(
    first: npt.NDArray[np.floating],
    second: npt.NDArray[np.floating],
    *,
    draws: int = 2000,
    seed: int = 0,
) -> dict[str, float | int]:
    """``first - second`` over the same users: the mean difference and its 95% interval from
    ``draws`` bootstrap resamples of the users (:mod:`offline.experiments.bootstrap`), with how
    many users there were."""
    difference = np.asarray(first, np.float64) - np.asarray(second, np.float64)
    if difference.ndim != 1:
        raise ValueError("paired figures must be one value per user")
    if len(difference) == 0:
        return {"mean": 0.0, "low": 0.0, "high": 0.0, "users": 0}
    per_user = UserSums(difference[:, None], np.ones((len(difference), 1)))
    samples = replicate_ratios(per_user, draws, np.random.default_rng(seed))[:, 0]
    gap = interval(float(difference.mean()), samples)
    return {
        "mean": round(gap.value, 4),
        "low": round(gap.low, 4),
        "high": round(gap.high, 4),
        "users": len(difference),
    }


def semantic_consistency(
    generated: Ints, users: Ints, history: BehaviourSequences, semantic: npt.NDArray[np.float32]
) -> float:
    """Mean cosine similarity of generated items to the user's history items."""
    scores = []
    for row, user in zip(generated, users.tolist(), strict=True):
        picked = row[row >= 0]
        past = history.of(user)
        if len(picked) and len(past):
            scores.append(float(semantic[picked].mean(axis=0) @ semantic[past].mean(axis=0)))
    return float(np.mean(scores)) if scores else 0.0


def interest_share(generated: Ints, users: Ints, truth: GroundTruth) -> float:
    """Share of generated items whose leaf is the user's hidden secondary interest."""
    valid = generated >= 0
    leaves = truth.item_leaf[np.where(valid, generated, 0)]
    secondary = truth.user_secondary_leaf[users][:, None]
    return float(((leaves == secondary) & valid).sum() / max(1, valid.sum()))


def secondary_visibility(
    history: BehaviourSequences,
    users: Ints,
    truth: GroundTruth,
    complements: KindComplements | None = None,
) -> dict[str, float]:
    """How much of each user's secondary interest the generator could see: the share of history
    items in it against its share of the catalogue (chance), the share of users with any, how
    often the history's most frequent kind is the user's primary kind (what any pattern from the
    primary to the secondary kind starts from) and, given the knowledge complements, how often
    the history's top (top three) cross-department complement kinds are the secondary
    interest."""
    owner = np.repeat(np.arange(history.n_users), history.lengths())
    in_secondary = truth.item_leaf[history.items] == truth.user_secondary_leaf[owner]
    with_any = np.zeros(history.n_users, bool)
    with_any[owner[in_secondary]] = True
    leaf_share = np.bincount(truth.item_leaf, minlength=len(truth.leaf_paths)) / len(
        truth.item_leaf
    )
    main_kind = main_group(history.histories(users, history.lengths()[users]), truth.item_leaf)
    found = {
        "history_share": float(in_secondary.mean()) if len(in_secondary) else 0.0,
        "catalogue_share": float(leaf_share[truth.user_secondary_leaf[users]].mean()),
        "users_with_any": float(with_any[users].mean()),
        "primary_main_kind": float(np.mean(main_kind == truth.user_primary_leaf[users])),
    }
    if complements is not None:
        kind_leaf = np.full(complements.n_kinds, -1, np.int64)
        kind_leaf[complements.item_kind] = truth.item_leaf
        ranks = []
        for user in users.tolist():
            leaves = kind_leaf[complements.ranked_kinds(history.of(user), 3)].tolist()
            secondary = int(truth.user_secondary_leaf[user])
            ranks.append(leaves.index(secondary) if secondary in leaves else 3)
        found["complement_top1"] = float(np.mean([r == 0 for r in ranks]))
        found["complement_top3"] = float(np.mean([r < 3 for r in ranks]))
    return {key: round(value, 4) for key, value in found.items()}


def generation_cost(
    model: GBRModel,
    history: BehaviourSequences,
    users: Ints,
    grid: Sequence[tuple[int, int]],
    base: GenerationConfig,
) -> list[dict[str, float]]:
    """Users per second for each (K, S), on ``users``."""
    rows = []
    for k, steps in grid:
        if k > model.config.max_slots:
            continue
        config = GenerationConfig(
            k=k, steps=steps, temperature=base.temperature, top_p=base.top_p,
            seed=base.seed, batch_size=base.batch_size,
        )  # fmt: skip
        started = time.perf_counter()
        generate_for_users(model, history, users, config)
        seconds = time.perf_counter() - started
        rows.append({"k": k, "steps": steps, "users_per_s": round(len(users) / seconds, 1)})
    return rows


def evaluate_generator(
    model: GBRModel,
    dataset: Dataset,
    *,
    generation: GenerationConfig | None = None,
    truth: GroundTruth | None = None,
    cost_grid: Sequence[tuple[int, int]] = DEFAULT_COST_GRID,
    cost_users: int = 500,
    complements: KindComplements | None = None,
    complement_slots: int = 4,
    others: dict[str, GBRModel] | None = None,
    others_generation: GenerationConfig | None = None,
    groups: Ints | None = None,
    window: Window | None = None,
) -> dict[str, Any]:
    """GBR against the baselines on the dataset's time split (the target clicks in ``window``,
    default: all after the split), as a JSON-ready dict; with
    ``complements``, also GBR whose last ``complement_slots`` slots go to knowledge complements
    (``gbr_complements``); ``others`` are more generators, each a method under its name,
    generated for the same users with ``others_generation`` (default: ``generation``), whose
    beyond-log slots use ``groups`` (each item's department)."""
    if model.until_ts is None or model.until_ts > dataset.split_ts:
        raise ValueError(
            f"GBR {model.version} trained on events up to {model.until_ts}; evaluating it needs "
            f"a model trained before the split ({dataset.split_ts}) or it has seen the targets"
        )
    model.check_catalogue(dataset.catalogue.item_ids)
    config = generation or GenerationConfig()
    k, n_items, semantic = config.k, model.n_items, model.semantic_vectors
    history = behaviour_sequences(dataset.behaviours, len(dataset.user_ids), dataset.split_ts)
    users, targets = future_targets(dataset, history, window)
    started = time.perf_counter()
    # Blended with the training logs when the config says so; beyond-log slots only for
    # ``others`` (no groups here), so that ``gbr`` stays the generator's own block.
    block = generate_blocks(model, history, users, history.lengths()[users], config, None)
    seconds = time.perf_counter() - started
    generated = block.item_idx
    methods = {
        "gbr": generated,
        "popularity": baselines.popularity(history, users, k, n_items),
        "cooccurrence": baselines.cooccurrence(history, users, k, n_items),
        "semantic_nn": baselines.semantic_neighbours(history, users, k, semantic),
        "random": baselines.random_items(history, users, k, n_items, seed=config.seed),
    }
    for name, other in (others or {}).items():
        if other.until_ts is None or other.until_ts > dataset.split_ts:
            raise ValueError(f"generator {name} was not trained before the split")
        lengths = history.lengths()[users]
        other_config = others_generation or config
        methods[name] = generate_blocks(
            other, history, users, lengths, other_config, groups
        ).item_idx
    if complements is not None and model.layout.kind == "items":
        methods["gbr_complements"] = complement_fill(
            model, history, users, block, complements, slots=min(complement_slots, k)
        ).item_idx
    per_user = {name: user_recall(items, targets) for name, items in methods.items()}
    scores = {name: _mean_recall_and_hits(recall) for name, recall in per_user.items()}
    gaps = {
        name: paired_gap(recall, per_user["cooccurrence"])
        for name, recall in per_user.items()
        if name.startswith("gbr")
    }
    report: dict[str, Any] = {
        "gbr_version": model.version,
        "tokens": model.layout.kind,
        "k": k,
        "steps": config.steps,
        "temperature": config.temperature,
        "top_p": config.top_p,
        "log_weight": config.log_weight,
        "users": len(users),
        "recall": {name: round(s[0], 4) for name, s in scores.items()},
        "hit_rate": {name: round(s[1], 4) for name, s in scores.items()},
        "versus_cooccurrence": gaps,
        "semantic_consistency": {
            name: round(semantic_consistency(items, users, history, semantic), 4)
            for name, items in methods.items()
        },
        "generation_seconds": round(seconds, 2),
        "train_seconds": model.train_info.get("train_seconds"),
    }
    if truth is not None:
        report["secondary_interest_share"] = {
            name: round(interest_share(items, users, truth), 4) for name, items in methods.items()
        }
        report["secondary_visibility"] = secondary_visibility(history, users, truth, complements)
    if cost_users > 0 and cost_grid:
        sample = users[:cost_users]
        report["cost"] = generation_cost(model, history, sample, cost_grid, config)
    return report
