"""A short headless Locust run against a real server process: reports, and gates that bite."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.support.bundles import SmallBundle
from tests.support.reaseq import RunningService

REPORT_FILES = (
    "summary.md",
    "summary.json",
    "locust_stats.csv",
    "locust_stats_history.csv",
    "locust.html",
    "latency.png",
)


def _loadtest(
    small_bundle: SmallBundle, report: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "loadtest",
        "--bundle-root", str(small_bundle.bundles), "--users-path", str(small_bundle.users),
        "--users", "3", "--spawn-rate", "3", "--candidates", "uniform:2:16",
        "--report-dir", str(report), *options,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_headless_run_writes_reports_and_passes_its_gates(
    small_bundle: SmallBundle,
    start_service: Callable[[dict[str, str]], RunningService],
    tmp_path: Path,
) -> None:
    service = start_service(small_bundle.service_env())
    done = _loadtest(
        small_bundle, tmp_path, "--target-url", service.url, "--duration", "4s",
        "--gate-p99-ms", "2000", "--gate-failure-ratio", "0.05", "--explain-ratio", "0.3",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    for name in REPORT_FILES:
        assert (tmp_path / name).is_file(), name
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["passed"] is True
    assert summary["client"]["requests"] > 20
    assert summary["client"]["failures"] == 0
    # The server saw at least what Locust recorded (Locust drops requests cut off at stop).
    assert summary["server"]["requests"] >= summary["client"]["requests"]
    assert summary["server"]["quantiles_ms"]["p99"] > 0
    assert {"fetch", "scorer", "serialisation"} <= set(summary["server"]["stage_mean_ms"])
    markdown = (tmp_path / "summary.md").read_text()
    assert "# Load test: PASSED" in markdown and "service /metrics" in markdown
    assert (tmp_path / "latency.png").read_bytes()[:4] == b"\x89PNG"


def test_an_impossible_p99_gate_fails_the_run(small_bundle: SmallBundle, tmp_path: Path) -> None:
    # No --target-url: the runner starts and stops the service itself.
    done = _loadtest(small_bundle, tmp_path, "--duration", "3s", "--gate-p99-ms", "0.001")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "gates failed: p99_ms" in done.stderr
    assert "# Load test: FAILED" in (tmp_path / "summary.md").read_text()
