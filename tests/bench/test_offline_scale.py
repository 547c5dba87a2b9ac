"""``python -m bench.offline_scale`` on the tiny preset: both paths of every stage measured, a
capacity plan, and its section of SCALE.md written beside the loaders' one, each writer keeping
the other's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench import loader_scale
from bench.offline_scale_plan import SECTION, capacity_plan, ray_efficiency

ROOT = Path(__file__).resolve().parents[2]
STAGES = {"knowledge", "encode", "generate", "publish"}


def test_tiny_run_measures_every_stage_and_keeps_the_loaders_section(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "SCALE.md").write_text("# Scale\n\n## Loaders\n\nloader figures\n")
    command = [
        sys.executable, "-m", "bench.offline_scale", "--preset", "tiny", "--generate-users", "40",
        "--num-cpus", "2", "--shard-rows", "64", "--gbr-tokens", "items",
        "--work-dir", str(tmp_path / "work"), "--docs-dir", str(docs),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REASEQ_", "RAY_"))}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=900, cwd=ROOT, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads((docs / "offline_scale.json").read_text())
    assert set(report["ray"]) == STAGES
    assert set(report["single"]) == STAGES | {"knowledge (fast path)"}
    assert report["dataset"]["generated_users"] == 40 == report["ray"]["generate"]["rows"]
    assert report["single"]["encode"]["rows"] == report["ray"]["encode"]["rows"] == 300
    assert report["command"].startswith("python -m bench.offline_scale --preset tiny")
    assert report["capacity"]["nearline_cycle"]["workers"] >= 1
    assert set(report["capacity"]["passes"]) == STAGES
    text = (docs / "SCALE.md").read_text()
    assert "## Loaders\n\nloader figures\n" in text and SECTION in text
    assert report["machine"] in text and report["command"] in text

    loader_scale.write_section(docs, "## Loaders\n\nnew loader figures\n")
    text = (docs / "SCALE.md").read_text()
    assert "new loader figures" in text and text.count("loader figures") == 1
    assert SECTION in text and "### Capacity plan" in text


def test_capacity_plan_scales_the_measured_rate_per_core() -> None:
    run = {"rows": 1000, "seconds": 2.0, "cores": 2}  # 250 rows/s per core
    report = {
        "plan": {
            "cores_per_node": 10, "target_users": 9_000_000, "target_items": 900_000,
            "active_users_per_s": 5_000, "cycle_s": 300,
        },
        "ray": {"generate": run, "encode": run},
        "single": {"generate": {"rows": 500, "seconds": 1.0, "cores": 1}},
    }  # fmt: skip
    plan = capacity_plan(report)
    assert set(plan["passes"]) == {"generate", "encode"}
    assert plan["passes"]["generate"]["node_hours"] == 9_000_000 / (250 * 10) / 3600
    assert plan["passes"]["encode"]["rows"] == 900_000
    # 5,000 users a second need 20 cores at 250 a core: 2 nodes of 10.
    assert plan["nearline_cycle"] == {"users": 1_500_000, "workers": 20, "nodes": 2}
    assert ray_efficiency(report) == {"generate": 0.5}
