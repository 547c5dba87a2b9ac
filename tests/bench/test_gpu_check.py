"""``make gpu-check`` is ready for the day a GPU is there: its dry run takes the same steps on the
CPU at tiny sizes, and the real run's plan fits its 8 minutes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.gpu_check import BUDGET_S, LIMITS_S, steps


def test_the_gpu_run_plans_parity_kernels_and_serving_within_eight_minutes() -> None:
    planned = steps("python", Path("docs"), Path("var/gpu-check"), dry_run=False)
    assert [s.name for s in planned] == ["parity", "kernels", "serving"]
    parity, kernels, serving = (" ".join(s.command) for s in planned)
    assert "tests/service/device" in parity and "not slow" in parity
    assert "--sweep standard" in kernels and "--out docs" in kernels
    assert "bench.device_serving" in serving and "--tiny" not in serving
    assert all("TRITON_INTERPRET" not in s.env for s in planned)
    assert sum(LIMITS_S.values()) <= BUDGET_S <= 8 * 60


def test_the_dry_run_runs_the_cpu_safe_parts(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("triton")
    done = subprocess.run(
        [sys.executable, "-m", "bench.gpu_check", "--dry-run", "--work", str(tmp_path)],
        capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "gpu-check dry run done" in done.stdout
    for step in ("parity", "kernels", "serving"):
        assert f"{step:8} ok" in done.stdout
    docs = tmp_path / "docs"
    kernels = json.loads((docs / "kernels.json").read_text())
    assert kernels["device"] == "CPU (interpreter)" and kernels["results"]
    serving = json.loads((docs / "device_serving.json").read_text())
    assert serving["plan"].startswith("device path on cpu")
    assert {r["workload"] for r in serving["results"]} == {"W1-tiny", "W2-tiny"}
    assert all(r["requests"] > 0 and r["p99_ms"] > 0 for r in serving["results"])
    assert "| W2-tiny |" in (docs / "DEVICE_SERVING.md").read_text()
