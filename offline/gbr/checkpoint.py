"""A trained behaviour generator and its checkpoint directory.

The directory holds ``gbr.json`` (architecture, token layout, training settings, the time the
training data stopped at, the version), ``gbr.pt`` (the network's ``state_dict``) and
``items.npz`` (item IDs, semantic vectors, for semantic IDs the codebook, and the training
logs' item counts and anonymous engagement rows). It is
self-contained: generation and evaluation need nothing else, and the item IDs let a caller check
that a dataset's catalogue is the one the model was trained on.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from offline.gbr.log_prior import LogPrior
from offline.gbr.model import DiffusionConfig, MaskedDiffusionLM
from offline.gbr.semantic_ids import Codebook
from offline.gbr.tokens import ItemTokens, SemanticIdTokens, TokenLayout

CONFIG_FILE = "gbr.json"
WEIGHTS_FILE = "gbr.pt"
ITEMS_FILE = "items.npz"
FORMAT_VERSION = 1


@dataclass
class GBRModel:
    """The network, its token layout and what it was trained on."""

    network: MaskedDiffusionLM
    layout: TokenLayout
    item_ids: npt.NDArray[np.str_]
    semantic_vectors: npt.NDArray[np.float32]
    until_ts: int | None  # the training events all happened strictly before this time
    version: str
    train_info: dict[str, Any]
    #: Each item's events in the platform's training logs (``None`` in older checkpoints): the
    #: prior that beyond-log slots divide by (:mod:`offline.gbr.beyond`).
    item_counts: npt.NDArray[np.int64] | None = None
    #: The platform's training logs, for blocks blended with co-occurrence
    #: (:mod:`offline.gbr.fusion`); ``None`` in older checkpoints.
    log_prior: LogPrior | None = None

    @property
    def config(self) -> DiffusionConfig:
        return self.network.config

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.network.state_dict(), directory / WEIGHTS_FILE)
        arrays: dict[str, Any] = {
            "item_ids": np.asarray(self.item_ids, np.str_),
            "semantic_vectors": np.asarray(self.semantic_vectors, np.float32),
        }
        if isinstance(self.layout, SemanticIdTokens):
            arrays["centroids"] = self.layout.codebook.centroids
            arrays["item_codes"] = self.layout.codebook.item_codes
        if self.item_counts is not None:
            arrays["item_counts"] = np.asarray(self.item_counts, np.int64)
        if self.log_prior is not None:
            arrays["log_offsets"] = self.log_prior.offsets
            arrays["log_items"] = self.log_prior.items
        np.savez(directory / ITEMS_FILE, **arrays)
        document = {
            "format_version": FORMAT_VERSION,
            "version": self.version,
            "tokens": self.layout.kind,
            "network": asdict(self.config),
            "until_ts": self.until_ts,
            "train": self.train_info,
        }
        (directory / CONFIG_FILE).write_text(json.dumps(document, indent=2))
        return directory

    @classmethod
    def load(cls, directory: Path) -> GBRModel:
        document = json.loads((directory / CONFIG_FILE).read_text())
        if document.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{directory}: GBR checkpoint format {document.get('format_version')}")
        with np.load(directory / ITEMS_FILE, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        layout = build_layout(
            document["tokens"],
            len(arrays["item_ids"]),
            Codebook(arrays["centroids"], arrays["item_codes"]) if "centroids" in arrays else None,
        )
        network = MaskedDiffusionLM(DiffusionConfig(**document["network"]))
        network.load_state_dict(torch.load(directory / WEIGHTS_FILE, weights_only=True))
        network.eval()
        return cls(
            network=network,
            layout=layout,
            item_ids=arrays["item_ids"],
            semantic_vectors=arrays["semantic_vectors"],
            until_ts=document["until_ts"],
            version=document["version"],
            train_info=document["train"],
            item_counts=arrays.get("item_counts"),
            log_prior=(
                LogPrior(arrays["log_offsets"], arrays["log_items"], len(arrays["item_ids"]))
                if "log_offsets" in arrays
                else None
            ),
        )

    def check_catalogue(self, item_ids: npt.NDArray[np.str_]) -> None:
        """Raise when ``item_ids`` is not the catalogue (same rows, same order) of training."""
        if len(item_ids) != self.n_items or not np.array_equal(item_ids, self.item_ids):
            raise ValueError(
                f"GBR {self.version} was trained on another catalogue "
                f"({self.n_items} items, this one has {len(item_ids)})"
            )


def build_layout(kind: str, n_items: int, codebook: Codebook | None) -> TokenLayout:
    """The token layout of a kind; semantic IDs need their codebook."""
    if kind == "items":
        return ItemTokens(n_items)
    if kind == "semantic":
        if codebook is None:
            raise ValueError("semantic-ID tokens need a codebook")
        return SemanticIdTokens(codebook)
    raise ValueError(f"unknown token layout {kind!r}; choose items or semantic")


def model_version(network: MaskedDiffusionLM, kind: str, train_info: dict[str, Any]) -> str:
    """``gbr-<hash>`` of the layout, the settings and the weights: equal models, equal versions."""
    digest = hashlib.sha256()
    digest.update(json.dumps([kind, asdict(network.config), train_info], sort_keys=True).encode())
    buffer = io.BytesIO()
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(name.encode())
        buffer.seek(0)
        buffer.truncate()
        np.save(buffer, tensor.detach().cpu().numpy())
        digest.update(buffer.getvalue())
    return f"gbr-{digest.hexdigest()[:12]}"
