"""Write an immutable serving bundle: ONNX graphs, the module weights beside them, the fused item
table and the manifest.

Everything is written into a hidden staging directory next to the destination and renamed into
place in one step, so a reader never sees a half-written bundle and a bundle never changes after
it appears.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from model_export.export import export_graphs
from model_export.model import RankingModel
from model_export.module_weights import write_module_weights
from model_export.train import TrainedRanker
from offline.data.canonical import Dataset
from service.contracts.features import EVENT_TYPES, TIME_GAP_BUCKETS
from service.contracts.manifest import (
    MANIFEST_FILE,
    BundleManifest,
    EvaluationMetrics,
    FeatureSchema,
    FileDigest,
    GeneratorInfo,
    ItemTable,
    MaxLengths,
    ModelDimensions,
    TextEncoderInfo,
    file_digest,
)

ITEM_IDS_FILE = "item_ids.npy"
ITEM_VECTORS_FILE = "item_vectors.npy"


def fused_item_table(trained: TrainedRanker) -> npt.NDArray[np.float32]:
    """Every item's fused vector ``[n_items, d]`` as the trained model computes it."""
    return model_item_table(trained.model)


def model_item_table(model: RankingModel) -> npt.NDArray[np.float32]:
    """Every item's fused vector ``[n_items, d]`` as ``model`` computes it."""
    model.eval()
    with torch.inference_mode():
        return model.items.table().numpy().astype(np.float32)


def default_item_vector(
    table: npt.NDArray[np.float32], has_id: npt.NDArray[np.bool_]
) -> list[float]:
    """What a candidate the table does not know is scored as.

    The mean over items without a trained ID embedding is the model's best picture of "an item
    we know little about"; with none of those, the overall mean.
    """
    cold = table[~has_id] if (~has_id).any() else table
    if len(cold) == 0:
        return [0.0] * table.shape[1]
    return [float(x) for x in cold.mean(axis=0)]


def default_version(files: dict[str, FileDigest], now: datetime) -> str:
    """``rs-<UTC yyyymmddHHMMSS>-<hash of the bundle's contents>``."""
    content = hashlib.sha256()
    for name in sorted(files):
        content.update(f"{name}:{files[name].sha256}\n".encode())
    return f"rs-{now:%Y%m%d%H%M%S}-{content.hexdigest()[:8]}"


def _check_semantic(trained: TrainedRanker, semantic_vectors: npt.NDArray[np.float32]) -> None:
    trained_with = trained.model.items.semantic_vectors.numpy()
    if semantic_vectors.shape != trained_with.shape or not np.allclose(
        semantic_vectors, trained_with, atol=1e-6
    ):
        raise ValueError("semantic vectors differ from the ones the ranker was trained with")


def _check_generator(trained: TrainedRanker, generator: GeneratorInfo | None) -> None:
    k = trained.config.generated
    if k > 0 and generator is None:
        raise ValueError(
            f"the ranker was trained with {k} generated behaviours: name the generator"
        )
    if k == 0 and generator is not None:
        raise ValueError("the ranker was trained without generated behaviours: pass no generator")


def export_bundle(
    trained: TrainedRanker,
    dataset: Dataset,
    semantic_vectors: npt.NDArray[np.float32],
    encoder_info: TextEncoderInfo | None,
    metrics: dict[str, EvaluationMetrics],
    bundles_root: Path,
    version: str | None = None,
    generator: GeneratorInfo | None = None,
) -> Path:
    """Write ``bundles_root/<version>/`` and return its path; refuses to overwrite a bundle.

    ``generator`` names the generator whose blocks the ranker was trained with; it is required
    exactly when the ranker was trained with generated behaviours, so serving can refuse blocks
    from another generator version.
    """
    if len(dataset.catalogue) != trained.shape.n_items:
        raise ValueError(
            f"catalogue has {len(dataset.catalogue)} items, the ranker {trained.shape.n_items}"
        )
    _check_semantic(trained, semantic_vectors)
    _check_generator(trained, generator)
    if version is not None and (bundles_root / version).exists():
        raise FileExistsError(f"bundle {version} already exists in {bundles_root}")
    bundles_root.mkdir(parents=True, exist_ok=True)
    staging = bundles_root / f".staging-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        manifest = _write_contents(
            trained, dataset, encoder_info, generator, metrics, staging, version
        )
        destination = bundles_root / manifest.version
        if destination.exists():
            raise FileExistsError(f"bundle {manifest.version} already exists in {bundles_root}")
        staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return destination


def _write_contents(
    trained: TrainedRanker,
    dataset: Dataset,
    encoder_info: TextEncoderInfo | None,
    generator: GeneratorInfo | None,
    metrics: dict[str, EvaluationMetrics],
    staging: Path,
    version: str | None,
) -> BundleManifest:
    graphs = export_graphs(trained.model, staging)
    config = trained.config
    return write_bundle_files(
        trained.model,
        graphs,
        dataset.catalogue.item_ids,
        staging,
        ManifestFacts(
            max_lengths=MaxLengths(sequence=config.max_seq_len, generated=config.generated),
            generator=generator,
            text_encoder=encoder_info,
            metrics=metrics,
        ),
        version,
    )


@dataclass(frozen=True)
class ManifestFacts:
    """What a bundle's manifest states beside its files and the model's shape."""

    max_lengths: MaxLengths
    generator: GeneratorInfo | None
    text_encoder: TextEncoderInfo | None = None
    metrics: dict[str, EvaluationMetrics] = field(default_factory=dict)


def write_bundle_files(
    model: RankingModel,
    graphs: dict[str, str],
    item_ids: Sequence[str] | npt.NDArray[np.str_],
    directory: Path,
    facts: ManifestFacts,
    version: str | None = None,
) -> BundleManifest:
    """Beside the graphs already in ``directory``: the module weights, the fused item table
    (float16) and the manifest with every file's digest (version: dated from the digests when
    None)."""
    module_weights = write_module_weights(model, directory)
    table = model_item_table(model)
    has_id = model.items.has_id.numpy() > 0
    np.save(directory / ITEM_IDS_FILE, np.asarray(item_ids, dtype=np.str_))
    np.save(directory / ITEM_VECTORS_FILE, table.astype(np.float16))
    files = {p.name: file_digest(p) for p in sorted(directory.iterdir()) if p.is_file()}
    now = datetime.now(UTC)
    shape = model.shape
    manifest = BundleManifest(
        version=version or default_version(files, now),
        created_at=now,
        dimensions=ModelDimensions(
            item_dim=shape.item_dim,
            heads=shape.heads,
            semantic_dim=shape.semantic_dim,
            user_layers=shape.user_layers,
            generated_slots=shape.generated_slots,
        ),
        max_lengths=facts.max_lengths,
        features=FeatureSchema(event_types=list(EVENT_TYPES), time_gap_buckets=TIME_GAP_BUCKETS),
        graphs=graphs,
        item_table=ItemTable(
            ids_file=ITEM_IDS_FILE,
            vectors_file=ITEM_VECTORS_FILE,
            dtype="float16",
            rows=len(table),
            default_vector=default_item_vector(table, has_id),
        ),
        text_encoder=facts.text_encoder,
        generator=facts.generator,
        module_weights=module_weights,
        metrics=facts.metrics,
        files=files,
    )
    (directory / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2))
    return manifest
