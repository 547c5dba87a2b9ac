"""Beyond-log slots: part of each generated block reserved for items outside the history's main
department, chosen by the generator.

Greedy generation fills every slot with the generator's most likely items, and for a history
drawn from one department those are that department's items: whatever the generator knows of
other interests never wins a slot. Reserving the last ``slots`` columns for items *outside* the
history's main department lets that knowledge show. Within them items rank by **lift**, the
generator's probability over the item's share of its training events: raw probability would hand
them to the items the logs over-show (popular ones) whatever the history. The slot policy alone
adds nothing a generator does not know: a generator trained on the logs alone fills them with the
cross-department items its logs tie to the history, one pretrained on a world corpus with the
kinds that corpus ties to it.

Departments are the first level of the catalogue's category paths; a catalogue with a single
department uses the last level (the kind) instead.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from offline.data.canonical import Catalogue
from offline.gbr.checkpoint import GBRModel
from offline.gbr.complements import slot_probabilities
from offline.gbr.fusion import blended_blocks
from offline.gbr.generate import GeneratedItems, GenerationConfig, generate_for_prefixes
from offline.gbr.sequences import BehaviourSequences

Ints = npt.NDArray[np.int64]


def item_groups(catalogue: Catalogue, separator: str = ">") -> Ints:
    """Each catalogue row's department index (the kind's when there is one department)."""
    paths = [str(path).split(separator) for path in catalogue.category_paths]
    level = 0 if len({parts[0].strip() for parts in paths}) > 1 else -1
    _, groups = np.unique([parts[level].strip() for parts in paths], return_inverse=True)
    return groups.astype(np.int64)


def beyond_fill(
    model: GBRModel,
    sequences: BehaviourSequences,
    users: Ints,
    lengths: Ints,
    generated: GeneratedItems,
    groups: Ints,
    *,
    slots: int,
    batch_size: int = 256,
    lift: bool = True,
) -> GeneratedItems:
    """``generated`` with its last ``slots`` columns replaced, per (user, history length), by the
    items outside the history's main department that the generator makes likelier than their
    prior (:func:`item_prior`) by the most (never a history item nor one already in the block);
    their confidence stays the generator's probability. ``lift=False`` ranks by probability
    alone. Item tokens only."""
    if model.layout.kind != "items":
        raise ValueError("beyond-log slots fill item-token generators only")
    k = generated.item_idx.shape[1]
    if not 0 < slots <= k:
        raise ValueError(f"slots must lie in 1..{k}")
    if len(groups) != model.n_items:
        raise ValueError("groups must have one entry per catalogue row")
    items, confidence = generated.item_idx.copy(), generated.confidence.copy()
    users, lengths = np.asarray(users, np.int64), np.asarray(lengths, np.int64)
    width = model.config.window_items - k
    group_of = torch.from_numpy(np.asarray(groups, np.int64))
    prior = torch.from_numpy(item_prior(model) if lift else np.ones(model.n_items, np.float32))
    for first in range(0, len(users), batch_size):
        rows = np.arange(first, min(first + batch_size, len(users)))
        windows = sequences.windows(users[rows], lengths[rows], width)
        prob = torch.from_numpy(slot_probabilities(model, windows, k))
        history = sequences.histories(users[rows], lengths[rows])
        main = main_group(history, groups)
        banned = group_of[None, :] == torch.from_numpy(main)[:, None]
        kept = items[rows, : k - slots]
        for taken in (history, kept):
            r, c = np.nonzero(taken >= 0)
            banned[torch.from_numpy(r), torch.from_numpy(taken[r, c])] = True
        score = (prob / prior).masked_fill(banned, -1.0)  # lifts are positive: -1 marks banned
        best_lift, best = torch.topk(score, slots, dim=1)
        usable = (best_lift >= 0).numpy()
        best_np, best_prob_np = best.numpy(), torch.gather(prob, 1, best).numpy()
        columns = np.arange(k - slots, k)
        for local, row in enumerate(rows.tolist()):
            if lengths[row] == 0:
                continue
            take = usable[local]
            items[row, columns[take]] = best_np[local, take]
            confidence[row, columns[take]] = best_prob_np[local, take]
    return GeneratedItems(items, confidence)


def item_prior(model: GBRModel) -> npt.NDArray[np.float32]:
    """Each item's share of the generator's training events (add-one smoothed), or ones for a
    checkpoint without counts. Beyond-log slots rank items by their probability *over* this
    prior (lift): raw probability favours the items the logs over-show (popular ones), whatever
    the history, and hides the kinds a history makes likelier than usual."""
    if model.item_counts is None:
        return np.ones(model.n_items, np.float32)
    counts = np.asarray(model.item_counts, np.float64) + 1.0
    return (counts / counts.sum() * len(counts)).astype(np.float32)


def main_group(history: Ints, groups: Ints) -> Ints:
    """The most frequent group among each row's history items (-1 for an empty history)."""
    n_groups = int(groups.max(initial=0)) + 1
    counts = np.zeros((len(history), n_groups), np.int64)
    r, c = np.nonzero(history >= 0)
    np.add.at(counts, (r, groups[history[r, c]]), 1)
    main = counts.argmax(axis=1)
    main[counts.sum(axis=1) == 0] = -1
    return main


def generate_blocks(
    model: GBRModel,
    sequences: BehaviourSequences,
    users: Ints,
    lengths: Ints,
    config: GenerationConfig,
    groups: Ints | None,
    *,
    progress: bool = False,
) -> GeneratedItems:
    """Blocks as :func:`offline.gbr.generate.generate_for_prefixes` writes them, or blended
    with the training logs' co-occurrence when ``config.log_weight`` is above 0
    (:mod:`offline.gbr.fusion`), with the last ``config.beyond_slots`` given to items beyond the
    history's department when ``groups`` are known."""
    if config.log_weight > 0:
        block = blended_blocks(model, sequences, users, lengths, config)
    else:
        block = generate_for_prefixes(model, sequences, users, lengths, config, progress=progress)
    if config.beyond_slots and groups is not None:
        block = beyond_fill(
            model, sequences, users, lengths, block, groups, slots=config.beyond_slots,
            batch_size=config.batch_size, lift=config.beyond_lift,
        )  # fmt: skip
    return block
