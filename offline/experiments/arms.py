"""Per-arm results of an experiment and each arm against the control, from joined answers.

Per answer: its impressions (items returned), clicks and orders (distinct items), the DCG of its
clicks (gain ``1 / log2(position + 2)``, position 0 first), the reciprocal rank of its first click
(0 without one) and, for the first positions, whether the item there was shown and clicked. Each
metric is a ratio of sums over the arm's answers (:data:`METRICS`), with a 95% interval by
bootstrap over users (:mod:`offline.experiments.bootstrap`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from offline.experiments.bootstrap import (
    Estimate,
    Floats,
    UserSums,
    arm_rng,
    interval,
    replicate_ratios,
    two_sided_p,
)
from offline.experiments.join import Answer

CTR, ORDERS_PER_REQUEST, DCG, MRR = "ctr", "orders_per_request", "dcg", "mrr"
#: The metrics of every arm besides CTR by position, and what each divides by.
METRICS: dict[str, str] = {
    CTR: "clicks / impressions",
    ORDERS_PER_REQUEST: "distinct items ordered / requests",
    DCG: "DCG of the clicks per request, gain 1 / log2(position + 2)",
    MRR: "reciprocal rank of the first click per request (0 without a click)",
}
DEFAULT_POSITIONS = 5
DEFAULT_REPLICATES = 1000


def position_metric(position: int) -> str:
    """The name of CTR at ``position`` (0 first), as reports show it: ``ctr@1`` is the top."""
    return f"ctr@{position + 1}"


def metric_names(positions: int) -> tuple[str, ...]:
    return (*METRICS, *(position_metric(p) for p in range(positions)))


@dataclass(frozen=True)
class ArmResult:
    """One arm's counts and metrics with their intervals."""

    arm: str
    requests: int
    users: int
    impressions: int
    clicks: int
    orders: int
    metrics: dict[str, Estimate]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Difference:
    """An arm's metric minus the control's, the relative lift, and the p-value of no
    difference (bootstrap, two-sided)."""

    difference: Estimate
    lift: Estimate
    p_value: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    arm: str
    control: str
    metrics: dict[str, Difference]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def user_sums(answers: Sequence[Answer], positions: int) -> tuple[UserSums, dict[str, int]]:
    """Each user's sums of every metric's numerator and denominator, and the arm's counts."""
    users = {user: row for row, user in enumerate(dict.fromkeys(a.user_id for a in answers))}
    width = len(METRICS) + positions
    numerators = np.zeros((len(answers), width))
    denominators = np.zeros((len(answers), width))
    for row, answer in enumerate(answers):
        shown = len(answer.prediction.items)
        clicked = answer.clicked
        numerators[row, :4] = (
            len(clicked),
            len(answer.ordered),
            sum(1.0 / np.log2(p + 2.0) for p in clicked),
            1.0 / (clicked[0] + 1) if clicked else 0.0,
        )
        denominators[row, :4] = (shown, 1, 1, 1)
        for position in range(min(positions, shown)):
            denominators[row, 4 + position] = 1
            numerators[row, 4 + position] = position in clicked
    owner = np.fromiter((users[a.user_id] for a in answers), np.int64, len(answers))
    sums = UserSums(
        _by_user(numerators, owner, len(users)), _by_user(denominators, owner, len(users))
    )
    counts = {
        "requests": len(answers),
        "users": len(users),
        "impressions": int(denominators[:, 0].sum()),
        "clicks": int(numerators[:, 0].sum()),
        "orders": int(numerators[:, 1].sum()),
    }
    return sums, counts


def _by_user(rows: Floats, owner: np.ndarray, users: int) -> Floats:
    out = np.zeros((users, rows.shape[1]))
    np.add.at(out, owner, rows)
    return out


@dataclass(frozen=True)
class _ArmSamples:
    result: ArmResult
    replicates: Floats  # [B, M]


def _arm(
    arm: str, answers: Sequence[Answer], positions: int, replicates: int, seed: int
) -> _ArmSamples:
    sums, counts = user_sums(answers, positions)
    values = sums.ratios()
    samples = replicate_ratios(sums, replicates, arm_rng(seed, arm))
    names = metric_names(positions)
    metrics = {name: interval(float(values[i]), samples[:, i]) for i, name in enumerate(names)}
    return _ArmSamples(ArmResult(arm=arm, metrics=metrics, **counts), samples)


def _compare(arm: _ArmSamples, control: _ArmSamples, positions: int) -> Comparison:
    metrics = {}
    for i, name in enumerate(metric_names(positions)):
        value, base = arm.result.metrics[name].value, control.result.metrics[name].value
        treated, baseline = arm.replicates[:, i], control.replicates[:, i]
        differences = treated - baseline
        with np.errstate(invalid="ignore", divide="ignore"):
            lifts = np.where(
                baseline > 0, treated / np.where(baseline > 0, baseline, 1) - 1, np.nan
            )
        lift = value / base - 1 if base > 0 else float("nan")
        metrics[name] = Difference(
            difference=interval(value - base, differences),
            lift=interval(lift, lifts),
            p_value=two_sided_p(differences),
        )
    return Comparison(arm.result.arm, control.result.arm, metrics)


def arm_results(
    answers_by_arm: dict[str, list[Answer]],
    control: str,
    *,
    positions: int = DEFAULT_POSITIONS,
    replicates: int = DEFAULT_REPLICATES,
    seed: int = 0,
) -> tuple[list[ArmResult], list[Comparison]]:
    """Every arm's results (the control first, then the others in the given order) and every
    other arm against the control."""
    if control not in answers_by_arm:
        raise ValueError(f"control arm {control!r} has no answers; arms: {sorted(answers_by_arm)}")
    order = [control, *(arm for arm in answers_by_arm if arm != control)]
    samples = {arm: _arm(arm, answers_by_arm[arm], positions, replicates, seed) for arm in order}
    comparisons = [_compare(samples[arm], samples[control], positions) for arm in order[1:]]
    return [samples[arm].result for arm in order], comparisons
