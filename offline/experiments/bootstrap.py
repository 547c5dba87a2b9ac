"""Confidence intervals by bootstrap over users, the unit an experiment randomises.

Every metric of an arm is a ratio of two sums over its answers (clicks over impressions, DCG
over requests, …). Each user contributes its own sums; a bootstrap replicate draws the arm's
users with replacement and recomputes every ratio from the drawn users' sums, so the answers of
one user move together, as they do between experiments. Arms hold disjoint users (assignment is
sticky), so two arms are resampled independently and a difference's replicate is the difference
of their replicates.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
#: Elements of one block of resampling weights (replicates x users): bounds the memory.
_BLOCK_ELEMENTS = 1 << 21
LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A figure and its bootstrap interval (NaN where a replicate had nothing to divide by)."""

    value: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return bool(self.low > 0 or self.high < 0)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class UserSums:
    """Per user (rows), the numerator and the denominator of each metric (columns)."""

    numerators: Floats  # [U, M]
    denominators: Floats  # [U, M]

    @property
    def users(self) -> int:
        return int(self.numerators.shape[0])

    def ratios(self) -> Floats:
        """Every metric over all users ``[M]``."""
        return _ratio(self.numerators.sum(axis=0), self.denominators.sum(axis=0))


def _ratio(numerator: Floats, denominator: Floats) -> Floats:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan
        )


def arm_rng(seed: int, arm: str) -> np.random.Generator:
    """One stream per arm, from the seed and the arm's name: the same arm draws the same
    replicates whatever the other arms are."""
    return np.random.default_rng([seed, zlib.crc32(arm.encode())])


def _weights(users: int, replicates: int, rng: np.random.Generator) -> Iterator[Floats]:
    """Blocks of bootstrap weights ``[b, U]``: how often each user is drawn in a replicate."""
    block = max(1, _BLOCK_ELEMENTS // max(users, 1))
    for first in range(0, replicates, block):
        rows = min(block, replicates - first)
        drawn = rng.integers(0, users, size=(rows, users))
        drawn += (np.arange(rows) * users)[:, None]
        counts = np.bincount(drawn.ravel(), minlength=rows * users)
        yield counts.reshape(rows, users).astype(np.float64)


def replicate_ratios(sums: UserSums, replicates: int, rng: np.random.Generator) -> Floats:
    """Every metric in every bootstrap replicate ``[B, M]``."""
    blocks = [
        _ratio(weights @ sums.numerators, weights @ sums.denominators)
        for weights in _weights(sums.users, replicates, rng)
    ]
    return np.concatenate(blocks) if blocks else np.empty((0, sums.numerators.shape[1]))


def interval(value: float, samples: Floats, level: float = LEVEL) -> Estimate:
    """The percentile interval of ``samples`` around ``value`` (NaN replicates left out)."""
    finite = samples[np.isfinite(samples)]
    if len(finite) == 0:
        return Estimate(value, float("nan"), float("nan"))
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Estimate(value, float(low), float(high))


def two_sided_p(samples: Floats) -> float:
    """The bootstrap p-value of "the difference is 0": twice the smaller share of replicates
    on either side of 0 (each count plus one, so it is never 0), at most 1. It rejects at
    level α exactly when the percentile interval at 1 − α leaves 0 out, up to that +1."""
    finite = samples[np.isfinite(samples)]
    if len(finite) == 0:
        return float("nan")
    below = int((finite <= 0).sum())
    above = int((finite >= 0).sum())
    return min(1.0, 2 * (min(below, above) + 1) / (len(finite) + 1))
