"""Training examples from canonical logs: one example per request (page view).

An example holds the user's last ``max_seq_len`` behaviours strictly before the request time,
with their event ids and time-gap buckets computed by
:func:`service.features.behaviour_features` (the function the service calls online, with the
request's ``as_of``), the request's impressed items with their click labels and, when a generator
has produced them, the user's K generated ("beyond-log") behaviours for that request. Everything
is built with array operations so the demo dataset is ready in well under a second.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from offline.data.canonical import Dataset
from service.contracts.features import behaviour_features
from service.contracts.manifest import BlockSettings, GeneratorInfo

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class RankingExamples:
    """Padded per-request arrays; sequences and candidates are left-aligned, then padding."""

    user_idx: Ints  # [R]
    ts: Ints  # [R]
    sequence_items: Ints  # [R, L]
    sequence_events: Ints  # [R, L]
    sequence_gaps: Ints  # [R, L]
    sequence_mask: Bools  # [R, L]
    candidate_items: Ints  # [R, C]
    labels: npt.NDArray[np.float32]  # [R, C]
    candidate_mask: Bools  # [R, C]
    #: Generated behaviours per request, -1 at empty slots; ``[R, 0]`` when none were generated.
    generated_items: Ints = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))

    def __post_init__(self) -> None:
        # A default of [0, 0] cannot know R; widen it here so every row has a (empty) block.
        if self.generated_items.shape[0] != len(self.user_idx):
            if self.generated_items.size:
                raise ValueError(
                    f"{self.generated_items.shape[0]} generated blocks for {len(self)} requests"
                )
            object.__setattr__(
                self, "generated_items", np.zeros((len(self.user_idx), 0), dtype=np.int64)
            )

    def __len__(self) -> int:
        return len(self.user_idx)

    def subset(self, rows: Ints | Bools) -> RankingExamples:
        return RankingExamples(
            user_idx=self.user_idx[rows],
            ts=self.ts[rows],
            sequence_items=self.sequence_items[rows],
            sequence_events=self.sequence_events[rows],
            sequence_gaps=self.sequence_gaps[rows],
            sequence_mask=self.sequence_mask[rows],
            candidate_items=self.candidate_items[rows],
            labels=self.labels[rows],
            candidate_mask=self.candidate_mask[rows],
            generated_items=self.generated_items[rows],
        )


@dataclass(frozen=True)
class GeneratedBlocksLog:
    """K generated behaviours for every request of a dataset, as item rows (-1 = empty slot).

    Row ``i`` belongs to request ``i`` of :func:`example_requests`, so a generator conditions on
    exactly the (user, time) pair the ranker's example is built for and can only use history
    strictly before that time. ``version`` names the generator, so a bundle records which one
    the ranker was trained with.
    """

    items: Ints  # [n_requests, K]
    version: str
    #: How the blocks were generated (:class:`offline.gbr.generate.GenerationConfig` fields),
    #: recorded in the bundle so the nearline job makes the same.
    beyond_slots: int = 0
    log_weight: float = 0.0

    def generator_info(self) -> GeneratorInfo:
        """The bundle manifest's record of the generator and how it made these blocks."""
        blocks = BlockSettings(beyond_slots=self.beyond_slots, log_weight=self.log_weight)
        return GeneratorInfo(version=self.version, blocks=blocks)

    def __post_init__(self) -> None:
        if self.items.ndim != 2:
            raise ValueError(f"generated items must be [n_requests, K], got {self.items.shape}")
        if self.items.dtype != np.int64:
            object.__setattr__(self, "items", self.items.astype(np.int64))
        if (self.items < -1).any():
            raise ValueError("generated items are catalogue rows or -1 for an empty slot")

    @property
    def k(self) -> int:
        """Generated behaviours per request (the block width)."""
        return int(self.items.shape[1])


@dataclass(frozen=True)
class RankingBatch:
    """A collated batch, trimmed to its longest sequence and largest candidate list."""

    candidate_items: Tensor  # [B, C] int64
    sequence_items: Tensor  # [B, L] int64
    sequence_events: Tensor  # [B, L] int64
    sequence_gaps: Tensor  # [B, L] int64
    sequence_mask: Tensor  # [B, L] float32
    generated_items: Tensor  # [B, K] int64, 0 at empty slots; one masked slot when none
    generated_mask: Tensor  # [B, K] float32
    labels: Tensor  # [B, C] float32
    candidate_mask: Tensor  # [B, C] float32


def batch_logits(
    model: torch.nn.Module,
    batch: RankingBatch,
    id_dropout: float = 0.0,
    dropout_max_count: int | None = None,
) -> Tensor:
    """The ranker's logits ``[B, C]`` for a collated batch (training and evaluation alike)."""
    logits: Tensor = model(
        batch.candidate_items,
        batch.sequence_items,
        batch.sequence_events,
        batch.sequence_gaps,
        batch.generated_items,
        batch.sequence_mask,
        batch.generated_mask,
        id_dropout=id_dropout,
        dropout_max_count=dropout_max_count,
    )
    return logits


