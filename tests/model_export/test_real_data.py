"""The real-data benchmark end to end on a tiny MovieLens-format folder (nothing downloaded)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from model_export.dataset import GeneratedBlocksLog, time_split
from model_export.real_data import (
    FULL,
    FULL_CANDIDATES,
    GATE_GBR,
    GATE_GBR_SLOTS,
    GBR_VARIANTS,
    POPULARITY,
    RealDataSpec,
    variant_config,
)
from model_export.real_recorded import add_variants, rerender
from model_export.real_report import END, START, write_real_results
from model_export.sampled_ranking import hit_rate_ndcg, popularity_scores, sampled_candidates
from offline.data.loaders import LoaderConfig, load_dataset
from tests.support.loaders import write_movielens_csv


def test_the_section_is_written_and_the_rest_of_the_document_kept(tmp_path: Path) -> None:
    source = write_movielens_csv(tmp_path / "ml", n_users=40, n_items=50, n=1200)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "RESULTS.md").write_text("# Offline results\n\nsynthetic tables\n")
    (docs / "results.json").write_text(json.dumps({"summary": {"kept": True}}))
    spec = RealDataSpec(source=source, seeds=(0, 1), sampled_items=20)
    spec = replace(spec, variants=tuple(v for v in spec.variants if v not in GBR_VARIANTS))
    spec = replace(spec, ranker=replace(spec.ranker, epochs=2, batch_size=64, max_seq_len=10))
    written = write_real_results(spec, docs)
    markdown = (docs / "RESULTS.md").read_text()
    assert markdown.startswith("# Offline results\n\nsynthetic tables")
    assert markdown.count(START) == 1 and markdown.count(END) == 1
    for label in ("popularity", "ID only", "knowledge only", "**full**", "HR@10", "cold items"):
        assert label in markdown
    document = json.loads((docs / "results.json").read_text())
    assert document["summary"] == {"kept": True} and "real_data" in document
    table = written["summary"]["table"]
    assert set(table) >= {POPULARITY, FULL, "id_only", "knowledge_only"}
    # One configuration for every seed: the best mean validation GAUC, never a test figure.
    runs = written["runs"]
    chosen = {run["full_is"] for run in runs}
    assert len(chosen) == 1 and chosen <= set(FULL_CANDIDATES)
    trained = [n for n in FULL_CANDIDATES if n in runs[0]["validation_gauc"]]
    mean = {n: sum(r["validation_gauc"][n] for r in runs) / len(runs) for n in trained}
    assert max(mean, key=lambda n: mean[n]) in chosen
    for run in runs:
        assert run["rows"][FULL] == run["rows"][run["full_is"]]
    # Re-rendering from results.json alone gives the same section.
    before = (docs / "RESULTS.md").read_text()
    rerender(docs)
    assert (docs / "RESULTS.md").read_text() == before
    # A variant added later is merged into the recorded runs; the recorded rows stay.
    recorded_gate = [run["rows"]["gate"] for run in json.loads(
        (docs / "results.json").read_text())["real_data"]["runs"]]  # fmt: skip
    merged = add_variants(source, (GATE_GBR, GATE_GBR_SLOTS), docs)
    assert [run["rows"]["gate"] for run in merged["runs"]] == recorded_gate
    for run in merged["runs"]:
        assert GATE_GBR in run["rows"] and GATE_GBR in run["validation_gauc"]
        assert run["validation_gauc"][GATE_GBR_SLOTS] >= run["validation_gauc"]["gate"] - 1e-9
        assert set(run["generator"]["recall"]) >= {"gbr", "gbr_world", "cooccurrence"}
        assert run["generator"]["world_corpus"]["sources"]["knowledge walks"] > 0
        # The blend (weight / slots) is validation's best; recall is reported on the test period.
        generator = run["generator"]
        assert generator["targets"] == "test period" and generator["validation"] == "rolled"
        weights, slots = (0, 0.25, 0.5, 0.75), (0, 2, 4)
        assert set(generator["validation_recall"]) == {f"{w:g}/{n}" for w in weights for n in slots}
        best = max(generator["validation_recall"].values())
        pair = f"{generator['log_weight']:g}/{generator['beyond_slots']}"
        assert generator["validation_recall"][pair] == best
        # The blocks against co-occurrence, paired over the same users as the recall figures.
        gap = generator["versus_cooccurrence"]["gbr_world"]
        assert gap["users"] == generator["users"] and gap["low"] <= gap["mean"] <= gap["high"]
        mean = generator["recall"]["gbr_world"] - generator["recall"]["cooccurrence"]
        assert abs(gap["mean"] - mean) <= 2e-4
        # Rolled through the test period: more points than users, paired over those users.
        rolled = generator["rolling"]
        assert rolled["points"] >= rolled["users"] > 0 and rolled["horizon"] == rolled["k"]
        for name in ("gbr_world", "gbr"):
            gap = rolled["versus_cooccurrence"][name]
            assert gap["users"] == rolled["users"]
            mean = rolled["recall"][name] - rolled["recall"]["cooccurrence"]
            assert abs(gap["mean"] - mean) <= 2e-4
    assert "overall/gauc" in merged["summary"]["gbr_gain"]
    slot_gain = merged["summary"]["slot_gain"]["validation/gauc"]["mean"]
    runs = merged["runs"]
    differences = [
        r["validation_gauc"][GATE_GBR_SLOTS] - r["validation_gauc"][GATE_GBR] for r in runs
    ]
    assert slot_gain == pytest.approx(sum(differences) / len(differences))
    markdown = (docs / "RESULTS.md").read_text()
    assert "+ world GBR blocks" in markdown and "Beyond-log recall@16" in markdown
    # Grown on the gated ranker of its seed: never below it on validation (epoch 0 is its start).
    for run in merged["runs"]:
        assert run["best_epoch"][GATE_GBR] >= 0
        assert run["validation_gauc"][GATE_GBR] >= run["validation_gauc"]["gate"] - 1e-9
    assert "The GBR ranker grows on the `gate` ranker of its seed" in markdown
    assert "the same, with a learned vector per slot of the block" in markdown
    assert f"on validation {slot_gain:+.4f} ± " in markdown
    assert "new clicks of the test period" in markdown
    assert "Rolled through the test period" in markdown and "rolled recall@16 paired" in markdown
    assert "chosen per seed by recall@16 rolled through the validation period" in markdown
    assert "− co-occurrence, recall@16 paired over the" in markdown
    assert markdown.count(START) == 1
    # Rerunning replaces the section instead of adding a second one.
    write_real_results(replace(spec, seeds=(0,)), docs)
    assert (docs / "RESULTS.md").read_text().count(START) == 1


def test_only_the_slotted_variant_learns_a_vector_per_slot(tmp_path: Path) -> None:
    spec = RealDataSpec(source=tmp_path)
    blocks = GeneratedBlocksLog(np.full((3, 16), -1, np.int64), "empty")
    slotted = variant_config(spec, GATE_GBR_SLOTS, 2, blocks)
    assert (slotted.generated, slotted.generated_slots, slotted.seed) == (16, 16, 2)
    plain = variant_config(spec, GATE_GBR, 2, blocks)
    assert (plain.generated, plain.generated_slots) == (16, 0)
    assert plain == replace(slotted, generated_slots=0)
    assert variant_config(spec, "gate", 2, None).generated == 0


def test_sampled_lists_are_honest_and_the_metrics_count_ties_half(tmp_path: Path) -> None:
    config = LoaderConfig(split_quantile=0.7, test_quantile=0.85)
    dataset = load_dataset("movielens", write_movielens_csv(tmp_path / "ml"), config)
    _, test = time_split(dataset, 10)
    lists = sampled_candidates(dataset, test, 15, seed=0)
    assert len(lists) > 0 and (lists.labels[:, 0] == 1).all() and lists.labels[:, 1:].sum() == 0
    imp, beh = dataset.impressions, dataset.behaviours
    touched = set(zip(imp.user_idx.tolist(), imp.item_idx.tolist(), strict=True))
    touched |= set(zip(beh.user_idx.tolist(), beh.item_idx.tolist(), strict=True))
    rows = zip(lists.user_idx, lists.candidate_items, lists.candidate_mask, strict=True)
    for user, items, mask in rows:
        assert not any((int(user), int(item)) in touched for item in items[1:][mask[1:]])
    # A constant score ranks the clicked item in the middle of its list: random, not perfect.
    constant = hit_rate_ndcg(np.zeros(lists.candidate_items.shape), lists)
    width = lists.candidate_mask.sum(axis=1)
    expected = float(np.mean((width - 1) * 0.5 < 10))
    assert constant.hr == expected
    perfect = np.where(np.arange(lists.candidate_items.shape[1]) == 0, 1.0, 0.0)[None, :]
    assert hit_rate_ndcg(np.repeat(perfect, len(lists), axis=0), lists).hr == 1.0
    # Popularity counts only behaviours strictly before each request.
    counts = popularity_scores(dataset, lists.candidate_items, lists.ts)
    row, column = 0, 0
    item, ts = lists.candidate_items[row, column], lists.ts[row]
    assert counts[row, column] == int(((beh.item_idx == item) & (beh.ts < ts)).sum())
