"""The ``reaseq`` steps one by one, as an operator runs them: data, train, export, publish."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from service.contracts.bundle_root import read_current, recorded_user_snapshot
from service.contracts.manifest import read_manifest, verify_files
from service.stores.snapshot import UserSnapshot
from tests.support.reaseq import run_reaseq


def test_data_train_export_publish(tmp_path: Path) -> None:
    data, run, bundles = tmp_path / "data", tmp_path / "run", tmp_path / "bundles"
    users = tmp_path / "users.npz"

    out = run_reaseq("data", "--size", "tiny", "--out", str(data), "--seed", "3")
    assert "300 items" in out
    out = run_reaseq("train", "--data", str(data), "--out", str(run), "--epochs", "1")
    metrics = json.loads(out)
    assert {"model", "id_only", "random"} <= set(metrics)

    out = run_reaseq("export", "--model", str(run), "--data", str(data), "--bundles", str(bundles))
    version = read_current(bundles)
    bundle_dir = bundles / version
    manifest = read_manifest(bundle_dir)
    verify_files(bundle_dir, manifest)
    assert manifest.metrics["model"].auc == metrics["model"]["auc"]
    parity = float(out.split("parity (max abs score difference):")[1].split()[0])
    assert parity <= 1e-4

    run_reaseq(
        "publish", "--data", str(data), "--bundles", str(bundles), "--users-path", str(users)
    )
    assert recorded_user_snapshot(bundle_dir).resolve() == users.resolve()  # served with it
    snapshot = UserSnapshot.load(users)
    assert snapshot.users == 150
    sequences = [snapshot.sequence(f"u{n}") for n in range(150)]
    lengths = [len(s) for s in sequences if s is not None]
    assert max(lengths) <= manifest.max_lengths.sequence
    assert all(np.all(np.diff(s.timestamps) >= 0) for s in sequences if s is not None)


def test_a_bad_option_is_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "data", "--size", "huge", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "huge" in done.stderr
