"""Knowledge complements: the kinds of product the knowledge records say go with a history.

Logs show what the platform exposed. An interest the exposure policy rarely serves (on the
synthetic data, each user's hidden secondary interest: usually a kind that complements the primary
one, in another department) is all but absent from the logs, so a model of the logs alone cannot
learn it however well it fits them. The knowledge records name, per item, the kinds of product
bought together with it. :class:`KindComplements` ranks, per user, the complement kinds in
*other* departments that the user's history names most often, and :func:`complement_fill` gives
the last slots of a generated block to the generator's most likely items of those kinds: the
diffusion model still chooses the items, the knowledge chooses where it looks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from offline.gbr.checkpoint import GBRModel
from offline.gbr.generate import GeneratedItems
from offline.gbr.sequences import BehaviourSequences
from offline.gbr.tokens import MASK
from offline.knowledge.schema import ItemKnowledge

Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class KindComplements:
    """Item kinds and, per kind, its complement kinds in another department."""

    item_kind: Ints  # [n_items] kind index of each catalogue row
    kind_department: Ints  # [n_kinds]
    cross_complements: list[Ints]  # per kind

    @classmethod
    def from_records(cls, records: Sequence[ItemKnowledge]) -> KindComplements:
        """From knowledge records, one per catalogue row in order (kind: the path's leaf)."""
        kinds = [
            record.category_path[-1].lower() if record.category_path else "" for record in records
        ]
        departments = [
            record.category_path[0].lower() if record.category_path else "" for record in records
        ]
        names = sorted(set(kinds))
        index = {name: i for i, name in enumerate(names)}
        department_names = sorted(set(departments))
        kind_department = np.zeros(len(names), np.int64)
        named: list[set[str]] = [set() for _ in names]
        for kind, department, record in zip(kinds, departments, records, strict=True):
            kind_department[index[kind]] = department_names.index(department)
            named[index[kind]].update(c.lower() for c in record.complements)
        cross = [
            np.array(
                sorted(
                    index[c]
                    for c in complements
                    if c in index and kind_department[index[c]] != kind_department[k]
                ),
                np.int64,
            )
            for k, complements in enumerate(named)
        ]
        return cls(np.array([index[k] for k in kinds], np.int64), kind_department, cross)

    @property
    def n_kinds(self) -> int:
        return len(self.kind_department)

    def ranked_kinds(self, history: Ints, top: int) -> Ints:
        """The ``top`` cross-department complement kinds most often named by the history's
        items (ties: lower kind index first); fewer when the history names fewer."""
        votes = np.zeros(self.n_kinds, np.int64)
        for kind in self.item_kind[history[history >= 0]].tolist():
            votes[self.cross_complements[kind]] += 1
        named = np.flatnonzero(votes)
        order = named[np.argsort(-votes[named], kind="stable")]
        return order[:top]


def complement_fill(
    model: GBRModel,
    sequences: BehaviourSequences,
    users: Ints,
    generated: GeneratedItems,
    complements: KindComplements,
    *,
    slots: int,
    kinds: int = 2,
    batch_size: int = 256,
) -> GeneratedItems:
    """``generated`` with its last ``slots`` columns (the least confident) replaced, per user, by
    the generator's most likely items of the user's top ``kinds`` complement kinds; a column
    keeps its generated item where those kinds hold too few new items. Item tokens only."""
    if model.layout.kind != "items":
        raise ValueError("knowledge complements fill item-token generators only")
    k = generated.item_idx.shape[1]
    if not 0 < slots <= k:
        raise ValueError(f"slots must lie in 1..{k}")
    items, confidence = generated.item_idx.copy(), generated.confidence.copy()
    users = np.asarray(users, np.int64)
    lengths = sequences.lengths()[users]
    width = model.config.window_items - k
    for first in range(0, len(users), batch_size):
        rows = np.arange(first, min(first + batch_size, len(users)))
        prob = slot_probabilities(model, sequences.windows(users[rows], lengths[rows], width), k)
        for local, row in enumerate(rows.tolist()):
            history = sequences.of(int(users[row]))
            wanted = complements.ranked_kinds(history, kinds)
            allowed = np.isin(complements.item_kind, wanted)
            allowed[history] = False
            allowed[items[row, : k - slots][items[row, : k - slots] >= 0]] = False
            picked = np.flatnonzero(allowed)
            if len(picked) == 0:
                continue
            best = picked[np.argsort(-prob[local, picked], kind="stable")[:slots]]
            columns = np.arange(k - slots, k - slots + len(best))
            items[row, columns] = best
            confidence[row, columns] = prob[local, best]
    return GeneratedItems(items, confidence)


def slot_probabilities(model: GBRModel, windows: Ints, k: int) -> npt.NDArray[np.float32]:
    """``[B, n_items]``: each item's probability at an open slot after the history, averaged
    over the ``k`` slots (one forward pass, every slot masked)."""
    history = torch.from_numpy(model.layout.encode(windows))
    tokens = torch.cat([history, torch.full((len(windows), k), MASK, dtype=torch.long)], dim=1)
    with torch.inference_mode():
        hidden = model.network(tokens)[:, -k:]
        probs = torch.softmax(model.network.level_logits(hidden, 0), dim=-1).mean(dim=1)
    return probs.numpy().astype(np.float32)