def _requests(dataset: Dataset) -> tuple[Ints, Ints, Ints, Ints, Ints]:
    """Group impressions by request: (order, request start, count, user, ts) per request."""
    imp = dataset.impressions
    order = np.argsort(imp.request_ids, kind="stable")
    sorted_ids = imp.request_ids[order]
    _, starts, counts = np.unique(sorted_ids, return_index=True, return_counts=True)
    first = order[starts]
    return (
        order,
        starts.astype(np.int64),
        counts.astype(np.int64),
        imp.user_idx[first].astype(np.int64),
        imp.ts[first].astype(np.int64),
    )


def _histories(
    dataset: Dataset, users: Ints, request_ts: Ints, max_seq_len: int
) -> tuple[Ints, Ints, Ints, Bools]:
    """The last ``max_seq_len`` behaviours of each user strictly before each request time."""
    beh = dataset.behaviours
    order = np.lexsort((beh.ts, beh.user_idx))
    beh_users = beh.user_idx[order].astype(np.int64)
    beh_ts = beh.ts[order].astype(np.int64)
    # One sortable key per (user, time): searchsorted then finds "this user, before this time".
    t0 = int(min(beh_ts.min(initial=0), request_ts.min(initial=0)))
    span = int(max(beh_ts.max(initial=0), request_ts.max(initial=0))) - t0 + 1
    keys = beh_users * span + (beh_ts - t0)
    user_start = np.searchsorted(keys, users * span, side="left")
    end = np.searchsorted(keys, users * span + (request_ts - t0), side="left")
    start = np.maximum(user_start, end - max_seq_len)
    rows = start[:, None] + np.arange(max_seq_len)[None, :]
    mask = rows < end[:, None]
    if len(order) == 0:
        empty = np.zeros(rows.shape, dtype=np.int64)
        return empty, empty, empty, mask
    rows = np.where(mask, rows, 0)
    items = np.where(mask, beh.item_idx[order][rows], 0).astype(np.int64)
    features = behaviour_features(request_ts[:, None], beh_ts[rows], beh.event[order][rows])
    events = np.where(mask, features.events, 0).astype(np.int64)
    gaps = np.where(mask, features.gaps, 0)
    return items, events, gaps.astype(np.int64), mask


def example_requests(dataset: Dataset) -> tuple[Ints, Ints]:
    """``(user_idx [R], ts [R])`` of every request, in the row order of :func:`build_examples`.

    A generator produces one block per row of this, so its log lines up with the examples.
    """
    _, _, _, users, request_ts = _requests(dataset)
    return users, request_ts


def _generated_block(generated: GeneratedBlocksLog | None, n_requests: int, n_items: int) -> Ints:
    if generated is None:
        return np.zeros((n_requests, 0), dtype=np.int64)
    if len(generated.items) != n_requests:
        raise ValueError(
            f"generated log has {len(generated.items)} blocks for {n_requests} requests; "
            "build it over example_requests(dataset)"
        )
    if generated.items.size and int(generated.items.max()) >= n_items:
        raise ValueError(f"generated log names item rows beyond the catalogue's {n_items}")
    return generated.items


def build_examples(
    dataset: Dataset, max_seq_len: int, generated: GeneratedBlocksLog | None = None
) -> RankingExamples:
    """All requests of ``dataset`` as examples, in request-id order, with ``generated`` blocks."""
    order, starts, counts, users, request_ts = _requests(dataset)
    items, events, gaps, seq_mask = _histories(dataset, users, request_ts, max_seq_len)
    width = int(counts.max(initial=1))
    slots = starts[:, None] + np.arange(width)[None, :]
    cand_mask = np.arange(width)[None, :] < counts[:, None]
    picked = order[np.where(cand_mask, slots, 0)]
    imp = dataset.impressions
    return RankingExamples(
        user_idx=users,
        ts=request_ts,
        sequence_items=items,
        sequence_events=events,
        sequence_gaps=gaps,
        sequence_mask=seq_mask,
        candidate_items=np.where(cand_mask, imp.item_idx[picked], 0).astype(np.int64),
        labels=np.where(cand_mask, imp.clicked[picked], 0).astype(np.float32),
        candidate_mask=cand_mask,
        generated_items=_generated_block(generated, len(users), len(dataset.catalogue)),
    )


def test_start(dataset: Dataset) -> int:
    """Where evaluation starts: ``test_ts`` when the dataset has a validation period."""
    return dataset.split_ts if dataset.test_ts is None else dataset.test_ts


