"""Dataset to bundle: encode items, train the ranker and its ID-only baseline, evaluate, export.

The steps are separate functions so a command line can run them apart (``train`` writes a run
directory, ``export`` turns one into a bundle) or together (:func:`build_bundle`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from model_export.bundle import export_bundle
from model_export.checkpoint import load_ranker, save_ranker
from model_export.evaluate import evaluate_with_slices, random_baseline
from model_export.train import TrainConfig, TrainedRanker, train
from offline.data.canonical import Catalogue, Dataset
from offline.encode import EncoderChoice, TextEncoder, encode_records, semantic_vectors
from offline.knowledge import ItemKnowledge, KnowledgeBackend, OfflineKnowledgeBackend
from service.contracts.manifest import EvaluationMetrics, TextEncoderInfo

log = logging.getLogger(__name__)

#: Metric names in the manifest; slices are stored as ``<model>/<slice>``.
MODEL, ID_ONLY, RANDOM = "model", "id_only", "random"
METRICS_FILE = "metrics.json"
ENCODER_FILE = "text_encoder.json"
SEMANTIC_DIM = 32


@dataclass(frozen=True)
class SemanticVectors:
    """One semantic vector per catalogue row and the encoder that produced them."""

    vectors: npt.NDArray[np.float32]
    encoder: TextEncoderInfo


def encode_items(
    catalogue: Catalogue,
    dim: int = SEMANTIC_DIM,
    seed: int = 0,
    *,
    backend: KnowledgeBackend | None = None,
    encoder: EncoderChoice | None = None,
) -> SemanticVectors:
    """Semantic vectors of the catalogue: knowledge from ``backend`` (default: the offline
    tables), encoded by ``encoder`` (default: TF-IDF + SVD at ``dim``)."""
    choice = encoder or EncoderChoice(dim=dim, seed=seed)
    vectors, info = semantic_vectors(
        catalogue, backend or OfflineKnowledgeBackend(), choice.build()
    )
    return SemanticVectors(np.asarray(vectors, dtype=np.float32), info)


def encode_knowledge(
    records: list[ItemKnowledge], catalogue: Catalogue, encoder: TextEncoder
) -> SemanticVectors:
    """Semantic vectors of knowledge records already written (one per catalogue row, in order)."""
    if [record.item_id for record in records] != catalogue.item_ids.tolist():
        raise ValueError("knowledge records do not match the catalogue's items and order")
    vectors, info = encode_records(records, encoder)
    return SemanticVectors(np.asarray(vectors, dtype=np.float32), info)


@dataclass
class TrainingRun:
    """The ranker to ship, what it was trained with, and how it and its baselines scored."""

    ranker: TrainedRanker
    encoder: TextEncoderInfo
    metrics: dict[str, EvaluationMetrics]

    @property
    def semantic_vectors(self) -> npt.NDArray[np.float32]:
        return self.ranker.model.items.semantic_vectors.numpy()

    def save(self, directory: Path) -> None:
        save_ranker(self.ranker, directory)
        (directory / ENCODER_FILE).write_text(self.encoder.model_dump_json(indent=2))
        metrics = {name: m.model_dump() for name, m in self.metrics.items()}
        (directory / METRICS_FILE).write_text(json.dumps(metrics, indent=2))

    @classmethod
    def load(cls, directory: Path) -> TrainingRun:
        metrics = json.loads((directory / METRICS_FILE).read_text())
        return cls(
            ranker=load_ranker(directory),
            encoder=TextEncoderInfo.model_validate_json((directory / ENCODER_FILE).read_text()),
            metrics={name: EvaluationMetrics(**m) for name, m in metrics.items()},
        )


def train_run(
    dataset: Dataset,
    train_config: TrainConfig,
    *,
    seed: int | None = None,
    semantic: SemanticVectors | None = None,
) -> TrainingRun:
    """Train the knowledge-fused ranker and the ID-only baseline; evaluate both and random."""
    config = train_config if seed is None else replace(train_config, seed=seed)
    semantic = semantic or encode_items(dataset.catalogue, seed=config.seed)
    ranker = train(dataset, semantic.vectors, config)
    log.info("trained the ranker in %.1f s", ranker.train_seconds)
    id_only = train(dataset, semantic.vectors, replace(config, use_semantic=False, use_ids=True))
    log.info("trained the ID-only baseline in %.1f s", id_only.train_seconds)
    metrics = (
        evaluate_with_slices(ranker, dataset, MODEL)
        | evaluate_with_slices(id_only, dataset, ID_ONLY)
        | {RANDOM: random_baseline(dataset, config.max_seq_len, seed=config.seed)}
    )
    for name in (MODEL, ID_ONLY, RANDOM):
        m = metrics[name]
        log.info("%s: auc %.4f gauc %.4f logloss %.4f", name, m.auc, m.gauc, m.logloss)
    return TrainingRun(ranker=ranker, encoder=semantic.encoder, metrics=metrics)


def export_run(
    run: TrainingRun, dataset: Dataset, bundles_root: Path, *, version: str | None = None
) -> Path:
    """Write the run's ranker as a bundle under ``bundles_root``."""
    started = time.perf_counter()
    path = export_bundle(
        run.ranker, dataset, run.semantic_vectors, run.encoder, run.metrics, bundles_root, version
    )
    log.info("exported bundle %s in %.1f s", path.name, time.perf_counter() - started)
    return path


def build_bundle(
    dataset: Dataset,
    bundles_root: Path,
    train_config: TrainConfig,
    *,
    version: str | None = None,
    seed: int | None = None,
    semantic: SemanticVectors | None = None,
) -> tuple[Path, dict[str, EvaluationMetrics]]:
    """Train, evaluate and export in one go; returns the bundle and the metrics it records."""
    run = train_run(dataset, train_config, seed=seed, semantic=semantic)
    return export_run(run, dataset, bundles_root, version=version), run.metrics
