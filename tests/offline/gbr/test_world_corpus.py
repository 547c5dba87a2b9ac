"""The world corpus and the exploring world: what the generator may learn before the logs, and
that none of it is the platform's own users or future."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from model_export.dataset import example_requests
from model_export.evaluate import SPARSE_USER_HISTORY, Predictions
from model_export.world_ablation import (
    EXPLORATION,
    WorldSetup,
    block_secondary_share,
    complement_log,
    corpus_log,
    corpus_named_kinds,
    corpus_oracle_log,
    exploration_slice,
    history_main_kinds,
    oracle_log,
    pattern_oracle_log,
    primary_main_share,
    sparse_requests,
    world_shoppers,
)
from offline.data.canonical import Behaviours, Dataset
from offline.data.synthetic import GroundTruth, SyntheticConfig, generate, generate_with_truth
from offline.data.synthetic.config import DEFAULT_END_TS, Window
from offline.data.synthetic.external import external_shoppers
from offline.data.synthetic.generate import draw_world, stage_seeds
from offline.data.synthetic.population import draw_users
from offline.gbr.beyond import generate_blocks, item_groups
from offline.gbr.checkpoint import GBRModel
from offline.gbr.complements import KindComplements
from offline.gbr.generate import GenerationConfig
from offline.gbr.sequences import behaviour_sequences
from offline.gbr.train import GBRTrainConfig, train_gbr
from offline.gbr.world_corpus import WorldCorpus, knowledge_walks
from offline.knowledge import OfflineKnowledgeBackend
from tests.support.gbr import SMALL_NET


def test_no_exploration_leaves_the_world_as_it_was() -> None:
    config = SyntheticConfig.preset("tiny", seed=4)
    assert config.slot_sources == config.exposure_mix
    explored = replace(config, exploration_share=0.0)
    np.testing.assert_array_equal(
        generate(config).impressions.item_idx, generate(explored).impressions.item_idx
    )


def test_exploration_shows_other_departments() -> None:
    def outside_share(share: float) -> float:
        dataset, truth = generate_with_truth(
            SyntheticConfig.preset("tiny", exploration_share=share)
        )
        imp = dataset.impressions
        outside = truth.item_department[imp.item_idx] != truth.user_department[imp.user_idx]
        return float(outside.mean())

    plain, exploring = outside_share(0.0), outside_share(0.4)
    # The other sources keep 60% of the slots in their old mix; exploration's 40% are all outside.
    assert exploring == pytest.approx(0.6 * plain + 0.4, abs=0.03)
    with pytest.raises(ValueError, match="exploration_share"):
        SyntheticConfig.preset("tiny", exploration_share=1.0)


def test_aimed_exploration_shows_the_complements_of_the_primary_kind() -> None:
    def complement_share(aim: float) -> tuple[float, float]:
        config = SyntheticConfig.preset("tiny", exploration_share=0.4, exploration_aim=aim)
        dataset, truth = generate_with_truth(config)
        world, _, _ = draw_world(config, Window.of(config, DEFAULT_END_TS))
        matrix, _lengths = world.cross_complements
        imp = dataset.impressions
        primary = truth.user_primary_leaf[imp.user_idx]
        outside = truth.item_department[imp.item_idx] != truth.user_department[imp.user_idx]
        complementary = (matrix[primary] == truth.item_leaf[imp.item_idx][:, None]).any(axis=1)
        secondary = truth.item_leaf[imp.item_idx] == truth.user_secondary_leaf[imp.user_idx]
        return float(complementary[outside].mean()), float(secondary[outside].mean())

    uniform, aimed = complement_share(0.0), complement_share(1.0)
    # Aimed, the exploration slots of users whose primary kind has complements in other
    # departments (about two in five in this world) show those kinds, and with them the
    # secondary interest, many times as often as uniform exploration does.
    assert aimed[0] > 10 * uniform[0]
    assert aimed[1] > 3 * uniform[1]
    # Aim without exploration changes nothing; an aim outside [0, 1] is refused.
    _assert_same_impressions(SyntheticConfig.preset("tiny", seed=4), exploration_aim=1.0)
    with pytest.raises(ValueError, match="exploration_aim"):
        SyntheticConfig.preset("tiny", exploration_aim=1.5)


def test_kind_focus_shows_the_primary_kind_and_draws_nothing_without_its_slots() -> None:
    def primary_share(focus: float) -> tuple[float, float]:
        config = SyntheticConfig.preset("tiny", exploration_share=0.2, kind_focus=focus)
        dataset, truth = generate_with_truth(config)
        imp = dataset.impressions
        own = truth.item_department[imp.item_idx] == truth.user_department[imp.user_idx]
        kind = truth.item_leaf[imp.item_idx] == truth.user_primary_leaf[imp.user_idx]
        return float(kind[own].mean()), float(own.mean())

    (department, own_plain), (focused, own_focused) = primary_share(0.0), primary_share(0.8)
    # A department holds twelve kinds: drawn by popularity, about one slot in twelve of the
    # department's shows the primary kind; focused, most of them do. The department keeps most
    # of its share of the page (this tiny world has two or three items per kind, so a page
    # that already shows them all falls back to the oldest items).
    assert department < 0.25
    assert focused > 0.6
    assert own_focused > own_plain - 0.08
    # A world whose pages take nothing from the primary department leaves the focus no slot
    # to act on: it draws no random number, so every page is as without it.
    no_department = SyntheticConfig.preset("tiny", seed=4, exposure_mix=(0.0, 0.5, 0.5))
    _assert_same_impressions(no_department, kind_focus=0.8)
    with pytest.raises(ValueError, match="kind_focus"):
        SyntheticConfig.preset("tiny", kind_focus=1.5)


def _assert_same_impressions(config: SyntheticConfig, **changes: object) -> None:
    """The world of ``config`` with ``changes`` shows every page as the world without them."""
    np.testing.assert_array_equal(
        generate(config).impressions.item_idx,
        generate(replace(config, **changes)).impressions.item_idx,  # type: ignore[arg-type]
    )


def test_external_shoppers_are_not_the_platform_and_not_the_future(
    tiny: tuple[Dataset, GroundTruth],
) -> None:
    dataset, _ = tiny
    config = SyntheticConfig.preset("tiny")
    external = external_shoppers(config, n_shoppers=60, clicks_per_shopper=12)
    # Only items launched before the split; timed before it too.
    assert (dataset.catalogue.launch_ts[external.item_idx] < dataset.split_ts).all()
    assert (external.ts < dataset.split_ts).all()
    # Their own user indices, and no platform user's sequence among them.
    assert external.user_idx.max() == 59
    platform = behaviour_sequences(dataset.behaviours, len(dataset.user_ids))
    theirs = behaviour_sequences(external, 60)
    platform_rows = {tuple(platform.of(u).tolist()) for u in range(platform.n_users)}
    assert not platform_rows & {tuple(theirs.of(u).tolist()) for u in range(60)}
    # The same corpus whatever the platform's users did: it reads only the catalogue's world.
    busier = replace(config, mean_requests_per_user=12.0)
    np.testing.assert_array_equal(external.item_idx, external_shoppers(busier, 60, 12).item_idx)
    # Their exposure shows whole interests: secondary kinds far above chance.
    world, _, items = draw_world(config, Window.of(config, DEFAULT_END_TS))
    shoppers = draw_users(
        replace(config, n_users=60), world, items, np.random.default_rng(stage_seeds(config)[6])
    )
    secondary = items.leaf[external.item_idx] == shoppers.secondary[external.user_idx]
    chance = np.mean([np.mean(items.leaf == leaf) for leaf in shoppers.secondary])
    assert secondary.mean() > 5 * chance


def test_knowledge_walks_follow_the_records(tiny: tuple[Dataset, GroundTruth]) -> None:
    dataset, _ = tiny
    records = OfflineKnowledgeBackend().describe(dataset.catalogue)
    available = dataset.catalogue.launch_ts < dataset.split_ts
    walks = knowledge_walks(records, n_walks=200, length=8, seed=0, available=available)
    assert walks.n_users == 200 and walks.lengths().max() <= 8
    assert available[walks.items].all()
    kinds = [r.category_path[-1].lower() for r in records]
    complements = {k: set() for k in kinds}
    for kind, record in zip(kinds, records, strict=True):
        complements[kind] |= {c.lower() for c in record.complements}
    related = 0
    steps = 0
    for walk in range(walks.n_users):
        items = walks.of(walk).tolist()
        assert len(set(items)) == len(items)  # distinct items
        for a, b in itertools.pairwise(items):
            steps += 1
            same = kinds[a] == kinds[b] or kinds[b] in complements[kinds[a]]
            shared = records[a].audience == records[b].audience or set(records[a].keywords) & set(
                records[b].keywords
            )
            related += bool(same or shared)
    assert steps > 0 and related == steps
    again = knowledge_walks(records, n_walks=200, length=8, seed=0, available=available)
    np.testing.assert_array_equal(walks.items, again.items)


def test_generator_pretrained_on_the_corpus_records_it(
    tiny: tuple[Dataset, GroundTruth], semantic: np.ndarray
) -> None:
    dataset, _ = tiny
    records = OfflineKnowledgeBackend().describe(dataset.catalogue)
    corpus = WorldCorpus.of(
        {
            "external shoppers": behaviour_sequences(
                external_shoppers(SyntheticConfig.preset("tiny"), 40, 8), 40
            ),
            "knowledge walks": knowledge_walks(records, 40, 8, seed=0),
        }
    )
    assert corpus.sources == {"external shoppers": 40, "knowledge walks": 40}
    config = GBRTrainConfig(epochs=1, pretrain_epochs=1, max_slots=8, **SMALL_NET)
    model = train_gbr(dataset, semantic, config, until_ts=dataset.split_ts, corpus=corpus)
    plain = train_gbr(dataset, semantic, config, until_ts=dataset.split_ts)
    assert model.train_info["world_corpus"] == corpus.version
    assert "world_corpus" not in plain.train_info and model.version != plain.version
    assert model.until_ts == dataset.split_ts


def test_oracle_blocks_hold_the_secondary_kind_and_no_future(
    tiny: tuple[Dataset, GroundTruth],
) -> None:
    dataset, truth = tiny
    log = oracle_log(dataset, truth, k=4, seed=0)
    users, ts = example_requests(dataset)
    assert log.items.shape == (len(users), 4)
    filled = log.items >= 0
    assert filled.any(axis=1).mean() > 0.5
    rows, cols = np.nonzero(filled)
    items = log.items[rows, cols]
    assert (truth.item_leaf[items] == truth.user_secondary_leaf[users[rows]]).all()
    assert (dataset.catalogue.launch_ts[items] <= ts[rows]).all()


def _baskets(truth: GroundTruth, baskets: list[list[int]]) -> Behaviours:
    """Shoppers (one per basket) clicking one item of each kind of their basket."""
    first_item = {int(kind): int(np.flatnonzero(truth.item_leaf == kind)[0]) for b in baskets
                  for kind in b}  # fmt: skip
    users = [shopper for shopper, basket in enumerate(baskets) for _ in basket]
    items = [first_item[kind] for basket in baskets for kind in basket]
    return Behaviours(
        user_idx=np.array(users, np.int32),
        item_idx=np.array(items, np.int32),
        ts=np.zeros(len(items), np.int64),
        event=np.ones(len(items), np.int8),
    )


def test_the_corpus_names_the_other_department_kind_its_shoppers_click_with_a_kind(
    tiny: tuple[Dataset, GroundTruth],
) -> None:
    _, truth = tiny
    department = truth.kind_department
    kinds = np.flatnonzero(department >= 0).tolist()
    a = kinds[0]
    same = next(k for k in kinds if k != a and department[k] == department[a])
    other = [k for k in kinds if department[k] != department[a]]
    b, c, lonely = other[0], other[1], other[2]
    # a goes with b three times and with c once; c's shoppers mostly click c alone, so they
    # click a less often than shoppers at large; a's own department never counts, however
    # often; `lonely` is clicked with nothing of another department.
    baskets = [[a, b], [a, b], [a, b], [a, c], [c], [c], [a, same], [a, same], [a, same]]
    baskets += [[lonely], [lonely, next(k for k in kinds if department[k] == department[lonely]
                                         and k != lonely)]]  # fmt: skip
    named = corpus_named_kinds(_baskets(truth, baskets), truth)
    assert named.shape == (len(truth.leaf_paths),)
    assert named[a] == b and named[b] == a
    assert named[c] == -1 and named[same] == -1 and named[lonely] == -1
    unclicked = np.setdiff1d(np.arange(len(truth.leaf_paths)), [k for x in baskets for k in x])
    assert (named[unclicked] == -1).all()


def test_the_corpus_names_a_kinds_heavy_partner_not_the_kinds_that_click_it_heavily(
    tiny: tuple[Dataset, GroundTruth],
) -> None:
    _, truth = tiny
    department = truth.kind_department
    kinds = np.flatnonzero(department >= 0).tolist()
    a = kinds[0]
    d, b = [k for k in kinds if department[k] != department[a]][:2]
    e = next(k for k in kinds if k != a and department[k] == department[a])
    # a's shoppers click b heavily; d's shoppers click a heavily; e's shoppers, neither.
    # "Clicked both" is as strong for (a, b) as for (a, d), and d comes first: only the click
    # counts name b.
    baskets = [[a, b, b, b]] * 3 + [[d, a, a, a]] * 3 + [[e]] * 6
    named = corpus_named_kinds(_baskets(truth, baskets), truth)
    assert named[a] == b and named[d] == a


def test_a_world_corpus_names_secondary_kinds_where_the_world_has_co_interests() -> None:
    config = SyntheticConfig.preset("tiny", co_interest=True, secondary_weight=1.5)
    _, truth = generate_with_truth(config)
    named = corpus_named_kinds(
        world_shoppers(config, WorldSetup(external_shoppers=400, clicks_per_shopper=8)), truth
    )
    found = np.mean(named[truth.user_primary_leaf] == truth.user_secondary_leaf)
    chance = 1 / len(truth.leaf_paths)
    assert found > 5 * chance


def _shifted_names(truth: GroundTruth) -> np.ndarray:
    """A corpus's naming that is easy to check: each kind names the kind 7 places on."""
    n_kinds = len(truth.leaf_paths)
    return (np.arange(n_kinds) + 7) % n_kinds


