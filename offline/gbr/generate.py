"""Generating beyond-log behaviours: LLaDA's reverse process with low-confidence remasking.

K masked slots are appended to the user's recent history. At each of S steps the model predicts
every still-masked slot at once; the most confident predictions are kept and the rest are masked
again, to be predicted at a later step with more of the block fixed around them. The schedule
commits ``K / S`` slots per step (linear, as LLaDA).

Items the user already engaged with are banned outright (item tokens) or skipped at decoding
(semantic IDs); two slots never keep the same item: in order of confidence, a slot whose draw a
more confident slot holds takes its most likely free item instead. Draws are keyed per (user,
history length) (:mod:`offline.gbr.sampling`), so a block does not depend on batching.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from tqdm import tqdm

from offline.gbr.checkpoint import GBRModel
from offline.gbr.sampling import hashed_uniforms, sample_tokens
from offline.gbr.sequences import BehaviourSequences
from offline.gbr.tokens import MASK

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float32]


@dataclass(frozen=True)
class GenerationConfig:
    """How many behaviours per user and how they are drawn."""

    k: int = 16  # behaviours per user
    steps: int = 4  # unmasking steps (S)
    temperature: float = 0.0  # 0 = greedy: the best beyond-log recall on the demo data
    top_p: float = 0.9
    seed: int = 0
    batch_size: int = 256
    #: Of the k slots, the last ones given to the generator's most likely items outside the
    #: history's main department (:mod:`offline.gbr.beyond`), where the caller knows departments.
    beyond_slots: int = 0
    #: Rank beyond-log items by lift (probability over the item's training share) instead of
    #: probability alone (:mod:`offline.gbr.beyond`).
    beyond_lift: bool = True
    #: Weight of the co-occurrence of the generator's training logs in each block
    #: (:mod:`offline.gbr.fusion`): 0 = the generator alone, by unmasking; above 0 one forward
    #: pass blended with co-occurrence (1 = co-occurrence alone). Item tokens only.
    log_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.k < 1 or self.steps < 1 or self.batch_size < 1:
            raise ValueError("k, steps and batch_size must be positive")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError("temperature must be >= 0 and top_p in (0, 1]")
        if not 0 <= self.beyond_slots <= self.k:
            raise ValueError("beyond_slots must lie in 0..k")
        if not 0.0 <= self.log_weight <= 1.0:
            raise ValueError("log_weight must lie in [0, 1]")


@dataclass(frozen=True)
class GeneratedItems:
    """K generated catalogue rows per history (most confident first; -1 = none) and their
    confidences (the model's probability of the kept prediction)."""

    item_idx: Ints  # [n, K]
    confidence: Floats  # [n, K]

    def __len__(self) -> int:
        return len(self.item_idx)

    def vectors(self, item_vectors: npt.NDArray[np.floating]) -> Floats:
        """The block ``[n, K, d]`` of each history: rows of ``item_vectors`` (zeros for -1)."""
        table = np.asarray(item_vectors, np.float32)
        picked = table[np.where(self.item_idx >= 0, self.item_idx, 0)]
        return np.where((self.item_idx >= 0)[..., None], picked, 0.0).astype(np.float32)


def prefix_keys(users: Ints, lengths: Ints) -> Ints:
    """The sampling key of a (user, history length): a user's block at one history is the same
    wherever and with whatever else it is generated."""
    return (np.asarray(users, np.int64) << 32) + np.asarray(lengths, np.int64)


def generate_for_prefixes(
    model: GBRModel,
    sequences: BehaviourSequences,
    users: Ints,
    lengths: Ints,
    config: GenerationConfig,
    *,
    progress: bool = False,
) -> GeneratedItems:
    """K behaviours for each (user, first ``lengths`` items of their sequence), batched."""
    users = np.asarray(users, np.int64)
    lengths = np.asarray(lengths, np.int64)
    n, k = len(users), config.k
    _check_slots(model, k)
    items = np.full((n, k), -1, np.int64)
    confidence = np.zeros((n, k), np.float32)
    widths = window_widths(lengths, model.config.window_items - k)
    bar = tqdm(total=n, desc="gbr generate", unit="user", disable=not progress, mininterval=1.0)
    for width in np.unique(widths).tolist():
        group = np.flatnonzero(widths == width)
        for first in range(0, len(group), config.batch_size):
            rows = group[first : first + config.batch_size]
            block = unmask(
                model,
                sequences.windows(users[rows], lengths[rows], width),
                sequences.histories(users[rows], lengths[rows]),
                prefix_keys(users[rows], lengths[rows]),
                config,
            )
            items[rows], confidence[rows] = block.item_idx, block.confidence
            bar.update(len(rows))
    bar.close()
    return GeneratedItems(items, confidence)


def window_widths(lengths: Ints, limit: int) -> Ints:
    """The history width each row is generated with: its length rounded up to a power of two,
    at most ``limit``. Short histories skip the padding a full window would cost, and a row's
    width depends on its own length only, never on the other rows of its batch."""
    visible = np.clip(np.asarray(lengths, np.int64), 1, limit)
    return np.minimum(2 ** np.ceil(np.log2(visible)).astype(np.int64), limit)


def generate_for_users(
    model: GBRModel,
    sequences: BehaviourSequences,
    users: Ints,
    config: GenerationConfig,
    *,
    progress: bool = False,
) -> GeneratedItems:
    """K behaviours for each user from their whole sequence (the nearline case)."""
    users = np.asarray(users, np.int64)
    lengths = sequences.lengths()[users]
    return generate_for_prefixes(model, sequences, users, lengths, config, progress=progress)


def unmask(
    model: GBRModel, windows: Ints, excluded: Ints, row_keys: Ints, config: GenerationConfig
) -> GeneratedItems:
    """One batch: ``windows [B, W]`` of history items (right-aligned, -1 padded), ``excluded
    [B, E]`` items never to generate (-1 padded), one sampling key per row."""
    network, layout = model.network, model.layout
    k, per_item = config.k, layout.tokens_per_item
    _check_slots(model, k)
    free = model.n_items - int((excluded >= 0).sum(axis=1).max(initial=0))
    if free < k:
        raise ValueError(f"a history leaves {free} items to generate, fewer than k={k}")
    batch, slots = len(windows), k * per_item
    history = torch.from_numpy(layout.encode(windows))
    tokens = torch.cat([history, torch.full((batch, slots), MASK, dtype=torch.long)], dim=1)
    banned_np = layout.banned(excluded)
    banned = None if banned_np is None else torch.from_numpy(banned_np)
    masked = torch.ones(batch, slots, dtype=torch.bool)
    chosen = torch.zeros(batch, slots, dtype=torch.long)
    chosen_prob = torch.zeros(batch, slots)
    rows = torch.arange(batch)[:, None].expand(batch, slots)
    step = 0
    with torch.inference_mode():
        while bool(masked.any()):
            hidden = network(tokens)[:, -slots:]
            uniforms = hashed_uniforms(config.seed, row_keys, step, slots)
            drawn, prob, fallback = _draw(model, hidden, masked, uniforms, banned, config)
            score = torch.where(masked, prob, float("-inf"))
            if banned is not None and fallback is not None:
                start = model.config.level_start(0)
                drawn, prob, score = _assign_distinct(drawn, prob, score, fallback, banned, start)
            keep = _most_confident(score, _quota(slots, config.steps, step))
            chosen = torch.where(keep, drawn, chosen)
            chosen_prob = torch.where(keep, prob, chosen_prob)
            tokens[:, -slots:] = torch.where(keep, drawn, tokens[:, -slots:])
            masked &= ~keep
            if banned is not None:
                banned[rows[keep], drawn[keep] - model.config.level_start(0)] = True
            step += 1
            if step > config.steps + slots:  # pragma: no cover - every step keeps a slot per row
                raise RuntimeError("generation made no progress")
    item_idx, confidence = layout.decode(chosen.numpy(), chosen_prob.numpy(), excluded)
    return GeneratedItems(item_idx, confidence)


def _check_slots(model: GBRModel, k: int) -> None:
    if k > model.config.max_slots:
        raise ValueError(f"k={k} exceeds the {model.config.max_slots} slots GBR was trained for")


def _draw(
    model: GBRModel,
    hidden: torch.Tensor,
    masked: torch.Tensor,
    uniforms: torch.Tensor,
    banned: torch.Tensor | None,
    config: GenerationConfig,
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
    """A token and its probability for every still-masked slot ``[B, slots]`` (0 elsewhere),
    level by level, and (item tokens) each slot's most likely tokens ``[B, slots, C]`` with
    their probabilities, to fall back on when another slot takes its draw.

    Committed slots are skipped: the output head over the whole catalogue is most of the cost.
    """
    per_item = model.config.tokens_per_item
    drawn = torch.zeros(hidden.shape[:2], dtype=torch.long)
    prob = torch.zeros(hidden.shape[:2])
    fallback = None
    for level in range(per_item):
        positions = torch.arange(level, hidden.shape[1], per_item)
        rows, column = torch.nonzero(masked[:, positions], as_tuple=True)
        slot = positions[column]
        logits = model.network.level_logits(hidden[rows, slot], level)
        start = model.config.level_start(level)
        if banned is not None:
            logits.masked_fill_(banned[rows], float("-inf"))
            width = min(hidden.shape[1], logits.shape[-1])
            tempered = logits / config.temperature if config.temperature > 0 else logits
            top, index = tempered.topk(width, dim=-1)
            candidates = torch.zeros((*hidden.shape[:2], width), dtype=torch.long)
            candidate_prob = torch.zeros((*hidden.shape[:2], width))
            candidates[rows, slot] = index + start
            normaliser = torch.logsumexp(tempered, dim=-1, keepdim=True)
            candidate_prob[rows, slot] = torch.exp(top - normaliser).float()
            fallback = (candidates, candidate_prob)
        picked, picked_prob = sample_tokens(
            logits, uniforms[rows, slot], config.temperature, config.top_p
        )
        drawn[rows, slot] = picked + start
        prob[rows, slot] = picked_prob.float()
    return drawn, prob, fallback


def _assign_distinct(
    drawn: torch.Tensor,
    prob: torch.Tensor,
    score: torch.Tensor,
    fallback: tuple[torch.Tensor, torch.Tensor],
    banned: torch.Tensor,
    start: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distinct items for the open slots: in order of confidence, each slot keeps its draw, or
    when a more confident slot holds it, its most likely item nobody holds.

    Greedy decoding makes collisions the rule (open slots look alike); deferring every loser
    to a later step would cost a full pass of the model per collision.
    """
    candidates = torch.cat([drawn[..., None], fallback[0]], dim=2)  # [B, slots, 1 + C]
    candidate_prob = torch.cat([prob[..., None], fallback[1]], dim=2)
    taken = banned.clone()
    drawn, prob, assigned = drawn.clone(), prob.clone(), score.clone()
    order = torch.argsort(score, dim=1, descending=True, stable=True)
    batch = torch.arange(len(drawn))
    for rank in range(drawn.shape[1]):
        slot = order[:, rank]
        open_slot = torch.isfinite(score[batch, slot])
        options, option_prob = candidates[batch, slot], candidate_prob[batch, slot]
        free = ~taken.gather(1, (options - start).clamp_min(0)) & (option_prob > 0)
        first = torch.argmax(free.int(), dim=1, keepdim=True)
        found = free.gather(1, first).squeeze(1) & open_slot
        token = options.gather(1, first).squeeze(1)
        token_prob = option_prob.gather(1, first).squeeze(1)
        drawn[batch, slot] = torch.where(found, token, drawn[batch, slot])
        prob[batch, slot] = torch.where(found, token_prob, prob[batch, slot])
        assigned[batch, slot] = torch.where(found, token_prob, torch.full_like(token_prob, -1e9))
        assigned[batch, slot] = torch.where(open_slot, assigned[batch, slot], float("-inf"))
        taken[batch[found], token[found] - start] = True
    # A slot with no free option waits for the next step.
    return drawn, prob, assigned.masked_fill(assigned <= -1e9, float("-inf"))


def _quota(slots: int, steps: int, step: int) -> int:
    """Slots to commit at ``step``: an even split over the steps; every leftover afterwards."""
    if step >= steps:
        return slots
    return (slots * (step + 1)) // steps - (slots * step) // steps


def _most_confident(score: torch.Tensor, quota: int) -> torch.Tensor:
    """The ``quota`` highest finite scores of each row (fewer where fewer are finite)."""
    top = score.topk(min(quota, score.shape[1]), dim=1).indices
    keep = torch.zeros_like(score, dtype=torch.bool).scatter_(1, top, True)
    return keep & torch.isfinite(score)
