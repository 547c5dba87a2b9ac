"""Train the ranker on the training side of a dataset's time split.

When the dataset has a validation period (``test_ts``), every epoch ends with the GAUC of the
validation requests, and the weights of the best epoch are kept (early stopping): the test
period is never looked at.

A ranker with generated blocks can also grow as a **residual** on a trained ranker without them
(``start_from``): it starts from that ranker's weights, which score exactly as before whatever
the block (the generated values start at zero), only the generated-behaviour branch learns, and
the start itself is a candidate of early stopping (epoch 0). The blocks are then kept only as
far as validation says they add to the ranker they were grown on.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from model_export.dataset import (
    GeneratedBlocksLog,
    RankingBatch,
    RankingExamples,
    batch_logits,
    batches,
    item_training_counts,
    slot_scores,
    time_split,
    validation_examples,
)
from model_export.metrics import gauc
from model_export.model import RankerShape, RankingModel
from offline.data.canonical import Dataset

#: With gated fusion, IDs are dropped in training only for items seen at most this often: the
#: setting ``reaseq results-real`` measures and ``reaseq build --fusion gate`` uses.
GATED_DROPOUT_MAX_COUNT = 10
#: What the names of the generated-behaviour branch's parameters hold (``generated_type``,
#: ``generated_keys``, ``generated_values``, ``generated_queries``).
GENERATED_BRANCH = "generated"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; saved next to the checkpoint."""

    #: Epochs, or the most epochs when a validation period stops training early.
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
    #: With gated fusion: hide only the IDs of items seen at most this often in training
    #: (``None``: any item).
    dropout_max_count: int | None = None
    use_semantic: bool = True
    use_ids: bool = True
    #: ``sum`` or ``gate``; see :class:`~model_export.model.ItemRepresentation`.
    fusion: str = "sum"
    #: Causal self-attention layers of the user encoder (0 = the light encoder).
    user_layers: int = 0
    #: Epochs without a better validation GAUC before training stops (with a validation period).
    patience: int = 2
    #: Generated behaviours per request the ranker is trained with (K; 0 = none). It must match
    #: the width of the generated log given to :func:`train`; the bundle's manifest records it.
    generated: int = 0
    #: Probability of hiding a training request's whole generated block (only with
    #: ``generated``): the ranker must then score well without one, and leans on the block only
    #: as far as it adds to the user's own behaviours, rather than trusting it for what the logs
    #: already say. It pays where blocks are noisy (real logs) and costs where they are
    #: informative (docs/RESULTS.md: the real-data protocol trains its GBR variant with 0.5).
    block_dropout: float = 0.0
    #: Slots of the generated block with a learned vector of their own (0: none; see
    #: :class:`service.device.modules.UserEncoder`): the ranker can then trust a generator's
    #: first slots more than its last, or its beyond-log slots differently from the rest.
    generated_slots: int = 0
    #: Torch intra-op threads during training; ``None`` keeps torch's default (one per core).
    #: On cores shared with other busy processes, 1 can be faster: the small ops of this model
    #: make OpenMP threads wait on each other at every barrier.
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
    #: The epoch whose weights were kept (1-based) and its validation GAUC, when validated.
    best_epoch: int | None = None
    validation_gauc: float | None = None


def masked_bce(logits: torch.Tensor, batch: RankingBatch) -> torch.Tensor:
    """Mean binary cross-entropy over real impressions (padding slots do not count)."""
    losses = F.binary_cross_entropy_with_logits(logits, batch.labels, reduction="none")
    return (losses * batch.candidate_mask).sum() / batch.candidate_mask.sum().clamp_min(1.0)


def build_model(
    config: TrainConfig,
    semantic_vectors: npt.NDArray[np.float32],
    item_counts: npt.NDArray[np.int64],
) -> RankingModel:
    """An untrained model shaped by ``config`` for this catalogue (``item_counts``: training
    occurrences per item, 0 for an item without a trainable ID)."""
    shape = RankerShape(
        n_items=len(item_counts),
        semantic_dim=int(semantic_vectors.shape[1]),
        item_dim=config.item_dim,
        heads=config.heads,
        hidden_dim=config.hidden_dim,
        use_semantic=config.use_semantic,
        use_ids=config.use_ids,
        fusion=config.fusion,  # type: ignore[arg-type]
        user_layers=config.user_layers,
        generated_slots=config.generated_slots,
    )
    return RankingModel(
        shape,
        torch.from_numpy(np.asarray(semantic_vectors)),
        torch.from_numpy(np.asarray(item_counts, dtype=np.int64)),
    )