def test_corpus_oracle_blocks_hold_the_named_kind_of_the_primary_kind_and_no_future(
    tiny: tuple[Dataset, GroundTruth],
) -> None:
    dataset, truth = tiny
    named = _shifted_names(truth)
    named[::3] = -1  # a kind the corpus names nothing for gets an empty block
    log = corpus_oracle_log(dataset, truth, named, k=4, seed=0)
    users, ts = example_requests(dataset)
    assert log.items.shape == (len(users), 4)
    wanted = named[truth.user_primary_leaf[users]]
    filled = log.items >= 0
    assert not filled[wanted < 0].any()
    assert filled[wanted >= 0].any(axis=1).mean() > 0.5
    rows, cols = np.nonzero(filled)
    items = log.items[rows, cols]
    assert (truth.item_leaf[items] == wanted[rows]).all()
    assert (dataset.catalogue.launch_ts[items] <= ts[rows]).all()
    # With the true secondary kind named for every primary kind's users, it is the oracle.
    secondary = replace(truth, user_primary_leaf=np.arange(len(truth.user_secondary_leaf)))
    as_oracle = corpus_oracle_log(dataset, secondary, truth.user_secondary_leaf, k=4, seed=0)
    np.testing.assert_array_equal(as_oracle.items, oracle_log(dataset, truth, k=4, seed=0).items)


