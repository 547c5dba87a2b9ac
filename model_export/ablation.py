"""The ranker's ablation over seeds: which rankers, on which slices, their gains, and what the
figures say (sentences computed from them, so they follow the figures when rerun); and the
knowledge table (ID + knowledge against ID only, per slice).

Rows add one signal at a time; the generated-behaviour rows differ only in where each request's
block comes from: the plain generator (trained on the logs alone), the world generator
(pretrained on the world corpus, then the logs), the oracle (the user's true secondary kind), the
pattern oracle (the world's co-interest kind of the user's true primary kind), the corpus oracle
(the kind the world corpus names for the user's true primary kind), the corpus blocks (the kind
it names for the history's main kind, no generator) or the knowledge records' complements of the
history's main kind (no generator).
"""

from __future__ import annotations

import statistics
from typing import Any

from model_export.evaluate import SPARSE_USER_HISTORY
from model_export.pipeline import FULL, GATE, GATE_SELF_ATTENTION, ID_GBR, ID_ONLY, MODEL
from model_export.world_ablation import (
    EXPLORATION,
    OTHER_REQUESTS,
    SPARSE_REQUESTS,
    recovered_share,
)
from service.contracts.manifest import EvaluationMetrics

FULL_PLAIN, ORACLE, COMPLEMENTS = "full_plain", "oracle", "complements"
CORPUS_ORACLE, CORPUS, PATTERN_ORACLE = "corpus_oracle", "corpus", "pattern_oracle"
GAIN_METRICS = ("auc", "gauc")
#: The ablation's rows, in order, with what each adds.
ROWS = (
    (ID_ONLY, "ID only"),
    (MODEL, "+ knowledge vectors"),
    (ID_GBR, "+ world GBR (no knowledge)"),
    (FULL_PLAIN, "knowledge + plain GBR (logs only)"),
    (FULL, "full: knowledge + world GBR"),
    (ORACLE, "oracle: knowledge + blocks of the true secondary kind"),
    (PATTERN_ORACLE, "pattern oracle: knowledge + blocks of the world's co-interest kind"),
    (CORPUS_ORACLE, "corpus oracle: knowledge + blocks of the kind the corpus names"),
    (CORPUS, "knowledge + corpus blocks (corpus counts only, no generator)"),
    (COMPLEMENTS, "knowledge + complement blocks (records only, no generator)"),
)
#: Per-seed differences against the knowledge-only ranker.
GAINS = (
    (FULL_PLAIN, "plain GBR − knowledge"),
    (FULL, "full − knowledge (world GBR's gain)"),
    (ORACLE, "oracle − knowledge (the ceiling)"),
    (PATTERN_ORACLE, "pattern oracle − knowledge (knowing the world's patterns)"),
    (CORPUS_ORACLE, "corpus oracle − knowledge (the corpus's ceiling)"),
    (CORPUS, "corpus blocks − knowledge"),
    (COMPLEMENTS, "complement blocks − knowledge"),
)
SLICES = (
    ("overall", ""),
    ("sparse users", "/sparse_users"),
    ("cold items", "/cold_items"),
    ("exploration", f"/{EXPLORATION}"),
)


def stats(values: list[float]) -> dict[str, float]:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std}


