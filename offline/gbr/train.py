"""Training the behaviour generator on users' sequences.

One training window per (user, position): the user's items up to that position, right-aligned in
``history_items + max_slots`` items. Every prefix of a sequence is a history generation may meet,
so every prefix is a window; overlapping windows of long sequences act as augmentation.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial

import numpy as np
import numpy.typing as npt
import torch
from tqdm import tqdm

from offline.data.canonical import Dataset
from offline.gbr.checkpoint import GBRModel, build_layout, model_version
from offline.gbr.log_prior import LogPrior
from offline.gbr.model import DiffusionConfig, MaskedDiffusionLM, diffusion_loss
from offline.gbr.semantic_ids import fit_codebook
from offline.gbr.sequences import BehaviourSequences, behaviour_sequences
from offline.gbr.tokens import TokenKind, TokenLayout
from offline.gbr.world_corpus import WorldCorpus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GBRTrainConfig:
    """Token layout, network size and optimisation of one training run."""

    tokens: TokenKind = "items"
    levels: int = 3  # semantic IDs: code levels per item
    codes: int = 64  # semantic IDs: codes per level
    history_items: int = 32  # history the model conditions on
    max_slots: int = 32  # the most behaviours one generation may append
    dim: int = 64
    heads: int = 4
    layers: int = 2
    ff_dim: int = 256
    dropout: float = 0.0  # dropout's masks cost more than they help a model this small
    semantic_fusion: bool = True  # item tokens: add a projection of the semantic vector
    epochs: int = 8
    batch_size: int = 256
    learning_rate: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    suffix_prob: float = 0.5  # share of windows masked only in their last max_slots items
    seed: int = 0
    #: With a world corpus: epochs on it alone before the platform's logs (0: no pretraining).
    pretrain_epochs: int = 1
    #: With a world corpus: the share of its sequences mixed into fine-tuning on the logs, so
    #: that fitting the logs does not erase what the corpus taught.
    replay: float = 0.3

    def diffusion(self, layout: TokenLayout, feature_dim: int) -> DiffusionConfig:
        fused = self.semantic_fusion and layout.kind == "items"
        return DiffusionConfig(
            vocab_size=layout.vocab_size,
            tokens_per_item=layout.tokens_per_item,
            window_items=self.history_items + self.max_slots,
            max_slots=self.max_slots,
            dim=self.dim,
            heads=self.heads,
            layers=self.layers,
            ff_dim=self.ff_dim,
            dropout=self.dropout,
            feature_dim=feature_dim if fused else 0,
        )


def train_gbr(
    dataset: Dataset,
    semantic_vectors: npt.NDArray[np.float32],
    config: GBRTrainConfig,
    *,
    until_ts: int | None = None,
    users: npt.NDArray[np.int64] | None = None,
    progress: bool = False,
    corpus: WorldCorpus | None = None,
) -> GBRModel:
    """Train on the events before ``until_ts`` (all events when ``None``) of ``users`` (all when
    ``None``); returns the trained generator in evaluation mode.

    With a ``corpus``, the generator first learns the world corpus alone
    (``config.pretrain_epochs``), then the platform's logs with ``config.replay`` of the corpus
    mixed in. The corpus's version is part of the generator's settings, hence of its version.
    """
    started = time.perf_counter()
    sequences = behaviour_sequences(dataset.behaviours, len(dataset.user_ids), until_ts)
    codebook = None
    if config.tokens == "semantic":
        codebook = fit_codebook(semantic_vectors, config.levels, config.codes, config.seed)
    layout = build_layout(config.tokens, len(dataset.catalogue), codebook)
    fit = partial(fit_network, layout=layout, progress=progress, semantic=semantic_vectors)
    settings = asdict(config) | {"until_ts": until_ts, "n_users_trained": _count(users, sequences)}
    if corpus is None:
        network = fit(sequences, config=config, users=users)
    else:
        network = _pretrain_then_fit(fit, sequences, corpus, config, users)
        settings |= {"world_corpus": corpus.version, "world_sources": corpus.sources}
    version = model_version(network, layout.kind, settings)
    seconds = time.perf_counter() - started
    log.info("trained GBR %s in %.1f s", version, seconds)
    return GBRModel(
        network=network,
        layout=layout,
        item_ids=dataset.catalogue.item_ids,
        semantic_vectors=np.asarray(semantic_vectors, np.float32),
        until_ts=until_ts,
        version=version,
        train_info=settings | {"train_seconds": round(seconds, 2)},
        item_counts=item_counts(sequences, len(dataset.catalogue), users),
        log_prior=LogPrior.of(sequences, len(dataset.catalogue), users),
    )


def _pretrain_then_fit(
    fit: Callable[..., MaskedDiffusionLM],
    sequences: BehaviourSequences,
    corpus: WorldCorpus,
    config: GBRTrainConfig,
    users: npt.NDArray[np.int64] | None,
) -> MaskedDiffusionLM:
    """Pretrain on the corpus, then fine-tune on the logs with part of the corpus replayed."""
    joint = WorldCorpus.of({"platform": sequences, "world": corpus.sequences}).sequences
    world = np.arange(sequences.n_users, joint.n_users, dtype=np.int64)
    platform = np.arange(sequences.n_users, dtype=np.int64) if users is None else users
    network = None
    if config.pretrain_epochs > 0:
        network = fit(joint, config=replace(config, epochs=config.pretrain_epochs), users=world)
    rng = np.random.default_rng(config.seed)
    replayed = rng.choice(world, size=round(config.replay * len(world)), replace=False)
    chosen = np.concatenate([np.asarray(platform, np.int64), np.sort(replayed)])
    return fit(joint, config=config, users=chosen, network=network)


def item_counts(
    sequences: BehaviourSequences, n_items: int, users: npt.NDArray[np.int64] | None = None
) -> npt.NDArray[np.int64]:
    """Each item's events in the sequences of ``users`` (all when ``None``)."""
    items = sequences.items
    if users is not None:
        owner = np.repeat(np.arange(sequences.n_users), sequences.lengths())
        items = items[np.isin(owner, users)]
    return np.bincount(np.asarray(items, np.int64), minlength=n_items).astype(np.int64)