def test_pattern_oracle_blocks_hold_the_worlds_co_interest_kind_of_the_primary_kind() -> None:
    config = SyntheticConfig.preset("tiny", co_interest=True)
    dataset, truth = generate_with_truth(config)
    pattern = truth.co_interest_leaf
    department = truth.kind_department
    assert (pattern >= 0).all()
    known = (department >= 0) & (department[pattern] >= 0)  # kinds with items in the catalogue
    assert known.sum() > 10 and (department[pattern] != department)[known].all()
    # Most shoppers' secondary interest follows the pattern (the rest is their own).
    follows = np.mean(pattern[truth.user_primary_leaf] == truth.user_secondary_leaf)
    assert config.secondary_complement_prob - 0.15 < follows < 1.0
    log = pattern_oracle_log(dataset, truth, k=4, seed=0)
    users, ts = example_requests(dataset)
    rows, cols = np.nonzero(log.items >= 0)
    items = log.items[rows, cols]
    assert len(items) > 0
    assert (truth.item_leaf[items] == pattern[truth.user_primary_leaf[users[rows]]]).all()
    assert (dataset.catalogue.launch_ts[items] <= ts[rows]).all()
    assert block_secondary_share(log, dataset, truth) == pytest.approx(follows, abs=0.15)


def test_a_world_without_co_interest_patterns_has_no_pattern_to_know(
    tiny: tuple[Dataset, GroundTruth],
) -> None:
    dataset, truth = tiny
    assert (truth.co_interest_leaf == -1).all()
    assert not (pattern_oracle_log(dataset, truth, k=4, seed=0).items >= 0).any()


