"""Dataset to bundle: encode items, train the ranker and its baselines, evaluate, export.

The baselines are ablation rows: ID-only, and, given a generated-behaviours log, ID + generated
and ID + knowledge + generated (the ranker that then ships).

The steps are separate functions so a command line can run them apart (``train`` writes a run
directory, ``export`` turns one into a bundle) or together (:func:`build_bundle`).
:func:`build_demo` is ``reaseq demo`` from end to end: a synthetic dataset, its behaviour
generator, the bundle, its users (and their generated behaviours) in the embedded snapshot.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from model_export.bundle import export_bundle
from model_export.checkpoint import load_ranker, save_ranker
from model_export.dataset import GeneratedBlocksLog
from model_export.evaluate import evaluate_with_slices, random_baseline
from model_export.train import GATED_DROPOUT_MAX_COUNT, TrainConfig, TrainedRanker, train
from offline.data.canonical import Catalogue, Dataset
from offline.encode import EncoderChoice, TextEncoder, encode_records, semantic_vectors
from offline.knowledge import ItemKnowledge, KnowledgeBackend, OfflineKnowledgeBackend
from service.bundles.loaded import load_item_table
from service.contracts.bundle_root import activate, record_user_snapshot
from service.contracts.manifest import (
    EvaluationMetrics,
    GeneratorInfo,
    TextEncoderInfo,
    read_manifest,
)

if TYPE_CHECKING:
    from offline.gbr import GBRModel, GenerationConfig

log = logging.getLogger(__name__)

#: Metric names in the manifest; slices are stored as ``<model>/<slice>``.
MODEL, ID_ONLY, RANDOM = "model", "id_only", "random"
ID_GBR, FULL = "id_gbr", "full"
#: The knowledge ranker with gated fusion, and with gated fusion and the self-attention encoder.
GATE, GATE_SELF_ATTENTION = "gate", "gate_self_attention"
METRICS_FILE = "metrics.json"
ENCODER_FILE = "text_encoder.json"
GENERATOR_FILE = "generator.json"
#: The folders and files of a demo build under its ``out`` folder.
MODEL_DIR = "model"
DEMO_USERS = "users.npz"
SEMANTIC_DIM = 32


@dataclass(frozen=True)
class Variant:
    """Which signals one ablation row's ranker uses; ``None`` keeps the training config's choice."""

    use_semantic: bool | None = None
    use_ids: bool | None = None
    uses_generated: bool = False
    fusion: str | None = None
    #: IDs dropped in training only for items seen at most this often (gated fusion).
    dropout_max_count: int | None = None
    #: Causal self-attention layers of the user encoder (0 = the light encoder).
    user_layers: int | None = None


VARIANTS: dict[str, Variant] = {
    MODEL: Variant(),
    ID_ONLY: Variant(use_semantic=False, use_ids=True),
    ID_GBR: Variant(use_semantic=False, use_ids=True, uses_generated=True),
    FULL: Variant(use_semantic=True, use_ids=True, uses_generated=True),
    GATE: Variant(fusion="gate", dropout_max_count=GATED_DROPOUT_MAX_COUNT),
    GATE_SELF_ATTENTION: Variant(
        fusion="gate", dropout_max_count=GATED_DROPOUT_MAX_COUNT, user_layers=1
    ),
}
#: Today's rows: the knowledge-fused ranker (shipped) and the ID-only baseline.
DEFAULT_VARIANTS: tuple[str, ...] = (MODEL, ID_ONLY)
#: Every row; needs a generated log, and ships ``full``.
ABLATION_VARIANTS: tuple[str, ...] = (MODEL, ID_ONLY, ID_GBR, FULL)
#: The demo's rows: ships ``full`` and keeps the knowledge-only and ID-only rankers to compare.
DEMO_VARIANTS: tuple[str, ...] = (MODEL, ID_ONLY, FULL)


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
    #: The generator whose blocks the shipped ranker was trained with, if any.
    generator: GeneratorInfo | None = None

    @property
    def semantic_vectors(self) -> npt.NDArray[np.float32]:
        return self.ranker.model.items.semantic_vectors.numpy()

    def save(self, directory: Path) -> None:
        save_ranker(self.ranker, directory)
        (directory / ENCODER_FILE).write_text(self.encoder.model_dump_json(indent=2))
        metrics = {name: m.model_dump() for name, m in self.metrics.items()}
        (directory / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
        if self.generator is not None:
            (directory / GENERATOR_FILE).write_text(self.generator.model_dump_json(indent=2))

    @classmethod
    def load(cls, directory: Path) -> TrainingRun:
        metrics = json.loads((directory / METRICS_FILE).read_text())
        generator_file = directory / GENERATOR_FILE
        return cls(
            ranker=load_ranker(directory),
            encoder=TextEncoderInfo.model_validate_json((directory / ENCODER_FILE).read_text()),
            metrics={name: EvaluationMetrics(**m) for name, m in metrics.items()},
            generator=(
                GeneratorInfo.model_validate_json(generator_file.read_text())
                if generator_file.exists()
                else None
            ),
        )


def _check_variants(variants: tuple[str, ...], generated: GeneratedBlocksLog | None) -> str:
    """The variant to ship, after refusing combinations that would silently drop a signal."""
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; known: {sorted(VARIANTS)}")
    uses_log = [name for name in variants if VARIANTS[name].uses_generated]
    if uses_log and generated is None:
        raise ValueError(f"variants {uses_log} need a generated-behaviours log")
    if generated is not None and not uses_log:
        raise ValueError(f"a generated log was given but none of {list(variants)} uses it")
    shipped = FULL if FULL in variants else MODEL
    if shipped not in variants:
        raise ValueError(f"variants must include {MODEL!r} or {FULL!r}: the ranker to ship")
    return shipped


def train_variant(
    dataset: Dataset,
    semantic: SemanticVectors,
    config: TrainConfig,
    variant: Variant,
    generated: GeneratedBlocksLog | None,
) -> TrainedRanker:
    """Train one ablation row; ``generated`` is used only by a variant that attends over it."""
    log_used = generated if variant.uses_generated else None
    variant_config = replace(
        config,
        use_semantic=config.use_semantic if variant.use_semantic is None else variant.use_semantic,
        use_ids=config.use_ids if variant.use_ids is None else variant.use_ids,
        generated=0 if log_used is None else log_used.k,
        generated_slots=0 if log_used is None else config.generated_slots,
    )
    if variant.fusion is not None:
        variant_config = replace(
            variant_config, fusion=variant.fusion, dropout_max_count=variant.dropout_max_count
        )
    if variant.user_layers is not None:
        variant_config = replace(variant_config, user_layers=variant.user_layers)
    return train(dataset, semantic.vectors, variant_config, log_used)


def train_run(
    dataset: Dataset,
    train_config: TrainConfig,
    *,
    seed: int | None = None,
    semantic: SemanticVectors | None = None,
    generated: GeneratedBlocksLog | None = None,
    variants: tuple[str, ...] = DEFAULT_VARIANTS,
) -> TrainingRun:
    """Train every variant, evaluate each with slices plus random, and keep the one to ship.

    By default that is the knowledge-fused ranker and the ID-only baseline. With a generated log
    and :data:`ABLATION_VARIANTS`, ``id_gbr`` and ``full`` are trained too and ``full`` ships.
    """
    config = train_config if seed is None else replace(train_config, seed=seed)
    shipped = _check_variants(variants, generated)
    semantic = semantic or encode_items(dataset.catalogue, seed=config.seed)
    rankers: dict[str, TrainedRanker] = {}
    metrics: dict[str, EvaluationMetrics] = {}
    for name in variants:
        variant = VARIANTS[name]
        rankers[name] = train_variant(dataset, semantic, config, variant, generated)
        log.info("trained %s in %.1f s", name, rankers[name].train_seconds)
        log_used = generated if variant.uses_generated else None
        metrics |= evaluate_with_slices(rankers[name], dataset, name, log_used)
    metrics[RANDOM] = random_baseline(dataset, config.max_seq_len, seed=config.seed)
    for name in (*variants, RANDOM):
        m = metrics[name]
        log.info("%s: auc %.4f gauc %.4f logloss %.4f", name, m.auc, m.gauc, m.logloss)
    generator = (
        generated.generator_info()
        if generated is not None and VARIANTS[shipped].uses_generated
        else None
    )
    return TrainingRun(
        ranker=rankers[shipped], encoder=semantic.encoder, metrics=metrics, generator=generator
    )


def export_run(
    run: TrainingRun, dataset: Dataset, bundles_root: Path, *, version: str | None = None
) -> Path:
    """Write the run's ranker as a bundle under ``bundles_root``."""
    started = time.perf_counter()
    path = export_bundle(
        run.ranker,
        dataset,
        run.semantic_vectors,
        run.encoder,
        run.metrics,
        bundles_root,
        version,
        generator=run.generator,
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
    generated: GeneratedBlocksLog | None = None,
    variants: tuple[str, ...] = DEFAULT_VARIANTS,
    run_dir: Path | None = None,
) -> tuple[Path, dict[str, EvaluationMetrics]]:
    """Train, evaluate and export in one go (keeping the run in ``run_dir`` when given, for
    ``reaseq export`` to export again); returns the bundle and the metrics it records."""
    run = train_run(
        dataset,
        train_config,
        seed=seed,
        semantic=semantic,
        generated=generated,
        variants=variants,
    )
    if run_dir is not None:
        run.save(run_dir)
    return export_run(run, dataset, bundles_root, version=version), run.metrics


