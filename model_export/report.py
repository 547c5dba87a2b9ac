"""The offline results report: the ranker's ablation and the behaviour generator, over seeds.

Writes ``docs/RESULTS.md`` (tables of mean ± std) and ``docs/results.json`` (the same figures
and every seed's raw metrics), both from one run of ``reaseq results``. Per seed: one synthetic
dataset, the plain and the world generator trained before its split time and their generated
logs, the oracle's and the complement blocks, and every ranker of :data:`RANKERS`. The knowledge
table answers the question the knowledge step exists for: do reasoning-enhanced item vectors
help over IDs alone, overall, on cold items and on sparse users? Its gains are computed per seed
(same data, same seed for both rankers) and then averaged. The Markdown comes from
:mod:`model_export.results_markdown`.
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
from model_export.ablation import (
    COMPLEMENTS,
    CORPUS,
    CORPUS_ORACLE,
    FULL_PLAIN,
    ORACLE,
    PATTERN_ORACLE,
)
from model_export.evaluate import evaluate_with_slices, random_baseline
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
from model_export.results_markdown import render_markdown, summarise
from model_export.results_sections import keep_section
from model_export.train import TrainConfig
from model_export.world_ablation import (
    OTHER_REQUESTS,
    SPARSE_REQUESTS,
    WorldSetup,
    block_secondary_share,
    complement_log,
    corpus_log,
    corpus_named_kinds,
    corpus_oracle_log,
    exploration_slice,
    history_main_kinds,
    oracle_log,
    pattern_oracle_log,
    primary_main_share,
    sparse_requests,
    world_corpus,
    world_shoppers,
)
from offline.data.canonical import Dataset
from offline.data.synthetic import GroundTruth, SyntheticConfig, generate_with_truth
from offline.encode import EncoderChoice
from offline.gbr import GBRModel, evaluate_generator, train_gbr
from offline.gbr.beyond import item_groups
from offline.gbr.complements import KindComplements
from offline.knowledge import OfflineKnowledgeBackend
from service.contracts.manifest import EvaluationMetrics

#: Where each ranker's generated blocks come from (None: it attends over none).
PLAIN_BLOCKS, WORLD_BLOCKS, ORACLE_BLOCKS = "plain", "world", "oracle"
COMPLEMENT_BLOCKS, CORPUS_ORACLE_BLOCKS = "complements", "corpus_oracle"
CORPUS_BLOCKS, PATTERN_ORACLE_BLOCKS = "corpus", "pattern_oracle"
RANKERS: dict[str, str | None] = {
    ID_ONLY: None,
    MODEL: None,
    ID_GBR: WORLD_BLOCKS,
    FULL_PLAIN: PLAIN_BLOCKS,
    FULL: WORLD_BLOCKS,
    ORACLE: ORACLE_BLOCKS,
    PATTERN_ORACLE: PATTERN_ORACLE_BLOCKS,
    CORPUS_ORACLE: CORPUS_ORACLE_BLOCKS,
    CORPUS: CORPUS_BLOCKS,
    COMPLEMENTS: COMPLEMENT_BLOCKS,
    GATE: None,
    GATE_SELF_ATTENTION: None,
}
COMMAND = "reaseq results"
#: Generation cost grid: K behaviours per user by S unmasking steps.
COST_GRID: tuple[tuple[int, int], ...] = tuple((k, s) for k in (8, 16, 32) for s in (1, 2, 4, 8))


@dataclass(frozen=True)
class ResultsSpec:
    size: str = "demo"
    seeds: tuple[int, ...] = (0, 1, 2)
    #: The rankers' training settings (the seed is each run's own); the rankers with blocks
    #: learn a vector per slot of the block (see :data:`SLOT_VECTORS_CHOICE`).
    ranker: TrainConfig = field(
        default_factory=lambda: TrainConfig(progress=False, generated_slots=GeneratorSetup().k)
    )
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
        if self.world.secondary_weight != WorldSetup.secondary_weight:
            parts.append(f"--secondary-weight {self.world.secondary_weight:g}")
        if self.world.co_interest != WorldSetup.co_interest:
            parts.append("--co-interest" if self.world.co_interest else "--no-co-interest")
        if self.world.kind_focus != WorldSetup.kind_focus:
            parts.append(f"--kind-focus {self.world.kind_focus:g}")
        if self.world.complement_share != WorldSetup.complement_share:
            parts.append(f"--complement-share {self.world.complement_share:g}")
        if not self.ranker.generated_slots:
            parts.append("--no-slot-vectors")
        return " ".join(parts)

    def world_config(self, seed: int) -> SyntheticConfig:
        """The synthetic world of one seed, with this spec's world settings."""
        return SyntheticConfig.preset(
            self.size,
            seed=seed,
            exploration_share=self.world.exploration_share,
            exploration_aim=self.world.exploration_aim,
            secondary_weight=self.world.secondary_weight,
            co_interest=self.world.co_interest,
            kind_focus=self.world.kind_focus,
            secondary_complement_prob=self.world.complement_share,
        )


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
    world = spec.world_config(seed)
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
    shoppers = world_shoppers(world, spec.world)
    corpus = world_corpus(world, dataset, records, spec.world, shoppers)
    knowing = train_gbr(
        dataset, semantic.vectors, setup.train, until_ts=dataset.split_ts, corpus=corpus
    )
    world_setup = replace(
        setup, generation=replace(setup.generation, beyond_slots=spec.world.beyond_slots)
    )
    complements = KindComplements.from_records(records)
    named = corpus_named_kinds(shoppers, truth)
    logs = {
        PLAIN_BLOCKS: generated_log(plain, dataset, setup),
        WORLD_BLOCKS: generated_log(knowing, dataset, world_setup),
        ORACLE_BLOCKS: oracle_log(dataset, truth, setup.k, seed),
        PATTERN_ORACLE_BLOCKS: pattern_oracle_log(dataset, truth, setup.k, seed),
        CORPUS_ORACLE_BLOCKS: corpus_oracle_log(dataset, truth, named, setup.k, seed),
        CORPUS_BLOCKS: corpus_log(dataset, truth, named, setup.k, seed),
        COMPLEMENT_BLOCKS: complement_log(dataset, complements, setup.k, seed),
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
        complements=complements,
        complement_slots=spec.complement_slots,
        others={"gbr_world": knowing, "gbr_beyond": model},
        others_generation=world_setup.generation,
        groups=item_groups(dataset.catalogue),
    )
    report["block_secondary_share"] = {
        name: block_secondary_share(log, dataset, truth) for name, log in logs.items()
    }
    sparse = sparse_requests(dataset)
    main = history_main_kinds(dataset, truth.item_leaf, len(truth.leaf_paths))
    report["by_history"] = {
        part: {
            "primary_main_kind": primary_main_share(dataset, truth, main, among),
            "block_secondary_share": {
                name: block_secondary_share(log, dataset, truth, among)
                for name, log in logs.items()
            },
        }
        for part, among in ((SPARSE_REQUESTS, sparse), (OTHER_REQUESTS, ~sparse))
    }
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
        blocks_only = (FULL_PLAIN, ORACLE, PATTERN_ORACLE, CORPUS_ORACLE, CORPUS, COMPLEMENTS)
        variant = VARIANTS[FULL] if name in blocks_only else VARIANTS[name]
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
