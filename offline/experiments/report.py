"""The report of one experiment from its prediction log: per-arm results, every arm against the
control, shadow agreement, and sentences computed from those figures.

The control is the arm named with ``control``, else an arm called ``control``, else the arm of
the experiment's first answer in the log (the log does not record the configuration's order).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from offline.experiments.arms import (
    CTR,
    DCG,
    DEFAULT_POSITIONS,
    DEFAULT_REPLICATES,
    METRICS,
    MRR,
    ORDERS_PER_REQUEST,
    ArmResult,
    Comparison,
    arm_results,
    position_metric,
)
from offline.experiments.bootstrap import LEVEL, Estimate
from offline.experiments.join import Answer, JoinedLog, join
from offline.experiments.prediction_log import (
    LogRecord,
    PredictionLogError,
    ReadCounts,
    read_folder,
    read_stream,
)
from offline.experiments.shadows import ShadowAgreement, shadow_agreement

CONTROL_NAME = "control"
_LABELS = {CTR: "CTR", ORDERS_PER_REQUEST: "orders / request", DCG: "DCG / request", MRR: "MRR"}


@dataclass(frozen=True)
class ReportSettings:
    experiment: str | None = None
    #: Only the answers of this version of the experiment (None: every version, pooled).
    version: int | None = None
    control: str | None = None
    positions: int = DEFAULT_POSITIONS
    replicates: int = DEFAULT_REPLICATES
    seed: int = 0


@dataclass(frozen=True)
class ExperimentReport:
    experiment: str
    versions: list[int]
    control: str
    arms: list[ArmResult]
    comparisons: list[Comparison]
    shadows: list[ShadowAgreement]
    settings: ReportSettings
    #: Records read, records the join could not use, answers outside this experiment.
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "experiment": self.experiment,
            "versions": self.versions,
            "control": self.control,
            "settings": asdict(self.settings),
            "metrics": METRICS | {"ctr@p": "CTR of the item at position p (1 = top)"},
            "interval": f"{LEVEL:.0%} bootstrap percentile interval over users",
            "arms": [arm.as_dict() for arm in self.arms],
            "comparisons": [comparison.as_dict() for comparison in self.comparisons],
            "shadows": [shadow.as_dict() for shadow in self.shadows],
            "counts": self.counts,
        }


def _experiment(answers: list[Answer], wanted: str | None) -> str:
    names = list(dict.fromkeys(a.prediction.experiment for a in answers if a.arm is not None))
    found = [name for name in names if name is not None]
    if wanted is not None:
        if wanted not in found:
            raise PredictionLogError(
                f"the log has no answer of experiment {wanted!r}; it has "
                f"{', '.join(found) or 'none'}"
            )
        return wanted
    if len(found) != 1:
        detail = f"several ({', '.join(found)}); name one (--experiment)" if found else "none"
        raise PredictionLogError(f"experiments in the log: {detail}")
    return found[0]


def experiment_report(
    joined: JoinedLog, settings: ReportSettings | None = None, read: ReadCounts | None = None
) -> ExperimentReport:
    """The report of the one experiment in ``joined`` (or ``settings.experiment``)."""
    settings = settings or ReportSettings()
    name = _experiment(joined.answers, settings.experiment)
    mine = [
        a
        for a in joined.answers
        if a.prediction.experiment == name
        and a.arm is not None
        and settings.version in (None, a.prediction.experiment_version)
    ]
    if not mine:
        raise PredictionLogError(f"the log has no answer of {name} version {settings.version}")
    by_arm: dict[str, list[Answer]] = {}
    for answer in mine:
        by_arm.setdefault(str(answer.arm), []).append(answer)
    control = settings.control or (CONTROL_NAME if CONTROL_NAME in by_arm else next(iter(by_arm)))
    if control not in by_arm:
        raise PredictionLogError(f"no arm {control!r} in {name}; its arms: {', '.join(by_arm)}")
    arms, comparisons = arm_results(
        by_arm,
        control,
        positions=settings.positions,
        replicates=settings.replicates,
        seed=settings.seed,
    )
    pairs = [
        p
        for p in joined.shadows
        if p.served.experiment == name and settings.version in (None, p.served.experiment_version)
    ]
    versions = sorted({v for a in mine if (v := a.prediction.experiment_version) is not None})
    counts = (read.as_dict() if read else {}) | joined.counts.as_dict()
    counts["answers_outside_experiment"] = len(joined.answers) - len(mine)
    return ExperimentReport(
        experiment=name,
        versions=versions,
        control=control,
        arms=arms,
        comparisons=comparisons,
        shadows=shadow_agreement(pairs),
        settings=settings,
        counts=counts,
    )


def report_of(
    records: Iterable[LogRecord], settings: ReportSettings | None, read: ReadCounts
) -> ExperimentReport:
    """The report of log records as they are read (``read`` counts them)."""
    return experiment_report(join(records), settings, read)


def folder_report(folder: Path, settings: ReportSettings | None = None) -> ExperimentReport:
    """The report of the prediction log files under ``folder``."""
    read = ReadCounts()
    return report_of(read_folder(folder, read), settings, read)


def stream_report(redis_url: str, settings: ReportSettings | None = None) -> ExperimentReport:
    """The report of the prediction log stream in the Redis at ``redis_url``."""
    read = ReadCounts()
    return report_of(read_stream(redis_url, read), settings, read)


def _cell(estimate: Estimate, form: str = ".4f") -> str:
    """``value [low, high]`` in ``form``; a figure with nothing to divide by is "–"."""
    low, high = _number(estimate.low, form), _number(estimate.high, form)
    return f"{_number(estimate.value, form)} [{low}, {high}]"


def _number(value: float, form: str) -> str:
    return f"{value:{form}}" if math.isfinite(value) else "–"


def _p(value: float, replicates: int) -> str:
    """The p-value; at the smallest the bootstrap can give, "≤" that."""
    if not math.isfinite(value):
        return "–"
    floor = 2 / (replicates + 1)
    return f"≤{floor:.3f}" if value <= floor else f"{value:.3f}"


def table_lines(report: ExperimentReport) -> list[str]:
    """Markdown tables: per arm, CTR by position, every arm against the control, shadows."""
    lines = [
        "| arm | users | requests | impressions | clicks | orders | "
        + " | ".join(_LABELS[m] for m in METRICS)
        + " |",
        "| --- " * (6 + len(METRICS)) + "|",
    ]
    for arm in report.arms:
        cells = " | ".join(_cell(arm.metrics[m]) for m in METRICS)
        lines.append(
            f"| {arm.arm} | {arm.users} | {arm.requests} | {arm.impressions} | {arm.clicks} | "
            f"{arm.orders} | {cells} |"
        )
    positions = [position_metric(p) for p in range(report.settings.positions)]
    lines += ["", "| arm | " + " | ".join(f"CTR at {p[4:]}" for p in positions) + " |"]
    lines.append("| --- " * (1 + len(positions)) + "|")
    for arm in report.arms:
        lines.append(
            f"| {arm.arm} | " + " | ".join(_cell(arm.metrics[p]) for p in positions) + " |"
        )
    if report.comparisons:
        lines += ["", "| arm − control | metric | difference | relative lift | p |"]
        lines.append("| --- | --- | --- | --- | --- |")
        for comparison in report.comparisons:
            for metric in METRICS:
                found = comparison.metrics[metric]
                lines.append(
                    f"| {comparison.arm} − {comparison.control} | {_LABELS[metric]} | "
                    f"{_cell(found.difference, '+.4f')} | {_cell(found.lift, '+.1%')} | "
                    f"{_p(found.p_value, report.settings.replicates)} |"
                )
    if report.shadows:
        cutoffs = list(report.shadows[0].overlap)
        lines += ["", "| shadow | served by | requests | "
                  + " | ".join(f"overlap@{k}" for k in cutoffs) + " | Spearman |"]  # fmt: skip
        lines.append("| --- " * (4 + len(cutoffs)) + "|")
        for row in report.shadows:
            rho = "–" if row.rank_correlation is None else f"{row.rank_correlation:.3f}"
            overlaps = " | ".join(f"{row.overlap[k]:.3f}" for k in cutoffs)
            lines.append(
                f"| {row.shadow} | {row.served_arm} | {row.requests} | {overlaps} | {rho} |"
            )
    return lines


def findings(report: ExperimentReport, metrics: tuple[str, ...] = (CTR, DCG)) -> list[str]:
    """One sentence per arm against the control and metric, read off the figures: a difference
    whose interval leaves 0 out is stated with its size, any other is "not detected"."""
    sentences = []
    for comparison in report.comparisons:
        for metric in metrics:
            found = comparison.metrics[metric]
            d, label = found.difference, _LABELS[metric]
            p = _p(found.p_value, report.settings.replicates)
            interval = (
                f"95% CI {d.low:+.4f} to {d.high:+.4f}, p{p if p.startswith('≤') else '=' + p}"
            )
            if d.excludes_zero():
                side = "above" if d.value > 0 else "below"
                sentences.append(
                    f"- {label}: {comparison.arm} is {abs(d.value):.4f} {side} "
                    f"{comparison.control} ({found.lift.value:+.1%} relative; {interval})."
                )
            else:
                sentences.append(
                    f"- {label}: no difference detected between {comparison.arm} and "
                    f"{comparison.control} ({d.value:+.4f}; {interval})."
                )
    return sentences
