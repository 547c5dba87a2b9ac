"""Per-arm figures on a hand-made log whose answers are known exactly."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from offline.experiments import PredictionLogError, ReportSettings, folder_report, table_lines
from tests.offline.experiments.logs import outcome, prediction, write_log

ITEMS = ["i1", "i2", "i3", "i4"]


def _log(folder: Path) -> None:
    write_log(
        folder,
        [
            # control: u1 clicks positions 0 and 2 of r1 and orders position 2; r2 has no click;
            # u2 clicks position 1 of r3.
            prediction("r1", "u1", ITEMS, "control"),
            outcome("r1", "i1"),
            outcome("r1", "i3"),
            outcome("r1", "i3", "order"),
            prediction("r2", "u1", ITEMS, "control"),
            prediction("r3", "u2", ITEMS[:2], "control"),
            outcome("r3", "i2"),
            # treatment: u3 clicks position 3 of r4.
            prediction("r4", "u3", ITEMS, "treatment"),
            outcome("r4", "i4"),
            prediction("r5", "u0", ITEMS, None, experiment=None),  # outside any experiment
        ],
    )


def test_counts_and_metrics_are_exact(tmp_path: Path) -> None:
    _log(tmp_path)
    report = folder_report(tmp_path, ReportSettings(positions=3, replicates=200))
    control, treatment = report.arms
    assert report.control == "control" and control.arm == "control"
    assert (control.requests, control.users, control.impressions) == (3, 2, 10)
    assert (control.clicks, control.orders) == (3, 1)
    m = {name: value.value for name, value in control.metrics.items()}
    assert m["ctr"] == pytest.approx(3 / 10)
    assert m["orders_per_request"] == pytest.approx(1 / 3)
    dcg_r1 = 1 / math.log2(2) + 1 / math.log2(4)
    assert m["dcg"] == pytest.approx((dcg_r1 + 0 + 1 / math.log2(3)) / 3)
    assert m["mrr"] == pytest.approx((1 + 0 + 1 / 2) / 3)
    # Position 3 was shown only by r1 and r2 (r3 returned two items).
    assert (m["ctr@1"], m["ctr@2"], m["ctr@3"]) == pytest.approx((1 / 3, 1 / 3, 1 / 2))
    t = {name: value.value for name, value in treatment.metrics.items()}
    assert (t["ctr"], t["dcg"], t["mrr"]) == pytest.approx((1 / 4, 1 / math.log2(5), 1 / 4))
    (comparison,) = report.comparisons
    assert comparison.metrics["ctr"].difference.value == pytest.approx(1 / 4 - 3 / 10)
    assert comparison.metrics["ctr"].lift.value == pytest.approx((1 / 4) / (3 / 10) - 1)
    assert report.counts["answers_outside_experiment"] == 1


def test_intervals_hold_the_estimate_and_repeat_with_the_seed(tmp_path: Path) -> None:
    _log(tmp_path)
    settings = ReportSettings(positions=2, replicates=300, seed=7)
    first, again = folder_report(tmp_path, settings), folder_report(tmp_path, settings)
    for arm in first.arms:
        for estimate in arm.metrics.values():
            assert estimate.low <= estimate.value <= estimate.high
    assert first.as_dict() == again.as_dict()
    assert 0 < first.comparisons[0].metrics["ctr"].p_value <= 1


def test_control_and_experiment_can_be_named(tmp_path: Path) -> None:
    _log(tmp_path)
    report = folder_report(tmp_path, ReportSettings(control="treatment", experiment="exp"))
    assert [arm.arm for arm in report.arms] == ["treatment", "control"]
    lines = table_lines(report)
    assert any(line.startswith("| control − treatment | CTR |") for line in lines)


def test_one_version_can_be_kept(tmp_path: Path) -> None:
    newer = prediction("r9", "u9", ITEMS, "treatment") | {"experiment_version": 2}
    write_log(tmp_path, [prediction("r1", "u1", ITEMS, "control"), newer])
    pooled = folder_report(tmp_path, ReportSettings(control="control", replicates=100))
    assert pooled.versions == [1, 2] and len(pooled.arms) == 2
    second = folder_report(tmp_path, ReportSettings(version=2, replicates=100))
    assert second.versions == [2] and [arm.arm for arm in second.arms] == ["treatment"]


def test_a_log_of_several_experiments_needs_one_named(tmp_path: Path) -> None:
    write_log(
        tmp_path,
        [prediction("r1", "u1", ITEMS, "control"), prediction("r2", "u2", ITEMS, experiment="b")],
    )
    with pytest.raises(PredictionLogError, match=r"several \(exp, b\); name one"):
        folder_report(tmp_path)
    with pytest.raises(PredictionLogError, match="no answer of experiment 'c'; it has exp, b"):
        folder_report(tmp_path, ReportSettings(experiment="c"))
    assert folder_report(tmp_path, ReportSettings(experiment="b")).arms[0].requests == 1
