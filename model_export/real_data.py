"""The real-data benchmark: a public log, a protocol a reviewer accepts, every ranker on it.

Protocol (one run per seed; the seed drives the sampled negatives and the training run):

* **Data**: a public log through its loader (:mod:`offline.data.loaders`), clicks from a rating
  threshold, negatives sampled only from items the user never interacted with, by popularity
  known at the request's time.
* **Split by time**: train before ``split_ts``, validation until ``test_ts``, test after. Early
  stopping and every choice (the shipped fusion among the candidates) use validation only.
* **Knowledge**: the offline backend over every field the dataset offers, encoded by TF-IDF +
  SVD; the count of distinct vectors is reported.
* **Rankers** on the same examples: popularity (behaviours before the request), ID only,
  knowledge only, ID + knowledge with the plain sum and with gated fusion, the gated one with the
  self-attention user encoder, and the gated one with the world generator's blocks, grown as a
  residual on the gated ranker of its seed (:mod:`model_export.train`), without and with a
  learned vector per slot of the block; ``full`` is the one ID + knowledge configuration with
  the best validation GAUC averaged over seeds (one configuration shipped, as a team would ship
  one). The world generator's blocks keep the
  number of beyond-log slots whose blocks recall the most new clicks of the validation period.
* **Figures**: AUC, GAUC, logloss overall and on slices (cold items, sparse users) with their
  sizes; HR@10 and NDCG@10 against sampled items (:mod:`model_export.sampled_ranking`); the
  generator's beyond-log recall on the new clicks of the test period.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from model_export.dataset import GeneratedBlocksLog, time_split
from model_export.evaluate import (
    SPARSE_USER_HISTORY,
    eval_predictions,
    flatten,
    metrics,
    predict,
    slice_metrics,
)
from model_export.generated_log import GeneratorSetup, generated_log
from model_export.pipeline import GATE, GATE_SELF_ATTENTION, encode_knowledge
from model_export.sampled_ranking import (
    hit_rate_ndcg,
    popularity_scores,
    sampled_candidates,
)
from model_export.train import GATED_DROPOUT_MAX_COUNT, TrainConfig, TrainedRanker, train
from offline.data.canonical import Dataset
from offline.data.loaders import LoaderConfig, load_dataset
from offline.encode import EncoderChoice
from offline.gbr import GBRModel, GenerationConfig, evaluate_generator, train_gbr
from offline.gbr.beyond import item_groups
from offline.gbr.rolling import choose_blend, rolling_recall
from offline.gbr.world_corpus import WorldCorpus, knowledge_walks
from offline.knowledge import ItemKnowledge, OfflineKnowledgeBackend
from offline.knowledge.text import knowledge_text

log = logging.getLogger(__name__)

POPULARITY, ID_ONLY, KNOWLEDGE_ONLY = "popularity", "id_only", "knowledge_only"
SUM, FULL = "sum", "full"
#: Gated fusion attending over the world generator's blocks (generated behaviours).
GATE_GBR = "gate_gbr"
#: The same, with a learned vector per slot of the block (``TrainConfig.generated_slots``), as
#: the synthetic world's rankers have: whether the slots' order pays on real data too.
GATE_GBR_SLOTS = "gate_gbr_slots"
#: Share of training requests whose generated block is hidden (see ``TrainConfig``): fixed
#: before measuring; with it the variant's validation GAUC is higher than without (0.8027 against
#: 0.8012, mean of 3 seeds).
GBR_BLOCK_DROPOUT = 0.5
_GATED_GBR: dict[str, Any] = {
    "fusion": "gate",
    "dropout_max_count": GATED_DROPOUT_MAX_COUNT,
    "block_dropout": GBR_BLOCK_DROPOUT,
}
#: Trained rows and the settings each changes from the spec's ranker config.
VARIANTS: dict[str, dict[str, Any]] = {
    ID_ONLY: {"use_semantic": False},
    KNOWLEDGE_ONLY: {"use_ids": False},
    SUM: {"fusion": "sum"},
    GATE: {"fusion": "gate", "dropout_max_count": GATED_DROPOUT_MAX_COUNT},
    GATE_SELF_ATTENTION: {
        "fusion": "gate",
        "dropout_max_count": GATED_DROPOUT_MAX_COUNT,
        "user_layers": 1,
    },
    GATE_GBR: _GATED_GBR,
    GATE_GBR_SLOTS: _GATED_GBR,  # its slot vectors come with its blocks (variant_config)
}
#: Variants that attend over generated blocks.
GBR_VARIANTS = frozenset({GATE_GBR, GATE_GBR_SLOTS})
#: Variants that learn a vector per slot of the block.
SLOT_VECTORS = frozenset({GATE_GBR_SLOTS})
#: Variants grown as a residual on another (``train``'s ``start_from``): the GBR variant on the
#: gated knowledge ranker of the same seed, so its blocks are kept only as far as validation
#: says they add to that ranker.
GROWN_ON = {GATE_GBR: GATE, GATE_GBR_SLOTS: GATE}
#: The candidates ``full`` is chosen from, by validation GAUC.
FULL_CANDIDATES = (SUM, GATE, GATE_SELF_ATTENTION, GATE_GBR, GATE_GBR_SLOTS)
SLICES = ("cold_items", "sparse_users")


@dataclass(frozen=True)
class RealDataSpec:
    source: Path
    format: str = "movielens"
    seeds: tuple[int, ...] = (0, 1, 2)
    loader: LoaderConfig = field(
        default_factory=lambda: LoaderConfig(split_quantile=0.8, test_quantile=0.9)
    )
    ranker: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=5, patience=1, progress=False)
    )
    semantic_dim: int = 32
    sampled_items: int = 99
    variants: tuple[str, ...] = tuple(VARIANTS)
    #: The generator behind the GBR variant: trained before the split time on the logs after a
    #: world corpus of knowledge walks (genres, tags) over the items known by then.
    generator: GeneratorSetup = field(
        default_factory=lambda: GeneratorSetup(generation=GenerationConfig(beyond_slots=4))
    )
    #: The beyond-log slot counts the generator's blocks may keep and the weights of the
    #: training logs' co-occurrence they may be blended with (:mod:`offline.gbr.fusion`): the
    #: pair whose blocks recall the most new clicks, rolled through the validation period, is
    #: used (:func:`validated_generation`).
    beyond_slot_choices: tuple[int, ...] = (0, 2, 4)
    log_weight_choices: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75)
    walks: int = 2000
    walk_length: int = 12


@dataclass
class KnowledgeStats:
    items: int
    distinct_texts: int
    distinct_vectors: int
    items_with_keywords: int
    encoder: str


def load(spec: RealDataSpec, seed: int) -> Dataset:
    dataset = load_dataset(spec.format, spec.source, replace(spec.loader, seed=seed))
    if dataset.test_ts is None:
        raise ValueError("the real-data protocol needs a validation period (test_quantile)")
    return dataset


def knowledge_vectors(
    dataset: Dataset, spec: RealDataSpec, records: list[ItemKnowledge]
) -> tuple[np.ndarray, KnowledgeStats]:
    """The knowledge ``records`` (one per catalogue row) encoded; with their statistics."""
    semantic = encode_knowledge(
        records, dataset.catalogue, EncoderChoice(dim=spec.semantic_dim).build()
    )
    stats = KnowledgeStats(
        items=len(records),
        distinct_texts=len({knowledge_text(record) for record in records}),
        distinct_vectors=len(np.unique(semantic.vectors, axis=0)),
        items_with_keywords=int((np.char.str_len(dataset.catalogue.keywords) > 0).sum()),
        encoder=f"{semantic.encoder.name} ({semantic.encoder.dim} dims)",
    )
    return semantic.vectors, stats


def _scores(
    dataset: Dataset,
    trained: TrainedRanker,
    spec: RealDataSpec,
    seed: int,
    generated: GeneratedBlocksLog | None = None,
) -> dict[str, Any]:
    found = eval_predictions(trained, dataset, generated)
    row: dict[str, Any] = {"overall": metrics(found.labels, found.probabilities, found.users)}
    row |= slice_metrics(trained, found)
    _, test = time_split(dataset, trained.config.max_seq_len, generated)
    candidates = sampled_candidates(dataset, test, spec.sampled_items, seed)
    row["sampled"] = hit_rate_ndcg(predict(trained, candidates), candidates)
    return row


def popularity_row(dataset: Dataset, spec: RealDataSpec, seed: int, has_id: np.ndarray) -> dict:
    """The popularity baseline on the same test examples and sampled lists."""
    _, test = time_split(dataset, spec.ranker.max_seq_len)
    found = flatten(test, popularity_scores(dataset, test.candidate_items, test.ts))
    # A count is no probability: logloss uses the counts squashed into (0, 1) by rank.
    ranks = np.argsort(np.argsort(found.probabilities, kind="stable"), kind="stable")
    squashed = (ranks + 0.5) / max(len(ranks), 1)
    row: dict[str, Any] = {"overall": metrics(found.labels, squashed, found.users)}
    slices = {
        "cold_items": ~has_id[found.items],
        "sparse_users": found.history_lengths <= SPARSE_USER_HISTORY,
    }
    for name, rows in slices.items():
        row[name] = metrics(found.labels[rows], squashed[rows], found.users[rows])
    candidates = sampled_candidates(dataset, test, spec.sampled_items, seed)
    scores = popularity_scores(dataset, candidates.candidate_items, candidates.ts)
    row["sampled"] = hit_rate_ndcg(scores, candidates)
    return row


def choose_full(runs: list[dict[str, Any]]) -> str:
    """Point every run's ``full`` row at the candidate with the best mean validation GAUC over
    the seeds (test figures play no part), and return its name."""
    candidates = [
        name for name in FULL_CANDIDATES if all(name in run["validation_gauc"] for run in runs)
    ]
    if not candidates:
        raise ValueError(f"no run trained any of the full candidates {FULL_CANDIDATES}")
    chosen = max(
        candidates,
        key=lambda name: sum(run["validation_gauc"][name] for run in runs) / len(runs),
    )
    for run in runs:
        run["rows"][FULL] = run["rows"][chosen]
        run["full_is"] = chosen
    return chosen


def world_generator(
    dataset: Dataset,
    vectors: np.ndarray,
    records: list[ItemKnowledge],
    spec: RealDataSpec,
    seed: int,
) -> tuple[GBRModel, WorldCorpus]:
    """The generator for the GBR variant: knowledge walks over the items seen before the split,
    then the logs before it."""
    beh = dataset.behaviours
    known = np.zeros(len(dataset.catalogue), bool)
    known[beh.item_idx[beh.ts < dataset.split_ts]] = True
    walks = knowledge_walks(records, spec.walks, spec.walk_length, seed, known)
    corpus = WorldCorpus.of({"knowledge walks": walks})
    train_config = replace(spec.generator.train, seed=seed)
    model = train_gbr(dataset, vectors, train_config, until_ts=dataset.split_ts, corpus=corpus)
    return model, corpus


def validated_generation(
    dataset: Dataset, model: GBRModel, spec: RealDataSpec, seed: int
) -> tuple[GeneratorSetup, dict[str, float]]:
    """The generator setup with the co-occurrence weight and beyond-log slot count, among
    ``spec``'s choices, whose blocks recall the most new clicks rolled through the validation
    period (:func:`offline.gbr.rolling.choose_blend`), and each pair's recall there."""
    generation, recall = choose_blend(
        model, dataset, replace(spec.generator.generation, seed=seed),
        item_groups(dataset.catalogue), spec.log_weight_choices, spec.beyond_slot_choices,
        window=(dataset.split_ts, dataset.test_ts),
    )  # fmt: skip
    return replace(spec.generator, generation=generation), recall


