"""Agreement of a shadow arm with the arm that served the same request."""

from __future__ import annotations

from pathlib import Path

import pytest

from offline.experiments import ReportSettings, folder_report
from offline.experiments.shadows import overlap_at, spearman
from tests.offline.experiments.logs import prediction, write_log


def test_overlap_and_rank_correlation() -> None:
    served = ["i1", "i2", "i3", "i4"]
    assert overlap_at(served, served, 2) == 1.0
    assert overlap_at(["i2", "i9", "i1"], served, 2) == 0.5
    assert overlap_at(["i1"], served, 10) == 1.0  # cut to the shorter list
    assert overlap_at([], served, 3) is None
    assert spearman(served, served) == pytest.approx(1.0)
    assert spearman(served[::-1], served) == pytest.approx(-1.0)
    assert spearman(["i1", "i9"], served) is None  # one common item


def test_shadow_rows_per_serving_arm(tmp_path: Path) -> None:
    write_log(
        tmp_path,
        [
            prediction("r1", "u1", ["i1", "i2", "i3"], "a"),
            prediction("r1", "u1", ["i1", "i2", "i3"], "candidate", shadow=True),
            prediction("r2", "u2", ["i1", "i2", "i3"], "b"),
            prediction("r2", "u2", ["i3", "i2", "i1"], "candidate", shadow=True),
            prediction("r3", "u3", ["i1"], "candidate", shadow=True),  # never served
        ],
    )
    report = folder_report(tmp_path, ReportSettings(control="a", replicates=50))
    rows = {(row.shadow, row.served_arm): row for row in report.shadows}
    assert rows["candidate", "a"].overlap[1] == 1.0
    assert rows["candidate", "a"].rank_correlation == pytest.approx(1.0)
    assert rows["candidate", "b"].overlap[1] == 0.0
    assert rows["candidate", "b"].rank_correlation == pytest.approx(-1.0)
    assert report.counts["shadows_without_answer"] == 1
