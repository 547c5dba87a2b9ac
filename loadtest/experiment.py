"""A load test of two bundles served side by side: an experiment of the bundle root's current
version against a second version, half the users each, every answer in the prediction log."""

from __future__ import annotations

import json
from pathlib import Path

from service.contracts.bundle_root import read_current

EXPERIMENT_NAME = "loadtest"


def experiment_env(bundle_root: Path, second_version: str, report_dir: Path) -> dict[str, str]:
    """The service settings that run the experiment: its file (written into ``report_dir``) and
    a prediction log beside it. Raises ``FileNotFoundError`` when either bundle is missing."""
    current = read_current(bundle_root)
    for version in (current, second_version):
        if not (bundle_root / version).is_dir():
            raise FileNotFoundError(
                f"bundle {version} is not under {bundle_root}: export it first, e.g. "
                f"reaseq export --version {version} --no-activate"
            )
    config = {
        "name": EXPERIMENT_NAME,
        "version": 1,
        "salt": EXPERIMENT_NAME,
        "arms": [
            {"name": "current", "bundle": current, "share": 0.5},
            {"name": "second", "bundle": second_version, "share": 0.5},
        ],
    }
    path = report_dir / "experiment.json"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return {
        "REASEQ_EXPERIMENT_FILE": str(path),
        "REASEQ_PREDICTION_LOG": "experiment",
        "REASEQ_PREDICTION_LOG_SINK": "file",
        "REASEQ_PREDICTION_LOG_DIR": str(report_dir / "predictions"),
    }
