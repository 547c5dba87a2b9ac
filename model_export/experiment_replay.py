"""Replay: the arms of an experiment compared offline, each by its bundle's exported graph.

Every arm's bundle scores, in onnxruntime through :class:`model_export.parity.BundleGraphs`:

(a) the evaluation set of the dataset the bundles were trained on (the requests at or after its
    split time, :func:`model_export.dataset.time_split`): AUC, GAUC and logloss per arm;
(b) the logged answers that have outcomes: each arm re-ranks the items the answer showed, with the
    user's behaviours before the answer (or before ``as_of``); per arm the AUC of its scores for
    clicked against shown-but-not-clicked items, and the mean DCG of the clicks under its own
    order. What was shown was chosen by the arm that served, so (b) favours that arm.

In (a), an arm given a generated-behaviours log (the one its ranker was trained and evaluated
with) scores every request with that request's block, in the bundle's item vectors as the
nearline job writes them; (b), and (a) for an arm without a log, score without generated
behaviours (one masked slot), as the service scores a user whose generated block is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from model_export.dataset import GeneratedBlocksLog, RankingExamples, build_examples, time_split
from model_export.evaluate import flatten
from model_export.metrics import Floats, Ints, auc, metrics
from model_export.parity import BundleGraphs, Feeds
from offline.data.canonical import Dataset, Impressions
from offline.experiments.join import Answer
from service.contracts import graphs as g
from service.contracts.manifest import EvaluationMetrics

BATCH = 256
BIAS_NOTE = (
    "(b) is biased towards the arm that served: the logged items are the ones it chose to show, "
    "so only (a) compares the arms on equal terms."
)


@dataclass(frozen=True)
class ReplayArm:
    name: str
    bundle: Path
    #: The blocks (a) scores the evaluation set with; None: without generated behaviours.
    generated: GeneratedBlocksLog | None = None


@dataclass(frozen=True)
class LoggedScores:
    """(b) for one arm: AUC of clicked against not-clicked shown items, mean DCG of the clicks
    under the arm's own order of each answer's items."""

    auc: float
    dcg: float


@dataclass(frozen=True)
class ReplayReport:
    evaluation: dict[str, EvaluationMetrics]
    logged: dict[str, LoggedScores]
    #: (b)'s answers, how many each arm served, and those left out (unknown user or item).
    answers: int
    served_by: dict[str, int]
    skipped_answers: int
    logged_order_dcg: float
    #: Arms whose (a) scored with generated blocks, and the generator version of those blocks.
    generated_blocks: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "evaluation_set": {name: m.model_dump() for name, m in self.evaluation.items()},
            "evaluation_generated_blocks": self.generated_blocks,
            "logged_answers": {
                "answers": self.answers,
                "served_by": self.served_by,
                "skipped_answers": self.skipped_answers,
                "dcg_of_the_logged_order": self.logged_order_dcg,
                "arms": {name: vars(s) for name, s in self.logged.items()},
                "note": BIAS_NOTE,
            },
        }


class BundleScorer:
    """One bundle's full graph over padded examples of a dataset (item rows of its catalogue)."""

    def __init__(self, bundle: Path, dataset: Dataset) -> None:
        self.graphs = BundleGraphs(bundle)
        table = self.graphs.bundle.items
        self.vectors, _ = table.vectors_at(table.rows(dataset.catalogue.item_ids.tolist()))
        self.max_seq_len = self.graphs.bundle.manifest.max_lengths.sequence

    def _feeds(self, examples: RankingExamples, rows: slice) -> Feeds:
        sequence_mask = examples.sequence_mask[rows]
        length = max(1, int(sequence_mask.sum(axis=1).max(initial=0)))
        width = max(1, int(examples.candidate_mask[rows].sum(axis=1).max(initial=0)))
        generated_vectors, generated_mask = self._generated(examples.generated_items[rows])
        return {
            g.CANDIDATE_VECTORS: self.vectors[examples.candidate_items[rows, :width]],
            g.SEQUENCE_VECTORS: self.vectors[examples.sequence_items[rows, :length]],
            g.SEQUENCE_EVENTS: examples.sequence_events[rows, :length].astype(np.int64),
            g.SEQUENCE_GAPS: examples.sequence_gaps[rows, :length].astype(np.int64),
            g.SEQUENCE_MASK: sequence_mask[:, :length].astype(np.float32),
            g.GENERATED_VECTORS: generated_vectors,
            g.GENERATED_MASK: generated_mask,
        }

    def _generated(self, items: Ints) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """The blocks' item vectors and mask (item rows, -1 at empty slots); one masked slot
        when no row has a block, as the service pads a missing one."""
        if not (items >= 0).any():  # attention needs a key; a masked one pools to zeros
            items = np.full((len(items), 1), -1, np.int64)
        valid = items >= 0
        vectors = self.vectors[np.where(valid, items, 0)] * valid[..., None]
        return vectors.astype(np.float32), valid.astype(np.float32)

    def scores(self, examples: RankingExamples) -> Floats:
        """Click probabilities ``[R, C]`` (padding slots: 0)."""
        out = np.zeros(examples.candidate_items.shape)
        for first in range(0, len(examples), BATCH):
            rows = slice(first, first + BATCH)
            found = self.graphs.full(self._feeds(examples, rows))
            out[rows, : found.shape[1]] = found
        return out * examples.candidate_mask


def evaluation_metrics(
    scorer: BundleScorer, dataset: Dataset, generated: GeneratedBlocksLog | None = None
) -> EvaluationMetrics:
    """(a): the bundle on the evaluation side of the dataset's time split, each request with
    its block of ``generated`` when given."""
    _, evaluation = time_split(dataset, scorer.max_seq_len, generated)
    found = flatten(evaluation, scorer.scores(evaluation))
    return metrics(found.labels, found.probabilities, found.users)


