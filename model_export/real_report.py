"""The real-data section of ``docs/RESULTS.md`` and the ``real_data`` key of ``results.json``.

The section sits between two markers in ``RESULTS.md``, so ``reaseq results`` (the synthetic
tables) and ``reaseq results-real`` each regenerate their own part and keep the other's. Every
sentence that reads the figures is derived from them here, never pasted.
"""

from __future__ import annotations

import json
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model_export.evaluate import SPARSE_USER_HISTORY
from model_export.real_data import (
    FULL,
    FULL_CANDIDATES,
    GATE,
    GATE_GBR,
    GATE_GBR_SLOTS,
    GATE_SELF_ATTENTION,
    GBR_BLOCK_DROPOUT,
    ID_ONLY,
    KNOWLEDGE_ONLY,
    POPULARITY,
    SUM,
    RealDataSpec,
    choose_full,
    run_seed,
)
from model_export.real_gbr_lines import gbr_lines
from model_export.report import machine_description
from model_export.results_sections import REAL_DATA_END, REAL_DATA_START

COMMAND = "reaseq results-real --source <ml-latest-small folder>"
START, END = REAL_DATA_START, REAL_DATA_END
#: Student's t at 97.5% by degrees of freedom (n - 1 seeds), for the gains' 95% intervals.
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306}
ROWS = (
    (POPULARITY, "popularity (behaviours before the request)"),
    (ID_ONLY, "ID only"),
    (KNOWLEDGE_ONLY, "knowledge only"),
    (SUM, "ID + knowledge, sum fusion"),
    (GATE, "ID + knowledge, gated fusion"),
    (GATE_SELF_ATTENTION, "ID + knowledge, gated, self-attention user encoder"),
    (
        GATE_GBR,
        "ID + knowledge, gated, + world GBR blocks (grown on the gated ranker, "
        f"hidden from {100 * GBR_BLOCK_DROPOUT:.0f}% of training requests)",
    ),
    (GATE_GBR_SLOTS, "the same, with a learned vector per slot of the block"),
    (FULL, "**full** (the ID + knowledge configuration best on mean validation GAUC)"),
)
PARTS = (("overall", "overall"), ("cold_items", "cold items"), ("sparse_users", "sparse users"))


def _stats(values: list[float]) -> dict[str, float]:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    half = T_975.get(len(values) - 1, 2.0) * std / len(values) ** 0.5 if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "ci95": half}


def _value(row: dict[str, Any], part: str, metric: str) -> float:
    found = row[part]
    return float(found[metric] if isinstance(found, dict) else getattr(found, metric))


def _sampled(row: dict[str, Any]) -> dict[str, float]:
    found = row["sampled"]
    return dict(found) if isinstance(found, dict) else found.as_dict()


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std per row, part and metric; per-seed gains over ID only; slice sizes."""
    names = [name for name, _ in ROWS if all(name in run["rows"] for run in runs)]
    table: dict[str, Any] = {}
    for name in names:
        table[name] = {}
        for part, _ in PARTS:
            for metric in ("auc", "gauc", "logloss", "examples"):
                values = [_value(run["rows"][name], part, metric) for run in runs]
                table[name][f"{part}/{metric}"] = _stats(values)
        for metric in ("hr@10", "ndcg@10", "requests"):
            values = [_sampled(run["rows"][name])[metric] for run in runs]
            table[name][f"sampled/{metric}"] = _stats(values)
    gains: dict[str, Any] = {}
    for name in names:
        if name == ID_ONLY:
            continue
        gains[name] = {}
        for part, _ in PARTS:
            for metric in ("auc", "gauc"):
                values = [
                    _value(run["rows"][name], part, metric)
                    - _value(run["rows"][ID_ONLY], part, metric)
                    for run in runs
                ]
                gains[name][f"{part}/{metric}"] = _stats(values)
        for metric in ("hr@10", "ndcg@10"):
            values = [
                _sampled(run["rows"][name])[metric] - _sampled(run["rows"][ID_ONLY])[metric]
                for run in runs
            ]
            gains[name][f"sampled/{metric}"] = _stats(values)
    summary = {"table": table, "gains_over_id_only": gains}
    if GATE_GBR in names and GATE in names:
        summary["gbr_gain"] = _row_gain(runs, GATE_GBR, GATE)
    if GATE_GBR_SLOTS in names and GATE_GBR in names:
        summary["slot_gain"] = _row_gain(runs, GATE_GBR_SLOTS, GATE_GBR) | {
            "validation/gauc": _stats(
                [
                    run["validation_gauc"][GATE_GBR_SLOTS] - run["validation_gauc"][GATE_GBR]
                    for run in runs
                ]
            )
        }
    generators = [run.get("generator") for run in runs]
    if all(generators):
        summary["generator"] = _recall_stats([g for g in generators if g])
        rolled = [g.get("rolling") for g in generators if g]
        if all(rolled):
            summary["generator"]["rolling"] = _recall_stats([r for r in rolled if r])
    return summary


def _row_gain(runs: list[dict[str, Any]], name: str, against: str) -> dict[str, Any]:
    """Per part and metric (AUC, GAUC), row ``name`` − row ``against``, over seeds."""
    return {
        f"{part}/{metric}": _stats(
            [
                _value(run["rows"][name], part, metric) - _value(run["rows"][against], part, metric)
                for run in runs
            ]
        )
        for part, _ in PARTS
        for metric in ("auc", "gauc")
    }


def _recall_stats(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Each method's recall and hit rate over the seeds' ``reports``."""
    return {
        figure: {
            method: _stats([report[figure][method] for report in reports])
            for method in reports[0][figure]
        }
        for figure in ("recall", "hit_rate")
    }


