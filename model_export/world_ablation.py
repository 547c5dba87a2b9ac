"""Generated behaviours with world knowledge, on a synthetic world where beyond-log interests pay.

The pieces beside the ranker's ablation (:mod:`model_export.report`):

* **The world**: the synthetic platform gives a share of every page to exploration (items from
  the departments other than the shopper's primary one), in both periods. The **exploration
  slice** is the evaluation impressions of items outside the user's primary department: where a
  hidden secondary interest can show.
* **The world generator**: pretrained on a world corpus (another platform's shoppers, whose
  exposure shows their whole interests, and knowledge walks over the records' relations), then
  fine-tuned on the platform's logs before the split (:func:`offline.gbr.train_gbr`).
* **The oracle ceiling**: the ranker trained and evaluated with blocks drawn from each user's true
  secondary kind (known only to the world's generator). GBR is reported as the share of the
  oracle's gain over knowledge only that it recovers.
* **The corpus's own ceiling** (the *corpus oracle*): blocks of the kind the world corpus's
  shoppers of each user's true primary kind click the most beyond shoppers at large. What the
  corpus can name, given the one thing a history hides least; it tells a generator that
  under-uses its corpus from a corpus that does not hold what the oracle knows. **Corpus
  blocks** are the same with the history's main kind in place of the true primary kind: what
  counting the corpus proposes, with no truth and no generator.
* **The pattern oracle**: blocks of the kind the world's own co-interest pattern gives the
  shoppers of each user's true primary kind: what knowing every pattern of the world without
  error gives, from the primary kind alone (what a corpus, an LLM's included, can teach of the
  population). A user whose secondary interest is their own, off the pattern, is beyond it;
  only their own clicks can show it.
* **Complement blocks**: no generator at all; items of the kinds the knowledge records name as
  cross-department complements of the main kind of the user's history. What world knowledge of
  the records' kind proposes, beside the block share each source holds of the secondary kind.
* **Sparse users beside the others**: on the requests of users with few behaviours before them
  and on the rest, how often the history's main kind is the primary kind and each block
  source's share of the secondary kind: where a pattern read from a short history starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from model_export.dataset import GeneratedBlocksLog, example_requests
from model_export.evaluate import SPARSE_USER_HISTORY, Predictions
from offline.data.canonical import Behaviours, Dataset
from offline.data.synthetic import GroundTruth, SyntheticConfig
from offline.data.synthetic.external import external_shoppers
from offline.gbr.complements import KindComplements
from offline.gbr.sequences import behaviour_sequences
from offline.gbr.world_corpus import WorldCorpus, knowledge_walks
from offline.knowledge.schema import ItemKnowledge

Ints = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
EXPLORATION = "exploration"
#: The two parts of the evaluation requests the diagnostics by history length compare.
SPARSE_REQUESTS, OTHER_REQUESTS = "sparse_users", "other_users"
ORACLE_VERSION = "oracle-secondary-interest"
CORPUS_ORACLE_VERSION = "corpus-named-kind-of-the-primary-kind"
CORPUS_VERSION = "corpus-named-kind-of-the-main-kind"
PATTERN_ORACLE_VERSION = "co-interest-kind-of-the-primary-kind"
COMPLEMENTS_VERSION = "knowledge-complements-of-the-main-kind"


@dataclass(frozen=True)
class SlotsChoice:
    """How the default count of beyond-log slots was chosen: of the counts ``of``, the one
    whose full ranker (knowledge + world GBR) scored the best AUC overall on the world of a
    ``seed`` no reported figure uses (``reaseq results`` reports seeds 0, 1, 2)."""

    chosen: int
    of: tuple[int, ...]
    seed: int


BEYOND_SLOTS_CHOICE = SlotsChoice(chosen=8, of=(4, 8, 16), seed=3)


@dataclass(frozen=True)
class SlotVectorsChoice:
    """How slot vectors (:attr:`model_export.train.TrainConfig.generated_slots`) came to be on
    for the rankers with blocks: on the worlds of ``seeds``, which no reported figure uses,
    against the same rankers without them, by the full ranker's gain over knowledge only on
    the exploration slice and on sparse users (where beyond-log blocks are meant to pay), with
    the gain overall not lower on average."""

    seeds: tuple[int, ...]


SLOT_VECTORS_CHOICE = SlotVectorsChoice(seeds=(3, 4, 5))


@dataclass(frozen=True)
class WorldSetup:
    """The exploring world and the corpus the world generator learns before the logs.

    The defaults make a world in which blocks of each user's hidden secondary interest can pay
    (the oracle's ceiling) and in which only shoppers' behaviour tells that interest from the
    history: the platform's exposure serves the primary kind (``kind_focus``), a kind's
    shoppers share one secondary kind (``co_interest``), which the knowledge records do not
    single out, and that interest, rarely shown, is strong when it is (``secondary_weight``).
    With the demo generator's own settings (department-level exposure, a secondary interest
    weaker than the primary, drawn per shopper), the most frequent kind of a history is the
    user's primary kind for only about two users in five, and the ceiling stays below what a
    block could be asked to add.
    """

    exploration_share: float = 0.2
    #: Of the exploration slots, the share aimed at the complements of the shopper's primary
    #: kind (:attr:`offline.data.synthetic.SyntheticConfig.exploration_aim`).
    exploration_aim: float = 0.0
    #: Strength of each user's secondary interest against the primary's 1
    #: (:attr:`offline.data.synthetic.SyntheticConfig.secondary_weight`).
    secondary_weight: float = 1.5
    #: Whether the world's secondary interests follow co-interest patterns
    #: (:attr:`offline.data.synthetic.SyntheticConfig.co_interest`).
    co_interest: bool = True
    #: Share of the primary department's slots that show the primary kind itself
    #: (:attr:`offline.data.synthetic.SyntheticConfig.kind_focus`).
    kind_focus: float = 0.5
    #: Share of users whose secondary kind follows their primary kind: its co-interest kind in a
    #: co-interest world, else one of its complements
    #: (:attr:`offline.data.synthetic.SyntheticConfig.secondary_complement_prob`).
    complement_share: float = SyntheticConfig.secondary_complement_prob
    external_shoppers: int = 2000
    clicks_per_shopper: int = 16
    walks: int = 1500
    walk_length: int = 12
    #: Of the world generator's K slots, those given to items beyond the history's department
    #: (:mod:`offline.gbr.beyond`); see :data:`BEYOND_SLOTS_CHOICE` for how 8 was chosen.
    beyond_slots: int = 8

    def world_text(self) -> str:
        """What the world's exposure and interests are, in words."""
        focus = (
            f"{self.kind_focus:.0%} of the slots drawn from the user's primary department show "
            "the primary kind itself"
            if self.kind_focus
            else "the primary department's slots draw from the whole department"
        )
        share = self.complement_share
        pattern = (
            f"for {share:.0%} of users the secondary kind is the one kind of another department "
            "that all users of their primary kind share (one of the complements the records "
            "name, where they name any: only shoppers' behaviour singles it out), for the rest "
            "a kind of another department drawn for that user"
            if self.co_interest
            else f"for {share:.0%} of the users whose primary kind has a complement in another "
            "department the secondary kind is one of those, drawn for that user, for the rest a "
            "kind of another department"
        )
        return (
            f"{focus}; {pattern}; the secondary interest weighs {self.secondary_weight:g} against "
            f"the primary's 1; the world gives {self.exploration_text()}"
        )

    def exploration_text(self) -> str:
        """How the world explores, in words."""
        text = f"{self.exploration_share:.0%} of every page to exploration (items from the "
        text += "departments other than the user's primary one"
        if not self.exploration_aim:
            return text + ", uniformly)"
        return text + (
            f"; {self.exploration_aim:.0%} of them aimed at the kinds that complement the "
            "user's primary kind, as co-purchases across all shoppers suggest, the rest uniform)"
        )


