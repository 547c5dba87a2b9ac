"""Train the ranker on the training side of a dataset's time split."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch.nn import functional as F
from tqdm import tqdm

from model_export.dataset import (
    GeneratedBlocksLog,
    RankingBatch,
    batch_logits,
    batches,
    items_seen_in_training,
    time_split,
)
from model_export.model import RankerShape, RankingModel
from offline.data.canonical import Dataset


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; saved next to the checkpoint."""

    epochs: int = 2
    batch_size: int = 256
    lr: float = 3e-3
    max_seq_len: int = 50
    item_dim: int = 64
    heads: int = 4
    hidden_dim: int = 128
    seed: int = 0
    #: Probability of hiding an item's ID embedding per occurrence, so the semantic path learns
    #: to represent an item alone (as it must for a cold item). Ignored without semantic vectors.
    id_dropout: float = 0.2
    use_semantic: bool = True
    use_ids: bool = True
    #: Generated behaviours per request the ranker is trained with (K; 0 = none). It must match
    #: the width of the generated log given to :func:`train`; the bundle's manifest records it.
    generated: int = 0
    #: Torch intra-op threads during training; ``None`` keeps torch's default (one per core).
    #: On cores shared with other busy processes, 1 is often several times faster: the small
    #: ops of this model make OpenMP threads wait on each other at every barrier.
    threads: int | None = None
    progress: bool = True


@dataclass
class TrainedRanker:
    """A trained model with the configuration and shape that rebuild it."""

    model: RankingModel
    config: TrainConfig
    shape: RankerShape
    train_seconds: float
    final_loss: float


def masked_bce(logits: torch.Tensor, batch: RankingBatch) -> torch.Tensor:
    """Mean binary cross-entropy over real impressions (padding slots do not count)."""
    losses = F.binary_cross_entropy_with_logits(logits, batch.labels, reduction="none")
    return (losses * batch.candidate_mask).sum() / batch.candidate_mask.sum().clamp_min(1.0)


def build_model(
    config: TrainConfig,
    semantic_vectors: npt.NDArray[np.float32],
    has_id: npt.NDArray[np.bool_],
) -> RankingModel:
    """An untrained model shaped by ``config`` for this catalogue."""
    shape = RankerShape(
        n_items=len(has_id),
        semantic_dim=int(semantic_vectors.shape[1]),
        item_dim=config.item_dim,
        heads=config.heads,
        hidden_dim=config.hidden_dim,
        use_semantic=config.use_semantic,
        use_ids=config.use_ids,
    )
    return RankingModel(
        shape, torch.from_numpy(np.asarray(semantic_vectors)), torch.from_numpy(has_id)
    )


def train(
    dataset: Dataset,
    semantic_vectors: npt.NDArray[np.float32],
    config: TrainConfig,
    generated: GeneratedBlocksLog | None = None,
) -> TrainedRanker:
    """Fit a ranker with Adam on BCE over the impressions of requests before ``split_ts``.

    With ``generated``, every example also attends over its request's generated block.
    """
    if semantic_vectors.shape[0] != len(dataset.catalogue):
        raise ValueError(
            f"{semantic_vectors.shape[0]} semantic vectors for {len(dataset.catalogue)} items"
        )
    width = 0 if generated is None else generated.k
    if config.generated != width:
        raise ValueError(
            f"config.generated is {config.generated} but the generated log has width {width}"
        )
    previous_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _fit(dataset, semantic_vectors, config, generated)
    finally:
        torch.set_num_threads(previous_threads)


def _fit(
    dataset: Dataset,
    semantic_vectors: npt.NDArray[np.float32],
    config: TrainConfig,
    generated: GeneratedBlocksLog | None,
) -> TrainedRanker:
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train_examples, _ = time_split(dataset, config.max_seq_len, generated)
    if len(train_examples) == 0:
        raise ValueError("no training requests before split_ts")
    model = build_model(config, semantic_vectors, items_seen_in_training(dataset))
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    id_dropout = config.id_dropout if config.use_semantic else 0.0
    steps = config.epochs * -(-len(train_examples) // config.batch_size)
    model.train()
    loss_value = float("nan")
    with tqdm(total=steps, desc="train", unit="batch", disable=not config.progress) as bar:
        for _ in range(config.epochs):
            for batch in batches(train_examples, config.batch_size, rng):
                logits = batch_logits(model, batch, id_dropout)
                loss = masked_bce(logits, batch)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                loss_value = float(loss.detach())
                bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
                bar.update()
    model.eval()
    return TrainedRanker(
        model=model,
        config=config,
        shape=model.shape,
        train_seconds=time.perf_counter() - started,
        final_loss=loss_value,
    )