def generator_row(
    dataset: Dataset,
    model: GBRModel,
    corpus: WorldCorpus,
    setup: GeneratorSetup,
    validation_recall: dict[str, float],
) -> dict[str, Any]:
    """Beyond-log recall, on the test period's new clicks, of the world generator's blocks as
    ``setup`` makes them (``gbr_world``) and greedy (``gbr``), against co-occurrence and
    popularity; the same rolled through the test period (:mod:`offline.gbr.rolling`: a point
    at every new click, the history growing); with the co-occurrence weight and slot count
    chosen and each pair's rolled validation recall."""
    generation, test_ts = setup.generation, dataset.test_ts
    assert test_ts is not None, "load() refuses data without a test period"
    alone = replace(generation, beyond_slots=0, log_weight=0.0)
    report = evaluate_generator(
        model, dataset, generation=alone, cost_grid=(),
        cost_users=0, others={"gbr_world": model}, others_generation=generation,
        groups=item_groups(dataset.catalogue), window=(test_ts, None),
    )  # fmt: skip
    rolled = rolling_recall(
        model, dataset, generation, item_groups(dataset.catalogue), (test_ts, None)
    )
    return {
        "recall": report["recall"],
        "hit_rate": report["hit_rate"],
        "versus_cooccurrence": report["versus_cooccurrence"],
        "users": report["users"],
        "k": report["k"],
        "targets": "test period",
        "beyond_slots": generation.beyond_slots,
        "log_weight": generation.log_weight,
        "validation_recall": validation_recall,
        "validation": "rolled",
        "world_corpus": {"version": corpus.version, "sources": corpus.sources},
        "rolling": rolled,
    }


