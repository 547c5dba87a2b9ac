"""The report recovers a CTR difference planted in a simulated click stream, and finds none
between two arms that rank alike: the synthetic world's shoppers click on what each arm shows,
with the world's click probability times the examination of the position."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from offline.data.synthetic import ClickModel, SyntheticConfig, generate_with_truth
from offline.experiments import ReportSettings, findings, folder_report
from offline.experiments.plot import plot_report
from tests.offline.experiments.logs import Ranker, simulated_log, write_log

Ints = npt.NDArray[np.int64]


@pytest.fixture(scope="module")
def world() -> ClickModel:
    config = SyntheticConfig(n_items=1500, n_users=1200, n_days=10, mean_requests_per_user=2.0)
    _, truth = generate_with_truth(config)
    return ClickModel.of(config, truth)


def _by_affinity(world: ClickModel) -> Ranker:
    return lambda users, items: world.affinity(users[:, None], items)


def _random(seed: int) -> Ranker:
    rng = np.random.default_rng(seed)
    return lambda users, items: rng.random(items.shape)


def test_a_planted_ctr_difference_is_recovered(world: ClickModel, tmp_path: Path) -> None:
    arms = {"random": _random(1), "affinity": _by_affinity(world)}
    write_log(tmp_path, simulated_log(world, arms, requests_per_user=4, seed=3), files=3)
    report = folder_report(tmp_path, ReportSettings(control="random", replicates=500))
    ctr = report.comparisons[0].metrics["ctr"]
    assert report.comparisons[0].arm == "affinity"
    assert ctr.difference.low > 0 and ctr.p_value < 0.05
    assert report.comparisons[0].metrics["dcg"].difference.low > 0
    assert findings(report)[0].startswith("- CTR: affinity is ")
    assert "above random" in findings(report)[0]
    # Examination makes the top position the likeliest click, for both arms.
    for arm in report.arms:
        assert arm.metrics["ctr@1"].value > arm.metrics["ctr@5"].value
    assert plot_report(report, tmp_path / "ctr.png").stat().st_size > 0


def test_no_difference_is_found_between_arms_that_rank_alike(
    world: ClickModel, tmp_path: Path
) -> None:
    arms = {"a": _random(1), "b": _random(2)}
    write_log(tmp_path, simulated_log(world, arms, requests_per_user=4, seed=4))
    report = folder_report(tmp_path, ReportSettings(control="a", replicates=500))
    ctr = report.comparisons[0].metrics["ctr"]
    assert ctr.difference.low <= 0 <= ctr.difference.high
    assert findings(report)[0].startswith("- CTR: no difference detected between b and a")
