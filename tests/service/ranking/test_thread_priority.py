"""The threads that run the model work below the event loop's priority (Linux nice values are per
thread); the event loop's own thread keeps its priority."""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import pytest

from service.bundles.loaded import LoadedBundle
from service.ranking.scoring import GraphRunner
from service.settings import Settings
from service.threads import MODEL_THREAD_NICENESS, lower_thread_priority
from tests.service.ranking.test_batching import _request
from tests.support.serving import Serving

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="nice values are per thread on Linux only"
)


def _nice(thread: threading.Thread | None = None) -> int:
    native = thread.native_id if thread is not None else threading.get_native_id()
    assert native is not None
    return os.getpriority(os.PRIO_PROCESS, native)


def _named(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix) and t.is_alive()]


def _nice_in_a_thread(niceness: int) -> int:
    found: list[int] = []

    def run() -> None:
        lower_thread_priority(niceness)
        found.append(_nice())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return found[0]


def test_only_the_calling_thread_is_lowered() -> None:
    base = _nice()
    assert _nice_in_a_thread(3) == min(19, base + 3)
    assert _nice_in_a_thread(0) == base
    assert _nice_in_a_thread(40) == 19  # capped at the lowest priority
    assert _nice() == base


def test_the_default_lowers_the_model_threads_by_five(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().model_thread_niceness == MODEL_THREAD_NICENESS == 5
    monkeypatch.setenv("REASEQ_MODEL_THREAD_NICENESS", "0")
    assert Settings().model_thread_niceness == 0
    for wrong in ("-1", "20"):
        monkeypatch.setenv("REASEQ_MODEL_THREAD_NICENESS", wrong)
        with pytest.raises(ValueError, match="model_thread_niceness"):
            Settings()


def test_a_split_batch_runs_on_lowered_attention_threads(bundle: LoadedBundle) -> None:
    rng = np.random.default_rng(3)
    dim = bundle.items.dim
    base = _nice()
    before = set(_named("attention"))
    runner = GraphRunner(bundle, attention_threads=2, thread_niceness=4)
    # Scored on a lowered thread, as the batcher's are: the attention thread starts from it
    # (and at its nice value) on first use, and still ends 4 below the main thread, not 8.
    scoring = ThreadPoolExecutor(1, initializer=partial(lower_thread_priority, 4))
    try:
        # Large enough to be cut in two shares: the second goes to an attention thread.
        scoring.submit(runner.score_batch, [_request(rng, dim, 2400, 300, 4)]).result()
        helpers = [t for t in _named("attention") if t not in before]
        assert helpers
        assert {_nice(t) for t in helpers} == {min(19, base + 4)}
    finally:
        scoring.shutdown()
        runner.close()


@pytest.mark.anyio
async def test_the_service_scores_on_lowered_threads(serving: Serving) -> None:
    base = _nice()
    before = set(_named("scoring"))
    async with serving(model_thread_niceness=6) as client:
        answer = await client.post("/v1/rank", json={"user_id": "u1", "candidates": ["i1", "i3"]})
        assert answer.status_code == 200, answer.text
        scoring = [t for t in _named("scoring") if t not in before]
        assert scoring
        assert {_nice(t) for t in scoring} == {min(19, base + 6)}
        assert _nice() == base  # the event loop's thread keeps its priority
