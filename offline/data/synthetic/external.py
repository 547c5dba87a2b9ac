"""Shoppers of another platform: the synthetic stand-in for what a pretrained LLM has read.

ReaSeq's generator brings world knowledge: behavioural patterns learned from corpora far larger
than one platform's logs. On the synthetic world that knowledge is a log of *other* shoppers,
drawn like the platform's (a primary interest and, usually, a complementary secondary one) but on
a platform whose exposure shows their whole interests: each click is drawn from the whole
catalogue by the shopper's hidden affinity, so secondary kinds appear beside primary ones as
often as the shopper likes them. Nothing here reads the platform's users or their events; only
the catalogue (the products of the world) is shared, and only items launched before the split
time appear, so a generator pretrained on it learns nothing of the evaluation period.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from offline.data.canonical import Behaviours
from offline.data.synthetic.config import DEFAULT_END_TS, SyntheticConfig, Window
from offline.data.synthetic.generate import draw_world, stage_seeds
from offline.data.synthetic.population import draw_users

CHUNK_SHOPPERS = 512  # bounds the [shoppers, items] affinity temporaries
#: How sharply the other platform's clicks follow affinity: well above the click model's
#: ``affinity_weight``, so that a shopper's clicks gather in the primary and secondary kinds
#: instead of spreading over the catalogue (``tests/offline/synthetic`` checks the secondary share).
FOCUS = 20.0
CLICK_EVENT = 1  # the event code of a click, as the platform's log writes it (generate.py)


def external_shoppers(
    config: SyntheticConfig,
    n_shoppers: int,
    clicks_per_shopper: int = 24,
    end_ts: int = DEFAULT_END_TS,
    focus: float = FOCUS,
) -> Behaviours:
    """Clicks of ``n_shoppers`` shoppers of another platform (user indices ``0..n_shoppers-1``,
    their own, not the platform's), ``clicks_per_shopper`` distinct items each, in random order,
    timed before the split time."""
    if n_shoppers < 1 or clicks_per_shopper < 1:
        raise ValueError("n_shoppers and clicks_per_shopper must be at least 1")
    window = Window.of(config, end_ts)
    world, _, items = draw_world(config, window)
    seeds = stage_seeds(config)
    shoppers = draw_users(
        replace(config, n_users=n_shoppers), world, items, np.random.default_rng(seeds[6])
    )
    live = np.flatnonzero(items.launch_ts < window.split)
    take = min(clicks_per_shopper, len(live))
    rng = np.random.default_rng(seeds[7])
    chosen = np.empty((n_shoppers, take), np.int64)
    for first in range(0, n_shoppers, CHUNK_SHOPPERS):
        rows = slice(first, first + CHUNK_SHOPPERS)
        affinity = shoppers.latent[rows] @ items.latent[live].T
        # Gumbel top-k: ``take`` distinct items drawn without replacement, by softmax(focus *
        # affinity).
        keys = focus * affinity + rng.gumbel(size=affinity.shape)
        top = np.argpartition(-keys, take - 1, axis=1)[:, :take]
        chosen[rows] = live[rng.permuted(top, axis=1)]
    user = np.repeat(np.arange(n_shoppers, dtype=np.int32), take)
    ts = window.start + np.tile(np.arange(take, dtype=np.int64), n_shoppers)
    return Behaviours(
        user_idx=user,
        item_idx=chosen.reshape(-1).astype(np.int32),
        ts=ts,
        event=np.full(len(user), CLICK_EVENT, np.int8),
    )