def test_corpus_blocks_hold_the_named_kind_of_the_main_kind_of_the_past(
    tiny: tuple[Dataset, GroundTruth],
) -> None:
    dataset, truth = tiny
    named = _shifted_names(truth)
    n_kinds = len(named)
    log = corpus_log(dataset, truth, named, k=4, seed=0)
    users, ts = example_requests(dataset)
    events = dataset.behaviours
    checked = empty = 0
    for row in range(0, len(users), 7):
        mine = events.user_idx == users[row]
        past = events.item_idx[mine & (events.ts < ts[row])].astype(np.int64)
        items = log.items[row][log.items[row] >= 0]
        if not len(past):
            assert not len(items), "a block without a history"
            empty += 1
            continue
        main = np.bincount(truth.item_leaf[past], minlength=n_kinds).argmax()
        assert (truth.item_leaf[items] == named[main]).all()
        assert (dataset.catalogue.launch_ts[items] <= ts[row]).all()
        checked += len(items) > 0
    assert checked > 10 and empty > 0


def test_complement_blocks_follow_the_main_kind_of_the_past_and_see_no_future(
    tiny: tuple[Dataset, GroundTruth],
) -> None:
    dataset, truth = tiny
    complements = KindComplements.from_records(
        OfflineKnowledgeBackend().describe(dataset.catalogue)
    )
    log = complement_log(dataset, complements, k=4, seed=0)
    users, ts = example_requests(dataset)
    assert log.items.shape == (len(users), 4)
    events = dataset.behaviours
    checked = 0
    for row in np.flatnonzero((log.items >= 0).any(axis=1)).tolist():
        mine = events.user_idx == users[row]
        past = events.item_idx[mine & (events.ts < ts[row])].astype(np.int64)
        assert len(past), "a block without a history"
        main = np.bincount(complements.item_kind[past], minlength=complements.n_kinds).argmax()
        items = log.items[row][log.items[row] >= 0]
        assert np.isin(complements.item_kind[items], complements.cross_complements[main]).all()
        assert (dataset.catalogue.launch_ts[items] <= ts[row]).all()
        assert not np.isin(items, past).any(), "a block repeats the history"
        checked += 1
    assert checked > len(users) // 5
    np.testing.assert_array_equal(complement_log(dataset, complements, 4, 0).items, log.items)
    chance = np.mean([np.mean(truth.item_leaf == leaf) for leaf in truth.user_secondary_leaf])
    assert block_secondary_share(log, dataset, truth) > 2 * chance


