"""Replay: every arm's bundle scores the evaluation set and the logged answers, in onnxruntime,
and gets the figures the trained model gets offline."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from model_export.bundle import export_bundle
from model_export.dataset import RankingExamples, time_split
from model_export.evaluate import auc, eval_predictions, evaluate
from model_export.experiment_replay import (
    BIAS_NOTE,
    ReplayArm,
    dcg_under,
    logged_impressions,
    replay,
    replay_lines,
)
from model_export.train import TrainedRanker, train
from offline.data.canonical import Dataset
from offline.experiments import Answer, Prediction
from service.contracts.manifest import EvaluationMetrics, GeneratorInfo, read_manifest
from tests.model_export.test_generated import oracle_log
from tests.support.learnable import FAST_CONFIG, TEST_ENCODER

Learnable = tuple[Dataset, npt.NDArray[np.float32]]


def _answer(request: str, user: str, items: list[str], clicked: tuple[int, ...], ts: int) -> Answer:
    prediction = Prediction(
        request_id=request,
        user_id=user,
        ts=float(ts),
        experiment="exp",
        experiment_version=1,
        arm="a",
        shadow=False,
        bundle_version="v",
        items=tuple(items),
        scores=tuple(1.0 - i / 100 for i in range(len(items))),
    )
    return Answer(prediction, clicked, ())


def _logged(dataset: Dataset, examples: RankingExamples) -> list[Answer]:
    """The evaluation requests as logged answers: their impressions shown in order."""
    answers = []
    for row in range(len(examples)):
        slots = np.flatnonzero(examples.candidate_mask[row])
        items = dataset.catalogue.item_ids[examples.candidate_items[row, slots]].tolist()
        clicked = tuple(int(p) for p in np.flatnonzero(examples.labels[row, slots] > 0))
        user = str(dataset.user_ids[examples.user_idx[row]])
        answers.append(_answer(f"r{row}", user, items, clicked, int(examples.ts[row])))
    return answers


def test_replay_scores_as_the_trained_model(
    learnable: Learnable,
    trained: TrainedRanker,
    bundle_dir: Path,
    model_metrics: dict[str, EvaluationMetrics],
) -> None:
    dataset, _ = learnable
    _, evaluation = time_split(dataset, trained.config.max_seq_len)
    answers = _logged(dataset, evaluation)
    arms = [ReplayArm("a", bundle_dir), ReplayArm("b", bundle_dir)]
    report = replay(arms, dataset, answers)
    recorded = read_manifest(bundle_dir).metrics["model"]
    for name in ("a", "b"):
        found = report.evaluation[name]
        assert found.auc == pytest.approx(model_metrics["model"].auc, abs=1e-4)
        assert found.gauc == pytest.approx(recorded.gauc, abs=1e-4)
    # (b) on answers with a click: the AUC the trained model gets on those requests.
    clicked_rows = evaluation.labels.max(axis=1) > 0
    offline = eval_predictions(trained, dataset)
    in_clicked = np.repeat(clicked_rows, evaluation.candidate_mask.sum(axis=1))
    expected = auc(offline.labels[in_clicked], offline.probabilities[in_clicked])
    assert report.logged["a"].auc == pytest.approx(expected, abs=1e-4)
    assert report.logged["a"] == report.logged["b"]
    assert report.answers == int(clicked_rows.sum()) and report.skipped_answers == 0
    assert report.served_by == {"a": report.answers}
    # Re-ranking by a model that learned the clicks beats the logged (unranked) order.
    assert report.logged["a"].dcg > report.logged_order_dcg
    assert replay_lines(report)[-1] == BIAS_NOTE


def test_an_arm_with_its_generated_log_scores_the_evaluation_set_with_the_blocks(
    tmp_path: Path, learnable: Learnable
) -> None:
    dataset, semantic = learnable
    oracle = oracle_log(dataset)
    ranker = train(dataset, semantic, replace(FAST_CONFIG, generated=oracle.k), oracle)
    generator = GeneratorInfo(version=oracle.version)
    bundle = export_bundle(
        ranker, dataset, semantic, TEST_ENCODER, {}, tmp_path, None, generator=generator
    )
    arms = [ReplayArm("blocks", bundle, oracle), ReplayArm("none", bundle)]
    report = replay(arms, dataset, [])
    with_blocks = evaluate(ranker, dataset, oracle)
    assert report.evaluation["blocks"].auc == pytest.approx(with_blocks.auc, abs=1e-4)
    assert report.evaluation["blocks"].gauc == pytest.approx(with_blocks.gauc, abs=1e-4)
    # Without them the ranker loses the planted signal (its scores nearly tie: AUC near 0.5).
    assert report.evaluation["blocks"].auc > report.evaluation["none"].auc + 0.1
    assert report.generated_blocks == {"blocks": oracle.version}
    assert replay_lines(report)[0] == (
        "(a) evaluation set of the dataset; blocks with each request's generated block from its "
        "past only (generator oracle-test); none without generated behaviours"
    )


def test_dcg_under_an_order() -> None:
    labels = np.array([[0, 1, 1], [1, 0, 0]], np.float32)
    mask = np.array([[True, True, True], [True, True, False]])
    examples = RankingExamples(
        user_idx=np.zeros(2, np.int64),
        ts=np.zeros(2, np.int64),
        sequence_items=np.zeros((2, 1), np.int64),
        sequence_events=np.zeros((2, 1), np.int64),
        sequence_gaps=np.zeros((2, 1), np.int64),
        sequence_mask=np.zeros((2, 1), bool),
        candidate_items=np.zeros((2, 3), np.int64),
        labels=labels,
        candidate_mask=mask,
    )
    scores = np.array([[0.9, 0.5, 0.1], [0.1, 0.9, 0.0]])
    # Row 0: clicked items ranked 2nd and 3rd; row 1: its click ranked 2nd (padding last).
    expected = ((1 / np.log2(3) + 1 / np.log2(4)) + 1 / np.log2(3)) / 2
    assert dcg_under(scores, examples) == pytest.approx(expected)


def test_answers_without_outcomes_or_with_unknown_ids_are_left_out(learnable: Learnable) -> None:
    dataset, _ = learnable
    user, items = str(dataset.user_ids[0]), dataset.catalogue.item_ids[:3].tolist()
    answers = [
        _answer("r1", user, items, (1,), dataset.split_ts),
        _answer("r2", user, items, (), dataset.split_ts),
        _answer("r3", "nobody", items, (0,), dataset.split_ts),
        _answer("r4", user, [*items, "unknown-item"], (0,), dataset.split_ts),
    ]
    impressions, kept = logged_impressions(answers, dataset, as_of=dataset.split_ts + 60)
    assert [a.prediction.request_id for a in kept] == ["r1"]
    assert impressions.clicked.tolist() == [0, 1, 0]
    assert impressions.item_idx.tolist() == [0, 1, 2]
    assert set(impressions.ts.tolist()) == {dataset.split_ts + 60}
