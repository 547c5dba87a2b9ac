"""A masked discrete diffusion language model over behaviour tokens (in the style of LLaDA).

Forward process: a share ``t ~ U(0, 1)`` of a sequence's tokens is replaced by ``[MASK]`` (one
``t`` per sequence). The model, a bidirectional transformer
encoder (no causal mask: every position sees the whole sequence), predicts the original tokens at
the masked positions. Minimising the masked-token cross-entropy weighted by ``1 / t`` is an upper
bound on the sequence's negative log-likelihood (LLaDA's ELBO), so the same network both scores
and, by unmasking step by step, generates sequences.

Generation appends masked slots to a user's history; to make that exact situation common in
training, a share of sequences (``suffix_prob``) only masks inside their last ``max_slots`` items,
as LLaDA's supervised stage masks only the response and never the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from offline.gbr.tokens import MASK, N_SPECIAL, PAD


@dataclass(frozen=True)
class DiffusionConfig:
    """What defines the network's parameters (recorded in the checkpoint)."""

    vocab_size: int
    tokens_per_item: int
    window_items: int  # history + generated slots the model sees at once, in items
    max_slots: int  # the most slots generation may append (the masked suffix of training)
    dim: int = 64
    heads: int = 4
    layers: int = 2
    ff_dim: int = 256
    dropout: float = 0.0
    feature_dim: int = 0  # item tokens: width of the semantic vectors fused into each token

    def __post_init__(self) -> None:
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not a multiple of heads {self.heads}")
        if not 0 < self.max_slots < self.window_items:
            raise ValueError("max_slots must be positive and leave room for some history")

    @property
    def seq_len(self) -> int:
        return self.window_items * self.tokens_per_item

    @property
    def level_width(self) -> int:
        """Tokens per level: the catalogue (item tokens) or the codes of one level."""
        return (self.vocab_size - N_SPECIAL) // self.tokens_per_item

    def level_start(self, level: int) -> int:
        return N_SPECIAL + level * self.level_width


class MaskedDiffusionLM(nn.Module):
    """Token + position + level embeddings -> bidirectional encoder -> tied output head.

    Every level's tokens are one contiguous block of the vocabulary (all items, or one level's
    codes), so a position's logits are computed over its level's block only: no wasted products
    with tokens it may not take, and no masking of them.

    With item tokens and ``feature_dim > 0``, an item's embedding (input and output alike) is its
    learned ID embedding plus a projection of its semantic vector, as the ranker fuses them: most
    items appear a handful of times in the logs, too few to learn an embedding from scratch,
    while their knowledge says which items are alike from the first step.
    """

    item_features: Tensor

    def __init__(self, config: DiffusionConfig, item_features: Tensor | None = None) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.dim, padding_idx=PAD)
        features = torch.zeros(config.vocab_size - N_SPECIAL, config.feature_dim)
        if item_features is not None:
            features = item_features.float().clone()
        if features.shape != (config.vocab_size - N_SPECIAL, config.feature_dim):
            raise ValueError(f"item_features must be [{config.level_width}, {config.feature_dim}]")
        self.register_buffer("item_features", features)
        self.feature_projection = nn.Linear(max(config.feature_dim, 1), config.dim, bias=False)
        self.position_embedding = nn.Embedding(config.seq_len, config.dim)
        self.level_embedding = nn.Embedding(config.tokens_per_item, config.dim)
        for table in (self.token_embedding, self.position_embedding, self.level_embedding):
            nn.init.normal_(table.weight, std=0.02)
        layer = nn.TransformerEncoderLayer(
            config.dim,
            config.heads,
            config.ff_dim,
            config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        # No nested tensors: a row's numbers must not depend on how much padding its batch has.
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.dim)
        self.output_bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, tokens: Tensor) -> Tensor:
        """Hidden states ``[B, T, d]`` of token sequences ``[B, T]``, right-aligned."""
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        levels = positions % self.config.tokens_per_item
        # Right alignment: the last position is always the model's last position, so a short
        # window sits where the end of a long one does.
        offset = self.config.seq_len - tokens.shape[1]
        x = (
            self._embed(tokens)
            + self.position_embedding(positions + offset)
            + self.level_embedding(levels)
        )
        hidden = self.encoder(x, src_key_padding_mask=tokens == PAD)
        return self.norm(hidden)  # type: ignore[no-any-return]

    def level_logits(self, hidden: Tensor, level: int) -> Tensor:
        """Logits ``[..., level_width]`` over level ``level``'s tokens, for hidden ``[..., d]``;
        index ``j`` is token ``level_start(level) + j``."""
        start = self.config.level_start(level)
        stop = start + self.config.level_width
        weight = self.token_embedding.weight[start:stop]
        if self.config.feature_dim:
            weight = weight + self.feature_projection(self.item_features)
        return hidden @ weight.T + self.output_bias[start:stop]

    def _embed(self, tokens: Tensor) -> Tensor:
        embedded = self.token_embedding(tokens)
        if not self.config.feature_dim:
            return embedded
        is_item = tokens >= N_SPECIAL
        rows = torch.where(is_item, tokens - N_SPECIAL, 0)
        fused = self.feature_projection(self.item_features[rows])
        return embedded + fused * is_item.unsqueeze(-1)


def diffusion_loss(
    model: MaskedDiffusionLM,
    tokens: Tensor,
    suffix_prob: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """LLaDA's objective on clean sequences ``[B, T]``: masked cross-entropy weighted by 1/t,
    per token of the maskable region.

    ``t`` is drawn as ``l / R``: ``l`` uniform on ``1..R`` tokens of a sequence's maskable region
    of ``R`` tokens, exactly ``l`` of them masked. This is LLaDA's own estimator of the same bound
    (its likelihood evaluation); drawing each mask independently with a continuous ``t`` is
    unbiased too, but on sequences of tens of tokens a small ``t`` masks one token under a weight
    of hundreds, and those spikes drown the gradient.
    """
    batch, length = tokens.shape
    per_item = model.config.tokens_per_item
    suffix = torch.rand(batch, generator=generator) < suffix_prob
    in_suffix = torch.arange(length) >= length - model.config.max_slots * per_item
    region = (tokens != PAD) & (in_suffix[None, :] | ~suffix[:, None])
    size = region.sum(dim=1)
    count = (torch.rand(batch, generator=generator) * size).floor().long() + 1  # 1..R
    # Rank the region's positions in a random order; the first `count` are masked.
    draws = torch.where(region, torch.rand(batch, length, generator=generator), 2.0)
    rank = draws.argsort(dim=1).argsort(dim=1)
    masked = region & (rank < count[:, None])
    weight = size.float() / count.float()  # 1 / t
    noisy = torch.where(masked, torch.full_like(tokens, MASK), tokens)
    hidden = model(noisy)
    total = hidden.new_zeros(())
    # Positions are right-aligned, so a position's level counts from the sequence's end.
    level_of = (torch.arange(length) - length) % per_item
    for level in range(per_item):
        rows, cols = torch.nonzero(masked & (level_of == level)[None, :], as_tuple=True)
        logits = model.level_logits(hidden[rows, cols], level)
        targets = tokens[rows, cols] - model.config.level_start(level)
        nll = nn.functional.cross_entropy(logits, targets, reduction="none")
        total = total + (nll * weight[rows]).sum()
    return total / size.sum().clamp_min(1)