def time_split(
    dataset: Dataset, max_seq_len: int, generated: GeneratedBlocksLog | None = None
) -> tuple[RankingExamples, RankingExamples]:
    """Train on requests before ``split_ts``, evaluate on those from :func:`test_start` on
    (with full prior histories); a validation period between the two is in neither."""
    examples = build_examples(dataset, max_seq_len, generated)
    train = examples.ts < dataset.split_ts
    return examples.subset(train), examples.subset(examples.ts >= test_start(dataset))


def validation_examples(
    dataset: Dataset, max_seq_len: int, generated: GeneratedBlocksLog | None = None
) -> RankingExamples | None:
    """Requests of the validation period ``[split_ts, test_ts)``; ``None`` without one."""
    if dataset.test_ts is None:
        return None
    examples = build_examples(dataset, max_seq_len, generated)
    return examples.subset((examples.ts >= dataset.split_ts) & (examples.ts < dataset.test_ts))


def item_training_counts(dataset: Dataset) -> npt.NDArray[np.int64]:
    """Per item, its impressions and behaviours before the split time (0: no trainable ID)."""
    beh, imp = dataset.behaviours, dataset.impressions
    n = len(dataset.catalogue)
    return np.bincount(beh.item_idx[beh.ts < dataset.split_ts], minlength=n) + np.bincount(
        imp.item_idx[imp.ts < dataset.split_ts], minlength=n
    )


def items_seen_in_training(dataset: Dataset) -> npt.NDArray[np.bool_]:
    """Items with a trainable ID: behaved on or impressed before the split time."""
    return item_training_counts(dataset) > 0


def _generated_tensors(items: Ints) -> tuple[Tensor, Tensor]:
    """Indices (0 at empty slots) and mask, trimmed after the last column any row uses.

    Empty slots may sit anywhere in a block (a generator may drop an item it cannot map), so
    only trailing all-empty columns are cut. With nothing generated, one masked slot remains:
    attention needs a key, and a masked one pools to zeros.
    """
    valid = items >= 0
    used = np.flatnonzero(valid.any(axis=0))
    width = int(used[-1]) + 1 if len(used) else 0
    if width == 0:
        return torch.zeros(len(items), 1, dtype=torch.int64), torch.zeros(len(items), 1)
    valid = valid[:, :width]
    indices = np.where(valid, items[:, :width], 0).astype(np.int64)
    return torch.from_numpy(indices), torch.from_numpy(valid.astype(np.float32))


def collate(examples: RankingExamples, rows: Ints) -> RankingBatch:
    """Tensors for ``rows``, trimmed to the widest row so padding costs no attention work."""
    seq_mask = examples.sequence_mask[rows]
    cand_mask = examples.candidate_mask[rows]
    length = max(1, int(seq_mask.sum(axis=1).max(initial=0)))
    width = max(1, int(cand_mask.sum(axis=1).max(initial=0)))
    generated_items, generated_mask = _generated_tensors(examples.generated_items[rows])
    return RankingBatch(
        candidate_items=torch.from_numpy(examples.candidate_items[rows, :width]),
        sequence_items=torch.from_numpy(examples.sequence_items[rows, :length]),
        sequence_events=torch.from_numpy(examples.sequence_events[rows, :length]),
        sequence_gaps=torch.from_numpy(examples.sequence_gaps[rows, :length]),
        sequence_mask=torch.from_numpy(seq_mask[:, :length].astype(np.float32)),
        generated_items=generated_items,
        generated_mask=generated_mask,
        labels=torch.from_numpy(examples.labels[rows, :width]),
        candidate_mask=torch.from_numpy(cand_mask[:, :width].astype(np.float32)),
    )


def batches(
    examples: RankingExamples, batch_size: int, rng: np.random.Generator | None = None
) -> Iterator[RankingBatch]:
    """Batches in order, or shuffled when ``rng`` is given."""
    rows = np.arange(len(examples)) if rng is None else rng.permutation(len(examples))
    for first in range(0, len(rows), batch_size):
        yield collate(examples, rows[first : first + batch_size])


def slot_scores(
    model: torch.nn.Module,
    examples: RankingExamples,
    batch_size: int,
    score: Callable[[Tensor], Tensor] = lambda logits: logits,
) -> npt.NDArray[np.float64]:
    """``score`` of the logits ``[R, C]`` of every candidate slot of ``examples`` (padding slots
    included), with ``model`` in evaluation mode and no gradients."""
    model.eval()
    out = np.zeros(examples.candidate_items.shape, dtype=np.float64)
    first = 0
    with torch.inference_mode():
        for batch in batches(examples, batch_size):
            logits = batch_logits(model, batch)
            rows, width = logits.shape
            out[first : first + rows, :width] = score(logits).double().numpy()
            first += rows
    return out
