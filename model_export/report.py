"""The offline results report: the ranker's ablation and the behaviour generator, over seeds.

Writes ``docs/RESULTS.md`` (tables of mean ± std) and ``docs/results.json`` (the same figures
and every seed's raw metrics), both from one run of ``reaseq results``. Per seed: one synthetic
dataset, one generator trained before its split time, the generated log of the ranker's
examples, and four rankers (ID only, + knowledge vectors, + GBR, full). The knowledge table
answers the question the knowledge step exists for: do reasoning-enhanced item vectors help
over IDs alone, overall, on cold items and on sparse users? Its gains are computed per seed
(same data, same seed for both rankers) and then averaged. The generator's sections come from
:mod:`model_export.gbr_report`.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model_export import ablation as ablation_rows
from model_export import gbr_report
from model_export.ablation import FULL_PLAIN, ORACLE
from model_export.evaluate import SPARSE_USER_HISTORY, evaluate_with_slices, random_baseline
from model_export.generated_log import GeneratorSetup, generated_log, train_split_generator
from model_export.pipeline import (
    FULL,
    GATE,
    GATE_SELF_ATTENTION,
    ID_GBR,
    ID_ONLY,
    MODEL,
    RANDOM,
    SEMANTIC_DIM,
    VARIANTS,
    SemanticVectors,
    encode_knowledge,
    train_variant,
)
from model_export.results_sections import keep_section
from model_export.train import TrainConfig
from model_export.world_ablation import (
    EXPLORATION,
    WorldSetup,
    exploration_slice,
    oracle_log,
    world_corpus,
)
from offline.data.canonical import Dataset
from offline.data.synthetic import GroundTruth, SyntheticConfig, generate_with_truth
from offline.encode import EncoderChoice
from offline.gbr import GBRModel, evaluate_generator, train_gbr
from offline.gbr.beyond import item_groups
from offline.gbr.complements import KindComplements
from offline.knowledge import KNOWLEDGE_SCHEMA_VERSION, OfflineKnowledgeBackend
from service.contracts.manifest import EvaluationMetrics

METRICS = ("auc", "gauc", "logloss")
ROWS = (ORACLE, FULL, FULL_PLAIN, ID_GBR, GATE_SELF_ATTENTION, GATE, MODEL, ID_ONLY, RANDOM)
SLICES = ("cold_items", "sparse_users", EXPLORATION)
#: Where each ranker's generated blocks come from (None: it attends over none).
PLAIN_BLOCKS, WORLD_BLOCKS, ORACLE_BLOCKS = "plain", "world", "oracle"
RANKERS: dict[str, str | None] = {
    ID_ONLY: None,
    MODEL: None,
    ID_GBR: WORLD_BLOCKS,
    FULL_PLAIN: PLAIN_BLOCKS,
    FULL: WORLD_BLOCKS,
    ORACLE: ORACLE_BLOCKS,
    GATE: None,
    GATE_SELF_ATTENTION: None,
}
COMMAND = "reaseq results"
GAIN_METRICS = ("auc", "gauc")
#: Generation cost grid: K behaviours per user by S unmasking steps.
COST_GRID: tuple[tuple[int, int], ...] = tuple((k, s) for k in (8, 16, 32) for s in (1, 2, 4, 8))


@dataclass(frozen=True)
class ResultsSpec:
    size: str = "demo"
    seeds: tuple[int, ...] = (0, 1, 2)
    #: The rankers' training settings (the seed is each run's own).
    ranker: TrainConfig = field(default_factory=lambda: TrainConfig(progress=False))
    generator: GeneratorSetup = field(default_factory=GeneratorSetup)
    cost_grid: tuple[tuple[int, int], ...] = COST_GRID
    cost_users: int = 500  # users timed per (K, S), on the first seed
    complement_slots: int = 4  # of K, for the "GBR + knowledge complements" row
    #: The exploring world and the world generator's corpus.
    world: WorldSetup = field(default_factory=WorldSetup)

    @property
    def command(self) -> str:
        """The ``reaseq results`` line that runs this spec."""
        parts = [COMMAND]
        if self.size != "demo":
            parts.append(f"--size {self.size}")
        if self.seeds != tuple(range(len(self.seeds))) or len(self.seeds) != 3:
            parts.append(f"--seeds {len(self.seeds)}")
        if self.world.exploration_aim:
            parts.append(f"--exploration-aim {self.world.exploration_aim:g}")
        return " ".join(parts)


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


@dataclass
class SeedRun:
    """One seed's ranker metrics and generator evaluation."""

    metrics: dict[str, EvaluationMetrics]
    generator: dict[str, Any]


