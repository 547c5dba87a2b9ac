"""The offline results report: model vs ID-only vs random over several seeds.

Writes ``docs/RESULTS.md`` (tables of mean ± std) and ``docs/results.json`` (the same figures
and every seed's raw metrics), both from one run of ``reaseq results``. The first table answers
the question the knowledge step exists for: do reasoning-enhanced item vectors help over IDs
alone, overall, on cold items and on sparse users? Its gains are computed per seed (same data,
same seed for both rankers) and then averaged.
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

from model_export.evaluate import SPARSE_USER_HISTORY
from model_export.pipeline import ID_ONLY, MODEL, RANDOM, encode_items, train_run
from model_export.train import TrainConfig
from offline.data.synthetic import SyntheticConfig, generate
from offline.knowledge import KNOWLEDGE_SCHEMA_VERSION, OfflineKnowledgeBackend
from service.contracts.manifest import EvaluationMetrics

METRICS = ("auc", "gauc", "logloss")
ROWS = (MODEL, ID_ONLY, RANDOM)
SLICES = ("cold_items", "sparse_users")
COMMAND = "reaseq results"
#: Rows of the knowledge table: the overall evaluation and each slice.
KNOWLEDGE_ROWS = (
    ("all impressions", ""),
    ("cold items", "/cold_items"),
    ("sparse users", "/sparse_users"),
)
GAIN_METRICS = ("auc", "gauc")


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


def run_seeds(spec: ResultsSpec) -> tuple[list[dict[str, EvaluationMetrics]], str]:
    """Generate the dataset, train the ranker and the ID-only baseline, once per seed.

    Also returns the text encoder's name: the knowledge comes from the offline agent backend
    (its fast whole-catalogue path, which writes the same records as the agent team).
    """
    runs, encoder = [], ""
    for seed in spec.seeds:
        dataset = generate(SyntheticConfig.preset(spec.size, seed=seed))
        config = TrainConfig(epochs=spec.epochs, seed=seed, progress=False)
        semantic = encode_items(dataset.catalogue, seed=seed, backend=OfflineKnowledgeBackend())
        encoder = f"{semantic.encoder.name} ({semantic.encoder.dim} dims)"
        runs.append(train_run(dataset, config, semantic=semantic).metrics)
    return runs, encoder


def knowledge_gains(
    runs: list[dict[str, EvaluationMetrics]],
) -> dict[str, dict[str, dict[str, float]]]:
    """Per row of the knowledge table: ID-only, ID + knowledge and the gain, mean and std."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for label, suffix in KNOWLEDGE_ROWS:
        model, ids = MODEL + suffix, ID_ONLY + suffix
        if not all(model in run and ids in run for run in runs):
            continue
        row: dict[str, dict[str, float]] = {}
        for metric in GAIN_METRICS:
            series = {
                f"id_only_{metric}": [getattr(run[ids], metric) for run in runs],
                f"knowledge_{metric}": [getattr(run[model], metric) for run in runs],
            }
            series[f"gain_{metric}"] = [
                k - i
                for k, i in zip(
                    series[f"knowledge_{metric}"], series[f"id_only_{metric}"], strict=True
                )
            ]
            row |= {name: _stats(values) for name, values in series.items()}
        row["examples"] = _stats([float(run[model].examples) for run in runs])
        table[label] = row
    return table


def _stats(values: list[float]) -> dict[str, float]:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std}


def summarise(runs: list[dict[str, EvaluationMetrics]]) -> dict[str, dict[str, dict[str, float]]]:
    """``{row: {metric: {"mean", "std"}}}`` over seeds, for every row and slice present."""
    names = [name for name in runs[0] if all(name in run for run in runs)]
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for name in names:
        summary[name] = {}
        for metric in METRICS:
            summary[name][metric] = _stats([getattr(run[name], metric) for run in runs])
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


def _knowledge_table(gains: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    lines = [
        "| evaluated on | impressions | AUC ID only | AUC ID + knowledge | AUC gain "
        "| GAUC ID only | GAUC ID + knowledge | GAUC gain |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, row in gains.items():
        cells = [f"{row['examples']['mean']:.0f}"]
        for metric in GAIN_METRICS:
            cells += [_cell(row[f"id_only_{metric}"]), _cell(row[f"knowledge_{metric}"])]
            gain = row[f"gain_{metric}"]
            cells.append(f"{gain['mean']:+.4f} ± {gain['std']:.4f}")
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return lines


def render_markdown(
    spec: ResultsSpec,
    summary: dict[str, Any],
    context: dict[str, Any],
    gains: dict[str, Any] | None = None,
) -> str:
    knowledge = [
        "## Reasoning-enhanced item vectors vs ID only",
        "",
        "Both rankers are the same target-attention model trained on the same data with the same "
        "seed; **ID + knowledge** fuses each item's ID embedding with its knowledge vector "
        f"(records of schema v{KNOWLEDGE_SCHEMA_VERSION} from the agent team on the offline "
        f"backend, encoded by {context.get('encoder', 'the default encoder')}), **ID only** has "
        "no knowledge vector. Gains are per seed, then mean ± std.",
        "",
        *_knowledge_table(gains or {}),
        "",
        "- **cold items**: impressions of items held out of training entirely: they appear in no "
        "training impression or behaviour, so they have no trained ID embedding (on this data, "
        "the items the generator launches after the split time).",
        f"- **sparse users**: impressions of requests whose user had at most {SPARSE_USER_HISTORY} "
        "real behaviours (events) before the request.",
        "",
    ]
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
        *knowledge,
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
        "Cold items are held out of training entirely (no trained ID embedding); sparse users "
        f"have at most {SPARSE_USER_HISTORY} behaviours before the request.",
        "",
    ]
    return "\n".join(lines)


def write_results(spec: ResultsSpec, docs_dir: Path) -> dict[str, Any]:
    """Run every seed and write ``RESULTS.md`` and ``results.json`` under ``docs_dir``."""
    started = time.perf_counter()
    runs, encoder = run_seeds(spec)
    summary = summarise(runs)
    gains = knowledge_gains(runs)
    context = {
        "command": COMMAND,
        "encoder": encoder,
        "machine": machine_description(),
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": time.perf_counter() - started,
    }
    document = {
        **context,
        "spec": asdict(spec),
        "summary": summary,
        "knowledge_vs_id_only": gains,
        "runs": [{name: m.model_dump() for name, m in run.items()} for run in runs],
    }
    docs_dir.mkdir(parents=True, exist_ok=True)
    (docs_dir / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    (docs_dir / "RESULTS.md").write_text(render_markdown(spec, summary, context, gains))
    return document
