"""The bundle manifest: the one place where the exporter and the service agree.

A bundle is a directory ``bundles/<version>/`` holding ``manifest.json``, the ONNX graphs named
in :mod:`service.contracts.graphs`, the item table (``item_ids.npy`` with the ID of each row,
``item_vectors.npy`` with the fused vectors) and, from the exporter of this version on, the
weights of the encoders and the scorer (:class:`ModuleWeights`) for serving them in PyTorch on a
device that onnxruntime has no provider for. Every file is listed with its sha256; a bundle is
immutable once written.

A bundle is confined to its folder: every file name in a manifest is a plain name (no folder, no
``..``, not absolute), the version folder may not be a link, and a listed file may not be a link
either, so a manifest cannot make the service load a graph or a table from anywhere else. Errors
name the bundle and the file, never a digest or a path of the machine.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

MANIFEST_FILE = "manifest.json"
SCHEMA_VERSION = 1


#: A file of a bundle: a plain name in the bundle's folder.
BundleFileName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")]


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
    generated_slots: int = Field(
        default=0,
        ge=0,
        description="Slots of the generated block with a learned vector of their own (0: none). "
        "With any, the user encoder takes each generated behaviour's rank in its block "
        "(generated_slots input); ranks past the last share its vector.",
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
    ids_file: BundleFileName = Field(description="NumPy array of item ID strings, one per row.")
    vectors_file: BundleFileName = Field(
        description="NumPy array [rows, item_dim] of fused vectors."
    )
    dtype: Literal["float16", "float32"]
    rows: int = Field(ge=0)
    default_vector: list[float] = Field(
        description="Vector used for a candidate the table does not know."
    )


class TextEncoderInfo(_Strict):
    name: str = Field(description="Encoder identity, e.g. 'tfidf-svd'.")
    dim: int = Field(gt=0)
    version: str


class BlockSettings(_Strict):
    """How the ranker's training blocks were generated; the nearline job generates the same
    unless told otherwise."""

    beyond_slots: int = Field(
        default=0, ge=0, description="Last slots given to items beyond the history's department."
    )
    log_weight: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Weight of the generator's training-log co-occurrence in each block.",
    )


class GeneratorInfo(_Strict):
    version: str = Field(description="GBR model version the ranker was trained with.")
    checkpoint: BundleFileName | None = Field(
        default=None, description="Checkpoint file in the bundle."
    )
    blocks: BlockSettings | None = Field(
        default=None,
        description="How its training blocks were generated (absent: the generator alone).",
    )


class ModuleWeights(_Strict):
    """The weights of the user encoder, the candidate encoder and the scorer: an .npz file of
    float32 arrays named `<graph>.<parameter>` (the names of `graphs` and of the trained modules'
    parameters). Serving rebuilds the three modules in PyTorch from them where onnxruntime cannot
    run the graphs on the device."""

    file: BundleFileName = Field(description="The .npz file in the bundle.")
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
    graphs: dict[str, BundleFileName] = Field(description="Graph name -> ONNX file in the bundle.")
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
    files: dict[BundleFileName, FileDigest] = Field(default_factory=dict)


class BundleIntegrityError(Exception):
    """A bundle file is missing or does not match its checksum."""


def file_digest(path: Path) -> FileDigest:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return FileDigest(sha256=sha.hexdigest(), bytes=path.stat().st_size)


def read_manifest(bundle_dir: Path) -> BundleManifest:
    """The manifest of the bundle in ``bundle_dir``; a missing, linked or unreadable one is a
    :class:`BundleIntegrityError` naming the folder only."""
    path = bundle_dir / MANIFEST_FILE
    if bundle_dir.is_symlink() or path.is_symlink():
        raise BundleIntegrityError(f"bundle {bundle_dir.name}: a link, not a bundle folder")
    if not path.is_file():
        raise BundleIntegrityError(f"bundle {bundle_dir.name}: no {MANIFEST_FILE}")
    try:
        return BundleManifest.model_validate_json(path.read_text())
    except ValidationError as error:
        # Say where, not what: the offending values stay in the file, out of HTTP answers.
        where = ", ".join(dict.fromkeys(str(e["loc"][0]) for e in error.errors() if e["loc"]))
        raise BundleIntegrityError(
            f"bundle {bundle_dir.name}: {MANIFEST_FILE} is not a valid manifest (at {where}); "
            "file names must be plain names in the bundle folder"
        ) from None


def confined_bundle_dir(root: Path, version: str) -> Path:
    """``root/version`` when it is a real folder directly under ``root`` (not a link, not
    elsewhere once resolved); else :class:`BundleIntegrityError`."""
    bundle_dir = root / version
    if bundle_dir.is_symlink() or bundle_dir.resolve().parent != root.resolve():
        raise BundleIntegrityError(
            f"bundle {version}: the version folder must be a folder in the bundle root, not a link"
        )
    return bundle_dir


def verify_files(bundle_dir: Path, manifest: BundleManifest) -> None:
    """Raise :class:`BundleIntegrityError` unless every listed file is a plain file of the
    bundle's own folder that matches its sha256."""
    folder = bundle_dir.resolve()
    for name, expected in manifest.files.items():
        path = bundle_dir / name
        if path.is_symlink() or path.resolve().parent != folder:
            raise BundleIntegrityError(f"bundle {manifest.version}: file {name} is a link")
        if not path.is_file():
            raise BundleIntegrityError(f"bundle {manifest.version}: file {name} is missing")
        if file_digest(path) != expected:
            raise BundleIntegrityError(
                f"bundle {manifest.version}: file {name} does not match its checksum in the "
                "manifest (changed or truncated after export)"
            )
