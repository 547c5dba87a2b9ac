"""Rank requests drawn from a bundle: who asks, about how many candidates, with what extras.

Real ranking traffic is skewed: a few users come back all the time (Zipf), candidate lists vary
in length, and some callers send fresh events or ask for explanations, which cost more. Drawing
users and items from the served bundle keeps the load on the normal path (known users, known
items) instead of measuring the degraded one. Only NumPy is needed, so Locust workers stay light.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.contracts.bundle_root import current_bundle_dir

EVENT_NAMES = ("click", "cart", "purchase")
ITEM_IDS_FILE = "item_ids.npy"


@dataclass(frozen=True, slots=True)
class CandidateCounts:
    """How many candidates a request carries: ``fixed:N``, ``uniform:LO:HI`` or
    ``lognormal:MEDIAN:SIGMA``, always clipped to ``[1, limit]``."""

    kind: str
    a: float
    b: float = 0.0

    @classmethod
    def parse(cls, spec: str) -> CandidateCounts:
        name, *args = spec.split(":")
        try:
            values = [float(arg) for arg in args]
        except ValueError as error:
            raise ValueError(f"bad candidate count spec {spec!r}: {error}") from error
        arity = {"fixed": 1, "uniform": 2, "lognormal": 2}
        if name not in arity or len(values) != arity[name]:
            raise ValueError(
                f"bad candidate count spec {spec!r}: use fixed:N, uniform:LO:HI or "
                "lognormal:MEDIAN:SIGMA"
            )
        return cls(name, *values)

    def sample(self, rng: np.random.Generator, limit: int) -> int:
        count: float
        if self.kind == "fixed":
            count = self.a
        elif self.kind == "uniform":
            count = float(rng.integers(int(self.a), int(self.b) + 1))
        else:
            count = self.a * float(np.exp(self.b * rng.standard_normal()))
        return int(np.clip(round(float(count)), 1, limit))


@dataclass(frozen=True, slots=True)
class TrafficConfig:
    bundle_root: Path = Path("bundles")
    users_path: Path | None = Path("var/demo/users.npz")
    """Embedded user snapshot to draw user IDs from; without one, ``u0..u<user_count-1>``."""
    user_count: int = 1000
    zipf_exponent: float = 1.1
    candidates: str = "uniform:50:500"
    recent_events_ratio: float = 0.2
    explain_ratio: float = 0.05
    top_k: int | None = 100


def load_user_ids(config: TrafficConfig) -> np.ndarray:
    if config.users_path is not None and config.users_path.is_file():
        with np.load(config.users_path, allow_pickle=False) as snapshot:
            user_ids = np.asarray(snapshot["user_ids"])
        if len(user_ids):
            return user_ids
    return np.asarray([f"u{n}" for n in range(config.user_count)])


class Traffic:
    """Draws request bodies; one instance is shared, each caller brings its own generator."""

    def __init__(self, config: TrafficConfig, item_ids: np.ndarray, user_ids: np.ndarray) -> None:
        self.config = config
        self.item_ids = item_ids
        self.user_ids = user_ids
        self._counts = CandidateCounts.parse(config.candidates)
        ranks = np.arange(1, len(user_ids) + 1, dtype=np.float64)
        weights = ranks**-config.zipf_exponent
        self._user_cdf = np.cumsum(weights / weights.sum())
        # Which user is most popular should not follow the snapshot's order.
        self._user_order = np.random.default_rng(0).permutation(len(user_ids))

    @classmethod
    def load(cls, config: TrafficConfig) -> Traffic:
        item_ids = np.load(
            current_bundle_dir(config.bundle_root) / ITEM_IDS_FILE, allow_pickle=False
        )
        return cls(config, np.asarray(item_ids), load_user_ids(config))

    def user(self, rng: np.random.Generator) -> str:
        rank = min(int(np.searchsorted(self._user_cdf, rng.random())), len(self.user_ids) - 1)
        return str(self.user_ids[self._user_order[rank]])

    def request(self, rng: np.random.Generator, now: float | None = None) -> dict[str, Any]:
        """One ``/v1/rank`` body."""
        count = self._counts.sample(rng, len(self.item_ids))
        rows = rng.choice(len(self.item_ids), size=count, replace=False)
        body: dict[str, Any] = {
            "user_id": self.user(rng),
            "candidates": [str(item) for item in self.item_ids[rows]],
        }
        if self.config.top_k is not None:
            body["top_k"] = self.config.top_k
        if rng.random() < self.config.recent_events_ratio:
            body["recent_events"] = self._recent_events(rng, now or time.time())
        if rng.random() < self.config.explain_ratio:
            body["explain"] = True
        return body

    def _recent_events(self, rng: np.random.Generator, now: float) -> list[dict[str, Any]]:
        count = int(rng.integers(1, 6))
        rows = rng.integers(0, len(self.item_ids), size=count)
        return [
            {
                "item_id": str(self.item_ids[row]),
                "event": EVENT_NAMES[int(rng.integers(0, len(EVENT_NAMES)))],
                "ts": int(now) - int(rng.integers(0, 3600)),
            }
            for row in rows
        ]
