"""The offline results report: model vs ID-only vs random over several seeds.

Writes ``docs/RESULTS.md`` (a table of mean ± std) and ``docs/results.json`` (the same figures
and every seed's raw metrics), both from one run of ``reaseq results``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model_export.pipeline import ID_ONLY, MODEL, RANDOM, train_run
from model_export.train import TrainConfig
from offline.data.synthetic import SyntheticConfig, generate
from service.contracts.manifest import EvaluationMetrics

METRICS = ("auc", "gauc", "logloss")
ROWS = (MODEL, ID_ONLY, RANDOM)
SLICES = ("cold_items", "sparse_users")
COMMAND = "reaseq results"


@dataclass(frozen=True)
class ResultsSpec:
    size: str = "demo"
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = TrainConfig.epochs


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()}, Python {platform.python_version()}"
    return f"{os.cpu_count()} CPU cores ({cpu}), {system}"


def run_seeds(spec: ResultsSpec) -> list[dict[str, EvaluationMetrics]]:
    """Generate the dataset, train the ranker and the ID-only baseline, once per seed."""
    runs = []
    for seed in spec.seeds:
        dataset = generate(SyntheticConfig.preset(spec.size, seed=seed))
        config = TrainConfig(epochs=spec.epochs, seed=seed, progress=False)
        runs.append(train_run(dataset, config).metrics)
    return runs


def summarise(runs: list[dict[str, EvaluationMetrics]]) -> dict[str, dict[str, dict[str, float]]]:
    """``{row: {metric: {"mean", "std"}}}`` over seeds, for every row and slice present."""
    names = [name for name in runs[0] if all(name in run for run in runs)]
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for name in names:
        summary[name] = {}
        for metric in METRICS:
            values = [getattr(run[name], metric) for run in runs]
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            summary[name][metric] = {"mean": statistics.fmean(values), "std": std}
    return summary


def _cell(stats: dict[str, float]) -> str:
    return f"{stats['mean']:.4f} ± {stats['std']:.4f}"


def _table(summary: dict[str, dict[str, dict[str, float]]], names: list[str]) -> list[str]:
    lines = ["| model | AUC | GAUC | logloss |", "| --- | --- | --- | --- |"]
    for name in names:
        if name in summary:
            cells = " | ".join(_cell(summary[name][metric]) for metric in METRICS)
            lines.append(f"| {name} | {cells} |")
    return lines


def render_markdown(spec: ResultsSpec, summary: dict[str, Any], context: dict[str, Any]) -> str:
    lines = [
        "# Offline results",
        "",
        f"Regenerate with `{COMMAND}` (or `make results`); it also writes `docs/results.json`.",
        "",
        f"Synthetic data, preset `{spec.size}`, time split (train before the split time, evaluate "
        f"after it), seeds {', '.join(map(str, spec.seeds))}: mean ± std over seeds. "
        f"Measured on {context['machine']}, {context['generated_at']}, "
        f"{context['seconds']:.0f} s in all.",
        "",
        "- **model**: ID embedding fused with the knowledge (semantic) vector, target attention "
        "over the real sequence.",
        "- **id_only**: the same ranker without the semantic vectors.",
        "- **random**: the training click rate with a small random jitter (random order, base-rate "
        "calibration).",
        "",
        "GAUC is the per-user AUC weighted by impressions, over users with both clicks and "
        "non-clicks.",
        "",
        "## All evaluation impressions",
        "",
        *_table(summary, list(ROWS)),
    ]
    for slice_name in SLICES:
        names = [f"{row}/{slice_name}" for row in (MODEL, ID_ONLY)]
        if any(name in summary for name in names):
            title = slice_name.replace("_", " ")
            lines += ["", f"## Slice: {title}", "", *_table(summary, names)]
    lines += [
        "",
        "Cold items are items without a trained ID embedding (never in the training logs); "
        "sparse users have a short history before the request.",
        "",
    ]
    return "\n".join(lines)


def write_results(spec: ResultsSpec, docs_dir: Path) -> dict[str, Any]:
    """Run every seed and write ``RESULTS.md`` and ``results.json`` under ``docs_dir``."""
    started = time.perf_counter()
    runs = run_seeds(spec)
    summary = summarise(runs)
    context = {
        "command": COMMAND,
        "machine": machine_description(),
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": time.perf_counter() - started,
    }
    document = {
        **context,
        "spec": asdict(spec),
        "summary": summary,
        "runs": [{name: m.model_dump() for name, m in run.items()} for run in runs],
    }
    docs_dir.mkdir(parents=True, exist_ok=True)
    (docs_dir / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    (docs_dir / "RESULTS.md").write_text(render_markdown(spec, summary, context))
    return document
