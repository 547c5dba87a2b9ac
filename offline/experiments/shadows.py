"""How far a shadow arm agrees with the arm that served: shadows are never shown, so they have
no outcomes, only their ranking of the same request to compare.

Per request: overlap@k, the share of the served top k that the shadow's top k holds too (k cut
to the shorter list), and Spearman's rank correlation over the items both lists hold (requests
with fewer than two such items are left out of it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from offline.experiments.join import ShadowPair

DEFAULT_CUTOFFS = (1, 5, 10)


@dataclass(frozen=True)
class ShadowAgreement:
    """A shadow arm against one serving arm, averaged over the requests both ranked."""

    shadow: str
    served_arm: str
    requests: int
    overlap: dict[int, float]  # cutoff k -> mean overlap@k
    rank_correlation: float | None
    correlated_requests: int

    def as_dict(self) -> dict[str, object]:
        return {
            "shadow": self.shadow,
            "served_arm": self.served_arm,
            "requests": self.requests,
            "overlap": {f"@{k}": value for k, value in self.overlap.items()},
            "rank_correlation": self.rank_correlation,
            "correlated_requests": self.correlated_requests,
        }


def overlap_at(shadow: Sequence[str], served: Sequence[str], k: int) -> float | None:
    """Share of the served top ``k`` in the shadow's top ``k`` (None when either list is
    empty)."""
    cut = min(k, len(shadow), len(served))
    if cut == 0:
        return None
    return len(set(shadow[:cut]) & set(served[:cut])) / cut


def spearman(shadow: Sequence[str], served: Sequence[str]) -> float | None:
    """Spearman's correlation of the two rankings over their common items (None below two)."""
    at = {item: position for position, item in enumerate(shadow)}
    common = [item for item in served if item in at]
    if len(common) < 2:
        return None
    served_rank = np.arange(len(common), dtype=np.float64)
    shadow_rank = np.argsort(np.argsort([at[item] for item in common])).astype(np.float64)
    n = len(common)
    return float(1 - 6 * np.sum((served_rank - shadow_rank) ** 2) / (n * (n * n - 1)))


def shadow_agreement(
    pairs: Sequence[ShadowPair], cutoffs: Sequence[int] = DEFAULT_CUTOFFS
) -> list[ShadowAgreement]:
    """One row per (shadow arm, serving arm), in order of first appearance."""
    groups: dict[tuple[str, str], list[ShadowPair]] = {}
    for pair in pairs:
        key = (pair.shadow.arm or "", pair.served.arm or "")
        groups.setdefault(key, []).append(pair)
    rows = []
    for (shadow, served), members in groups.items():
        overlap = {}
        for k in cutoffs:
            found = [overlap_at(p.shadow.items, p.served.items, k) for p in members]
            kept = [value for value in found if value is not None]
            overlap[k] = float(np.mean(kept)) if kept else float("nan")
        found_rho = [spearman(p.shadow.items, p.served.items) for p in members]
        rho = [value for value in found_rho if value is not None]
        rows.append(
            ShadowAgreement(
                shadow=shadow,
                served_arm=served,
                requests=len(members),
                overlap=overlap,
                rank_correlation=float(np.mean(rho)) if rho else None,
                correlated_requests=len(rho),
            )
        )
    return rows
