"""Synthetic shoppers: their hidden interests and how often they visit.

A shopper's primary interest is a leaf kind where the catalogue has items; the platform mostly
shows them its department. The secondary interest is, most of the time, a complementary kind in
another department, so the platform's exposure rarely surfaces it while common sense predicts it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offline.data.synthetic.catalogue import Items
from offline.data.synthetic.config import SyntheticConfig, Window
from offline.data.synthetic.latent import Floats, HiddenWorld, Ints, pick, unit
from offline.knowledge.world import PRICE_BANDS, STYLES


@dataclass(frozen=True)
class Users:
    primary: Ints  # leaf index of the interest exposure mostly serves
    area: Ints  # department of the primary interest: where exposure mostly draws from
    secondary: Ints  # leaf index of the interest exposure rarely shows
    latent: Floats  # [n_users, latent_dim], unit rows


@dataclass(frozen=True)
class Requests:
    """Page views, sorted by time, then user."""

    user: Ints
    ts: Ints


def draw_users(
    config: SyntheticConfig, world: HiddenWorld, items: Items, rng: np.random.Generator
) -> Users:
    n = config.n_users
    primary = items.leaf[rng.integers(0, len(items.leaf), n)]  # interests follow the catalogue
    complement = pick(world.cross_complements, primary, rng)
    elsewhere = rng.integers(0, world.n_leaves, n)
    same_top = world.leaf_top[elsewhere] == world.leaf_top[primary]
    elsewhere[same_top] = (elsewhere[same_top] + world.n_leaves // 2) % world.n_leaves
    use_complement = (rng.random(n) < config.secondary_complement_prob) & (complement >= 0)
    secondary = np.where(use_complement, complement, elsewhere)
    style = rng.integers(0, len(STYLES), n)
    audience = pick(world.top_audiences, world.leaf_top[primary], rng)
    band = rng.integers(0, len(PRICE_BANDS), n)
    noise = unit(rng.standard_normal((n, config.latent_dim)))
    latent = unit(
        world.leaf[primary] + config.secondary_weight * world.leaf[secondary]
        + 0.5 * world.style[style] + 0.4 * world.audience[audience] + 0.3 * world.band[band]
        + 0.3 * noise
    )  # fmt: skip
    return Users(primary, world.leaf_top[primary], secondary, latent)


def draw_requests(config: SyntheticConfig, window: Window, rng: np.random.Generator) -> Requests:
    """Heavy-tailed activity: log-normal requests per user, at least one each, uniform times."""
    sigma = config.activity_sigma
    raw = rng.lognormal(0.0, sigma, config.n_users) / np.exp(sigma**2 / 2)  # mean 1
    counts = 1 + np.floor((config.mean_requests_per_user - 1) * raw).astype(np.int64)
    user = np.repeat(np.arange(config.n_users, dtype=np.int64), counts)
    ts = rng.integers(window.start, window.end, len(user))
    order = np.lexsort((user, ts))
    return Requests(user[order], ts[order])