def ablation(runs: list[dict[str, EvaluationMetrics]]) -> dict[str, dict[str, dict[str, float]]]:
    """``{"<row><slice>": {metric: stats}}`` for every row present in every run, per-seed gains
    over knowledge only (``gain_<row><slice>``), impressions per slice (``examples<slice>``) and
    the share of the oracle's gain the world generator recovers (``recovered<slice>``)."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for _, suffix in SLICES:
        if not all(MODEL + suffix in run for run in runs):
            continue
        table["examples" + suffix] = {"n": stats([float(r[MODEL + suffix].examples) for r in runs])}
        for name, _label in ROWS:
            key = name + suffix
            if all(key in run for run in runs):
                table[key] = {
                    m: stats([getattr(run[key], m) for run in runs]) for m in GAIN_METRICS
                }
        for name, _label in GAINS:
            key, model = name + suffix, MODEL + suffix
            if all(key in run for run in runs):
                table[f"gain_{name}{suffix}"] = {
                    m: stats([getattr(run[key], m) - getattr(run[model], m) for run in runs])
                    for m in GAIN_METRICS
                }
        if all(FULL + suffix in run and ORACLE + suffix in run for run in runs):
            table["recovered" + suffix] = {}
            for m in GAIN_METRICS:
                means = {n: table[n + suffix][m]["mean"] for n in (FULL, MODEL, ORACLE)}
                share = recovered_share(means[FULL], means[MODEL], means[ORACLE])
                if share is not None:
                    table["recovered" + suffix][m] = {"mean": share, "std": 0.0}
    return table


def table_lines(
    table: dict[str, dict[str, dict[str, float]]],
    row_labels: tuple[tuple[str, str], ...] = ROWS,
    gain_labels: tuple[tuple[str, str], ...] = GAINS,
) -> list[str]:
    present = [(label, suffix) for label, suffix in SLICES if MODEL + suffix in table]
    header = "| ranker |" + "".join(f" AUC {label} | GAUC {label} |" for label, _ in present)
    lines = [header, "| --- |" + " --- |" * (2 * len(present))]
    rows = [(name, label, False) for name, label in row_labels]
    rows += [(f"gain_{name}", label, True) for name, label in gain_labels]
    for name, label, signed in rows:
        if not any(name + suffix in table for _, suffix in present):
            continue
        cells = []
        for _, suffix in present:
            stats = table.get(name + suffix)
            for metric in GAIN_METRICS:
                if stats is None:
                    cells.append("–")
                else:
                    sign = "+" if signed else ""
                    cells.append(f"{stats[metric]['mean']:{sign}.4f} ± {stats[metric]['std']:.4f}")
        lines.append(f"| {label} | {' | '.join(cells)} |")
    sizes = [f"{label} {table['examples' + suffix]['n']['mean']:.0f}" for label, suffix in present]
    lines += ["", "Impressions per slice (mean over seeds): " + ", ".join(sizes) + "."]
    return lines


def against_ceiling(
    table: dict[str, Any], row: str
) -> list[tuple[str, str, dict[str, float], dict[str, float]]]:
    """Per slice where both are present: its label and suffix, the AUC gain of ``row`` over
    knowledge only and the oracle's (the ceiling)."""
    found = []
    for label, suffix in SLICES:
        gain = table.get(f"gain_{row}{suffix}", {}).get("auc")
        ceiling = table.get(f"gain_{ORACLE}{suffix}", {}).get("auc")
        if gain is not None and ceiling is not None:
            found.append((label, suffix, gain, ceiling))
    return found


def slice_gains(table: dict[str, Any], row: str) -> dict[str, dict[str, float]]:
    """Per slice suffix where the oracle's is present too, the AUC gain of ``row``."""
    return {suffix: gain for _, suffix, gain, _ in against_ceiling(table, row)}


def findings(table: dict[str, Any], generator: dict[str, Any] | None) -> list[str]:
    """What the figures say about generated behaviours, computed from them."""
    lines = []
    for label, suffix, gain, ceiling in against_ceiling(table, FULL):
        beyond = gain["std"] > 0 and gain["mean"] > 2 * gain["std"]
        sentence = (
            f"- {label}: world GBR adds {gain['mean']:+.4f} ± {gain['std']:.4f} AUC to knowledge "
            f"only ({'beyond' if beyond else 'within'} 2 std); the oracle's ceiling is "
            f"{ceiling['mean']:+.4f} ± {ceiling['std']:.4f}"
        )
        recovered = table.get("recovered" + suffix, {}).get("auc")
        if recovered is not None:
            sentence += f", of which it recovers {recovered['mean']:.0%}"
        lines.append(sentence + ".")
    shares = (generator or {}).get("secondary_interest_share", {})
    if "gbr" in shares and "gbr_world" in shares:
        plain, world = shares["gbr"]["mean"], shares["gbr_world"]["mean"]
        ratio = f"{world / plain:.0f}× the plain generator's" if plain > 0 else "(plain: none)"
        lines.append(
            f"- Share of generated items in the user's hidden secondary kind: world generator "
            f"{world:.4f}, plain generator {plain:.4f}: {ratio}."
        )
    shares = (generator or {}).get("block_secondary_share", {})
    return (
        lines
        + pattern_findings(table, shares)
        + corpus_findings(table, shares)
        + complement_findings(table, shares)
        + history_findings((generator or {}).get("by_history", {}))
    )


