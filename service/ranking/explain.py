"""Explanations: the behaviours each returned item attended to most."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from service.ranking.behaviours import BehaviourBlock
from service.ranking.result import ExplainedBehaviour, Explanation
from service.ranking.scoring import ScoreResult

BEHAVIOURS_PER_ITEM = 3


def explain(
    rows: npt.NDArray[np.intp],
    candidates: Sequence[str],
    result: ScoreResult,
    real: BehaviourBlock,
    generated: BehaviourBlock,
    limit: int = BEHAVIOURS_PER_ITEM,
) -> list[Explanation]:
    """Per returned candidate row, up to ``limit`` behaviours by head-averaged attention weight.

    Real and generated weights are each a softmax over their own block, so a weight says how
    much of its block's attention went to that behaviour.
    """
    if result.real_weights is None or result.generated_weights is None:
        raise ValueError("explanations need attention weights: score with explain=True")
    weights = np.concatenate([result.real_weights, result.generated_weights], axis=1)[rows]
    valid = np.concatenate([real.mask, generated.mask]) > 0
    weights = np.where(valid[None, :], weights, -1.0)
    top = np.argsort(-weights, axis=1, kind="stable")[:, :limit]
    item_ids = real.item_ids + generated.item_ids
    real_length = len(real.item_ids)
    explanations = []
    for position, (row, slots) in enumerate(zip(rows, top, strict=True)):
        behaviours = [
            ExplainedBehaviour(
                item_id=item_ids[slot],
                source="real" if slot < real_length else "generated",
                weight=float(weights[position, slot]),
            )
            for slot in slots
            if valid[slot]
        ]
        explanations.append(Explanation(candidates[row], behaviours))
    return explanations