def run_seed(spec: ResultsSpec, seed: int, *, time_cost: bool) -> tuple[SeedRun, str]:
    """Data, knowledge vectors, the plain and the world generator and their logs, the oracle's
    blocks, every ranker of the ablation, and the generators' evaluation against their
    baselines; also the text encoder's name."""
    world = SyntheticConfig.preset(
        spec.size,
        seed=seed,
        exploration_share=spec.world.exploration_share,
        exploration_aim=spec.world.exploration_aim,
    )
    dataset, truth = generate_with_truth(world)
    records = OfflineKnowledgeBackend().describe(dataset.catalogue)
    semantic = encode_knowledge(
        records, dataset.catalogue, EncoderChoice(dim=SEMANTIC_DIM, seed=seed).build()
    )
    setup = spec.generator
    setup = GeneratorSetup(
        train=replace(setup.train, seed=seed),
        generation=replace(setup.generation, seed=seed),
        stride=setup.stride,
        folds=setup.folds,
    )
    plain = train_split_generator(dataset, semantic.vectors, setup)
    corpus = world_corpus(world, dataset, records, spec.world)
    knowing = train_gbr(
        dataset, semantic.vectors, setup.train, until_ts=dataset.split_ts, corpus=corpus
    )
    world_setup = replace(
        setup, generation=replace(setup.generation, beyond_slots=spec.world.beyond_slots)
    )
    logs = {
        PLAIN_BLOCKS: generated_log(plain, dataset, setup),
        WORLD_BLOCKS: generated_log(knowing, dataset, world_setup),
        ORACLE_BLOCKS: oracle_log(dataset, truth, setup.k, seed),
    }
    metrics = rank_every_row(dataset, truth, semantic, replace(spec.ranker, seed=seed), logs)
    model = plain if isinstance(plain, GBRModel) else plain.models[0]
    report = evaluate_generator(
        model,
        dataset,
        generation=setup.generation,
        truth=truth,
        cost_grid=spec.cost_grid if time_cost else (),
        cost_users=spec.cost_users if time_cost else 0,
        complements=KindComplements.from_records(records),
        complement_slots=spec.complement_slots,
        others={"gbr_world": knowing, "gbr_beyond": model},
        others_generation=world_setup.generation,
        groups=item_groups(dataset.catalogue),
    )
    report["world_corpus"] = {"version": corpus.version, "sources": corpus.sources}
    report["world_train_seconds"] = knowing.train_info.get("train_seconds")
    encoder = f"{semantic.encoder.name} ({semantic.encoder.dim} dims)"
    return SeedRun(metrics, report), encoder


def rank_every_row(
    dataset: Dataset,
    truth: GroundTruth,
    semantic: SemanticVectors,
    config: TrainConfig,
    logs: dict[str, Any],
) -> dict[str, EvaluationMetrics]:
    """Train each ranker of :data:`RANKERS` with its blocks; evaluate it with the slices, the
    exploration slice included; add the random baseline."""
    metrics: dict[str, EvaluationMetrics] = {}
    slices = exploration_slice(truth)
    for name, blocks in RANKERS.items():
        log = logs[blocks] if blocks else None
        variant = VARIANTS[FULL] if name in (FULL_PLAIN, ORACLE) else VARIANTS[name]
        trained = train_variant(dataset, semantic, config, variant, log)
        metrics |= evaluate_with_slices(trained, dataset, name, log, slices)
    metrics[RANDOM] = random_baseline(dataset, config.max_seq_len, seed=config.seed)
    return metrics


def run_seeds(spec: ResultsSpec) -> tuple[list[SeedRun], str]:
    """Every seed of ``spec``; the cost grid is timed on the first only.

    The knowledge comes from the offline agent backend (its fast whole-catalogue path, which
    writes the same records as the agent team).
    """
    runs, encoder = [], ""
    for index, seed in enumerate(spec.seeds):
        run, encoder = run_seed(spec, seed, time_cost=index == 0)
        runs.append(run)
    return runs, encoder


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
        f"of the corpus replayed; the last {spec.world.beyond_slots} of its K slots go to the "
        "items outside the history's main department that it makes likelier than their share of "
        "its training events by the most (beyond-log slots, ranked by lift; the "
        "generator sections below also show the plain generator with the same slots). The "
        "**oracle** attends over items of each user's true "
        "secondary kind, known only to the world's generator: the ceiling for blocks. The "
        f"world gives {spec.world.exploration_text()}, in both periods; the "
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
        names = [f"{row}/{slice_name}" for row in ROWS if row != RANDOM]
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


def write_results(spec: ResultsSpec, docs_dir: Path) -> dict[str, Any]:
    """Run every seed and write ``RESULTS.md`` and ``results.json`` under ``docs_dir``."""
    started = time.perf_counter()
    seed_runs, encoder = run_seeds(spec)
    runs = [run.metrics for run in seed_runs]
    summary = summarise(runs)
    gains = ablation_rows.knowledge_gains(runs)
    table = ablation_rows.ablation(runs)
    encoders = ablation_rows.encoder_ablation(runs)
    generator = gbr_report.summarise_generator([run.generator for run in seed_runs])
    context = {
        "command": spec.command,
        "encoder": encoder,
        "machine": machine_description(),
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": time.perf_counter() - started,
    }
    document = {
        **context,
        "spec": asdict(spec),
        "summary": summary,
        "ablation": table,
        "encoders": encoders,
        "knowledge_vs_id_only": gains,
        "generator": generator,
        "runs": [{name: m.model_dump() for name, m in run.items()} for run in runs],
        "generator_runs": [run.generator for run in seed_runs],
    }
    docs_dir.mkdir(parents=True, exist_ok=True)
    results, markdown_path = docs_dir / "results.json", docs_dir / "RESULTS.md"
    # The real-data section and key belong to `reaseq results-real`: kept as they are.
    if results.exists():
        previous = json.loads(results.read_text())
        if "real_data" in previous:
            document["real_data"] = previous["real_data"]
    results.write_text(json.dumps(document, indent=2) + "\n")
    markdown = render_markdown(spec, summary, context, gains, table, generator, encoders)
    if markdown_path.exists():
        markdown = keep_section(markdown_path.read_text(), markdown)
    markdown_path.write_text(markdown)
    return document
