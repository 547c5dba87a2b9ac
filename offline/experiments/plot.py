"""An experiment report as a PNG: each arm's CTR with its interval, and CTR by position.

matplotlib comes with the ``train`` extra; it is imported when a plot is drawn, so reading and
reporting a log never needs it.
"""

from __future__ import annotations

from pathlib import Path

from offline.experiments.arms import CTR, position_metric
from offline.experiments.report import ExperimentReport


def plot_report(report: ExperimentReport, path: Path) -> Path:
    """Two panels: CTR per arm (bars, 95% interval) and CTR by position (one line per arm)."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers and in CI
    import matplotlib.pyplot as plt

    figure, (per_arm, by_position) = plt.subplots(1, 2, figsize=(10, 4))
    names = [arm.arm for arm in report.arms]
    ctr = [arm.metrics[CTR] for arm in report.arms]
    errors = [[c.value - c.low for c in ctr], [c.high - c.value for c in ctr]]
    per_arm.bar(names, [c.value for c in ctr], yerr=errors, capsize=6, color="#4c72b0")
    per_arm.set_ylabel("CTR (clicks / impressions)")
    per_arm.set_title("CTR per arm, 95% interval")
    per_arm.grid(axis="y", alpha=0.3)
    positions = list(range(report.settings.positions))
    for arm in report.arms:
        found = [arm.metrics[position_metric(p)] for p in positions]
        by_position.errorbar(
            [p + 1 for p in positions],
            [f.value for f in found],
            yerr=[[f.value - f.low for f in found], [f.high - f.value for f in found]],
            marker="o",
            capsize=4,
            label=arm.arm,
        )
    by_position.set_xlabel("position (1 = top)")
    by_position.set_ylabel("CTR")
    by_position.set_title("CTR by position")
    by_position.set_xticks([p + 1 for p in positions])
    by_position.legend()
    by_position.grid(alpha=0.3)
    figure.suptitle(f"experiment {report.experiment}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
