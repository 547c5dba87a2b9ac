"""The GPU benchmark script runs end to end on tiny shapes (CPU interpreter), so it is ready for a
GPU run and does not rot between them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def test_benchmark_smoke_run_writes_its_report(tmp_path: Path) -> None:
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run(
        [sys.executable, "-m", "kernels.benchmarks.target_attention_bench", "--smoke",
         "--out", str(tmp_path)],
        check=True, env=env, timeout=300,
    )  # fmt: skip
    document = json.loads((tmp_path / "kernels.json").read_text())
    assert document["device"] == "CPU (interpreter)"
    assert len(document["results"]) == 2
    for result in document["results"]:
        assert result["triton_ms"] > 0 and result["sdpa_ms"] > 0 and result["flops"] > 0
    assert "| Triton ms |" in (tmp_path / "KERNELS.md").read_text()
