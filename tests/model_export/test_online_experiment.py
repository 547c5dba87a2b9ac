"""The simulated online experiment end to end: two real bundles served as arms by the real
service (a process on a loopback port), the world's shoppers' clicks sent to POST /v1/outcomes,
the prediction log read back, reported per arm and replayed; and its RESULTS.md section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model_export.experiment_section import PLOT_NAME, write_section
from model_export.online_experiment import (
    AA_ARMS,
    CONTROL,
    SHADOW,
    TREATMENT,
    SimulationRun,
    SimulationSpec,
    simulate,
)
from model_export.results_sections import EXPERIMENT_START, REAL_DATA_END, REAL_DATA_START
from offline.data.synthetic import SyntheticConfig
from service.contracts.manifest import read_manifest

SPEC = SimulationSpec(size="tiny", epochs=1, threads=1, requests_per_user=2, replicates=200)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimulationRun, Path]:
    out = tmp_path_factory.mktemp("simulate")
    return simulate(SPEC, out), out


def test_every_request_is_answered_by_an_arm_and_logged(
    simulated: tuple[SimulationRun, Path],
) -> None:
    run, _ = simulated
    requests = SyntheticConfig.preset("tiny").n_users * SPEC.requests_per_user
    ab, aa = run.ab, run.aa
    assert [arm.arm for arm in ab.arms] == [CONTROL, TREATMENT]
    assert [arm.arm for arm in aa.arms] == list(AA_ARMS)
    for report, key in ((ab, "ab"), (aa, "aa")):
        traffic = run.traffic[key]
        assert sum(arm.requests for arm in report.arms) == requests
        assert {arm.arm: arm.requests for arm in report.arms} == {
            arm.arm: traffic[arm.arm] for arm in report.arms
        }
        assert traffic["degraded"] == 0 and traffic["outcomes_dropped"] == 0
        assert sum(arm.clicks + arm.orders for arm in report.arms) == traffic["outcomes_sent"]
        assert report.counts["unmatched_outcomes"] == 0
        assert all(arm.impressions == arm.requests * SPEC.top_k for arm in report.arms)


def test_the_shadow_agrees_with_its_own_bundle(simulated: tuple[SimulationRun, Path]) -> None:
    run, _ = simulated
    rows = {row.served_arm: row for row in run.ab.shadows}
    assert set(rows) == {CONTROL, TREATMENT} and {row.shadow for row in rows.values()} == {SHADOW}
    assert rows[TREATMENT].overlap[SPEC.top_k] == 1.0
    assert rows[TREATMENT].rank_correlation == pytest.approx(1.0)
    assert sum(row.requests for row in rows.values()) == sum(a.requests for a in run.ab.arms)


def test_replay_gives_each_bundle_its_recorded_evaluation(
    simulated: tuple[SimulationRun, Path],
) -> None:
    run, out = simulated
    for arm, variant in ((CONTROL, "id_only"), (TREATMENT, "model")):
        recorded = read_manifest(out / "bundles" / f"sim-{arm}-s{SPEC.seed}").metrics[variant]
        assert run.replay.evaluation[arm].auc == pytest.approx(recorded.auc, abs=1e-4)
    assert sum(run.replay.served_by.values()) == run.replay.answers > 0
    written = json.loads((out / "simulation.json").read_text())
    assert written["ab"]["control"] == CONTROL and written["aa"]["control"] == AA_ARMS[0]
    assert (out / "ctr-ab.png").stat().st_size > 0


def test_the_section_replaces_only_its_own(
    simulated: tuple[SimulationRun, Path], tmp_path: Path
) -> None:
    run, out = simulated
    results = tmp_path / "RESULTS.md"
    real = f"{REAL_DATA_START}\nreal data\n{REAL_DATA_END}"
    results.write_text(f"# Offline results\n\ntables\n\n{real}\n")
    command = "reaseq experiment simulate --size tiny"
    write_section(run, results, out / "ctr-ab.png", command)
    first = results.read_text()
    write_section(run, results, out / "ctr-ab.png", command)
    again = results.read_text()
    assert again.count(EXPERIMENT_START) == 1 and real in again
    assert again.startswith("# Offline results\n\ntables\n\n")
    assert f"_Regenerate with `{command}`; measured on " in again
    assert "- CTR: " in again and (tmp_path / PLOT_NAME).exists()
    assert first.split("measured on")[0] == again.split("measured on")[0]
