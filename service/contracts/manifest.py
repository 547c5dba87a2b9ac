"""The bundle manifest: the one place where the exporter and the service agree.

A bundle is a directory ``bundles/<version>/`` holding ``manifest.json``, the ONNX graphs named
in :mod:`service.contracts.graphs`, the item table (``item_ids.npy`` with the ID of each row,
``item_vectors.npy`` with the fused vectors) and, from the exporter of this version on, the
weights of the encoders and the scorer (:class:`ModuleWeights`) for serving them in PyTorch on a
device that onnxruntime has no provider for. Every file is listed with its sha256; a bundle is
immutable once written.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MANIFEST_FILE = "manifest.json"
SCHEMA_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelDimensions(_Strict):
    item_dim: int = Field(gt=0, description="Width d of a fused item vector.")
    heads: int = Field(gt=0, description="Attention heads; item_dim is a multiple of it.")
    semantic_dim: int = Field(ge=0, description="Width of the semantic (knowledge) vectors.")
    user_layers: int = Field(
        default=0,
        ge=0,
        description="Causal self-attention layers of the user encoder. With any, a user's "
        "behaviours are encoded in their own row of a batch, never packed with another user's.",
    )

    @property
    def head_dim(self) -> int:
        return self.item_dim // self.heads


class MaxLengths(_Strict):
    sequence: int = Field(gt=0, description="Most recent real behaviours the ranker attends over.")
    generated: int = Field(ge=0, description="Generated behaviours per user (K); 0 before GBR.")


class FeatureSchema(_Strict):
    event_types: list[str] = Field(description="Event names; model id = index + 1, 0 = padding.")
    time_gap_buckets: int = Field(gt=0, description="Buckets of log2(1 + gap in minutes).")


class ItemTable(_Strict):
    ids_file: str = Field(description="NumPy array of item ID strings, one per row.")
    vectors_file: str = Field(description="NumPy array [rows, item_dim] of fused vectors.")
    dtype: Literal["float16", "float32"]
    rows: int = Field(ge=0)
    default_vector: list[float] = Field(
        description="Vector used for a candidate the table does not know."
    )


class TextEncoderInfo(_Strict):
    name: str = Field(description="Encoder identity, e.g. 'tfidf-svd'.")
    dim: int = Field(gt=0)
    version: str


class GeneratorInfo(_Strict):
    version: str = Field(description="GBR model version the ranker was trained with.")
    checkpoint: str | None = Field(default=None, description="Checkpoint file in the bundle.")


class ModuleWeights(_Strict):
    """The weights of the user encoder, the candidate encoder and the scorer: an .npz file of
    float32 arrays named `<graph>.<parameter>` (the names of `graphs` and of the trained modules'
    parameters). Serving rebuilds the three modules in PyTorch from them where onnxruntime cannot
    run the graphs on the device."""

    file: str = Field(description="The .npz file in the bundle.")
    hidden_dim: int = Field(gt=0, description="Width of the scorer's first hidden layer.")


class EvaluationMetrics(_Strict):
    auc: float
    gauc: float
    logloss: float
    examples: int = Field(ge=0)


class FileDigest(_Strict):
    sha256: str
    bytes: int = Field(ge=0)


class BundleManifest(_Strict):
    schema_version: int = SCHEMA_VERSION
    version: str = Field(pattern=r"^[A-Za-z0-9._-]+$", max_length=128)
    created_at: datetime
    dimensions: ModelDimensions
    max_lengths: MaxLengths
    features: FeatureSchema
    graphs: dict[str, str] = Field(description="Graph name -> ONNX file in the bundle.")
    item_table: ItemTable
    text_encoder: TextEncoderInfo | None = None
    generator: GeneratorInfo | None = None
    module_weights: ModuleWeights | None = Field(
        default=None,
        description="Weights for serving the graphs in PyTorch; absent in bundles "
        "written before they were exported.",
    )
    metrics: dict[str, EvaluationMetrics] = Field(
        default_factory=dict, description="Offline evaluation by model name (time split)."
    )
    files: dict[str, FileDigest] = Field(default_factory=dict)


class BundleIntegrityError(Exception):
    """A bundle file is missing or does not match its checksum."""


def file_digest(path: Path) -> FileDigest:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return FileDigest(sha256=sha.hexdigest(), bytes=path.stat().st_size)


def read_manifest(bundle_dir: Path) -> BundleManifest:
    return BundleManifest.model_validate_json((bundle_dir / MANIFEST_FILE).read_text())


def verify_files(bundle_dir: Path, manifest: BundleManifest) -> None:
    """Raise :class:`BundleIntegrityError` unless every listed file matches its sha256."""
    for name, expected in manifest.files.items():
        path = bundle_dir / name
        if not path.is_file():
            raise BundleIntegrityError(f"bundle {manifest.version}: file {name} is missing")
        actual = file_digest(path)
        if actual != expected:
            raise BundleIntegrityError(
                f"bundle {manifest.version}: {name} has sha256 {actual.sha256}, "
                f"manifest says {expected.sha256}"
            )