def train(
    dataset: Dataset,
    semantic_vectors: npt.NDArray[np.float32],
    config: TrainConfig,
    generated: GeneratedBlocksLog | None = None,
    start_from: RankingModel | None = None,
) -> TrainedRanker:
    """Fit a ranker with Adam on BCE over the impressions of requests before ``split_ts``.

    With ``generated``, every example also attends over its request's generated block; with
    ``start_from`` as well (a ranker of the same shape trained without blocks), only the
    generated-behaviour branch is trained on top of it (see the module).
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
    if config.generated_slots and not width:
        raise ValueError("config.generated_slots gives vectors to the slots of a generated block")
    if start_from is not None and generated is None:
        raise ValueError("start_from grows a generated-behaviour branch: it needs generated blocks")
    if not 0.0 <= config.block_dropout < 1.0:
        raise ValueError(f"block_dropout must lie in [0, 1), not {config.block_dropout}")
    previous_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _fit(dataset, semantic_vectors, config, generated, start_from)
    finally:
        torch.set_num_threads(previous_threads)


def _fit(
    dataset: Dataset,
    semantic_vectors: npt.NDArray[np.float32],
    config: TrainConfig,
    generated: GeneratedBlocksLog | None,
    start_from: RankingModel | None = None,
) -> TrainedRanker:
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train_examples, _ = time_split(dataset, config.max_seq_len, generated)
    if len(train_examples) == 0:
        raise ValueError("no training requests before split_ts")
    validation = validation_examples(dataset, config.max_seq_len, generated)
    model = build_model(config, semantic_vectors, item_training_counts(dataset))
    trained = list(model.parameters())
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    if start_from is not None:
        trained = grow_generated_branch(model, start_from)
        if validation is not None and len(validation) > 0:
            best = (validation_gauc(model, validation), 0, copy.deepcopy(model.state_dict()))
    optimiser = torch.optim.Adam(trained, lr=config.lr)
    id_dropout = config.id_dropout if config.use_semantic else 0.0
    steps = config.epochs * -(-len(train_examples) // config.batch_size)
    loss_value = float("nan")
    with tqdm(total=steps, desc="train", unit="batch", disable=not config.progress) as bar:
        for epoch in range(1, config.epochs + 1):
            model.train()
            for batch in batches(train_examples, config.batch_size, rng):
                if config.generated:
                    batch = drop_blocks(batch, config.block_dropout, rng)
                logits = batch_logits(model, batch, id_dropout, config.dropout_max_count)
                loss = masked_bce(logits, batch)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                loss_value = float(loss.detach())
                bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
                bar.update()
            if validation is None or len(validation) == 0:
                continue
            score = validation_gauc(model, validation)
            if best is None or score > best[0]:
                best = (score, epoch, copy.deepcopy(model.state_dict()))
            elif epoch - best[1] >= config.patience:
                break
    if best is not None:
        model.load_state_dict(best[2])
    for parameter in model.parameters():  # a residual's frozen base trains again if asked to
        parameter.requires_grad_(True)
    model.eval()
    return TrainedRanker(
        model=model,
        config=config,
        shape=model.shape,
        train_seconds=time.perf_counter() - started,
        final_loss=loss_value,
        best_epoch=None if best is None else best[1],
        validation_gauc=None if best is None else best[0],
    )


def grow_generated_branch(model: RankingModel, start_from: RankingModel) -> list[nn.Parameter]:
    """Load ``start_from``'s weights into ``model`` and freeze all but the generated-behaviour
    branch (its type vector, keys, values and queries, and the slot vectors ``model`` may have
    where ``start_from`` has none); the parameters left to train."""
    slotted = dataclasses.replace(start_from.shape, generated_slots=model.shape.generated_slots)
    if slotted != model.shape:
        raise ValueError(f"cannot start a {model.shape} ranker from a {start_from.shape} one")
    missing, unexpected = model.load_state_dict(start_from.state_dict(), strict=False)
    if unexpected or any(GENERATED_BRANCH not in name for name in missing):
        raise ValueError(f"cannot start a {model.shape} ranker from a {start_from.shape} one")
    branch = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(GENERATED_BRANCH in name)
        if parameter.requires_grad:
            branch.append(parameter)
    return branch


def drop_blocks(batch: RankingBatch, rate: float, rng: np.random.Generator) -> RankingBatch:
    """``batch`` with each request's generated block hidden with probability ``rate``."""
    if rate <= 0.0:
        return batch
    keep = torch.from_numpy(rng.random(batch.generated_mask.shape[0]) >= rate)
    return dataclasses.replace(batch, generated_mask=batch.generated_mask * keep[:, None].float())


def validation_gauc(
    model: RankingModel, examples: RankingExamples, batch_size: int = 1024
) -> float:
    """GAUC of ``model`` on ``examples`` (the early-stopping criterion)."""
    scores = slot_scores(model, examples, batch_size)
    mask = examples.candidate_mask
    users = np.broadcast_to(examples.user_idx[:, None], mask.shape)[mask]
    return gauc(examples.labels[mask], scores[mask], users)
