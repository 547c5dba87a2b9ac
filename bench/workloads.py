"""The standard workloads (DESIGN.md): candidates per request and behaviours per user."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Workload:
    name: str
    candidates: int
    real: int
    generated: int

    def model_flops(self, item_dim: int, hidden_dim: int) -> float:
        """Multiply-adds x 2 of one request through the split graphs and the attention.

        User encoder: keys and values of every behaviour (2 projections d x d); candidate
        encoder: two queries per candidate; attention: logits and pooling over both pools;
        scorer: the MLP tower on [c, real, generated, c*real, c*generated].
        """
        d, h = item_dim, hidden_dim
        behaviours = self.real + self.generated
        user = 2 * behaviours * 2 * d * d
        candidate = 2 * self.candidates * 2 * d * d
        attention = 2 * 2 * self.candidates * behaviours * d
        scorer = 2 * self.candidates * (5 * d * h + h * (h // 2) + h // 2)
        return float(user + candidate + attention + scorer)


W1 = Workload("W1", candidates=500, real=256, generated=16)
W2 = Workload("W2", candidates=2000, real=1000, generated=32)
#: Several slots of one page for a user with a long history: few candidates each, the same user.
SESSION = Workload("session", candidates=100, real=1000, generated=32)
WORKLOADS = {w.name: w for w in (W1, W2)}