@dataclass(frozen=True)
class DemoSpec:
    """What ``reaseq demo`` builds: a synthetic preset whose logs end at ``end_ts``, with
    ``generated`` behaviours per user (0: no generator)."""

    size: str
    bundles: Path
    #: Folder of the dataset (``data/``), generator (``gbr/``), run (``model/``) and users.
    out: Path
    epochs: int
    generated: int
    gbr_epochs: int
    seed: int
    end_ts: int


@dataclass(frozen=True)
class DemoBundle:
    """What a demo build produced: the bundle (now current), its metrics and parity, and what
    the nearline job wrote (None without a generator)."""

    path: Path
    metrics: dict[str, EvaluationMetrics]
    parity: float
    nearline: dict[str, object] | None


def build_demo(spec: DemoSpec) -> DemoBundle:
    """Data -> knowledge vectors -> behaviour generator -> train -> bundle (parity checked) ->
    users' sequences and generated behaviours in the embedded snapshot -> ``CURRENT``."""
    from model_export.parity import check_parity
    from offline.data.synthetic import SyntheticConfig, generate
    from offline.publish.sequences import latest_sequences
    from offline.publish.stores import publish_embedded

    dataset = generate(SyntheticConfig.preset(spec.size, seed=spec.seed), end_ts=spec.end_ts)
    dataset.save(spec.out / "data")
    semantic = encode_items(dataset.catalogue, seed=spec.seed)
    generator = (
        train_behaviour_generator(
            dataset,
            semantic,
            k=spec.generated,
            epochs=spec.gbr_epochs,
            seed=spec.seed,
            out=spec.out,
        )
        if spec.generated > 0
        else None
    )
    path, metrics = build_bundle(
        dataset,
        spec.bundles,
        TrainConfig(epochs=spec.epochs, seed=spec.seed),
        semantic=semantic,
        generated=None if generator is None else generator.log,
        variants=DEFAULT_VARIANTS if generator is None else DEMO_VARIANTS,
        run_dir=spec.out / MODEL_DIR,
    )
    parity = check_parity(path)
    max_len = read_manifest(path).max_lengths.sequence
    users = publish_embedded(latest_sequences(dataset, max_len), spec.out / DEMO_USERS)
    record_user_snapshot(path, users)
    nearline = None if generator is None else generator.publish(dataset, path, users)
    activate(path)
    return DemoBundle(path, metrics, parity, nearline)


