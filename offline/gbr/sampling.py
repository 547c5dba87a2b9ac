"""Drawing tokens from the model's distributions, reproducibly and independently per row.

Each draw uses one uniform number derived by hashing ``(seed, row key, step, position)`` and the
inverse of the cumulative distribution. A row's draws therefore depend only on its own key and
logits, never on which other rows share its batch, how large the batch is or in which order rows
arrive: the nearline job and the ranker's training examples get the same block for the same
(user, history), and perturbing one user's data cannot move another user's block.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
#: Nucleus sampling looks at this many most likely tokens; beyond them the mass is negligible for
#: any useful ``top_p``, and a full sort of a large vocabulary per slot and step would dominate.
NUCLEUS_CANDIDATES = 64


def _splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))  # type: ignore[no-any-return]


def hashed_uniforms(seed: int, row_keys: npt.NDArray[np.int64], step: int, width: int) -> Tensor:
    """Uniforms in (0, 1), ``[rows, width]``, a pure function of (seed, row key, step, column)."""
    keys = np.asarray(row_keys).astype(np.uint64)
    with np.errstate(over="ignore"):
        state = _splitmix64(_splitmix64(np.uint64(seed) + keys * _MIX1) + np.uint64(step))
        columns = np.arange(width, dtype=np.uint64)
        bits = _splitmix64(state[:, None] ^ (columns[None, :] * _GOLDEN))
    uniforms = ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
    return torch.from_numpy(uniforms)


def sample_tokens(
    logits: Tensor, uniforms: Tensor, temperature: float, top_p: float
) -> tuple[Tensor, Tensor]:
    """Tokens ``[..., ]`` drawn from ``logits [..., V]`` and the probability of each under the
    tempered distribution (its confidence). ``temperature == 0`` is greedy."""
    if temperature == 0:
        # Greedy: no full softmax, only the winner's probability.
        best, tokens = logits.max(dim=-1)
        return tokens, torch.exp(best - torch.logsumexp(logits, dim=-1))
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        width = min(NUCLEUS_CANDIDATES, probs.shape[-1])
        values, index = probs.topk(width, dim=-1)
        # Keep the smallest prefix whose mass reaches top_p (the most likely token always).
        before = values.cumsum(dim=-1) - values
        values = values * (before < top_p)
    else:
        values, index = probs, None
    cumulative = values.double().cumsum(dim=-1)
    targets = (uniforms.to(cumulative.dtype) * cumulative[..., -1])[..., None]
    picked = torch.searchsorted(cumulative.contiguous(), targets.contiguous()).squeeze(-1)
    picked = picked.clamp_max(values.shape[-1] - 1)
    tokens = picked if index is None else index.gather(-1, picked[..., None]).squeeze(-1)
    return tokens, probs.gather(-1, tokens[..., None]).squeeze(-1)
