"""What a synthetic dataset is drawn from: sizes, seed, the strengths of the hidden effects."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, NamedTuple

GENERATOR_VERSION = "1"
DEFAULT_END_TS = 1_764_000_000  # 2025-11-24: a fixed end, so that a seed means one dataset
DAY_S = 86_400
#: Share of warm items live before the window opens; the other warm items launch during training.
ALWAYS_LAUNCHED_FRACTION = 0.85


@dataclass(frozen=True)
class SyntheticConfig:
    """Sizes, seed and the strengths of the hidden effects."""

    n_items: int = 3000
    n_users: int = 1500
    n_days: int = 60
    mean_requests_per_user: float = 20.0
    impressions_per_request: int = 10
    cold_item_fraction: float = 0.1  # items launched after the train/eval split
    split_fraction: float = 0.8  # share of the time window used for training
    seed: int = 0
    latent_dim: int = 32
    popularity_exponent: float = 1.0  # Zipf exponent of item popularity
    exposure_mix: tuple[float, float, float] = (0.65, 0.2, 0.15)  # own area, popular, uniform
    #: Share of every page given to exploration: items drawn uniformly from the departments other
    #: than the shopper's primary one, as platforms serve to learn interests the logs do not show.
    #: The other sources share the rest in the proportions of ``exposure_mix``.
    exploration_share: float = 0.0
    #: Of the exploration slots, the share aimed at the kinds that complement the shopper's
    #: primary kind in other departments (what a platform learns from co-purchases across all
    #: shoppers, not from this one): an item of one such kind, uniformly; the rest explore
    #: uniformly outside the primary department.
    exploration_aim: float = 0.0
    #: Of the slots drawn from the shopper's primary department, the share that shows an item of
    #: the shopper's primary kind itself (uniformly among its items), as a platform whose
    #: recommender has learnt that kind serves it; the rest draw from the department by
    #: popularity. 0 keeps the department-level exposure and its random stream.
    kind_focus: float = 0.0
    secondary_complement_prob: float = 0.7  # secondary interest is a complement of the primary
    #: When set, the complement a shopper's secondary interest takes is a pattern of the world,
    #: not the shopper's own choice: one kind per primary kind, the same for every shopper
    #: (a cross-department complement the records name where there is one, else a kind in
    #: another department that no record names), which only shoppers' behaviour reveals.
    co_interest: bool = False
    secondary_weight: float = 0.9  # strength of the secondary interest (primary: 1)
    item_residual: float = 0.35  # weight of the part of an item's latent no metadata explains
    activity_sigma: float = 1.1  # log-normal spread of requests per user (heavy tail)
    target_ctr: float = 0.08
    affinity_weight: float = 6.0  # a in sigmoid(a * <u, v> + b * log popularity + c)
    popularity_weight: float = 0.3  # b
    cart_rate: float = 0.25  # carts per click at average affinity
    purchase_rate: float = 0.4  # purchases per cart

    def __post_init__(self) -> None:
        live = self.n_items * (1 - self.cold_item_fraction) * ALWAYS_LAUNCHED_FRACTION
        if live < 2 * self.impressions_per_request:
            raise ValueError("too few items live from the start to fill a request's page")
        if not 0 < self.split_fraction < 1 or not 0 <= self.cold_item_fraction < 1:
            raise ValueError("split_fraction must lie in (0, 1), cold_item_fraction in [0, 1)")
        if min(self.n_users, self.n_days, self.latent_dim) < 1 or self.mean_requests_per_user < 1:
            raise ValueError("sizes must be positive and mean_requests_per_user at least 1")
        if not 0 < self.target_ctr < 1 or abs(sum(self.exposure_mix) - 1) > 1e-6:
            raise ValueError("target_ctr must lie in (0, 1) and exposure_mix must sum to 1")
        if not 0 <= self.exploration_share < 1:
            raise ValueError("exploration_share must lie in [0, 1)")
        if not 0 <= self.exploration_aim <= 1:
            raise ValueError("exploration_aim must lie in [0, 1]")
        if not 0 <= self.kind_focus <= 1:
            raise ValueError("kind_focus must lie in [0, 1]")
        if not 0 <= self.secondary_complement_prob <= 1:
            raise ValueError("secondary_complement_prob must lie in [0, 1]")

    @property
    def slot_sources(self) -> tuple[float, ...]:
        """Probability of each slot source: own area, popular, uniform and, when exploring,
        exploration."""
        rest = [(1 - self.exploration_share) * share for share in self.exposure_mix]
        return (*rest, self.exploration_share) if self.exploration_share else tuple(rest)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SyntheticConfig:
        """Named sizes: tiny (unit tests), small (model-quality tests), demo, large (benchmarks)."""
        presets = {
            "tiny": cls(n_items=300, n_users=150, n_days=30, mean_requests_per_user=8.0),
            "small": cls(n_items=3000, n_users=1500),
            "demo": cls(n_items=5000, n_users=2000),
            "large": cls(n_items=1_000_000, n_users=100_000),
        }
        if name not in presets:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(presets)}")
        return replace(presets[name], **overrides)


class Window(NamedTuple):
    """The log's time window (Unix seconds): training is [start, split), evaluation [split, end]."""

    start: int
    split: int
    end: int

    @classmethod
    def of(cls, config: SyntheticConfig, end_ts: int) -> Window:
        start = end_ts - config.n_days * DAY_S
        return cls(start, start + int(config.split_fraction * (end_ts - start)), end_ts)