def world_shoppers(config: SyntheticConfig, setup: WorldSetup) -> Behaviours:
    """The world corpus's other platform: its shoppers' clicks (none of the platform's users)."""
    return external_shoppers(config, setup.external_shoppers, setup.clicks_per_shopper)


def world_corpus(
    config: SyntheticConfig,
    dataset: Dataset,
    records: list[ItemKnowledge],
    setup: WorldSetup,
    shoppers: Behaviours,
) -> WorldCorpus:
    """External shoppers (:func:`world_shoppers`) and knowledge walks, over items launched
    before the split time."""
    launched = dataset.catalogue.launch_ts < dataset.split_ts
    walks = knowledge_walks(records, setup.walks, setup.walk_length, config.seed, launched)
    return WorldCorpus.of(
        {
            "external shoppers": behaviour_sequences(shoppers, setup.external_shoppers),
            "knowledge walks": walks,
        }
    )


def corpus_named_kinds(shoppers: Behaviours, truth: GroundTruth) -> Ints:
    """Per kind, the kind of another department that the corpus's shoppers who clicked it click
    the most more often than shoppers at large (excess clicks per shopper); -1 where they click
    no kind of another department more often. Click counts, not only whether a shopper clicked
    a kind: a shopper's heavy kinds tell their strong interests from the passing ones, which
    "clicked both" alone (the same both ways) cannot. Of ``truth`` it reads only what the
    catalogue shows: each item's kind (the leaf of its category path) and department."""
    n_kinds = len(truth.leaf_paths)
    department = truth.kind_department
    n_shoppers = int(shoppers.user_idx.max(initial=-1)) + 1
    clicks = np.zeros((n_shoppers, n_kinds), np.float64)
    np.add.at(clicks, (shoppers.user_idx, truth.item_leaf[shoppers.item_idx]), 1.0)
    clicked = (clicks > 0).astype(np.float64)
    shoppers_of = clicked.sum(axis=0)
    among_them = np.divide(
        clicked.T @ clicks, shoppers_of[:, None], out=np.zeros((n_kinds, n_kinds)),
        where=shoppers_of[:, None] > 0,
    )  # fmt: skip
    excess = among_them - clicks.mean(axis=0)[None, :]
    excess[department[:, None] == department[None, :]] = 0.0
    named = excess.argmax(axis=1)
    named[excess.max(axis=1) <= 0] = -1
    return named.astype(np.int64)


