"""The ranking model: knowledge-fused item vectors, target attention over real and generated
behaviours, and an MLP tower.

The model is split along the same seams as the exported graphs (item representation, user
encoder, candidate encoder, attention, scorer) so that what serving chains together is exactly
what training optimised end to end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from service.features import EVENT_VOCAB_SIZE, PADDING_EVENT, TIME_GAP_BUCKETS


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

    def __post_init__(self) -> None:
        if self.item_dim % self.heads:
            raise ValueError(f"item_dim {self.item_dim} is not a multiple of heads {self.heads}")
        if not (self.use_semantic or self.use_ids):
            raise ValueError("the model needs ID embeddings, semantic vectors or both")


class ItemRepresentation(nn.Module):
    """Fuses an item's ID embedding with a projection of its semantic (knowledge) vector.

    ``has_id`` marks items that appeared in training logs; the others have an untrained ID
    embedding, so they fall back to the semantic part alone. ID dropout during training teaches
    the semantic path to carry an item on its own, which is what a cold item gets at serving.
    """

    semantic_vectors: Tensor
    semantic_mean: Tensor
    semantic_std: Tensor
    has_id: Tensor

    def __init__(self, shape: RankerShape, semantic_vectors: Tensor, has_id: Tensor) -> None:
        super().__init__()
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
        self.register_buffer("has_id", has_id.float().clone())

    def forward(self, item_idx: Tensor, id_dropout: float = 0.0) -> Tensor:
        """Fused vectors ``[..., d]`` for item indices of any shape."""
        fused = torch.zeros(
            (*item_idx.shape, self.id_embedding.embedding_dim), device=item_idx.device
        )
        if self.use_ids:
            keep = self.has_id[item_idx]
            if id_dropout > 0.0 and self.training:
                keep = keep * (torch.rand_like(keep) >= id_dropout).float()
            fused = fused + self.id_embedding(item_idx) * keep.unsqueeze(-1)
        if self.use_semantic:
            semantic = (self.semantic_vectors[item_idx] - self.semantic_mean) / self.semantic_std
            fused = fused + self.semantic_projection(semantic)
        return fused

    def table(self) -> Tensor:
        """The fused vector of every catalogue item, in row order (what serving looks up)."""
        rows = torch.arange(self.id_embedding.num_embeddings, device=self.has_id.device)
        return self.forward(rows)


class UserEncoder(nn.Module):
    """Keys and values for the real behaviour sequence and the generated behaviour block.

    Per-user work: serving may cache its outputs across requests of the same user.
    """

    def __init__(self, item_dim: int) -> None:
        super().__init__()
        self.event_embedding = nn.Embedding(EVENT_VOCAB_SIZE, item_dim, padding_idx=PADDING_EVENT)
        self.gap_embedding = nn.Embedding(TIME_GAP_BUCKETS, item_dim)
        for table in (self.event_embedding, self.gap_embedding):
            nn.init.normal_(table.weight, std=0.05)
        with torch.no_grad():
            self.event_embedding.weight[PADDING_EVENT].zero_()
        self.real_keys = nn.Linear(item_dim, item_dim)
        self.real_values = nn.Linear(item_dim, item_dim)
        # Generated behaviours carry no event or time; a learned type vector marks them instead.
        self.generated_type = nn.Parameter(torch.zeros(item_dim))
        self.generated_keys = nn.Linear(item_dim, item_dim)
        self.generated_values = nn.Linear(item_dim, item_dim)
        # Zero values pool to zeros: until a ranker is trained with generated blocks, whatever a
        # caller feeds there cannot move its scores. Training with blocks learns them as usual.
        nn.init.zeros_(self.generated_values.weight)
        nn.init.zeros_(self.generated_values.bias)

    def forward(
        self, sequence: Tensor, events: Tensor, gaps: Tensor, generated: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        real = sequence + self.event_embedding(events) + self.gap_embedding(gaps)
        beyond_log = generated + self.generated_type
        return (
            self.real_keys(real),
            self.real_values(real),
            self.generated_keys(beyond_log),
            self.generated_values(beyond_log),
        )


class CandidateEncoder(nn.Module):
    """One query per candidate for each behaviour pool."""

    def __init__(self, item_dim: int) -> None:
        super().__init__()
        self.real_queries = nn.Linear(item_dim, item_dim)
        self.generated_queries = nn.Linear(item_dim, item_dim)

    def forward(self, candidates: Tensor) -> tuple[Tensor, Tensor]:
        return self.real_queries(candidates), self.generated_queries(candidates)


def target_attention(
    queries: Tensor, keys: Tensor, values: Tensor, mask: Tensor, heads: int
) -> Tensor:
    """Multi-head masked target attention, numerically the serving reference's twin.

    Mirrors :func:`kernels.target_attention.reference.target_attention` step by step (the same
    scale, the same large negative fill, the same guard on an all-padding row) so the split graphs
    chained with the NumPy kernel score like the model that was trained.
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


class Scorer(nn.Module):
    """MLP tower over the candidate, both pooled interests and their interactions -> logit."""

    def __init__(self, item_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.tower = nn.Sequential(
            nn.Linear(5 * item_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim // 2),
            nn.ReLU(),
            nn.Linear(hidden_dim // 2, 1),
        )

    def forward(self, candidates: Tensor, real_pooled: Tensor, generated_pooled: Tensor) -> Tensor:
        features = torch.cat(
            [
                candidates,
                real_pooled,
                generated_pooled,
                candidates * real_pooled,
                candidates * generated_pooled,
            ],
            dim=-1,
        )
        return self.tower(features).squeeze(-1)


class RankingModel(nn.Module):
    """The whole ranker; :meth:`forward` takes item indices, the export wrappers take vectors."""

    def __init__(self, shape: RankerShape, semantic_vectors: Tensor, has_id: Tensor) -> None:
        super().__init__()
        self.shape = shape
        self.items = ItemRepresentation(shape, semantic_vectors, has_id)
        self.user_encoder = UserEncoder(shape.item_dim)
        self.candidate_encoder = CandidateEncoder(shape.item_dim)
        self.scorer = Scorer(shape.item_dim, shape.hidden_dim)

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
        real_k, real_v, gen_k, gen_v = self.user_encoder(sequence, events, gaps, generated)
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
    ) -> Tensor:
        """Logits ``[B, C]`` for item indices, generated behaviours included.

        Generated items go through the same item representation as real ones, so at serving the
        bundle's fused table rows for them are exactly the vectors this model was trained on.
        """
        return self.score_vectors(
            self.items(candidate_items, id_dropout),
            self.items(sequence_items, id_dropout),
            events,
            gaps,
            self.items(generated_items, id_dropout),
            sequence_mask,
            generated_mask,
        )
