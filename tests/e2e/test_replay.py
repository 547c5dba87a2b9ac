"""Replayed evaluation traffic through the real service scores as the offline evaluation does.

Each evaluation request is sent with ``as_of`` = its own time against the users' *whole*
published histories, so the service must cut every history to what the request could have seen
(strictly before it, newest ``max_seq_len``) and measure time gaps from the request's time, as
training did. Without ``as_of`` the same requests see their future and wall-clock gaps, and their
scores drift away from the offline ones: the comparison is sensitive to both.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import numpy.typing as npt

from model_export.dataset import RankingExamples, time_split
from model_export.evaluate import auc, eval_predictions
from model_export.pipeline import MODEL, export_run, train_run
from model_export.train import TrainConfig
from offline.data.canonical import Dataset
from offline.data.synthetic import SyntheticConfig, generate
from offline.publish.sequences import latest_sequences
from offline.publish.stores import publish_embedded
from service.contracts.bundle_root import activate
from tests.support.reaseq import RunningService

AUC_TOLERANCE = 0.002
#: onnxruntime against PyTorch on the same inputs (the bundle's parity check allows 1e-4)
SCORE_TOLERANCE = 1e-4


def _replay(
    client: httpx.Client, dataset: Dataset, examples: RankingExamples, as_of: bool
) -> npt.NDArray[np.float64]:
    """The service's score of every candidate slot ``[R, C]`` (padding slots: 0)."""
    scores = np.zeros(examples.candidate_items.shape)
    for row in range(len(examples.user_idx)):
        slots = np.flatnonzero(examples.candidate_mask[row])
        items = dataset.catalogue.item_ids[examples.candidate_items[row, slots]].tolist()
        body: dict[str, object] = {
            "user_id": str(dataset.user_ids[examples.user_idx[row]]),
            "candidates": list(dict.fromkeys(items)),  # an impression may repeat an item
        }
        if as_of:
            body["as_of"] = int(examples.ts[row])
        response = client.post("/v1/rank", json=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["degraded"] == [], answer["degraded"]
        by_item = {item["item_id"]: item["score"] for item in answer["items"]}
        scores[row, slots] = [by_item[item] for item in items]
    return scores


def test_replayed_evaluation_requests_score_as_offline(
    tmp_path: Path, start_service: Callable[[dict[str, str]], RunningService]
) -> None:
    dataset = generate(SyntheticConfig.preset("tiny"))
    config = TrainConfig(epochs=4, threads=1, progress=False)
    run = train_run(dataset, config, variants=(MODEL,))
    bundle = export_run(run, dataset, tmp_path / "bundles")
    activate(bundle)
    # Every behaviour of every user, not the newest max_seq_len: as_of must do the cutting.
    longest = int(np.bincount(dataset.behaviours.user_idx).max())
    assert longest > run.ranker.config.max_seq_len
    snapshot = publish_embedded(latest_sequences(dataset, longest), tmp_path / "users.npz")
    _, evaluation = time_split(dataset, run.ranker.config.max_seq_len)
    offline = eval_predictions(run.ranker, dataset)
    assert offline.labels.tolist() == evaluation.labels[evaluation.candidate_mask].tolist()

    service = start_service(
        {"REASEQ_BUNDLE_ROOT": str(bundle.parent), "REASEQ_EMBEDDED_USERS_PATH": str(snapshot)}
    )
    with service.client() as client:
        replayed = _replay(client, dataset, evaluation, as_of=True)[evaluation.candidate_mask]
        live = _replay(client, dataset, evaluation, as_of=False)[evaluation.candidate_mask]

    offline_auc = auc(offline.labels, offline.probabilities)
    assert abs(offline_auc - run.metrics[MODEL].auc) < 1e-9
    assert abs(auc(offline.labels, replayed) - offline_auc) <= AUC_TOLERANCE
    np.testing.assert_allclose(replayed, offline.probabilities, rtol=0, atol=SCORE_TOLERANCE)
    # The test can fail: scored as of now, the requests see their future and other gaps.
    assert np.abs(live - offline.probabilities).max() > 100 * SCORE_TOLERANCE
