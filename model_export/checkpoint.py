"""Save and load a trained ranker: ``state_dict`` weights plus the JSON that rebuilds the module.

Weights go through ``torch.save`` of plain tensors and load with ``weights_only=True``, so a
checkpoint never executes code when read. The semantic vectors, the ``has_id`` mask and (gated
fusion) the items' training counts are buffers of the model, so a checkpoint alone rebuilds the
exact fused item table.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from model_export.model import RankerShape, RankingModel
from model_export.train import TrainConfig, TrainedRanker

WEIGHTS_SUFFIX = ".pt"
CONFIG_SUFFIX = ".json"


def save_ranker(trained: TrainedRanker, directory: Path, name: str = "ranker") -> None:
    """Write ``<name>.pt`` (weights) and ``<name>.json`` (config, shape, training stats)."""
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(trained.model.state_dict(), directory / f"{name}{WEIGHTS_SUFFIX}")
    info = {
        "config": asdict(trained.config),
        "shape": asdict(trained.shape),
        "train_seconds": trained.train_seconds,
        "final_loss": trained.final_loss,
        "best_epoch": trained.best_epoch,
        "validation_gauc": trained.validation_gauc,
    }
    (directory / f"{name}{CONFIG_SUFFIX}").write_text(json.dumps(info, indent=2))


def load_ranker(directory: Path, name: str = "ranker") -> TrainedRanker:
    """Rebuild a ranker written by :func:`save_ranker`, in eval mode."""
    info = json.loads((directory / f"{name}{CONFIG_SUFFIX}").read_text())
    shape = RankerShape(**info["shape"])
    # Placeholder buffers of the right shape; load_state_dict overwrites them.
    model = RankingModel(
        shape, torch.zeros(shape.n_items, shape.semantic_dim), torch.zeros(shape.n_items)
    )
    state = torch.load(directory / f"{name}{WEIGHTS_SUFFIX}", weights_only=True)
    model.load_state_dict(state)
    return TrainedRanker(
        model=model.eval(),
        config=TrainConfig(**info["config"]),
        shape=shape,
        train_seconds=float(info["train_seconds"]),
        final_loss=float(info["final_loss"]),
        best_epoch=info.get("best_epoch"),
        validation_gauc=info.get("validation_gauc"),
    )