def _count(users: npt.NDArray[np.int64] | None, sequences: BehaviourSequences) -> int:
    return sequences.n_users if users is None else len(users)


def training_windows(
    sequences: BehaviourSequences, users: npt.NDArray[np.int64] | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``(user, prefix length)`` of every window: one per item of each chosen user."""
    lengths = sequences.lengths()
    chosen = np.arange(sequences.n_users) if users is None else np.asarray(users, np.int64)
    counts = lengths[chosen]
    owner = np.repeat(chosen, counts)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    prefix = np.arange(len(owner)) - np.repeat(starts, counts) + 1
    return owner.astype(np.int64), prefix.astype(np.int64)


def fit_network(
    sequences: BehaviourSequences,
    layout: TokenLayout,
    config: GBRTrainConfig,
    *,
    users: npt.NDArray[np.int64] | None = None,
    progress: bool = False,
    semantic: npt.NDArray[np.float32] | None = None,
    network: MaskedDiffusionLM | None = None,
) -> MaskedDiffusionLM:
    """The optimisation loop: AdamW, linear warm-up then cosine decay, gradient clipping;
    continues training ``network`` when one is given (fine-tuning), else starts a new one."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    feature_dim = 0 if semantic is None else int(semantic.shape[1])
    diffusion = config.diffusion(layout, feature_dim)
    if network is None:
        features = None if not diffusion.feature_dim else torch.from_numpy(np.asarray(semantic))
        network = MaskedDiffusionLM(diffusion, features)
    owner, prefix = training_windows(sequences, users)
    if len(owner) == 0:
        raise ValueError("no behaviours to train the generator on")
    steps_per_epoch = math.ceil(len(owner) / config.batch_size)
    total = steps_per_epoch * config.epochs
    optimiser = torch.optim.AdamW(
        network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: _lr_factor(step, config.warmup_steps, total)
    )
    network.train()
    bar = tqdm(total=total, desc="gbr train", unit="step", disable=not progress, mininterval=1.0)
    visible = np.minimum(prefix, diffusion.window_items)
    for epoch in range(config.epochs):
        running = 0.0
        for rows in length_bucketed(visible, config.batch_size, rng):
            # Trimmed to the batch's longest window: most users' windows are mostly padding.
            width = int(visible[rows].max())
            windows = sequences.windows(owner[rows], prefix[rows], width)
            tokens = torch.from_numpy(layout.encode(windows))
            loss = diffusion_loss(network, tokens, config.suffix_prob, generator)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            running += float(loss.detach())
            bar.update(1)
        log.info("gbr epoch %d: loss %.4f", epoch + 1, running / steps_per_epoch)
    bar.close()
    network.eval()
    return network


def length_bucketed(
    lengths: npt.NDArray[np.int64], batch_size: int, rng: np.random.Generator, pool: int = 32
) -> list[npt.NDArray[np.int64]]:
    """Shuffled batches of rows of similar length: rows are shuffled, sorted by length within
    pools of ``pool`` batches, cut into batches, and the batches shuffled again. Padding then
    costs little while every epoch still sees the rows in a new order."""
    order = rng.permutation(len(lengths))
    batches: list[npt.NDArray[np.int64]] = []
    for first in range(0, len(order), batch_size * pool):
        chunk = order[first : first + batch_size * pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _lr_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