def variant_config(
    spec: RealDataSpec, name: str, seed: int, blocks: GeneratedBlocksLog | None
) -> TrainConfig:
    """The training settings of variant ``name``: the spec's, the variant's own and, with
    ``blocks``, their width (and a vector per slot for :data:`SLOT_VECTORS`)."""
    config = replace(spec.ranker, seed=seed, **VARIANTS[name])
    if blocks is None:
        return config
    slots = blocks.k if name in SLOT_VECTORS else 0
    return replace(config, generated=blocks.k, generated_slots=slots)


def run_seed(spec: RealDataSpec, seed: int) -> dict[str, Any]:
    """Every row of one seed (``full`` is set across seeds by :func:`choose_full`), the
    knowledge statistics and, with a GBR variant, the generator's beyond-log recall."""
    dataset = load(spec, seed)
    # Offline-backend knowledge over every catalogue field, described once per seed.
    records = OfflineKnowledgeBackend().describe(dataset.catalogue)
    vectors, stats = knowledge_vectors(dataset, spec, records)
    rows: dict[str, Any] = {}
    validation: dict[str, float] = {}
    epochs: dict[str, int | None] = {}
    has_id: np.ndarray | None = None
    generated: GeneratedBlocksLog | None = None
    generator: dict[str, Any] | None = None
    if GBR_VARIANTS & set(spec.variants):
        model, corpus = world_generator(dataset, vectors, records, spec, seed)
        setup, validation_recall = validated_generation(dataset, model, spec, seed)
        generated = generated_log(model, dataset, setup)
        generator = generator_row(dataset, model, corpus, setup, validation_recall)
    models: dict[str, TrainedRanker] = {}
    for name in spec.variants:
        started = time.perf_counter()
        blocks = generated if name in GBR_VARIANTS else None
        config = variant_config(spec, name, seed, blocks)
        base = GROWN_ON.get(name)
        if base is not None and base not in models:  # trained for the residual, not reported
            base_config = replace(spec.ranker, seed=seed, **VARIANTS[base])
            models[base] = train(dataset, vectors, base_config)
        start_from = None if base is None else models[base].model
        trained = models[name] = train(dataset, vectors, config, blocks, start_from)
        has_id = trained.model.items.has_id.numpy() > 0
        rows[name] = _scores(dataset, trained, spec, seed, blocks)
        validation[name] = float(trained.validation_gauc or 0.0)
        epochs[name] = trained.best_epoch
        log.info(
            "seed %d %s: validation GAUC %.4f, test GAUC %.4f (%.0f s)",
            seed, name, validation[name], rows[name]["overall"].gauc,
            time.perf_counter() - started,
        )  # fmt: skip
    assert has_id is not None
    rows[POPULARITY] = popularity_row(dataset, spec, seed, has_id)
    return {
        "seed": seed,
        "rows": rows,
        "validation_gauc": validation,
        "best_epoch": epochs,
        "generator": generator,
        "knowledge": stats.__dict__,
        "dataset": {
            "source": dataset.meta.get("source"),
            "items": len(dataset.catalogue),
            "users": len(dataset.user_ids),
            "impressions": len(dataset.impressions),
            "split_ts": dataset.split_ts,
            "test_ts": dataset.test_ts,
        },
    }
