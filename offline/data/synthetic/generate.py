"""Assemble a synthetic dataset: catalogue, shoppers, page views, clicks and what follows them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from offline.data.canonical import Behaviours, Catalogue, Dataset, Impressions
from offline.data.synthetic.catalogue import Items, draw_catalogue
from offline.data.synthetic.config import DEFAULT_END_TS, GENERATOR_VERSION, SyntheticConfig, Window
from offline.data.synthetic.exposure import draw_exposure
from offline.data.synthetic.latent import Floats, HiddenWorld, Ints
from offline.data.synthetic.population import co_interests, draw_requests, draw_users


@dataclass(frozen=True)
class GroundTruth:
    """The hidden world behind a dataset, for judging what a model recovered. Never a feature."""

    leaf_paths: npt.NDArray[np.str_]  # category path of each leaf index
    item_leaf: Ints
    item_latent: Floats  # [n_items, latent_dim], unit rows
    user_primary_leaf: Ints
    user_secondary_leaf: Ints  # the interest exposure rarely shows
    user_latent: Floats  # [n_users, latent_dim], unit rows
    click_bias: float  # c, calibrated to the target click-through rate
    item_department: Ints  # department index of each item
    user_department: Ints  # department of each user's primary interest (what exposure serves)
    #: Per kind, the kind the world's co-interest pattern gives its shoppers' secondary interest
    #: (``co_interest`` worlds; most of a kind's shoppers follow it); -1 in a world without one.
    co_interest_leaf: Ints

    @property
    def kind_department(self) -> Ints:
        """Per leaf kind, the department of its items; -1 for a kind the catalogue has none of."""
        department = np.full(len(self.leaf_paths), -1, np.int64)
        department[self.item_leaf] = self.item_department
        return department


def generate(config: SyntheticConfig, end_ts: int = DEFAULT_END_TS) -> Dataset:
    """The dataset for ``config``; the same config (seed included) and end give the same arrays."""
    return generate_with_truth(config, end_ts)[0]


def generate_with_truth(
    config: SyntheticConfig, end_ts: int = DEFAULT_END_TS
) -> tuple[Dataset, GroundTruth]:
    """The dataset and the hidden world it was drawn from."""
    window = Window.of(config, end_ts)
    seeds = stage_seeds(config)
    world, catalogue, items = draw_world(config, window)
    users = draw_users(config, world, items, np.random.default_rng(seeds[2]))
    requests = draw_requests(config, window, np.random.default_rng(seeds[3]))
    shown, affinity = draw_exposure(config, items, users, requests, seeds[4], world)
    logit = _click_logits(config, items, shown, affinity)
    click_bias = _calibrate_bias(logit, config.target_ctr)
    rng = np.random.default_rng(seeds[5])
    clicked = (rng.random(logit.shape) < _sigmoid(logit + click_bias)).astype(np.int8)
    k = config.impressions_per_request
    impressions = Impressions(
        request_ids=np.repeat(np.arange(len(requests.user), dtype=np.int64), k),
        user_idx=np.repeat(requests.user, k).astype(np.int32),
        item_idx=shown.reshape(-1).astype(np.int32),
        ts=np.repeat(requests.ts, k),
        clicked=clicked.reshape(-1),
    )
    behaviours = _behaviours(config, impressions, affinity.reshape(-1), window.end, rng)
    dataset = Dataset(
        catalogue=catalogue,
        user_ids=np.char.add("u", np.arange(config.n_users).astype(str)),
        impressions=impressions,
        behaviours=behaviours,
        split_ts=window.split,
        meta=_summary(config, catalogue, impressions, behaviours, window)
        | {"click_bias": round(click_bias, 4)},
    )
    truth = GroundTruth(
        leaf_paths=world.leaf_paths,
        item_leaf=items.leaf,
        item_latent=items.latent,
        user_primary_leaf=users.primary,
        user_secondary_leaf=users.secondary,
        user_latent=users.latent,
        click_bias=click_bias,
        item_department=items.top,
        user_department=users.area,
        co_interest_leaf=(
            co_interests(world, config.seed)
            if config.co_interest
            else np.full(world.n_leaves, -1, np.int64)
        ),
    )
    return dataset, truth


def stage_seeds(config: SyntheticConfig) -> list[np.random.SeedSequence]:
    """One stream per stage: changing how one stage draws leaves the others' draws as they were.
    Streams 0-5 draw the platform's world and log; 6 and 7 the external corpus
    (:mod:`offline.data.synthetic.external`)."""
    return np.random.SeedSequence(config.seed).spawn(8)


def draw_world(config: SyntheticConfig, window: Window) -> tuple[HiddenWorld, Catalogue, Items]:
    """The hidden world and the catalogue drawn from it (the same for the same config)."""
    seeds = stage_seeds(config)
    world = HiddenWorld(config.latent_dim, np.random.default_rng(seeds[0]))
    catalogue, items = draw_catalogue(config, world, window, np.random.default_rng(seeds[1]))
    return world, catalogue, items


def _sigmoid(x: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def _click_logits(config: SyntheticConfig, items: Items, shown: Ints, affinity: Floats) -> Floats:
    """a * <user, item> + b * log popularity (centred), before the bias c."""
    log_pop = np.log(items.popularity)
    popularity_term = config.popularity_weight * (log_pop - log_pop.mean())[shown]
    return (config.affinity_weight * affinity + popularity_term).astype(np.float32)


def click_probability(
    config: SyntheticConfig, items: Items, truth: GroundTruth, users: Ints, shown: Ints
) -> npt.NDArray[np.float64]:
    """The probability that each user of ``users`` clicks the item of ``shown`` it faces
    (the two broadcast against each other): the function the log's clicks were drawn from,
    ``sigmoid(a * <user, item> + b * log popularity (centred) + c)``, with no position effect
    (the log's pages have none). ``items`` is the world's (:func:`draw_world` redraws it)."""
    users, shown = np.broadcast_arrays(np.asarray(users), np.asarray(shown))
    affinity = np.einsum("...d,...d->...", items.latent[shown], truth.user_latent[users])
    return _sigmoid(_click_logits(config, items, shown, affinity) + truth.click_bias)


def _calibrate_bias(logit: Floats, target_ctr: float, sample: int = 500_000) -> float:
    """The bias c whose expected click-through rate matches the target (bisection on a sample)."""
    flat = logit.reshape(-1)
    flat = flat[:: max(1, len(flat) // sample)]
    low, high = -30.0, 30.0
    for _ in range(50):
        mid = (low + high) / 2
        low, high = (mid, high) if _sigmoid(flat + mid).mean() < target_ctr else (low, mid)
    return (low + high) / 2


def _behaviours(
    config: SyntheticConfig,
    impressions: Impressions,
    affinity: Floats,
    end_ts: int,
    rng: np.random.Generator,
) -> Behaviours:
    """Clicks, plus carts (minutes later, likelier at high affinity) and purchases after carts."""
    hit = np.flatnonzero(impressions.clicked)
    p_cart = np.clip(config.cart_rate * (0.5 + np.clip(affinity[hit], 0, 1)), 0, 1)
    cart = hit[rng.random(len(hit)) < p_cart]
    purchase = cart[rng.random(len(cart)) < config.purchase_rate]
    cart_ts = impressions.ts[cart] + 60 * rng.integers(1, 30, len(cart))
    purchase_ts = cart_ts[np.searchsorted(cart, purchase)] + 60 * rng.integers(
        1, 180, len(purchase)
    )
    rows = np.concatenate([hit, cart, purchase])
    ts = np.minimum(np.concatenate([impressions.ts[hit], cart_ts, purchase_ts]), end_ts)
    event = np.repeat(np.array([1, 2, 3], dtype=np.int8), [len(hit), len(cart), len(purchase)])
    user = impressions.user_idx[rows]
    order = np.lexsort((event, ts, user))
    return Behaviours(
        user_idx=user[order], item_idx=impressions.item_idx[rows][order], ts=ts[order],
        event=event[order],
    )  # fmt: skip


def _summary(
    config: SyntheticConfig,
    catalogue: Catalogue,
    impressions: Impressions,
    behaviours: Behaviours,
    window: Window,
) -> dict[str, Any]:
    """Config and headline counts, JSON-serialisable, stored in ``Dataset.meta``."""
    train = impressions.ts < window.split
    clicked = impressions.clicked.astype(np.float64)
    counts = np.bincount(behaviours.event, minlength=4)
    return {
        "generator": "synthetic",
        "generator_version": GENERATOR_VERSION,
        "config": {**asdict(config), "exposure_mix": list(config.exposure_mix)},
        "start_ts": window.start,
        "end_ts": window.end,
        "n_items": len(catalogue),
        "n_cold_items": int((catalogue.launch_ts >= window.split).sum()),
        "n_users": config.n_users,
        "n_requests": len(impressions) // config.impressions_per_request,
        "n_impressions": len(impressions),
        "n_clicks": int(counts[1]),
        "n_carts": int(counts[2]),
        "n_purchases": int(counts[3]),
        "ctr": round(float(clicked.mean()), 5),
        "ctr_train": round(float(clicked[train].mean()) if train.any() else 0.0, 5),
        "ctr_eval": round(float(clicked[~train].mean()) if (~train).any() else 0.0, 5),
    }