class KindMembers:
    """The catalogue rows of each kind in launch order, to draw those live at a time."""

    def __init__(self, kind_of_item: Ints, launch_ts: Ints) -> None:
        order = np.lexsort((launch_ts, kind_of_item))
        self._rows, self._launch = order, launch_ts[order]
        kinds = kind_of_item[order]
        self._starts = np.searchsorted(kinds, np.arange(int(kind_of_item.max(initial=-1)) + 2))

    def live(self, kinds: Ints, at: int) -> Ints:
        """Rows of ``kinds`` launched at or before ``at``."""
        parts = []
        for kind in kinds.tolist():
            if not 0 <= kind < len(self._starts) - 1:
                continue  # a kind no item has
            lo, hi = self._starts[kind], self._starts[kind + 1]
            parts.append(
                self._rows[lo : lo + int(np.searchsorted(self._launch[lo:hi], at, "right"))]
            )
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def oracle_log(dataset: Dataset, truth: GroundTruth, k: int, seed: int) -> GeneratedBlocksLog:
    """Per request of :func:`example_requests`, ``k`` items of the user's true secondary kind
    launched before the request (drawn uniformly; fewer, padded with -1, where the kind has
    fewer), the blocks a generator that knew the hidden interest would write."""
    users, _ = example_requests(dataset)
    blocks = kind_blocks(dataset, truth.item_leaf, truth.user_secondary_leaf[users], k, seed)
    return GeneratedBlocksLog(items=blocks, version=ORACLE_VERSION)