def test_block_secondary_share_counts_filled_slots_of_evaluation_requests(
    tiny: tuple[Dataset, GroundTruth],
) -> None:
    dataset, truth = tiny
    oracle = oracle_log(dataset, truth, k=4, seed=0)
    assert block_secondary_share(oracle, dataset, truth) == 1.0
    empty = replace(oracle, items=np.full_like(oracle.items, -1))
    assert block_secondary_share(empty, dataset, truth) == 0.0
    _, ts = example_requests(dataset)
    shifted = oracle.items.copy()
    shifted[ts < dataset.split_ts] = 0  # training requests do not count
    assert block_secondary_share(replace(oracle, items=shifted), dataset, truth) == 1.0


def test_block_secondary_share_among_requests_counts_only_those(
    tiny: tuple[Dataset, GroundTruth],
) -> None:
    dataset, truth = tiny
    oracle = oracle_log(dataset, truth, k=4, seed=0)
    users, ts = example_requests(dataset)
    among = np.arange(len(ts)) % 2 == 0
    wrong = oracle.items.copy()
    wrong[~among] = -1
    wrong[~among, 0] = _items_off_secondary(truth, users[~among])
    log = replace(oracle, items=wrong)
    assert block_secondary_share(log, dataset, truth, among) == 1.0
    assert block_secondary_share(log, dataset, truth, ~among) == 0.0
    assert 0.0 < block_secondary_share(log, dataset, truth) < 1.0