def logged_impressions(
    answers: Sequence[Answer], dataset: Dataset, as_of: int | None = None
) -> tuple[Impressions, list[Answer]]:
    """The shown items of the answers with an outcome, as impressions of ``dataset`` (one
    request per answer, positions in order), and the answers kept (users and items known)."""
    users = {user: row for row, user in enumerate(dataset.user_ids.tolist())}
    items = {item: row for row, item in enumerate(dataset.catalogue.item_ids.tolist())}
    kept = [
        a
        for a in answers
        if (a.clicked or a.ordered)
        and a.user_id in users
        and all(item in items for item in a.prediction.items)
    ]
    sizes = np.array([len(a.prediction.items) for a in kept], dtype=np.int64)
    clicked = np.zeros(int(sizes.sum()), np.int8)
    starts = np.cumsum(sizes) - sizes
    for start, answer in zip(starts, kept, strict=True):
        clicked[start + np.asarray(answer.clicked, np.int64)] = 1
    ts = np.array([as_of or int(a.prediction.ts) for a in kept], dtype=np.int64)
    impressions = Impressions(
        request_ids=np.repeat(np.arange(len(kept), dtype=np.int64), sizes),
        user_idx=np.repeat([users[a.user_id] for a in kept], sizes).astype(np.int32),
        item_idx=np.array(
            [items[item] for a in kept for item in a.prediction.items], dtype=np.int32
        ),
        ts=np.repeat(ts, sizes),
        clicked=clicked,
    )
    return impressions, kept


def dcg_under(scores: Floats, examples: RankingExamples) -> float:
    """Mean DCG of the clicks when each row's items are ordered by ``scores`` (ties keep the
    logged order), gain ``1 / log2(position + 2)``."""
    masked = np.where(examples.candidate_mask, scores, -np.inf)
    order = np.argsort(-masked, axis=1, kind="stable")
    rank = np.argsort(order, axis=1, kind="stable")
    gains = np.where(examples.labels > 0, 1.0 / np.log2(rank + 2.0), 0.0)
    return float(gains.sum(axis=1).mean()) if len(examples) else float("nan")


def replay(
    arms: Sequence[ReplayArm],
    dataset: Dataset,
    answers: Sequence[Answer],
    as_of: int | None = None,
) -> ReplayReport:
    """(a) and (b) for every arm."""
    impressions, kept = logged_impressions(answers, dataset, as_of)
    logged_dataset = replace(dataset, impressions=impressions)
    evaluation: dict[str, EvaluationMetrics] = {}
    logged: dict[str, LoggedScores] = {}
    shown_dcg = float("nan")
    for arm in arms:
        scorer = BundleScorer(arm.bundle, dataset)
        evaluation[arm.name] = evaluation_metrics(scorer, dataset, arm.generated)
        if not kept:
            logged[arm.name] = LoggedScores(auc=float("nan"), dcg=float("nan"))
            continue
        examples = build_examples(logged_dataset, scorer.max_seq_len)
        scores = scorer.scores(examples)
        mask = examples.candidate_mask
        logged[arm.name] = LoggedScores(
            auc=auc(examples.labels[mask], scores[mask]), dcg=dcg_under(scores, examples)
        )
        shown = np.broadcast_to(-np.arange(mask.shape[1], dtype=np.float64), mask.shape)
        shown_dcg = dcg_under(shown, examples)
    served_by: dict[str, int] = {}
    for answer in kept:
        served_by[str(answer.arm)] = served_by.get(str(answer.arm), 0) + 1
    return ReplayReport(
        evaluation=evaluation,
        logged=logged,
        answers=len(kept),
        served_by=served_by,
        skipped_answers=sum(1 for a in answers if a.clicked or a.ordered) - len(kept),
        logged_order_dcg=shown_dcg,
        generated_blocks={a.name: a.generated.version for a in arms if a.generated is not None},
    )


def _blocks_used(report: ReplayReport) -> str:
    """Which arms (a) scored with generated blocks (and of which generator), which without."""
    without = [name for name in report.evaluation if name not in report.generated_blocks]
    parts = [
        f"{name} with each request's generated block from its past only (generator {version})"
        for name, version in report.generated_blocks.items()
    ]
    if without:
        parts.append(f"{', '.join(without)} without generated behaviours")
    return "; ".join(parts)


def replay_lines(report: ReplayReport) -> list[str]:
    """The two tables as Markdown, and the note on (b)'s bias."""
    lines = [
        f"(a) evaluation set of the dataset; {_blocks_used(report)}",
        "",
        "| arm | AUC | GAUC | logloss |",
        "| --- | --- | --- | --- |",
    ]
    for name, m in report.evaluation.items():
        lines.append(f"| {name} | {m.auc:.4f} | {m.gauc:.4f} | {m.logloss:.4f} |")
    served = ", ".join(f"{arm} {count}" for arm, count in report.served_by.items())
    lines += [
        "",
        f"(b) {report.answers} logged answers with outcomes (served by: {served or 'none'}; "
        f"{report.skipped_answers} left out: user or item unknown to the dataset); DCG of the "
        f"clicks in the order shown: {report.logged_order_dcg:.4f}; every arm scored without "
        "generated behaviours",
        "",
        "| arm | AUC clicked vs shown | DCG of the clicks, own order |",
        "| --- | --- | --- |",
    ]
    for name, s in report.logged.items():
        lines.append(f"| {name} | {s.auc:.4f} | {s.dcg:.4f} |")
    return [*lines, "", BIAS_NOTE]
