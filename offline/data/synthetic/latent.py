"""The hidden vectors behind the synthetic world: one per attribute value, from the taxonomy.

An item's latent vector is a weighted sum of the vectors of its attributes, so that items sharing
a leaf kind, a style or an audience are alike, and a leaf's vector leans towards the leaves that
complement it, so that shoppers who like one kind tend to like its complements. That is the signal
a knowledge text (which names the same attributes and complements) can carry.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from offline.knowledge.world import PRICE_BANDS, STYLES, TAXONOMY, complements_of, leaves

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]
#: A ragged table of indices as a (-1 padded matrix, row lengths) pair, for vectorised choice.
Ragged = tuple[Ints, Ints]


def unit(x: npt.NDArray[np.floating[Any]]) -> Floats:
    """Rows scaled to unit length."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


def ragged(rows: list[list[int]]) -> Ragged:
    width = max(1, *(len(r) for r in rows))
    matrix = np.full((len(rows), width), -1, dtype=np.int64)
    for i, row in enumerate(rows):
        matrix[i, : len(row)] = row
    return matrix, np.array([len(r) for r in rows], dtype=np.int64)


def pick(table: Ragged, rows: Ints, rng: np.random.Generator) -> Ints:
    """One uniformly chosen entry of each listed row (-1 where the row is empty)."""
    matrix, lengths = table
    slot = np.floor(rng.random(len(rows)) * np.maximum(lengths[rows], 1)).astype(np.int64)
    return matrix[rows, slot]


class HiddenWorld:
    """Taxonomy tables as index arrays, and the hidden vector of every attribute value."""

    def __init__(self, latent_dim: int, rng: np.random.Generator) -> None:
        all_leaves = leaves()
        tops = [top.name for top in TAXONOMY]
        subs = [(leaf.top.name, leaf.sub.name) for leaf in all_leaves]
        sub_names = list(dict.fromkeys(subs))
        names = [leaf.name for leaf in all_leaves]
        self.leaf_names = np.array(names)
        self.leaf_paths = np.array([leaf.path for leaf in all_leaves])
        self.leaf_top = np.array([tops.index(leaf.top.name) for leaf in all_leaves])
        leaf_sub = np.array([sub_names.index(s) for s in subs])
        self.materials = sorted({m for top in TAXONOMY for m in top.materials})
        self.audiences = sorted({a for top in TAXONOMY for a in top.audiences})
        self.top_materials = ragged(
            [[self.materials.index(m) for m in t.materials] for t in TAXONOMY]
        )
        self.top_audiences = ragged(
            [[self.audiences.index(a) for a in t.audiences] for t in TAXONOMY]
        )
        complements = [[names.index(c) for c in complements_of(n)] for n in names]
        # Secondary interests come from complements in another department, so exposure of the
        # primary department rarely shows them.
        self.cross_complements = ragged(
            [
                [c for c in cs if self.leaf_top[c] != self.leaf_top[i]]
                for i, cs in enumerate(complements)
            ]
        )

        def draw(n: int) -> Floats:
            return unit(rng.standard_normal((n, latent_dim)))

        top_v, sub_v, leaf_v = draw(len(tops)), draw(len(sub_names)), draw(len(all_leaves))
        paired = np.stack([leaf_v[cs].mean(axis=0) for cs in complements])
        self.leaf = unit(
            0.6 * top_v[self.leaf_top] + 0.7 * sub_v[leaf_sub] + 0.8 * leaf_v + 0.6 * paired
        )
        self.style, self.material = draw(len(STYLES)), draw(len(self.materials))
        self.audience = draw(len(self.audiences))
        ends = draw(2)  # price bands lie on an arc: neighbouring bands are alike
        angle = np.linspace(0, np.pi / 2, len(PRICE_BANDS))[:, None]
        self.band = unit(np.cos(angle) * ends[0] + np.sin(angle) * ends[1])

    @property
    def n_leaves(self) -> int:
        return len(self.leaf_top)
