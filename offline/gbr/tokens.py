"""How items become the diffusion model's tokens, and generated tokens become items again.

Two layouts share one interface:

* :class:`ItemTokens`: one token per catalogue row. Exact and simple; the vocabulary grows with the
  catalogue, and an item needs training history for its token to mean anything.
* :class:`SemanticIdTokens`: each item is ``levels`` consecutive code tokens (its semantic ID from
  :mod:`offline.gbr.semantic_ids`). The levels are flattened into the sequence rather than
  predicted by separate heads: the bidirectional encoder then conditions a slot's finer codes on
  its coarser ones (and vice versa) across the unmasking steps, which independent per-level heads
  cannot do, and one architecture serves both layouts. The price is a sequence ``levels`` times
  longer, cheap at a few levels.

Token 0 is ``[PAD]`` (left padding of short histories), token 1 is ``[MASK]`` (a slot to generate).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

import numpy as np
import numpy.typing as npt

from offline.gbr.semantic_ids import Codebook, CodeDecoder

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float32]
Bools = npt.NDArray[np.bool_]
TokenKind = Literal["items", "semantic"]

PAD = 0
MASK = 1
N_SPECIAL = 2


class TokenLayout(ABC):
    """Maps item rows to token sequences and generated tokens back to item rows."""

    kind: TokenKind
    tokens_per_item: int
    vocab_size: int

    @abstractmethod
    def encode(self, items: Ints) -> Ints:
        """Tokens ``[B, W * tokens_per_item]`` for item rows ``[B, W]`` (-1 = padding)."""

    @abstractmethod
    def banned(self, excluded: Ints) -> Bools | None:
        """``[B, n_items]`` items a row must not generate (its history), or ``None`` when the
        layout can only exclude items at decoding."""

    @abstractmethod
    def decode(self, tokens: Ints, probs: Floats, excluded: Ints) -> tuple[Ints, Floats]:
        """Item rows ``[B, K]`` (most confident first; -1 where none) and their confidences, from
        the generated tokens and their probabilities ``[B, K * tokens_per_item]``."""


class ItemTokens(TokenLayout):
    """One token per catalogue row: ``token = row + 2``."""

    kind: TokenKind = "items"
    tokens_per_item = 1

    def __init__(self, n_items: int) -> None:
        self.n_items = n_items
        self.vocab_size = n_items + N_SPECIAL

    def encode(self, items: Ints) -> Ints:
        return np.where(items >= 0, items + N_SPECIAL, PAD).astype(np.int64)

    def banned(self, excluded: Ints) -> Bools:
        banned = np.zeros((len(excluded), self.n_items), bool)
        rows, cols = np.nonzero(excluded >= 0)
        banned[rows, excluded[rows, cols]] = True
        return banned

    def decode(self, tokens: Ints, probs: Floats, excluded: Ints) -> tuple[Ints, Floats]:
        items = np.where(tokens >= N_SPECIAL, tokens - N_SPECIAL, -1)
        order = np.argsort(-probs, axis=1, kind="stable")
        return (
            np.take_along_axis(items, order, axis=1).astype(np.int64),
            np.take_along_axis(probs, order, axis=1).astype(np.float32),
        )


class SemanticIdTokens(TokenLayout):
    """``levels`` code tokens per item: level ``l``, code ``c`` is token ``2 + l * codes + c``."""

    kind: TokenKind = "semantic"

    def __init__(self, codebook: Codebook) -> None:
        self.codebook = codebook
        self.tokens_per_item = codebook.levels
        self.vocab_size = N_SPECIAL + codebook.levels * codebook.codes
        self._decoder: CodeDecoder | None = None

    def encode(self, items: Ints) -> Ints:
        codes = self.codebook.item_codes[np.where(items >= 0, items, 0)]  # [B, W, L]
        offsets = N_SPECIAL + np.arange(self.codebook.levels) * self.codebook.codes
        tokens = np.where((items >= 0)[..., None], codes + offsets, PAD)
        return tokens.reshape(len(items), -1).astype(np.int64)

    def banned(self, excluded: Ints) -> None:
        return None

    def decode(self, tokens: Ints, probs: Floats, excluded: Ints) -> tuple[Ints, Floats]:
        if self._decoder is None:
            self._decoder = CodeDecoder(self.codebook)
        levels, codes = self.codebook.levels, self.codebook.codes
        batch = len(tokens)
        offsets = N_SPECIAL + np.arange(levels) * codes
        slot_codes = np.clip(tokens.reshape(batch, -1, levels) - offsets, 0, codes - 1)
        # A slot's confidence: the geometric mean of its codes' probabilities, so it reads on
        # the same scale whatever the number of levels.
        level_probs = np.clip(probs.reshape(batch, -1, levels), 1e-12, 1.0)
        confidence = np.exp(np.log(level_probs).mean(axis=2)).astype(np.float32)
        return self._decoder.decode(slot_codes, confidence, excluded)