def pattern_findings(table: dict[str, Any], shares: dict[str, Any]) -> list[str]:
    """What knowing the world's co-interest patterns gives at best (the pattern oracle), against
    the oracle's ceiling, and how much of it the corpus oracle and world GBR reach."""
    lines = []
    follows = shares.get("pattern_oracle", {}).get("mean")
    if follows == 0.0:
        return ["- This world has no co-interest pattern: the pattern oracle's blocks are empty."]
    if follows is not None:
        lines.append(
            f"- The world's co-interest pattern of a user's true primary kind is their secondary "
            f"kind for {follows:.0%} of the evaluation requests' users; the others' secondary "
            f"interest is their own."
        )
    corpus, world = slice_gains(table, CORPUS_ORACLE), slice_gains(table, FULL)
    parts = []
    for label, suffix, pattern, ceiling in against_ceiling(table, PATTERN_ORACLE):
        text = f"{label} {pattern['mean']:+.4f} ± {pattern['std']:.4f}"
        if ceiling["mean"] > 0:
            text += f" ({pattern['mean'] / ceiling['mean']:.0%} of the oracle's"
            reached = [
                f"{name} {found[suffix]['mean'] / pattern['mean']:.0%}"
                for name, found in (("the corpus oracle's", corpus), ("world GBR's", world))
                if suffix in found and pattern["mean"] > 0
            ]
            if reached:
                text += "; of it, " + ", ".join(reached)
            text += ")"
        parts.append(text)
    if parts:
        lines.append(
            "- The pattern oracle (blocks of that kind: every pattern of the world named without "
            "error, from the true primary kind) adds, in AUC to knowledge only: "
            + "; ".join(parts)
            + "."
        )
    return lines


def corpus_findings(table: dict[str, Any], shares: dict[str, Any]) -> list[str]:
    """What the world corpus can name at best (the corpus oracle) against the oracle's ceiling,
    and how much of that the world generator recovers."""
    lines = []
    named = shares.get("corpus_oracle", {}).get("mean")
    if named is not None:
        lines.append(
            f"- The kind the world corpus names for a user's true primary kind is their "
            f"secondary kind for {named:.0%} of the evaluation requests' users."
        )
    world = slice_gains(table, FULL)
    parts = []
    for label, suffix, corpus, ceiling in against_ceiling(table, CORPUS_ORACLE):
        text = f"{label} {corpus['mean']:+.4f} ± {corpus['std']:.4f}"
        if ceiling["mean"] > 0:
            text += f" ({corpus['mean'] / ceiling['mean']:.0%} of the oracle's"
            gain = world.get(suffix)
            if gain is not None and corpus["mean"] > 0:
                text += f"; world GBR's gain is {gain['mean'] / corpus['mean']:.0%} of it"
            text += ")"
        parts.append(text)
    if parts:
        lines.append(
            "- The corpus oracle (blocks of that kind) adds, in AUC to knowledge only: "
            + "; ".join(parts)
            + "."
        )
    counted = []
    for label, suffix, corpus, _ in against_ceiling(table, CORPUS):
        text = f"{label} {corpus['mean']:+.4f} ± {corpus['std']:.4f}"
        gain = world.get(suffix)
        if gain is not None:
            text += f" (world GBR {gain['mean']:+.4f} ± {gain['std']:.4f})"
        counted.append(text)
    if counted:
        lines.append(
            "- Corpus blocks (the kind the corpus names for the history's main kind: counting "
            "the corpus, no generator, no truth) add, in AUC to knowledge only: "
            + "; ".join(counted)
            + "."
        )
    return lines


