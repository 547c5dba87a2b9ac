"""The world's shoppers facing a ranker: the candidates exposure offers them, and what they click
on a ranked page.

A shopper examines position ``p`` (0 first) of a page with probability ``1 / log2(p + 2)``, the
discount of DCG, and clicks an examined item with the world's own probability
(:func:`~offline.data.synthetic.generate.click_probability`). So a ranker that puts the items the
shopper likes first earns more clicks, as it would online; the log's unranked pages have no
position effect.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from offline.data.synthetic.catalogue import Items
from offline.data.synthetic.config import DEFAULT_END_TS, SyntheticConfig, Window
from offline.data.synthetic.exposure import ExposureSampler
from offline.data.synthetic.generate import GroundTruth, click_probability, draw_world
from offline.data.synthetic.latent import Ints

Float64s = npt.NDArray[np.float64]


def examination(positions: npt.ArrayLike) -> Float64s:
    """The probability that a shopper looks at position ``p`` (0 first): ``1 / log2(p + 2)``."""
    return 1.0 / np.log2(np.asarray(positions, dtype=np.float64) + 2.0)


@dataclass(frozen=True)
class ClickModel:
    """The world behind a synthetic dataset, as its shoppers meet a ranker online."""

    config: SyntheticConfig
    items: Items
    truth: GroundTruth

    @classmethod
    def of(
        cls, config: SyntheticConfig, truth: GroundTruth, end_ts: int = DEFAULT_END_TS
    ) -> ClickModel:
        """The model of the world ``generate_with_truth(config, end_ts)`` drew ``truth`` from."""
        _, _, items = draw_world(config, Window.of(config, end_ts))
        return cls(config, items, truth)

    def probability(self, users: Ints, items: Ints) -> Float64s:
        """P(click) of each user on each item it is shown (broadcast), before examination."""
        return click_probability(self.config, self.items, self.truth, users, items)

    def affinity(self, users: Ints, items: Ints) -> npt.NDArray[np.float32]:
        """The hidden affinity ``<user, item>`` (broadcast): what an oracle ranker sorts by."""
        users, items = np.broadcast_arrays(np.asarray(users), np.asarray(items))
        latent = np.einsum(
            "...d,...d->...", self.items.latent[items], self.truth.user_latent[users]
        )
        return latent.astype(np.float32)

    def candidates(self, users: Ints, ts: Ints, n: int, rng: np.random.Generator) -> Ints:
        """``[len(users), n]`` distinct, launched items per request, drawn as the world's
        exposure draws a page of ``n`` (mostly the user's primary department)."""
        sampler = ExposureSampler(replace(self.config, impressions_per_request=n), self.items)
        return sampler.sample(self.truth.user_department[users], np.asarray(ts), rng)

    def clicks(self, users: Ints, pages: Ints, rng: np.random.Generator) -> npt.NDArray[np.bool_]:
        """Which items of each ranked page ``[R, P]`` (position 0 first) its user ``[R]``
        clicks: examined with :func:`examination`, then clicked with the world's probability."""
        pages = np.asarray(pages)
        chance = self.probability(np.asarray(users)[:, None], pages)
        chance = chance * examination(np.arange(pages.shape[1]))[None, :]
        return rng.random(pages.shape) < chance
