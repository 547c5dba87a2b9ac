"""The ranking model: knowledge-fused item vectors, target attention over real and generated
behaviours, and an MLP tower.

The model is split along the same seams as the exported graphs (item representation, user
encoder, candidate encoder, attention, scorer) so that what serving chains together is exactly
what training optimised end to end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

# The user encoder, candidate encoder and scorer tower are the serving side's own modules (one
# definition for training, export and the device path); this module adds the item side.
from service.device.modules import CandidateEncoder, ScoreTower, UserEncoder, block_slots

#: Dropout inside the self-attention blocks of the user encoder, in training only.
USER_ENCODER_DROPOUT = 0.1


@dataclass(frozen=True)
class RankerShape:
    """Sizes and switches that define the model's parameters (what a checkpoint must record)."""

    n_items: int
    semantic_dim: int
    item_dim: int = 64
    heads: int = 4
    hidden_dim: int = 128
    use_semantic: bool = True
    use_ids: bool = True
    #: How ID and knowledge vectors combine: ``sum`` (ID + projected knowledge) or ``gate``
    #: (per-dimension weights on each, learned per bucket of the item's training count).
    fusion: Literal["sum", "gate"] = "sum"
    #: Causal self-attention layers over the behaviour sequence before its keys and values
    #: (0 = the light encoder: each behaviour on its own).
    user_layers: int = 0
    #: Slots of the generated block that learn a vector of their own (0: every slot alike);
    #: see :class:`service.device.modules.UserEncoder`.
    generated_slots: int = 0

    def __post_init__(self) -> None:
        if self.item_dim % self.heads:
            raise ValueError(f"item_dim {self.item_dim} is not a multiple of heads {self.heads}")
        if not (self.use_semantic or self.use_ids):
            raise ValueError("the model needs ID embeddings, semantic vectors or both")
        if self.fusion not in ("sum", "gate"):
            raise ValueError(f"fusion must be 'sum' or 'gate', not {self.fusion!r}")
        if self.user_layers < 0:
            raise ValueError("user_layers must be >= 0")
        if self.generated_slots < 0:
            raise ValueError("generated_slots must be >= 0")

    @property
    def gated(self) -> bool:
        """Whether the gates are used: only when both signals are there to weigh."""
        return self.fusion == "gate" and self.use_ids and self.use_semantic


#: Buckets of an item's training count the gates are learned per: 0 for an item without a
#: trained ID (cold, or its ID dropped in training), then one per power of two of its count.
COUNT_BUCKETS = 12


def count_buckets(counts: Tensor) -> Tensor:
    """Bucket of each training count: 0 for none, ``1 + floor(log2(count))`` capped."""
    counts = counts.float()
    buckets = 1 + torch.floor(torch.log2(counts.clamp_min(1.0))).long()
    return torch.where(counts > 0, buckets.clamp_max(COUNT_BUCKETS - 1), torch.zeros_like(buckets))


class ItemRepresentation(nn.Module):
    """Fuses an item's ID embedding with a projection of its semantic (knowledge) vector.

    ``item_counts`` holds each item's occurrences in the training logs; an item without any has
    an untrained ID embedding, so it falls back to the semantic part alone. ID dropout during
    training teaches the semantic path to carry an item on its own, which is what a cold item
    gets at serving.

    With ``fusion="gate"`` each part is weighted per dimension by a gate learned per bucket of
    the item's training count, so the ranker can lean on the ID embedding where an item has
    history and on knowledge where it has little; a dropped ID counts as bucket 0, the cold
    items' bucket, which is how that bucket's gates learn anything at all. The gates are folded
    into the fused table, so serving sees one vector per item either way.
    """

    semantic_vectors: Tensor
    semantic_mean: Tensor
    semantic_std: Tensor
    has_id: Tensor
    item_count: Tensor
    count_bucket: Tensor

    def __init__(self, shape: RankerShape, semantic_vectors: Tensor, item_counts: Tensor) -> None:
        super().__init__()
        self.gated = shape.gated
        self.use_ids = shape.use_ids
        self.use_semantic = shape.use_semantic
        self.id_embedding = nn.Embedding(shape.n_items, shape.item_dim)
        nn.init.normal_(self.id_embedding.weight, std=0.05)
        self.semantic_projection = nn.Linear(shape.semantic_dim, shape.item_dim)
        # Buffers, so that a checkpoint carries the exact inputs the fused table was built from.
        # Text encoders differ wildly in scale; standardising per dimension keeps one learning
        # rate right for all of them.
        semantic = semantic_vectors.float()
        self.register_buffer("semantic_vectors", semantic.clone())
        self.register_buffer("semantic_mean", semantic.mean(dim=0))
        self.register_buffer("semantic_std", semantic.std(dim=0).clamp_min(1e-6))
        self.register_buffer("has_id", (item_counts > 0).float().clone())
        if self.gated:
            self.register_buffer("item_count", item_counts.float().clone())
            self.register_buffer("count_bucket", count_buckets(item_counts))
            # Start at the sum (both parts nearly fully on); training learns where to lean.
            self.id_gate = nn.Parameter(torch.full((COUNT_BUCKETS, shape.item_dim), 3.0))
            self.semantic_gate = nn.Parameter(torch.full((COUNT_BUCKETS, shape.item_dim), 3.0))

    def forward(
        self, item_idx: Tensor, id_dropout: float = 0.0, dropout_max_count: int | None = None
    ) -> Tensor:
        """Fused vectors ``[..., d]`` for item indices of any shape.

        In training, ``id_dropout`` hides an item's ID embedding with that probability, only for
        items seen at most ``dropout_max_count`` times in training when that is set: rare items
        stand in for cold ones without blurring every well-known item.
        """
        fused = torch.zeros(
            (*item_idx.shape, self.id_embedding.embedding_dim), device=item_idx.device
        )
        keep = self.has_id[item_idx]
        if self.use_ids and id_dropout > 0.0 and self.training:
            drop = torch.rand_like(keep) < id_dropout
            if dropout_max_count is not None and self.gated:
                drop &= self.item_count[item_idx] <= dropout_max_count
            keep = keep * (~drop).float()
        if self.use_ids:
            id_part = self.id_embedding(item_idx) * keep.unsqueeze(-1)
            if self.gated:
                bucket = self.count_bucket[item_idx] * keep.long()
                id_part = id_part * torch.sigmoid(self.id_gate[bucket])
            fused = fused + id_part
        if self.use_semantic:
            semantic = (self.semantic_vectors[item_idx] - self.semantic_mean) / self.semantic_std
            projected = self.semantic_projection(semantic)
            if self.gated:
                bucket = self.count_bucket[item_idx] * keep.long()
                projected = projected * torch.sigmoid(self.semantic_gate[bucket])
            fused = fused + projected
        return fused

    def table(self) -> Tensor:
        """The fused vector of every catalogue item, in row order (what serving looks up)."""
        rows = torch.arange(self.id_embedding.num_embeddings, device=self.has_id.device)
        return self.forward(rows)


