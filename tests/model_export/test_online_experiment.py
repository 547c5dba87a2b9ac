"""The simulated online experiment end to end: real bundles served as arms by the real service
(a process on a loopback port), each reading its own user snapshot (the full model's with the
generated blocks), the world's shoppers' clicks sent to POST /v1/outcomes, the prediction log
read back, reported per arm and replayed; and its RESULTS.md section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model_export.experiment_section import PLOT_NAME, write_section
from model_export.online_experiment import (
    AA_ARMS,
    ARM_VARIANTS,
    CONTROL,
    SHADOW,
    TREATMENT,
    SimulationRun,
    SimulationSpec,
    degraded_key,
    simulate,
)
from model_export.results_sections import EXPERIMENT_START, REAL_DATA_END, REAL_DATA_START
from offline.data.canonical import Dataset
from offline.data.synthetic import SyntheticConfig
from service.contracts.bundle_root import recorded_user_snapshot
from service.contracts.manifest import read_manifest
from service.experiments import records
from service.ranking.result import Degradation
from service.stores.snapshot import UserSnapshot

SPEC = SimulationSpec(
    size="tiny", epochs=1, generated=4, gbr_epochs=1, threads=1, requests_per_user=2, replicates=200
)
NO_GENERATED = Degradation.NO_GENERATED_BEHAVIOURS.value
FULL_ARMS = (TREATMENT, *AA_ARMS)


def _bundle(out: Path, arm: str) -> Path:
    return out / "bundles" / f"sim-{arm}-s{SPEC.seed}"


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
        # The one degradation: a full-model answer to a user without a generated block.
        missing = [traffic.get(degraded_key(arm, NO_GENERATED), 0) for arm in FULL_ARMS]
        assert traffic["degraded"] == sum(missing) and traffic["outcomes_dropped"] == 0
        assert sum(arm.clicks + arm.orders for arm in report.arms) == traffic["outcomes_sent"]
        assert report.counts["unmatched_outcomes"] == 0
        assert all(arm.impressions == arm.requests * SPEC.top_k for arm in report.arms)


def _served(folder: Path) -> list[dict[str, Any]]:
    """The prediction records of the answers shown (shadow rankings left out)."""
    lines = [
        json.loads(line)
        for path in sorted(folder.glob(records.LOG_FILE_GLOB))
        for line in path.read_text().splitlines()
    ]
    return [r for r in lines if r["kind"] == "prediction" and not r["shadow"]]


def test_each_bundle_reads_its_own_snapshot_and_the_blocks_reach_the_full_arm(
    simulated: tuple[SimulationRun, Path],
) -> None:
    run, out = simulated
    dataset = Dataset.load(out / "data")
    snapshots = {arm: recorded_user_snapshot(_bundle(out, arm)) for arm in ARM_VARIANTS}
    assert len({str(path) for path in snapshots.values()}) == len(ARM_VARIANTS)
    loaded = {arm: UserSnapshot.load(path) for arm, path in snapshots.items() if path}
    assert all(snapshot.users == len(dataset.user_ids) for snapshot in loaded.values())
    assert loaded[CONTROL].generated_blocks is None and loaded[SHADOW].generated_blocks is None
    # The full bundle's snapshot: a block for every user with a behaviour to generate from.
    blocks = loaded[TREATMENT].generated_blocks
    active = dataset.user_ids[np.unique(dataset.behaviours.user_idx)]
    assert blocks is not None and set(blocks.user_ids.tolist()) == set(active.tolist())
    assert run.nearline["users_generated"] == len(active)
    manifest = read_manifest(_bundle(out, TREATMENT))
    assert manifest.generator is not None and blocks.version == manifest.generator.version
    assert manifest.max_lengths.generated == SPEC.generated
    # Every answer of the full model to such a user came with the block (nothing degraded).
    with_block = set(blocks.user_ids.tolist())
    for key in ("ab", "aa"):
        full = [r for r in _served(out / key / "predictions") if r["arm"] in FULL_ARMS]
        assert sum(r["user_id"] in with_block for r in full) > 0
        for record in full:
            assert (NO_GENERATED in record["degraded"]) == (record["user_id"] not in with_block)


def test_the_shadow_reranks_every_request(simulated: tuple[SimulationRun, Path]) -> None:
    run, _ = simulated
    rows = {row.served_arm: row for row in run.ab.shadows}
    assert set(rows) == {CONTROL, TREATMENT} and {row.shadow for row in rows.values()} == {SHADOW}
    assert sum(row.requests for row in rows.values()) == sum(a.requests for a in run.ab.arms)
    assert all(0.0 <= row.overlap[SPEC.top_k] <= 1.0 for row in rows.values())


def test_replay_gives_each_bundle_its_recorded_evaluation(
    simulated: tuple[SimulationRun, Path],
) -> None:
    run, out = simulated
    for arm, variant in ARM_VARIANTS.items():
        recorded = read_manifest(_bundle(out, arm)).metrics[variant]
        assert run.replay.evaluation[arm].auc == pytest.approx(recorded.auc, abs=1e-4)
    generator = read_manifest(_bundle(out, TREATMENT)).generator
    assert generator is not None and run.replay.generated_blocks == {TREATMENT: generator.version}
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
    ab = run.traffic["ab"]
    missing = ab.get(degraded_key(TREATMENT, NO_GENERATED), 0)
    assert f"{missing} of the {ab[TREATMENT]} {TREATMENT} answers came without" in again
    assert f"**{TREATMENT}** (IDs fused with knowledge vectors, attending over 4 generated" in again
    assert f"### A/A: the {TREATMENT} bundle in both arms" in again
    assert f"{TREATMENT} with each request's generated block" in again
    assert first.split("measured on")[0] == again.split("measured on")[0]
