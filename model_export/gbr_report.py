"""The generator's sections of the results report: beyond-log hit rate, semantic consistency,
the hidden secondary interest, and generation cost.

Figures come from :func:`offline.gbr.evaluate_generator`, once per seed, and are summarised here
as mean ± std over seeds; the cost grid is measured once (the first seed), since it is a property
of the machine and the model's size rather than of the data.
"""

from __future__ import annotations

import statistics
from typing import Any

from offline.gbr import GBRTrainConfig

#: Methods in the order the tables list them, with the name a reader sees.
METHODS: dict[str, str] = {
    "gbr": "GBR (diffusion)",
    "gbr_world": "world GBR: pretrained on the world corpus, beyond-log slots",
    "gbr_beyond": "GBR (logs only) with the same beyond-log slots",
    "gbr_complements": "GBR + knowledge complements",
    "cooccurrence": "item-to-item co-occurrence",
    "semantic_nn": "last-item nearest neighbours (semantic)",
    "popularity": "popularity",
    "random": "random",
}
#: Per-method figures of one evaluation report, summarised over seeds.
PER_METHOD = ("recall", "hit_rate", "semantic_consistency", "secondary_interest_share")
#: Scalar diagnostics of the secondary interest (see :func:`offline.gbr.secondary_visibility`).
VISIBILITY = (
    "history_share",
    "catalogue_share",
    "users_with_any",
    "primary_main_kind",
    "complement_top1",
    "complement_top3",
)


def _stats(values: list[float]) -> dict[str, float]:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std}