def corpus_oracle_log(
    dataset: Dataset, truth: GroundTruth, named: Ints, k: int, seed: int
) -> GeneratedBlocksLog:
    """As :func:`oracle_log`, with the kind the world corpus names for the user's true primary
    kind (``named``, :func:`corpus_named_kinds`) in place of the true secondary kind: the
    blocks a generator would write that knew each user's primary kind and took from its
    corpus the best it says of that kind."""
    users, _ = example_requests(dataset)
    kinds = named[truth.user_primary_leaf[users]]
    blocks = kind_blocks(dataset, truth.item_leaf, kinds, k, seed)
    return GeneratedBlocksLog(items=blocks, version=CORPUS_ORACLE_VERSION)


def pattern_oracle_log(
    dataset: Dataset, truth: GroundTruth, k: int, seed: int
) -> GeneratedBlocksLog:
    """As :func:`corpus_oracle_log`, with the world's own co-interest kind of the user's true
    primary kind (``truth.co_interest_leaf``) as the named kind: a corpus that named every
    pattern of the world without error. Empty blocks in a world without patterns."""
    log = corpus_oracle_log(dataset, truth, truth.co_interest_leaf, k, seed)
    return GeneratedBlocksLog(items=log.items, version=PATTERN_ORACLE_VERSION)


def corpus_log(
    dataset: Dataset, truth: GroundTruth, named: Ints, k: int, seed: int
) -> GeneratedBlocksLog:
    """As :func:`corpus_oracle_log`, with the main kind of the user's history before the
    request (its most frequent kind) in place of the true primary kind: no truth and no
    generator, what counting the corpus alone proposes. Kinds are the catalogue's own (the leaf
    of each item's category path). Empty where the history is empty or the corpus names
    nothing for its main kind."""
    main = history_main_kinds(dataset, truth.item_leaf, len(truth.leaf_paths))
    kinds = np.where(main >= 0, named[np.maximum(main, 0)], -1)
    blocks = kind_blocks(dataset, truth.item_leaf, kinds, k, seed)
    return GeneratedBlocksLog(items=blocks, version=CORPUS_VERSION)


def history_main_kinds(dataset: Dataset, item_kind: Ints, n_kinds: int) -> Ints:
    """Per request of :func:`example_requests`, the most frequent kind among the user's
    behaviours strictly before the request (-1 for an empty history)."""
    main = np.full(len(example_requests(dataset)[0]), -1, np.int64)
    for row, _, history in past_histories(dataset):
        if len(history):
            main[row] = np.bincount(item_kind[history], minlength=n_kinds).argmax()
    return main


def past_histories(dataset: Dataset) -> Iterator[tuple[int, int, npt.NDArray[np.int32]]]:
    """Per request of :func:`example_requests`, in order: its row, its time and the user's
    items strictly before it."""
    users, ts = example_requests(dataset)
    events = dataset.behaviours
    starts = np.searchsorted(events.user_idx, np.arange(len(dataset.user_ids) + 1))
    for row, (user, at) in enumerate(zip(users.tolist(), ts.tolist(), strict=True)):
        lo = starts[user]
        count = int(np.searchsorted(events.ts[lo : starts[user + 1]], at))
        yield row, at, events.item_idx[lo : lo + count]


def kind_blocks(dataset: Dataset, item_kind: Ints, kinds: Ints, k: int, seed: int) -> Ints:
    """Per request of :func:`example_requests`, ``k`` items of its kind in ``kinds`` launched
    before the request, drawn uniformly (fewer, padded with -1, where the kind has fewer; none
    for kind -1)."""
    _, ts = example_requests(dataset)
    rng = np.random.default_rng(seed)
    members = KindMembers(item_kind, dataset.catalogue.launch_ts)
    blocks = np.full((len(ts), k), -1, np.int64)
    for row, (kind, at) in enumerate(zip(kinds.tolist(), ts.tolist(), strict=True)):
        live = members.live(np.array([kind]), at)
        if len(live):
            take = rng.choice(live, size=min(k, len(live)), replace=False)
            blocks[row, : len(take)] = take
    return blocks


