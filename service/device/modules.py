"""The user encoder, the candidate encoder and the scorer in PyTorch, rebuilt from a bundle's
module weights (:class:`service.contracts.manifest.ModuleWeights`).

What the device path runs where onnxruntime has no provider for the device. These are the very
modules the ranker trains (``model_export.model`` imports them: the serving side owns them and may
not import training code), so there is one definition of each; strict loading refuses weights of
another layout, and the export's parity check (``model_export.parity``) scores this path against
the graphs. Dropout is 0 unless training asks for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from service.contracts import graphs as g
from service.contracts.features import EVENT_VOCAB_SIZE, PADDING_EVENT, TIME_GAP_BUCKETS
from service.contracts.manifest import BundleManifest


class CausalSelfAttention(nn.Module):
    """One pre-norm transformer block in which each behaviour sees itself and the ones before.

    Sequences are left-aligned with padding after the last behaviour, so causality alone keeps
    padding out of every real position: the graph needs no mask input, and a sequence scores
    the same padded or not. Time-gap embeddings in the input stand in for positions.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.norm_attention = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        batch, length, dim = x.shape
        head_dim = dim // self.heads
        q, k, v = self.qkv(self.norm_attention(x)).chunk(3, dim=-1)
        q = q.reshape(batch, length, self.heads, head_dim).transpose(1, 2)
        k = k.reshape(batch, length, self.heads, head_dim).transpose(1, 2)
        v = v.reshape(batch, length, self.heads, head_dim).transpose(1, 2)
        logits = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(head_dim))
        positions = torch.arange(length, device=x.device)
        future = positions[None, :] > positions[:, None]
        logits = logits.masked_fill(future, -1e9)
        mixed = torch.matmul(torch.softmax(logits, dim=-1), v).transpose(1, 2)
        x = x + self.dropout(self.out(mixed.reshape(batch, length, dim)))
        return x + self.dropout(self.ffn(self.norm_ffn(x)))


class UserEncoder(nn.Module):
    """Keys and values for the real behaviour sequence and the generated behaviour block.

    With ``layers`` > 0 the real behaviours first pass through causal self-attention (a
    SASRec-style sequence encoder), so each key and value carries the behaviours before it.
    Per-user work either way: serving caches its outputs across requests of the same user.
    """

    def __init__(
        self,
        item_dim: int,
        layers: int = 0,
        heads: int = 4,
        dropout: float = 0.0,
        generated_slots: int = 0,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            CausalSelfAttention(item_dim, heads, dropout) for _ in range(layers)
        )
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
        # A vector per slot of the block, where the generator's order means something (greedy
        # items first, then beyond-log items by lift): the ranker learns how far each slot is
        # to be trusted. Slots past the last share its vector.
        self.generated_slot = (
            nn.Embedding(generated_slots, item_dim) if generated_slots > 0 else None
        )
        if self.generated_slot is not None:
            nn.init.normal_(self.generated_slot.weight, std=0.05)

    @property
    def slotted(self) -> bool:
        """Whether the generated behaviours take their slot in the block as an input."""
        return self.generated_slot is not None

    def forward(
        self,
        sequence: Tensor,
        events: Tensor,
        gaps: Tensor,
        generated: Tensor,
        generated_slots: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``generated_slots`` (``[B, K]``, each behaviour's rank among its block's filled
        slots: :func:`block_slots`) is required when the encoder is :attr:`slotted` and
        ignored otherwise."""
        real = sequence + self.event_embedding(events) + self.gap_embedding(gaps)
        for layer in self.layers:
            real = layer(real)
        beyond_log = generated + self.generated_type
        if self.generated_slot is not None:
            if generated_slots is None:
                raise ValueError("this user encoder needs the generated behaviours' slots")
            last = self.generated_slot.num_embeddings - 1
            beyond_log = beyond_log + self.generated_slot(generated_slots.clamp(0, last))
        return (
            self.real_keys(real),
            self.real_values(real),
            self.generated_keys(beyond_log),
            self.generated_values(beyond_log),
        )


def block_slots(mask: Tensor) -> Tensor:
    """Each slot's rank among the filled slots of its block (``[B, K]`` int64 from a ``[B, K]``
    mask; a padding slot gets its filled neighbour's rank, and is masked anyway): the slot
    input of a slotted user encoder, the same whether a block comes padded or packed."""
    return (torch.cumsum((mask > 0).long(), dim=-1) - 1).clamp_min(0)


class CandidateEncoder(nn.Module):
    """Candidates -> one query per candidate for each behaviour pool."""

    def __init__(self, item_dim: int) -> None:
        super().__init__()
        self.real_queries = nn.Linear(item_dim, item_dim)
        self.generated_queries = nn.Linear(item_dim, item_dim)

    def forward(self, candidates: Tensor) -> tuple[Tensor, Tensor]:
        return self.real_queries(candidates), self.generated_queries(candidates)


class ScoreTower(nn.Module):
    """MLP tower over the candidate, both pooled interests and their interactions -> logit
    (what training optimises)."""

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


class Scorer(ScoreTower):
    """Candidates and pooled interests -> click probabilities (the scorer graph: the tower, then
    a sigmoid)."""

    def forward(self, candidates: Tensor, real_pooled: Tensor, generated_pooled: Tensor) -> Tensor:
        return torch.sigmoid(super().forward(candidates, real_pooled, generated_pooled))


@dataclass(frozen=True)
class BundleModules:
    user_encoder: UserEncoder
    candidate_encoder: CandidateEncoder
    scorer: Scorer


class MissingModuleWeights(ValueError):
    """The bundle carries no module weights (it was exported before they were)."""


def load_modules(bundle_dir: Path, manifest: BundleManifest, device: torch.device) -> BundleModules:
    """The three modules on ``device``, in eval mode, from the bundle's (verified) weights."""
    weights = manifest.module_weights
    if weights is None:
        raise MissingModuleWeights(
            f"bundle {manifest.version} has no module weights for serving its graphs in PyTorch: "
            "export it again with this version, or install onnxruntime-gpu"
        )
    dims = manifest.dimensions
    modules = BundleModules(
        UserEncoder(
            dims.item_dim, dims.user_layers, dims.heads, generated_slots=dims.generated_slots
        ),
        CandidateEncoder(dims.item_dim),
        Scorer(dims.item_dim, weights.hidden_dim),
    )
    with np.load(bundle_dir / weights.file, allow_pickle=False) as arrays:
        for graph, module in (
            (g.USER_ENCODER, modules.user_encoder),
            (g.CANDIDATE_ENCODER, modules.candidate_encoder),
            (g.SCORER, modules.scorer),
        ):
            prefix = f"{graph}."
            state = {
                name.removeprefix(prefix): torch.from_numpy(np.asarray(arrays[name], np.float32))
                for name in arrays.files
                if name.startswith(prefix)
            }
            module.load_state_dict(state, strict=True)
            module.to(device).eval()
    return modules