#: Block sources (their key in ``block_secondary_share``) as the report names them.
BLOCK_SOURCES = (
    ("oracle", "oracle"),
    ("pattern_oracle", "pattern oracle"),
    ("corpus_oracle", "corpus oracle"),
    ("corpus", "corpus blocks"),
    ("complements", "complement blocks"),
    ("world", "world GBR"),
    ("plain", "plain GBR"),
)


def complement_findings(table: dict[str, Any], shares: dict[str, Any]) -> list[str]:
    """Each block source's share of the secondary kind, what the complement blocks gain and the
    share of the oracle's gain they recover."""
    if not shares:
        return []
    parts = [f"{label} {shares[key]['mean']:.4f}" for key, label in BLOCK_SOURCES if key in shares]
    lines = [
        "- Share of the evaluation requests' block items in the user's secondary kind: "
        + ", ".join(parts)
        + "."
    ]
    gains, recovered = [], {}
    for label, suffix, gain, ceiling in against_ceiling(table, COMPLEMENTS):
        text = f"{label} {gain['mean']:+.4f} ± {gain['std']:.4f}"
        if ceiling["mean"] > 0:
            recovered[suffix] = gain["mean"] / ceiling["mean"]
            text += f" ({recovered[suffix]:.0%} of the ceiling)"
        gains.append(text)
    if gains:
        lines.append("- Complement blocks add, in AUC to knowledge only: " + "; ".join(gains) + ".")
    world = shares.get("world", {}).get("mean")
    complements = shares.get("complements", {}).get("mean")
    exploration = recovered.get(f"/{EXPLORATION}")
    if world and complements and exploration is not None:
        richer = complements / world
        if richer >= 2 and exploration < 0.5:
            lines.append(
                f"- Complement blocks hold {richer:.1f}× the world generator's share of the "
                f"secondary kind and recover {exploration:.0%} of the exploration ceiling: a "
                "block's share of the secondary kind alone does not buy the ceiling."
            )
    return lines


#: Block sources whose kind is read from the user's history, as the report names them: a short
#: history can mislead them, unlike the oracles, which are given the truth.
HISTORY_READ_SOURCES = (("world", "world GBR"), ("corpus", "corpus blocks"))
#: Block sources given the user's true primary kind.
PRIMARY_GIVEN_SOURCES = (("pattern_oracle", "pattern oracle"), ("corpus_oracle", "corpus oracle"))


def history_findings(by_history: dict[str, Any]) -> list[str]:
    """Requests of sparse users against the others: how often the history's main kind is the
    primary kind, each block source's share of the secondary kind in both, and, where the
    sources that read the kind from the history lose more of it on sparse users than those
    given the primary kind, that the short history is where they lose it."""
    sparse, others = by_history.get(SPARSE_REQUESTS), by_history.get(OTHER_REQUESTS)
    if not sparse or not others:
        return []
    main = sparse["primary_main_kind"]["mean"], others["primary_main_kind"]["mean"]
    shares = sparse["block_secondary_share"], others["block_secondary_share"]
    kept: dict[str, float] = {}
    parts = []
    for key, label in HISTORY_READ_SOURCES + PRIMARY_GIVEN_SOURCES:
        if key not in shares[0] or key not in shares[1]:
            continue
        few, many = shares[0][key]["mean"], shares[1][key]["mean"]
        parts.append(f"{label} {few:.4f} against {many:.4f}")
        if many > 0:
            kept[key] = few / many
    lines = [
        f"- Requests of sparse users (at most {SPARSE_USER_HISTORY} behaviours before them) "
        f"against the others: the history's main kind is the user's primary kind for "
        f"{main[0]:.0%} against {main[1]:.0%}"
        + ("; share of block items in the secondary kind: " + ", ".join(parts) if parts else "")
        + "."
    ]
    read = [kept[key] for key, _ in HISTORY_READ_SOURCES if key in kept]
    given = [kept[key] for key, _ in PRIMARY_GIVEN_SOURCES if key in kept]
    if read and given and max(read) < min(given) and main[0] < main[1]:
        lines.append(
            f"- On sparse users the blocks that read the kind from the history keep "
            f"{min(read):.0%}–{max(read):.0%} of their share of the secondary kind on the other "
            f"requests, those given the true primary kind {min(given):.0%}–{max(given):.0%}: a "
            "short history hides the primary kind a pattern starts from."
        )
    return lines