@dataclass(frozen=True)
class BehaviourGenerator:
    """A behaviour generator, how it samples, and the blocks a ranker trains and is evaluated
    on (one per request of the dataset, from that request's past only)."""

    model: GBRModel
    generation: GenerationConfig
    log: GeneratedBlocksLog

    def publish(self, dataset: Dataset, bundle: Path, users: Path) -> dict[str, object]:
        """Every user's block, in the bundle's fused item vectors, into the embedded snapshot
        ``users`` (which already holds their sequences); the nearline state goes beside it."""
        from offline.gbr import run_nearline
        from service.stores.config import EmbeddedStoreConfig

        return run_nearline(
            self.model,
            dataset,
            self.generation,
            item_table=load_item_table(bundle, read_manifest(bundle)),
            state_path=users.parent / "gbr_state.npz",
            incremental=False,
            store=EmbeddedStoreConfig(users_path=users),
        )


def train_behaviour_generator(
    dataset: Dataset, semantic: SemanticVectors, *, k: int, epochs: int, seed: int, out: Path
) -> BehaviourGenerator:
    """One generator, trained before the split (saved under ``out/gbr``): the training
    examples' blocks cannot have seen the evaluation period, and the nearline blocks come from
    the same model."""
    from model_export.generated_log import GeneratorSetup, generated_log
    from offline.gbr import GBRTrainConfig, GenerationConfig, train_gbr

    setup = GeneratorSetup(
        train=GBRTrainConfig(epochs=epochs, seed=seed),
        generation=GenerationConfig(k=k, seed=seed),
    )
    model = train_gbr(dataset, semantic.vectors, setup.train, until_ts=dataset.split_ts)
    model.save(out / "gbr")
    return BehaviourGenerator(model, setup.generation, generated_log(model, dataset, setup))
