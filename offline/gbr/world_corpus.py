"""The world corpus a generator learns before the platform's logs.

ReaSeq's diffusion LM comes pretrained: it has read how products go together far beyond one
platform's exposure. A generator trained on our logs alone reproduces their blind spot. The world
corpus stands in for that reading, from two sources a deployment has without an LLM:

* **Knowledge walks**: item sequences drawn from the knowledge records' relations, the way text
  corpora tie products together: another item of the same kind (a substitute: the same kind and
  style where the records have a style), an item of a kind
  the record names as a complement, an item sharing a keyword or tag, an item for the same
  audience. Any dataset with knowledge records has them (MovieLens: genres and user tags).
* **External behaviour**: another platform's shoppers (on the synthetic world,
  :func:`offline.data.synthetic.external.external_shoppers`), never the platform's own users.

:class:`WorldCorpus` holds both as one set of sequences (their own user indices, disjoint from
the platform's) with a version digest recorded beside the generator trained on it.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from offline.gbr.sequences import BehaviourSequences
from offline.knowledge.schema import ItemKnowledge

Ints = npt.NDArray[np.int64]
#: Relations a walk step follows, with their weights (renormalised over those an item has).
RELATIONS: dict[str, float] = {"substitute": 0.35, "complement": 0.4, "keyword": 0.15,
                               "audience": 0.1}  # fmt: skip


@dataclass(frozen=True)
class WorldCorpus:
    """Sequences of the world corpus, oldest first per sequence, and where they came from."""

    sequences: BehaviourSequences
    sources: dict[str, int]  # sequences per source
    version: str

    @classmethod
    def of(cls, parts: dict[str, BehaviourSequences]) -> WorldCorpus:
        """One corpus from named parts (each with its own user indices), in the order given."""
        offsets, items, ts = [np.zeros(1, np.int64)], [], []
        for part in parts.values():
            offsets.append(part.offsets[1:] + offsets[-1][-1])
            items.append(part.items)
            ts.append(part.ts)
        sequences = BehaviourSequences(
            offsets=np.concatenate(offsets),
            items=np.concatenate(items) if items else np.zeros(0, np.int64),
            ts=np.concatenate(ts) if ts else np.zeros(0, np.int64),
        )
        digest = hashlib.sha256()
        for array in (sequences.offsets, sequences.items):
            digest.update(np.ascontiguousarray(array, np.int64).tobytes())
        sources = {name: part.n_users for name, part in parts.items()}
        return cls(sequences, sources, f"world-{digest.hexdigest()[:12]}")


def knowledge_walks(
    records: Sequence[ItemKnowledge],
    n_walks: int,
    length: int,
    seed: int,
    available: npt.NDArray[np.bool_] | None = None,
) -> BehaviourSequences:
    """``n_walks`` walks of up to ``length`` distinct items over the records' relations.

    ``records`` are one per catalogue row, in order; ``available`` (default: all) marks the items
    a walk may visit (e.g. those launched before a generator's training cut-off). A walk starts at
    a random available item and at each step follows one relation of the current item, chosen by
    :data:`RELATIONS` among those that lead somewhere new; it stops early when none does.
    """
    graph = _RelationGraph(records, available)
    rng = np.random.default_rng(seed)
    if len(graph.nodes) == 0:
        raise ValueError("no available item to start a knowledge walk from")
    starts = graph.nodes[rng.integers(0, len(graph.nodes), n_walks)]
    walks = [graph.walk(int(start), length, rng) for start in starts.tolist()]
    lengths = np.array([len(walk) for walk in walks], np.int64)
    items = np.concatenate(walks).astype(np.int64) if walks else np.zeros(0, np.int64)
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    ts = np.arange(len(items), dtype=np.int64) - offsets[np.repeat(np.arange(n_walks), lengths)]
    return BehaviourSequences(offsets=offsets, items=items, ts=ts)


class _RelationGraph:
    """Items grouped by kind, keyword and audience, and each kind's complement kinds."""

    def __init__(
        self, records: Sequence[ItemKnowledge], available: npt.NDArray[np.bool_] | None
    ) -> None:
        n = len(records)
        usable = np.ones(n, bool) if available is None else np.asarray(available, bool)
        if len(usable) != n:
            raise ValueError("available must have one entry per record")
        self.nodes = np.flatnonzero(usable)
        self.kind = [_kind(record) for record in records]
        by_kind: dict[str, list[int]] = defaultdict(list)
        by_kind_style: dict[tuple[str, str], list[int]] = defaultdict(list)
        by_keyword: dict[str, list[int]] = defaultdict(list)
        by_audience: dict[str, list[int]] = defaultdict(list)
        named: dict[str, set[str]] = defaultdict(set)
        for row in self.nodes.tolist():
            record = records[row]
            by_kind[self.kind[row]].append(row)
            by_kind_style[(self.kind[row], record.style.lower())].append(row)
            for keyword in {k.lower() for k in record.keywords}:
                by_keyword[keyword].append(row)
            if record.audience:
                by_audience[(record.audience.lower())].append(row)
            named[self.kind[row]].update(c.lower() for c in record.complements)
        self.by_kind = {k: np.array(v, np.int64) for k, v in by_kind.items()}
        self.by_kind_style = {k: np.array(v, np.int64) for k, v in by_kind_style.items()}
        self.style = [record.style.lower() for record in records]
        self.by_keyword = {k: np.array(v, np.int64) for k, v in by_keyword.items() if len(v) > 1}
        self.by_audience = {k: np.array(v, np.int64) for k, v in by_audience.items()}
        self.complement_kinds = {
            kind: sorted(c for c in names if c in self.by_kind and c != kind)
            for kind, names in named.items()
        }
        self.keywords = [sorted({k.lower() for k in r.keywords} & set(self.by_keyword))
                         for r in records]  # fmt: skip
        self.audience = [r.audience.lower() for r in records]

    def walk(self, start: int, length: int, rng: np.random.Generator) -> Ints:
        visited = [start]
        seen = {start}
        for _ in range(length - 1):
            step = self._step(visited[-1], seen, rng)
            if step is None:
                break
            visited.append(step)
            seen.add(step)
        return np.array(visited, np.int64)

    def _step(self, item: int, seen: set[int], rng: np.random.Generator) -> int | None:
        pools = self._pools(item)
        names = [name for name in RELATIONS if pools.get(name)]
        for _ in range(4):  # a few tries: a pool may hold only items already on the walk
            if not names:
                return None
            weights = np.array([RELATIONS[name] for name in names])
            name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
            pool = pools[name][int(rng.integers(0, len(pools[name])))]
            candidate = int(pool[rng.integers(0, len(pool))])
            if candidate not in seen:
                return candidate
        return None

    def _pools(self, item: int) -> dict[str, list[Ints]]:
        """Per relation, the item groups one step may draw from (a group, then an item in it)."""
        kind = self.kind[item]
        alike = self.by_kind_style.get((kind, self.style[item]), np.zeros(0, np.int64))
        substitutes = alike if len(alike) > 1 else self.by_kind.get(kind, np.zeros(0, np.int64))
        pools: dict[str, list[Ints]] = {
            "substitute": [substitutes] if len(substitutes) > 1 else [],
            "complement": [self.by_kind[c] for c in self.complement_kinds.get(kind, [])],
            "keyword": [self.by_keyword[k] for k in self.keywords[item]],
            "audience": (
                [self.by_audience[self.audience[item]]]
                if self.audience[item] in self.by_audience
                else []
            ),
        }
        return pools


def _kind(record: ItemKnowledge) -> str:
    return record.category_path[-1].lower() if record.category_path else ""