#: The fusion and user-encoder rows: the same knowledge ranker, one choice changed at a time.
ENCODER_ROWS = (
    (MODEL, "summed fusion, light encoder (model)"),
    (GATE, "gated fusion, light encoder"),
    (GATE_SELF_ATTENTION, "gated fusion, self-attention encoder"),
)
ENCODER_GAINS = (
    (GATE, "gated − summed fusion"),
    (GATE_SELF_ATTENTION, "gated + self-attention − summed, light"),
)


def encoder_ablation(
    runs: list[dict[str, EvaluationMetrics]],
) -> dict[str, dict[str, dict[str, float]]]:
    """Like :func:`ablation` for :data:`ENCODER_ROWS`: each row per slice and its per-seed gain
    over the summed, light ranker (``model``)."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for _, suffix in SLICES:
        model = MODEL + suffix
        if not all(model in run for run in runs):
            continue
        table["examples" + suffix] = {"n": stats([float(r[model].examples) for r in runs])}
        for name, _label in ENCODER_ROWS:
            key = name + suffix
            if not all(key in run for run in runs):
                continue
            table[key] = {m: stats([getattr(r[key], m) for r in runs]) for m in GAIN_METRICS}
            if name != MODEL:
                table[f"gain_{key}"] = {
                    m: stats([getattr(r[key], m) - getattr(r[model], m) for r in runs])
                    for m in GAIN_METRICS
                }
    return table


def encoder_findings(table: dict[str, Any]) -> list[str]:
    """What the fusion and encoder rows say, computed from them (AUC and GAUC, 2 std)."""
    lines = []
    for label, suffix in SLICES:
        for name, row_label in ENCODER_GAINS:
            gains = table.get(f"gain_{name}{suffix}")
            if gains is None:
                continue
            parts = []
            for metric in GAIN_METRICS:
                gain = gains[metric]
                beyond = gain["std"] > 0 and abs(gain["mean"]) > 2 * gain["std"]
                parts.append(
                    f"{metric.upper()} {gain['mean']:+.4f} ± {gain['std']:.4f} "
                    f"({'beyond' if beyond else 'within'} 2 std)"
                )
            lines.append(f"- {label}, {row_label}: {', '.join(parts)}.")
    return lines


def encoder_section(table: dict[str, Any], provenance: str) -> list[str]:
    """The Markdown section of the fusion and user-encoder rows."""
    if not table:
        return []
    return [
        "## Fusion and user encoder",
        "",
        provenance,
        "",
        "The knowledge ranker (no generated behaviours) with one choice changed at a time: "
        "**gated** fusion weighs the ID embedding and the knowledge vector per dimension by a "
        "gate learned per bucket of the item's training count (IDs dropped in training only "
        "for rarely seen items), where **summed** fusion adds them; the **self-attention** "
        "encoder runs one causal self-attention layer over the behaviour sequence before its "
        "keys and values, where the **light** encoder takes each behaviour on its own. The "
        "same rows are measured on real data below (`gate`, `gate_self_attention`).",
        "",
        *table_lines(table, ENCODER_ROWS, ENCODER_GAINS),
        "",
        *encoder_findings(table),
        "",
    ]


#: Rows of the knowledge table: the overall evaluation and each slice.
KNOWLEDGE_ROWS = (
    ("all impressions", ""),
    ("cold items", "/cold_items"),
    ("sparse users", "/sparse_users"),
)


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
            row |= {name: stats(values) for name, values in series.items()}
        row["examples"] = stats([float(run[model].examples) for run in runs])
        table[label] = row
    return table


def knowledge_table(gains: dict[str, dict[str, dict[str, float]]]) -> list[str]:
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


def _cell(stats: dict[str, float]) -> str:
    return f"{stats['mean']:.4f} ± {stats['std']:.4f}"