def summarise_generator(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """``{figure: {method: {"mean", "std"}}}`` over seeds, the visibility diagnostics, the cost
    grid of the first report and the seconds spent training and generating."""
    summary: dict[str, Any] = {}
    for figure in PER_METHOD:
        if not all(figure in report for report in reports):
            continue
        methods = [m for m in METHODS if all(m in report[figure] for report in reports)]
        summary[figure] = {m: _stats([r[figure][m] for r in reports]) for m in methods}
    visible = [r["secondary_visibility"] for r in reports if "secondary_visibility" in r]
    if len(visible) == len(reports):
        summary["secondary_visibility"] = {
            key: _stats([v[key] for v in visible]) for key in VISIBILITY if key in visible[0]
        }
    if all("block_secondary_share" in r for r in reports):
        sources = list(reports[0]["block_secondary_share"])
        summary["block_secondary_share"] = {
            s: _stats([r["block_secondary_share"][s] for r in reports]) for s in sources
        }
    if all("by_history" in r for r in reports):
        parts = [r["by_history"] for r in reports]
        summary["by_history"] = {
            part: {
                "primary_main_kind": _stats([p[part]["primary_main_kind"] for p in parts]),
                "block_secondary_share": {
                    s: _stats([p[part]["block_secondary_share"][s] for p in parts])
                    for s in figures["block_secondary_share"]
                },
            }
            for part, figures in parts[0].items()
        }
    for key in ("train_seconds", "generation_seconds", "users"):
        values = [float(r[key]) for r in reports if r.get(key) is not None]
        if values:
            summary[key] = _stats(values)
    summary["cost"] = next((r["cost"] for r in reports if r.get("cost")), [])
    summary["k"], summary["steps"] = reports[0]["k"], reports[0]["steps"]
    return summary


def _cell(stats: dict[str, float], digits: int = 4) -> str:
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def cost_lines(summary: dict[str, Any]) -> list[str]:
    """Users per second, one row per K and one column per S."""
    cost = summary.get("cost", [])
    if not cost:
        return ["(not measured)"]
    steps = sorted({row["steps"] for row in cost})
    by = {(row["k"], row["steps"]): row["users_per_s"] for row in cost}
    lines = [
        "| K \\ S | " + " | ".join(f"S={s}" for s in steps) + " |",
        "| --- |" + " --- |" * len(steps),
    ]
    for k in sorted({row["k"] for row in cost}):
        cells = [f"{by[(k, s)]:.0f}" if (k, s) in by else "–" for s in steps]
        lines.append(f"| K={k} | " + " | ".join(cells) + " |")
    return lines


def visibility_lines(summary: dict[str, Any]) -> list[str]:
    visible = summary.get("secondary_visibility")
    if not visible:
        return []
    rows = {
        "history_share": "share of training-period history items in the user's secondary kind",
        "catalogue_share": "share of the catalogue in the user's secondary kind (chance level)",
        "users_with_any": "users with at least one secondary-kind item in their history",
        "primary_main_kind": "users whose history's most frequent kind is their primary kind",
        "complement_top1": "users whose top cross-department knowledge complement of their "
        "history is the secondary kind",
        "complement_top3": "… among the top three complements",
    }
    lines = ["| diagnostic | mean ± std over seeds |", "| --- | --- |"]
    for key, label in rows.items():
        if key in visible:
            lines.append(f"| {label} | {_cell(visible[key])} |")
    return lines


def render_generator(
    gbr: dict[str, Any], train: GBRTrainConfig, cost_users: int, provenance: str
) -> list[str]:
    """Markdown of the generator's sections: beyond-log hit rate, consistency, the hidden
    interest and cost, each with ``provenance`` (command and machine) beside it."""
    k, steps = gbr["k"], gbr["steps"]
    return [
        "## Beyond-log hit rate of generated behaviours",
        "",
        provenance,
        "",
        f"Each seed trains one generator (masked diffusion over item tokens, {train.layers} "
        f"layers, d={train.dim}, {train.epochs} epochs) on the events before the split time; it "
        f"generates K={k} behaviours per user in S={steps} unmasking steps (greedy) from that "
        "history. Targets are the items each user clicks after the split that were not in their "
        f"history; recall@{k} is the share of a user's targets among the K items, the hit rate "
        f"the share of users with at least one. {gbr.get('users', {}).get('mean', 0):.0f} users "
        "per seed on average. Every method excludes the user's history.",
        "",
        *_figure_table(gbr, ("recall", "hit_rate"), (f"recall@{k}", f"hit rate@{k}")),
        "",
        "## Semantic consistency",
        "",
        provenance,
        "",
        "Mean cosine similarity, in the reasoning-enhanced (knowledge vector) space, between the "
        "generated items and the user's history items; random and popularity are the floors.",
        "",
        *_figure_table(gbr, ("semantic_consistency",), ("cosine to history",)),
        "",
        "## The hidden secondary interest",
        "",
        provenance,
        "",
        "The synthetic world gives each user a secondary interest (usually a kind that "
        "complements the primary one, in another department) that the exposure policy rarely "
        "shows. Share of generated items in it:",
        "",
        *_figure_table(gbr, ("secondary_interest_share",), ("share in secondary kind",)),
        "",
        "How visible that interest is in what the generator learns from:",
        "",
        *visibility_lines(gbr),
        "",
        *secondary_findings(gbr),
        "",
        "## Generation cost",
        "",
        provenance,
        "",
        f"Users per second generating K behaviours in S steps, {cost_users} users per cell "
        f"(first seed), one process on this machine's CPU cores ({_threads()} PyTorch "
        "intra-op threads; `OMP_NUM_THREADS` sets them):",
        "",
        *cost_lines(gbr),
        "",
        "Each step is one forward pass of the encoder over history + K slots and one output head "
        "over the catalogue for the slots still open, so cost should grow with S and with K; "
        "one timing per cell, so cells timed while other processes share the cores are noisy. "
        f"Training the generator took {gbr.get('train_seconds', {}).get('mean', 0):.0f} s "
        "per seed.",
        "",
    ]


def _figure_table(
    summary: dict[str, Any], figures: tuple[str, ...], labels: tuple[str, ...]
) -> list[str]:
    lines = [
        "| method | " + " | ".join(labels) + " |",
        "| --- |" + " --- |" * len(labels),
    ]
    for method, label in METHODS.items():
        if all(method in summary.get(figure, {}) for figure in figures):
            cells = [_cell(summary[figure][method]) for figure in figures]
            lines.append(f"| {label} | {' | '.join(cells)} |")
    return lines


def secondary_findings(summary: dict[str, Any]) -> list[str]:
    """What the secondary-interest figures say, computed from them."""
    share = {m: v["mean"] for m, v in summary.get("secondary_interest_share", {}).items()}
    recall = {m: v["mean"] for m, v in summary.get("recall", {}).items()}
    visibility = summary.get("secondary_visibility", {})
    lines = []
    if "history_share" in visibility and "catalogue_share" in visibility:
        lines.append(
            "- In the platform's training-period histories the secondary kind holds "
            f"{visibility['history_share']['mean']:.4f} of the items against a catalogue share "
            f"of {visibility['catalogue_share']['mean']:.4f}: a model of these logs alone has "
            "little to learn it from."
        )
    if "primary_main_kind" in visibility:
        lines.append(
            "- The most frequent kind of a user's training-period history is their primary kind "
            f"for {visibility['primary_main_kind']['mean']:.4f} of users: only that often can a "
            "pattern from the primary kind to the secondary one start from the right kind."
        )
    for method in ("gbr_beyond", "gbr_world", "gbr_complements"):
        if method in share and "gbr" in share:
            ratio = share[method] / share["gbr"] if share["gbr"] > 0 else float("inf")
            lines.append(
                f"- {METHODS[method]}: secondary share {share[method]:.4f} ({ratio:.1f}× plain "
                f"GBR's {share['gbr']:.4f}); beyond-log recall {recall.get(method, 0):.4f} "
                f"against plain GBR's {recall.get('gbr', 0):.4f}."
            )
    return lines


def _threads() -> int:
    """PyTorch's intra-op threads in this process (the ones the cost grid was timed with)."""
    import torch

    return int(torch.get_num_threads())