def _cell(stats: dict[str, float], signed: bool = False) -> str:
    mean = f"{stats['mean']:+.4f}" if signed else f"{stats['mean']:.4f}"
    return f"{mean} ± {stats['std']:.4f}"


def _main_table(table: dict[str, Any]) -> list[str]:
    lines = [
        "| ranker | AUC | GAUC | logloss | HR@10 | NDCG@10 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, label in ROWS:
        if name in table:
            row = table[name]
            cells = [
                _cell(row[key])
                for key in (
                    "overall/auc", "overall/gauc", "overall/logloss",
                    "sampled/hr@10", "sampled/ndcg@10",
                )
            ]  # fmt: skip
            lines.append(f"| {label} | {' | '.join(cells)} |")
    return lines


def _slice_table(table: dict[str, Any]) -> list[str]:
    header = "| ranker | " + " | ".join(
        f"AUC {label} | GAUC {label}" for _, label in PARTS[1:]
    ) + " |"  # fmt: skip
    lines = [header, "| --- |" + " --- | --- |" * (len(PARTS) - 1)]
    for name, label in ROWS:
        if name in table:
            cells = []
            for part, _ in PARTS[1:]:
                cells += [_cell(table[name][f"{part}/auc"]), _cell(table[name][f"{part}/gauc"])]
            lines.append(f"| {label} | {' | '.join(cells)} |")
    return lines


def _gain_table(gains: dict[str, Any]) -> list[str]:
    columns = [
        (f"{part}/{m}", f"{m.upper()} {label}") for part, label in PARTS for m in ("auc", "gauc")
    ]
    columns += [("sampled/hr@10", "HR@10")]
    lines = [
        "| ranker − ID only | " + " | ".join(label for _, label in columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for name, label in ROWS:
        if name in gains:
            cells = [
                f"{gains[name][key]['mean']:+.4f} ± {gains[name][key]['ci95']:.4f}"
                for key, _ in columns
            ]
            lines.append(f"| {label} | {' | '.join(cells)} |")
    return lines


def _findings(summary: dict[str, Any], runs: list[dict[str, Any]]) -> list[str]:
    """Sentences read off the figures (computed, so they follow the figures when rerun)."""
    table, gains = summary["table"], summary["gains_over_id_only"]
    lines = []
    if FULL in gains:
        full = gains[FULL]
        lines.append(
            f"- full − ID only, GAUC overall: {full['overall/gauc']['mean']:+.4f} "
            f"(95% interval ± {full['overall/gauc']['ci95']:.4f} over seeds); AUC on cold items "
            f"{full['cold_items/auc']['mean']:+.4f}; AUC on sparse users "
            f"{full['sparse_users/auc']['mean']:+.4f}."
        )
        for part, label in PARTS:
            size = table[FULL][f"{part}/examples"]["mean"]
            worse = full[f"{part}/gauc"]["mean"] < -table[ID_ONLY][f"{part}/gauc"]["std"]
            verdict = "below ID only by more than its std" if worse else "not below ID only"
            lines.append(f"- {label} ({size:.0f} impressions): full is {verdict} on GAUC.")
    if FULL in table and POPULARITY in table:
        hr = {name: table[name]["sampled/hr@10"]["mean"] for name in (FULL, ID_ONLY, POPULARITY)}
        lines.append(
            f"- HR@10: full {hr[FULL]:.4f}, ID only {hr[ID_ONLY]:.4f}, popularity "
            f"{hr[POPULARITY]:.4f}."
        )
    means = {
        name: statistics.fmean(run["validation_gauc"][name] for run in runs)
        for name in FULL_CANDIDATES
        if all(name in run["validation_gauc"] for run in runs)
    }
    if means:
        lines.append(
            "- Mean validation GAUC of the candidates: "
            + ", ".join(f"{name} {value:.4f}" for name, value in means.items())
            + f"; full is {runs[0]['full_is']}, the best of them, in every seed."
        )
    return lines


def render(spec: RealDataSpec, summary: dict[str, Any], runs: list[dict[str, Any]],
           context: dict[str, Any]) -> str:  # fmt: skip
    first = runs[0]
    data, knowledge = first["dataset"], first["knowledge"]
    lines = [
        START,
        "## Real data: MovieLens latest-small",
        "",
        f"_Regenerate with `{COMMAND}`; measured on {context['machine']}, "
        f"{context['generated_at']}, {context['seconds']:.0f} s in all._",
        "",
        f"Source `{data['source']}`: {data['items']} items, {data['users']} users, "
        f"{data['impressions']} impressions (seed {first['seed']}). Protocol:",
        "",
        f"- **Labels**: a rating ≥ {spec.loader.click_threshold:g} is a click and its request "
        f"gets {spec.loader.negatives_per_positive} sampled non-clicks; a lower rating is an "
        "observed non-click on its own.",
        "- **Negatives**: items the user never interacts with in the whole log, drawn in "
        "proportion to their interactions before the request (popularity known then).",
        f"- **Split by time**: train before the {spec.loader.split_quantile:g} quantile of "
        f"time, validation until the {spec.loader.test_quantile:g} quantile (early stopping, "
        "at most "
        f"{spec.ranker.epochs} epochs, patience {spec.ranker.patience}; the choice of `full`), "
        "test after it. Tags written after the training period are not used.",
        f"- **Knowledge**: offline backend over title, year, genres and tags, encoded by "
        f"{knowledge['encoder']}: {knowledge['distinct_vectors']} distinct vectors for "
        f"{knowledge['items']} items ({knowledge['distinct_texts']} distinct knowledge texts; "
        f"{knowledge['items_with_keywords']} items have tags).",
        f"- **HR@10 / NDCG@10**: each test click against {spec.sampled_items} items the user "
        "never touched, drawn by the same rule, scored with the request's history.",
        f"- **Slices**: cold items have no training ID; sparse users had at most "
        f"{SPARSE_USER_HISTORY} behaviours before the request.",
        f"- Seeds {', '.join(str(s) for s in spec.seeds)} (negatives and training): mean ± std.",
        "",
        "### Test period, all impressions",
        "",
        *_main_table(summary["table"]),
        "",
        "### Slices",
        "",
        *_slice_table(summary["table"]),
        "",
        "Impressions per slice (mean over seeds): "
        + ", ".join(
            f"{label} {summary['table'][ID_ONLY][f'{part}/examples']['mean']:.0f}"
            for part, label in PARTS
        )
        + ".",
        "",
        "### Gains over ID only (per seed, mean ± 95% interval)",
        "",
        *_gain_table(summary["gains_over_id_only"]),
        "",
        "### Read off the figures",
        "",
        *_findings(summary, runs),
        *gbr_lines(summary, runs, PARTS),
        END,
    ]
    return "\n".join(lines) + "\n"


def splice(document: str, section: str) -> str:
    """``document`` with its real-data section replaced by ``section`` (appended if absent)."""
    if START in document and END in document:
        head, rest = document.split(START, 1)
        _, tail = rest.split(END, 1)
        return head + section.rstrip("\n") + tail
    return document.rstrip("\n") + "\n\n" + section


def jsonable(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for run in runs:
        rows = {}
        for name, row in run["rows"].items():
            rows[name] = {
                part: value.as_dict() if hasattr(value, "as_dict") else value.model_dump()
                for part, value in row.items()
            }
        out.append(run | {"rows": rows})
    return out


def run_seeds(spec: RealDataSpec, jobs: int = 1) -> list[dict[str, Any]]:
    """Every seed's run, in seed order; ``jobs`` > 1 runs seeds in that many processes, each
    training on one thread (on few cores, one busy thread per process wastes no time on
    synchronising small ops)."""
    if jobs <= 1:
        runs = [run_seed(spec, seed) for seed in spec.seeds]
    else:
        single = replace(spec, ranker=replace(spec.ranker, threads=1))
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            runs = list(pool.map(run_seed, [single] * len(spec.seeds), spec.seeds))
    return runs


def write_real_results(spec: RealDataSpec, docs_dir: Path, jobs: int = 1) -> dict[str, Any]:
    """Run every seed; write the section of ``RESULTS.md`` and ``results.json["real_data"]``."""
    started = time.perf_counter()
    runs = run_seeds(spec, jobs)
    choose_full(runs)
    summary = summarise(runs)
    context = {
        "command": COMMAND,
        "machine": machine_description(),
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": time.perf_counter() - started,
    }
    docs_dir.mkdir(parents=True, exist_ok=True)
    markdown = docs_dir / "RESULTS.md"
    existing = markdown.read_text() if markdown.exists() else "# Offline results\n"
    markdown.write_text(splice(existing, render(spec, summary, runs, context)))
    results = docs_dir / "results.json"
    document = json.loads(results.read_text()) if results.exists() else {}
    spec_dict = asdict(spec) | {"source": spec.source.name}
    document["real_data"] = context | {"spec": spec_dict, "summary": summary,
                                       "runs": jsonable(runs)}  # fmt: skip
    results.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return document["real_data"]
