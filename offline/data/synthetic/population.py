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

CO_INTEREST_STREAM = 0xC0  # the random stream of a world's co-interest patterns


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
    complement = pick(world.cross_complements, primary, rng)  # drawn either way: same stream
    if config.co_interest:
        complement = co_interests(world, config.seed)[primary]
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


def co_interests(world: HiddenWorld, seed: int) -> Ints:
    """Per leaf kind, the one kind its shoppers' secondary interest takes in a world with
    co-interest patterns: one of its cross-department complements, else a kind of another
    department. Drawn from ``seed`` alone, so that every population of one world (the platform's
    users and the other platform's shoppers) follows the same patterns."""
    rng = np.random.default_rng([seed, CO_INTEREST_STREAM])
    named = pick(world.cross_complements, np.arange(world.n_leaves), rng)
    other = rng.integers(0, world.n_leaves, world.n_leaves)
    same_top = world.leaf_top[other] == world.leaf_top
    while same_top.any():
        other[same_top] = rng.integers(0, world.n_leaves, int(same_top.sum()))
        same_top = world.leaf_top[other] == world.leaf_top
    return np.where(named >= 0, named, other)


def draw_requests(config: SyntheticConfig, window: Window, rng: np.random.Generator) -> Requests:
    """Heavy-tailed activity: log-normal requests per user, at least one each, uniform times."""
    sigma = config.activity_sigma
    raw = rng.lognormal(0.0, sigma, config.n_users) / np.exp(sigma**2 / 2)  # mean 1
    counts = 1 + np.floor((config.mean_requests_per_user - 1) * raw).astype(np.int64)
    user = np.repeat(np.arange(config.n_users, dtype=np.int64), counts)
    ts = rng.integers(window.start, window.end, len(user))
    order = np.lexsort((user, ts))
    return Requests(user[order], ts[order])