def complement_log(
    dataset: Dataset, complements: KindComplements, k: int, seed: int
) -> GeneratedBlocksLog:
    """Per request of :func:`example_requests`, ``k`` items (drawn uniformly among those
    launched before the request and not in the history) of the kinds the knowledge records name
    as cross-department complements of the history's main kind: its most frequent kind among
    the user's behaviours strictly before the request. No truth and no generator: what the
    records alone propose. Empty (-1) where the history is empty or its main kind has none."""
    users, _ = example_requests(dataset)
    rng = np.random.default_rng(seed)
    members = KindMembers(complements.item_kind, dataset.catalogue.launch_ts)
    blocks = np.full((len(users), k), -1, np.int64)
    for row, at, history in past_histories(dataset):
        if not len(history):
            continue
        main = np.bincount(complements.item_kind[history], minlength=complements.n_kinds).argmax()
        live = np.setdiff1d(members.live(complements.cross_complements[main], at), history)
        if len(live):
            take = rng.choice(live, size=min(k, len(live)), replace=False)
            blocks[row, : len(take)] = take
    return GeneratedBlocksLog(items=blocks, version=COMPLEMENTS_VERSION)


def block_secondary_share(
    log: GeneratedBlocksLog, dataset: Dataset, truth: GroundTruth, among: Mask | None = None
) -> float:
    """The share of the evaluation requests' block items that are of the user's true secondary
    kind (0 when they hold none); only the requests of ``among`` (per request of
    :func:`example_requests`) when given."""
    users, ts = example_requests(dataset)
    evaluated = ts >= dataset.split_ts if among is None else (ts >= dataset.split_ts) & among
    blocks, owners = log.items[evaluated], users[evaluated]
    filled = blocks >= 0
    if not filled.any():
        return 0.0
    wanted = truth.user_secondary_leaf[owners][:, None]
    return float((truth.item_leaf[np.where(filled, blocks, 0)] == wanted)[filled].mean())


def sparse_requests(dataset: Dataset) -> Mask:
    """Per request of :func:`example_requests`, whether its user had at most
    :data:`~model_export.evaluate.SPARSE_USER_HISTORY` behaviours before it: the requests of
    the sparse-users slice."""
    sparse = np.zeros(len(example_requests(dataset)[0]), bool)
    for row, _, history in past_histories(dataset):
        sparse[row] = len(history) <= SPARSE_USER_HISTORY
    return sparse


def primary_main_share(dataset: Dataset, truth: GroundTruth, main: Ints, among: Mask) -> float:
    """The share of the evaluation requests of ``among`` whose history's main kind before the
    request (``main``: :func:`history_main_kinds` of the kinds) is the user's true primary kind:
    where a pattern read from the main kind starts from the right kind (0 when ``among`` holds
    none)."""
    users, ts = example_requests(dataset)
    chosen = (ts >= dataset.split_ts) & among
    if not chosen.any():
        return 0.0
    return float(np.mean(main[chosen] == truth.user_primary_leaf[users[chosen]]))


def exploration_slice(truth: GroundTruth) -> Callable[[Predictions], dict[str, Mask]]:
    """The exploration slice of a prediction set: impressions of items outside the department
    the user's primary interest is in (what exposure mostly serves them)."""

    def slices(found: Predictions) -> dict[str, Mask]:
        outside = truth.item_department[found.items] != truth.user_department[found.users]
        return {EXPLORATION: outside}

    return slices


def recovered_share(full: float, knowledge: float, oracle: float) -> float | None:
    """The share of the oracle's gain over knowledge only that ``full`` recovers (``None`` when
    the oracle gains nothing: no ceiling to recover)."""
    ceiling = oracle - knowledge
    return None if ceiling <= 0 else (full - knowledge) / ceiling
