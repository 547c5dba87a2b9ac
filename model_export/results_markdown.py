"""The offline results as Markdown: the summary over seeds and ``docs/RESULTS.md``'s synthetic
sections (the ablation and its findings, fusion and encoder, knowledge against ID only, the
generator's sections from :mod:`model_export.gbr_report`, every row on every slice).

Every sentence of interpretation comes from :mod:`model_export.ablation` and
:mod:`model_export.gbr_report`, computed from the figures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from model_export import ablation as ablation_rows
from model_export import gbr_report, pipeline
from model_export.ablation import COMPLEMENTS, FULL_PLAIN, ORACLE
from model_export.evaluate import SPARSE_USER_HISTORY
from model_export.world_ablation import BEYOND_SLOTS_CHOICE, EXPLORATION, SLOT_VECTORS_CHOICE
from offline.knowledge import KNOWLEDGE_SCHEMA_VERSION
from service.contracts.manifest import EvaluationMetrics

if TYPE_CHECKING:
    from model_export.report import ResultsSpec

METRICS = ("auc", "gauc", "logloss")
ROWS = (
    ORACLE,
    COMPLEMENTS,
    pipeline.FULL,
    FULL_PLAIN,
    pipeline.ID_GBR,
    pipeline.GATE_SELF_ATTENTION,
    pipeline.GATE,
    pipeline.MODEL,
    pipeline.ID_ONLY,
    pipeline.RANDOM,
)
SLICES = ("cold_items", "sparse_users", EXPLORATION)


def summarise(runs: list[dict[str, EvaluationMetrics]]) -> dict[str, dict[str, dict[str, float]]]:
    """``{row: {metric: {"mean", "std"}}}`` over seeds, for every row and slice present."""
    names = [name for name in runs[0] if all(name in run for run in runs)]
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for name in names:
        summary[name] = {}
        for metric in METRICS:
            values = [getattr(run[name], metric) for run in runs]
            summary[name][metric] = ablation_rows.stats(values)
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


def _provenance(context: dict[str, Any]) -> str:
    return f"_Regenerate with `{context['command']}`; measured on {context['machine']}._"


def render_markdown(
    spec: ResultsSpec,
    summary: dict[str, Any],
    context: dict[str, Any],
    gains: dict[str, Any] | None = None,
    ablation_table: dict[str, Any] | None = None,
    generator: dict[str, Any] | None = None,
    encoders: dict[str, Any] | None = None,
) -> str:
    knowledge = [
        "## Reasoning-enhanced item vectors vs ID only",
        "",
        _provenance(context),
        "",
        "Both rankers are the same target-attention model trained on the same data with the same "
        "seed; **ID + knowledge** fuses each item's ID embedding with its knowledge vector "
        f"(records of schema v{KNOWLEDGE_SCHEMA_VERSION} from the agent team on the offline "
        f"backend, encoded by {context.get('encoder', 'the default encoder')}), **ID only** has "
        "no knowledge vector. Gains are per seed, then mean ± std.",
        "",
        *ablation_rows.knowledge_table(gains or {}),
        "",
        "- **cold items**: impressions of items held out of training entirely: they appear in no "
        "training impression or behaviour, so they have no trained ID embedding (on this data, "
        "the items the generator launches after the split time).",
        f"- **sparse users**: impressions of requests whose user had at most {SPARSE_USER_HISTORY} "
        "real behaviours (events) before the request.",
        "",
    ]
    ablation_lines = [
        "## Ablation of the ranker",
        "",
        _provenance(context),
        "",
        "The same target-attention ranker with each signal added in turn. A **GBR** row attends "
        f"over K={spec.generator.k} generated behaviours per request besides the real sequence; "
        "each training request's block is generated from the user's items before the request by "
        "a generator trained only on events before the split time (evaluation requests: "
        "likewise, so no block saw anything at or after its request). The **plain** generator "
        "learns the platform's logs alone; the **world** generator first learns a world corpus "
        f"({spec.world.external_shoppers} shoppers of another platform whose exposure shows "
        f"their whole interests, {spec.world.clicks_per_shopper} clicks each, and "
        f"{spec.world.walks} knowledge walks of up to {spec.world.walk_length} items over the "
        "records' relations; none of the platform's users or events), then the logs with part "
        f"of the corpus replayed; the last {spec.world.beyond_slots}{_slots_choice(spec)} of its "
        "K slots go to the "
        "items outside the history's main department that it makes likelier than their share of "
        "its training events by the most (beyond-log slots, ranked by lift; the "
        "generator sections below also show the plain generator with the same slots)."
        f"{_slot_vectors_text(spec)} The "
        "**oracle** attends over items of each user's true "
        "secondary kind, known only to the world's generator: the ceiling for blocks. The "
        "**corpus oracle** attends over items of the kind of another department that the world "
        "corpus's shoppers who clicked each user's true primary kind click the most more often "
        "than shoppers at large (excess clicks per shopper): what the corpus can name, given the "
        "interest a history hides least; what it gains is the corpus's own ceiling. The "
        "**corpus** blocks are drawn the same way for the main (most frequent) kind of the "
        "user's behaviours before the request instead: what counting the corpus proposes, with "
        "no generator and no truth. The "
        "**complement** blocks come from no generator: items of the kinds the knowledge records "
        "name as cross-department complements of the main (most frequent) kind of the user's "
        "behaviours before the request, drawn uniformly among those launched by then. In this "
        f"world {spec.world.world_text()}, in both periods; the "
        "**exploration** slice is the evaluation impressions of items outside the user's "
        "primary department. AUC and GAUC, mean ± std over seeds; the gain rows are per-seed "
        "differences.",
        "",
        *ablation_rows.table_lines(ablation_table or {}),
        "",
        *ablation_rows.findings(ablation_table or {}, generator),
        "",
    ]
    lines = [
        "# Offline results",
        "",
        f"Regenerate with `{spec.command}` (or `make results`); it also writes "
        "`docs/results.json`.",
        "",
        f"Synthetic data, preset `{spec.size}`, time split (train before the split time, evaluate "
        f"after it), seeds {', '.join(map(str, spec.seeds))}: mean ± std over seeds. "
        f"Measured on {context['machine']}, {context['generated_at']}, "
        f"{context['seconds']:.0f} s in all.",
        "",
        "- **id_only**: the ranker with item ID embeddings only.",
        "- **model**: ID embedding fused with the knowledge (semantic) vector, target attention "
        "over the real sequence.",
        "- **id_gbr**: ID only, plus target attention over the world generator's behaviours.",
        "- **full**: knowledge vectors and the world generator's behaviours.",
        "- **full_plain**: knowledge vectors and the plain generator's behaviours.",
        "- **gate**, **gate_self_attention**: model with gated fusion, and with the "
        "self-attention user encoder too.",
        "- **oracle**: knowledge vectors and blocks of each user's true secondary kind.",
        "- **pattern_oracle**: knowledge vectors and blocks of the kind the world's co-interest "
        "pattern gives each user's true primary kind (every pattern known, none of the users' "
        "own).",
        "- **corpus_oracle**: knowledge vectors and blocks of the kind the world corpus names for "
        "each user's true primary kind.",
        "- **corpus**: knowledge vectors and blocks of the kind the world corpus names for the "
        "main kind of the user's history (no generator).",
        "- **complements**: knowledge vectors and blocks of the knowledge records' complements of "
        "the history's main kind (no generator).",
        "- **random**: the training click rate with a small random jitter (random order, base-rate "
        "calibration).",
        "",
        "GAUC is the per-user AUC weighted by impressions, over users with both clicks and "
        "non-clicks.",
        "",
        *ablation_lines,
        *ablation_rows.encoder_section(encoders or {}, _provenance(context)),
        *knowledge,
        *(
            gbr_report.render_generator(
                generator, spec.generator.train, spec.cost_users, _provenance(context)
            )
            if generator
            else []
        ),
        "## All evaluation impressions",
        "",
        _provenance(context),
        "",
        *_table(summary, list(ROWS)),
    ]
    for slice_name in SLICES:
        names = [f"{row}/{slice_name}" for row in ROWS if row != pipeline.RANDOM]
        if any(name in summary for name in names):
            title = slice_name.replace("_", " ")
            lines += ["", f"## Slice: {title}", "", _provenance(context), ""]
            lines += _table(summary, names)
    lines += [
        "",
        "Cold items are held out of training entirely (no trained ID embedding); sparse users "
        f"have at most {SPARSE_USER_HISTORY} behaviours before the request; exploration is the "
        "impressions of items outside the user's primary department.",
        "",
    ]
    return "\n".join(lines)


def _slot_vectors_text(spec: ResultsSpec) -> str:
    """Whether the rankers with blocks learn a vector per slot, and how that was chosen."""
    if not spec.ranker.generated_slots:
        return " Every ranker with blocks treats the block's slots alike."
    seeds = ", ".join(str(seed) for seed in SLOT_VECTORS_CHOICE.seeds)
    return (
        " Every ranker with blocks learns a vector per slot of the block (the generator's "
        "order: its greedy items first, then the beyond-log ones by lift), so it can trust the "
        "slots unequally; chosen on the worlds of seeds "
        f"{seeds}, which no figure here uses, by the full ranker's gain over knowledge only on "
        "the exploration slice and on sparse users, against the same rankers without them."
    )


def _slots_choice(spec: ResultsSpec) -> str:
    """How the beyond-log slot count was chosen, when it is the chosen default."""
    choice = BEYOND_SLOTS_CHOICE
    if spec.world.beyond_slots != choice.chosen:
        return ""
    counts = ", ".join(str(n) for n in choice.of)
    return (
        f" (of {counts}, the count whose full ranker scored the best AUC on the world of seed "
        f"{choice.seed}, which no figure here uses)"
    )
