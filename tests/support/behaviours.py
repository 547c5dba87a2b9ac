"""Random behaviour blocks for scoring tests."""

from __future__ import annotations

import numpy as np

from service.ranking.behaviours import BehaviourBlock


def random_block(
    rng: np.random.Generator,
    length: int,
    dim: int,
    *,
    generated: bool = False,
    items: int = 1000,
    max_gap: int = 10,
) -> BehaviourBlock:
    """``length`` behaviours on items ``i0`` … ``i{items - 1}`` (padding when empty). Real ones
    carry an event and a gap below ``max_gap``; generated ones carry neither, as served."""
    if length == 0:
        return BehaviourBlock.padding(dim)
    return BehaviourBlock(
        item_ids=[f"i{n}" for n in rng.integers(0, items, length)],
        vectors=rng.standard_normal((length, dim)).astype(np.float32),
        mask=np.ones(length, np.float32),
        events=np.zeros(length, np.int64) if generated else rng.integers(1, 4, length),
        gaps=np.zeros(length, np.int64) if generated else rng.integers(0, max_gap, length),
    )
