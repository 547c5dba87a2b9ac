"""The platform's exposure policy: which items each page view shows.

Each slot of a page draws from one source: the shopper's primary department (popularity-weighted),
the whole catalogue by popularity, uniformly at random, or (when the world explores) uniformly from
the departments other than the shopper's primary one; with an exploration aim, that share of the
exploration slots shows an item of a kind that complements the shopper's primary kind in another
department (chosen uniformly among those kinds); with a kind focus, that share of the primary
department's slots shows an item of the shopper's primary kind itself (uniformly among its items).
A page never repeats an item and never shows one before its launch; offending slots are redrawn in
vectorised rounds.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from offline.data.synthetic.catalogue import Items
from offline.data.synthetic.config import SyntheticConfig
from offline.data.synthetic.latent import Floats, HiddenWorld, Ints, Ragged, pick
from offline.data.synthetic.population import Requests, Users

OWN_AREA, POPULAR, UNIFORM, EXPLORE = 0, 1, 2, 3  # slot sources, as in SyntheticConfig.slot_sources
FALLBACK = 4  # the oldest items, always live: a slot's last resort
CHUNK_REQUESTS = 50_000  # bounds the [requests, slots, latent_dim] temporaries


def draw_exposure(
    config: SyntheticConfig,
    items: Items,
    users: Users,
    requests: Requests,
    seed: np.random.SeedSequence,
    world: HiddenWorld | None = None,
) -> tuple[Ints, Floats]:
    """The items each request shows ([requests, slots]) and the hidden user-item affinity;
    ``world`` (its complement kinds) is needed when the exploration is aimed."""
    n_req, k = len(requests.user), config.impressions_per_request
    shown = np.empty((n_req, k), dtype=np.int64)
    affinity = np.empty((n_req, k), dtype=np.float32)
    if config.exploration_aim and config.exploration_share and world is None:
        raise ValueError("aimed exploration needs the world's complement kinds")
    aim = world.cross_complements if world is not None and config.exploration_aim else None
    sampler = ExposureSampler(config, items, aim)
    # One seed per fixed-size chunk: results do not depend on memory or on how chunks are run.
    for chunk, chunk_seed in enumerate(seed.spawn(-(-n_req // CHUNK_REQUESTS))):
        rows = slice(chunk * CHUNK_REQUESTS, (chunk + 1) * CHUNK_REQUESTS)
        user, ts = requests.user[rows], requests.ts[rows]
        rng = np.random.default_rng(chunk_seed)
        shown[rows] = sampler.sample(users.area[user], ts, rng, users.primary[user])
        affinity[rows] = np.einsum("rkd,rd->rk", items.latent[shown[rows]], users.latent[user])
    return shown, affinity


class ExposureSampler:
    """Draws distinct, already-launched items per request from the exposure mix."""

    SOURCE_ROUNDS = 8  # redraw rounds from a slot's own source before falling back
    MAX_ROUNDS = 64

    def __init__(
        self, config: SyntheticConfig, items: Items, complements: Ragged | None = None
    ) -> None:
        self.mix, self.k = np.asarray(config.slot_sources), config.impressions_per_request
        self.aim, self.complements = config.exploration_aim, complements
        self.kind_focus = config.kind_focus
        # Kind c's items are by_leaf[leaf_start[c]:leaf_start[c + 1]].
        self.by_leaf = np.argsort(items.leaf, kind="stable")
        n_leaves = int(items.leaf.max(initial=0)) + 1
        if complements is not None:
            n_leaves = max(n_leaves, len(complements[1]))
        self.leaf_start = np.searchsorted(items.leaf[self.by_leaf], np.arange(n_leaves + 1))
        self.launch_ts = items.launch_ts
        self.popular_cdf = np.cumsum(items.popularity) / items.popularity.sum()
        # Per-department CDFs laid end to end: department a's items have keys in (a, a + 1], so
        # one searchsorted draws for every slot whatever its department.
        self.by_area = np.argsort(items.top, kind="stable")
        area, cum = items.top[self.by_area], np.cumsum(items.popularity[self.by_area])
        first = np.searchsorted(area, area, side="left")
        last = np.searchsorted(area, area, side="right") - 1
        before = np.where(first > 0, cum[first - 1], 0.0)
        self.area_keys = area + (cum - before) / (cum[last] - before)
        self.area_keys[last] = area[last] + 1.0  # exact ends: no rounding spill into the next
        self.always_live = np.argsort(items.launch_ts, kind="stable")[: 2 * self.k]
        # Department a's items are by_area[area_start[a]:area_start[a + 1]].
        self.area_start = np.searchsorted(area, np.arange(int(area.max(initial=0)) + 2))

    def sample(
        self, area: Ints, ts: Ints, rng: np.random.Generator, kind: Ints | None = None
    ) -> Ints:
        """Per request (its primary department ``area``, time ``ts`` and, for aimed exploration
        and kind focus, primary ``kind``), ``k`` distinct items live at ``ts``."""
        source = rng.choice(len(self.mix), size=(len(area), self.k), p=self.mix)
        area_of_slot = np.broadcast_to(area[:, None], source.shape)
        kind_of_slot = None if kind is None else np.broadcast_to(kind[:, None], source.shape)
        shown = np.empty(source.shape, dtype=np.int64)
        redo = np.ones(source.shape, dtype=bool)
        for round_ in range(self.MAX_ROUNDS):
            if round_ == self.SOURCE_ROUNDS:
                source = np.full(source.shape, FALLBACK)
            kinds = None if kind_of_slot is None else kind_of_slot[redo]
            shown[redo] = self._draw(source[redo], area_of_slot[redo], rng, kinds)
            redo = self._invalid(shown, ts)
            if not redo.any():
                return shown
        raise RuntimeError("exposure sampling did not converge; the catalogue is too small")

    def _draw(
        self, source: Ints, area: Ints, rng: np.random.Generator, kind: Ints | None = None
    ) -> Ints:
        u = rng.random(len(source))
        drawn = np.searchsorted(self.popular_cdf, u, side="right")  # POPULAR by default
        own = source == OWN_AREA
        drawn[own] = self.by_area[np.searchsorted(self.area_keys, area[own] + u[own], "right")]
        uniform = source == UNIFORM
        drawn[uniform] = rng.integers(0, len(self.launch_ts), int(uniform.sum()))
        explore = source == EXPLORE
        drawn[explore] = self._elsewhere(area[explore], u[explore])
        if self.complements is not None and kind is not None and explore.any():
            slots = np.flatnonzero(explore)
            aimed = slots[rng.random(len(slots)) < self.aim]
            found = self._complementary(kind[aimed], rng)
            drawn[aimed[found >= 0]] = found[found >= 0]
        if self.kind_focus and kind is not None and own.any():
            slots = np.flatnonzero(own)
            focused = slots[rng.random(len(slots)) < self.kind_focus]
            found = self._of_kind(kind[focused], rng)
            drawn[focused[found >= 0]] = found[found >= 0]
        fallback = source == FALLBACK
        drawn[fallback] = self.always_live[rng.integers(0, len(self.always_live), fallback.sum())]
        return np.minimum(drawn, len(self.launch_ts) - 1)

    def _elsewhere(self, area: Ints, u: npt.NDArray[np.float64]) -> Ints:
        """Uniform picks among the items outside each slot's department (``u`` in [0, 1))."""
        first, last = self.area_start[area], self.area_start[area + 1]
        outside = len(self.by_area) - (last - first)
        index = np.floor(u * outside).astype(np.int64)
        return self.by_area[np.where(index < first, index, index + last - first)]

    def _of_kind(self, kind: Ints, rng: np.random.Generator) -> Ints:
        """An item of each ``kind``, uniformly among its items (-1 where it has none)."""
        first, last = self.leaf_start[kind], self.leaf_start[kind + 1]
        index = first + np.floor(rng.random(len(kind)) * (last - first)).astype(np.int64)
        found = self.by_leaf[np.minimum(index, len(self.by_leaf) - 1)]
        return np.where(last > first, found, -1)

    def _complementary(self, kind: Ints, rng: np.random.Generator) -> Ints:
        """An item of a kind complementing each ``kind`` in another department, uniformly
        (-1 where the kind has no such complement with items)."""
        assert self.complements is not None
        chosen = pick(self.complements, kind, rng)
        found = self._of_kind(np.where(chosen >= 0, chosen, 0), rng)
        return np.where(chosen >= 0, found, -1)

    def _invalid(self, shown: Ints, ts: Ints) -> npt.NDArray[np.bool_]:
        """Slots showing an item not yet launched, or repeating an item earlier in the page."""
        invalid = self.launch_ts[shown] > ts[:, None]
        order = np.argsort(shown, axis=1, kind="stable")
        ranked = np.take_along_axis(shown, order, axis=1)
        repeat = ranked[:, 1:] == ranked[:, :-1]
        invalid[np.nonzero(repeat)[0], order[:, 1:][repeat]] = True
        return invalid