def _items_off_secondary(truth: GroundTruth, users: np.ndarray) -> np.ndarray:
    """For each user, an item of a kind other than their secondary kind."""
    kinds, secondary = truth.item_leaf, truth.user_secondary_leaf[users]
    return np.array([int(np.flatnonzero(kinds != kind)[0]) for kind in secondary.tolist()])


def test_sparse_requests_are_those_with_few_behaviours_before_them(
    tiny: tuple[Dataset, GroundTruth],
) -> None:
    dataset, _ = tiny
    sparse = sparse_requests(dataset)
    users, ts = example_requests(dataset)
    events = dataset.behaviours
    before = np.array(
        [
            int(((events.user_idx == user) & (events.ts < at)).sum())
            for user, at in zip(users.tolist(), ts.tolist(), strict=True)
        ]
    )
    np.testing.assert_array_equal(sparse, before <= SPARSE_USER_HISTORY)
    assert sparse.any() and not sparse.all()


def test_primary_main_share_reads_the_main_kind_of_the_past(
    tiny: tuple[Dataset, GroundTruth],
) -> None:
    dataset, truth = tiny
    users, ts = example_requests(dataset)
    events = dataset.behaviours
    evaluated = ts >= dataset.split_ts
    hits = []
    for row in np.flatnonzero(evaluated).tolist():
        past = events.item_idx[(events.user_idx == users[row]) & (events.ts < ts[row])]
        main = (
            np.bincount(truth.item_leaf[past], minlength=len(truth.leaf_paths)).argmax()
            if len(past)
            else -1
        )
        hits.append(main == truth.user_primary_leaf[users[row]])
    everyone = np.ones(len(users), bool)
    main = history_main_kinds(dataset, truth.item_leaf, len(truth.leaf_paths))
    assert primary_main_share(dataset, truth, main, everyone) == pytest.approx(np.mean(hits))
    assert 0.0 < np.mean(hits) < 1.0
    assert primary_main_share(dataset, truth, main, ~everyone) == 0.0
    sparse = sparse_requests(dataset)
    few, many = (primary_main_share(dataset, truth, main, part) for part in (sparse, ~sparse))
    assert few < many


def test_exploration_slice_is_outside_the_primary_department(
    tiny: tuple[Dataset, GroundTruth],
) -> None:
    dataset, truth = tiny
    users = dataset.impressions.user_idx[:50].astype(np.int64)
    items = dataset.impressions.item_idx[:50].astype(np.int64)
    found = Predictions(users, items, np.zeros(50), np.zeros(50), np.zeros(50, np.int64))
    mask = exploration_slice(truth)(found)[EXPLORATION]
    expected = truth.item_department[items] != truth.user_department[users]
    np.testing.assert_array_equal(mask, expected)


def test_beyond_slots_leave_the_history_department(
    tiny: tuple[Dataset, GroundTruth], item_model: GBRModel
) -> None:
    dataset, _ = tiny
    groups = item_groups(dataset.catalogue)
    departments = [str(p).split(">")[0] for p in dataset.catalogue.category_paths]
    assert len(set(groups.tolist())) == len(set(departments))
    history = behaviour_sequences(dataset.behaviours, len(dataset.user_ids), dataset.split_ts)
    users = np.flatnonzero(history.lengths() >= 3)[:40]
    lengths = history.lengths()[users]
    config = GenerationConfig(k=8, steps=2, beyond_slots=3)
    plain = generate_blocks(item_model, history, users, lengths, replace(config, beyond_slots=0),
                            groups)  # fmt: skip
    beyond = generate_blocks(item_model, history, users, lengths, config, groups)
    np.testing.assert_array_equal(plain.item_idx[:, :5], beyond.item_idx[:, :5])
    for row, user in enumerate(users.tolist()):
        past = history.of(user)
        main = np.bincount(groups[past]).argmax()
        tail = beyond.item_idx[row, 5:]
        assert (groups[tail[tail >= 0]] != main).all()
        assert not set(tail.tolist()) & set(past.tolist())
        assert len(set(beyond.item_idx[row].tolist()) - {-1}) == (beyond.item_idx[row] >= 0).sum()
    # Without departments the blocks are the generator's own.
    same = generate_blocks(item_model, history, users, lengths, config, None)
    np.testing.assert_array_equal(same.item_idx, plain.item_idx)
    with pytest.raises(ValueError, match="beyond_slots"):
        GenerationConfig(k=4, beyond_slots=5)