def target_attention(
    queries: Tensor, keys: Tensor, values: Tensor, mask: Tensor, heads: int
) -> Tensor:
    """Multi-head masked target attention, numerically the serving reference's twin.

    Mirrors :func:`kernels.target_attention.reference.target_attention` step by step (the same
    scale, the same large negative fill, the same guard on an all-padding row) so the split graphs
    chained with whichever attention backend serves (onnxruntime on CPU, Triton on a GPU) score
    like the model that was trained.
    """
    batch, candidates, dim = queries.shape
    length = keys.shape[1]
    head_dim = dim // heads
    q = queries.reshape(batch, candidates, heads, head_dim).transpose(1, 2)
    k = keys.reshape(batch, length, heads, head_dim).permute(0, 2, 3, 1)
    v = values.reshape(batch, length, heads, head_dim).transpose(1, 2)
    logits = torch.matmul(q, k) * (1.0 / math.sqrt(head_dim))  # [B, H, C, L]
    valid = (mask > 0)[:, None, None, :]
    logits = torch.where(valid, logits, torch.full_like(logits, -1e30))
    logits = logits - logits.amax(dim=-1, keepdim=True)
    weights = torch.exp(logits) * valid.to(logits.dtype)
    weights = weights / weights.sum(dim=-1, keepdim=True).clamp_min(1e-30)
    pooled = torch.matmul(weights, v).transpose(1, 2)
    return pooled.reshape(batch, candidates, dim)


class RankingModel(nn.Module):
    """The whole ranker; :meth:`forward` takes item indices, the export wrappers take vectors."""

    def __init__(self, shape: RankerShape, semantic_vectors: Tensor, item_counts: Tensor) -> None:
        super().__init__()
        self.shape = shape
        self.items = ItemRepresentation(shape, semantic_vectors, item_counts)
        self.user_encoder = UserEncoder(
            shape.item_dim,
            shape.user_layers,
            shape.heads,
            dropout=USER_ENCODER_DROPOUT,
            generated_slots=shape.generated_slots,
        )
        self.candidate_encoder = CandidateEncoder(shape.item_dim)
        self.scorer = ScoreTower(shape.item_dim, shape.hidden_dim)

    def score_vectors(
        self,
        candidates: Tensor,
        sequence: Tensor,
        events: Tensor,
        gaps: Tensor,
        generated: Tensor,
        sequence_mask: Tensor,
        generated_mask: Tensor,
    ) -> Tensor:
        """Logits ``[B, C]`` from fused vectors: the computation every graph is a slice of."""
        slots = block_slots(generated_mask) if self.user_encoder.slotted else None
        real_k, real_v, gen_k, gen_v = self.user_encoder(sequence, events, gaps, generated, slots)
        real_q, gen_q = self.candidate_encoder(candidates)
        heads = self.shape.heads
        real_pooled = target_attention(real_q, real_k, real_v, sequence_mask, heads)
        generated_pooled = target_attention(gen_q, gen_k, gen_v, generated_mask, heads)
        return self.scorer(candidates, real_pooled, generated_pooled)

    def forward(
        self,
        candidate_items: Tensor,
        sequence_items: Tensor,
        events: Tensor,
        gaps: Tensor,
        generated_items: Tensor,
        sequence_mask: Tensor,
        generated_mask: Tensor,
        id_dropout: float = 0.0,
        dropout_max_count: int | None = None,
    ) -> Tensor:
        """Logits ``[B, C]`` for item indices, generated behaviours included.

        Generated items go through the same item representation as real ones, so at serving the
        bundle's fused table rows for them are exactly the vectors this model was trained on.
        """
        drop = (id_dropout, dropout_max_count)
        return self.score_vectors(
            self.items(candidate_items, *drop),
            self.items(sequence_items, *drop),
            events,
            gaps,
            self.items(generated_items, *drop),
            sequence_mask,
            generated_mask,
        )
