"""Each of several workers keeps its event loop and scoring threads on a core of its own,
claimed through the workers' shared folder; the threads that share a large request's attention
run on every core."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import service.threads as threads
from service.app import worker_core_pin
from service.bundles.loaded import LoadedBundle
from service.ranking.scoring import GraphRunner
from service.settings import Settings
from service.threads import claim_core, free_thread, pin_worker, usable_core_set, usable_cores
from tests.service.ranking.test_batching import _request
from tests.support.workers import started_workers, two_workers

CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or len(CORES) < 2,
    reason="thread affinity on Linux, with at least two usable cores",
)


@pytest.fixture(autouse=True)
def _unpinned(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with no pin recorded, and leaves none behind."""
    monkeypatch.setattr(threads, "_PIN", None)
    yield


def _in_a_thread(run: Callable[[], object]) -> object:
    found: list[object] = []
    thread = threading.Thread(target=lambda: found.append(run()))
    thread.start()
    thread.join()
    return found[0]


def _affinity(native_id: int | None = None) -> set[int]:
    return set(os.sched_getaffinity(native_id or 0))


def test_each_claim_takes_a_core_no_other_holds(tmp_path: Path) -> None:
    first, second = claim_core(tmp_path, [0, 1]), claim_core(tmp_path, [0, 1])
    assert first is not None and second is not None
    assert (first.core, second.core) == (0, 1)
    assert claim_core(tmp_path, [0, 1]) is None  # all held
    first.release()  # as when its worker exits: the next worker takes the core
    again = claim_core(tmp_path, [0, 1])
    assert again is not None and again.core == 0
    second.release()
    again.release()


def test_a_pinned_thread_passes_its_core_on_and_a_freed_thread_gets_every_core(
    tmp_path: Path,
) -> None:
    every = set(CORES)

    def pinned_worker() -> tuple[int | None, set[int], set[int], set[int], int]:
        pin = pin_worker(tmp_path, workers=2)
        assert pin is not None
        inherited = _in_a_thread(_affinity)
        freed = _in_a_thread(lambda: (free_thread(), _affinity())[1])
        # What the worker sizes its thread pools from is what it could use before the pin.
        core_count = usable_cores()
        pin.release()
        return pin.core, _affinity(), inherited, freed, core_count  # type: ignore[return-value]

    core, own, inherited, freed, core_count = _in_a_thread(pinned_worker)  # type: ignore[misc]
    assert core == CORES[0]
    assert own == inherited == {CORES[0]}
    assert freed == every
    assert usable_core_set() == frozenset(every)
    assert core_count == usable_cores()
    assert _affinity() == every  # the test's own thread was never pinned


def test_a_worker_pins_once_and_a_failed_pin_leaves_its_core_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def twice() -> tuple[object, object]:
        return pin_worker(tmp_path, workers=2), pin_worker(tmp_path, workers=2)

    first, second = _in_a_thread(twice)  # type: ignore[misc]
    assert first is not None and first is second  # one claim per process, not one per call
    monkeypatch.setattr(threads, "_PIN", None)

    def refuse(pid: int, cores: object) -> None:
        raise PermissionError("not allowed here")

    monkeypatch.setattr(os, "sched_setaffinity", refuse)
    other = tmp_path / "other"
    other.mkdir()
    assert _in_a_thread(lambda: pin_worker(other, workers=2)) is None
    assert threads._PIN is None
    again = claim_core(other, CORES[:1])
    assert again is not None  # the failed pin gave its core back
    again.release()


def test_no_pin_for_one_worker_or_more_workers_than_cores(tmp_path: Path) -> None:
    assert _in_a_thread(lambda: pin_worker(tmp_path, workers=1)) is None
    assert _in_a_thread(lambda: pin_worker(tmp_path, workers=len(CORES) + 1)) is None
    assert not list(tmp_path.iterdir())  # and no core claimed
    # The service pins only where it is asked to and runs several workers sharing a folder.
    assert Settings().pin_workers is False
    off = Settings(workers=2, worker_state_dir=tmp_path)
    assert _in_a_thread(lambda: worker_core_pin(off)) is None
    no_folder = Settings(workers=2, pin_workers=True)
    assert _in_a_thread(lambda: worker_core_pin(no_folder)) is None
    asked = Settings(workers=2, worker_state_dir=tmp_path, pin_workers=True)

    def pinned_core() -> int | None:
        pin = worker_core_pin(asked)
        return None if pin is None else pin.core

    assert _in_a_thread(pinned_core) == CORES[0]


def test_a_pinned_scoring_thread_shares_attention_with_threads_on_every_core(
    bundle: LoadedBundle, tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    runner = GraphRunner(bundle, attention_threads=2)
    # The scoring thread of a pinned worker: it starts the attention thread on first use.
    scoring = ThreadPoolExecutor(
        1, thread_name_prefix="pinned-scoring", initializer=lambda: pin_worker(tmp_path, workers=2)
    )
    before = {t for t in threading.enumerate() if t.name.startswith("attention")}
    try:
        # Large enough to be cut in two shares: the second goes to an attention thread.
        scoring.submit(runner.score_batch, [_request(rng, bundle.items.dim, 2400, 300, 4)]).result()
        helpers = [
            t for t in threading.enumerate() if t.name.startswith("attention") and t not in before
        ]
        assert helpers
        assert all(_affinity(t.native_id) == set(CORES) for t in helpers)
        (scoring_thread,) = [
            t for t in threading.enumerate() if t.name.startswith("pinned-scoring")
        ]
        assert _affinity(scoring_thread.native_id) == {CORES[0]}
    finally:
        scoring.shutdown()
        runner.close()


def _main_thread_cores(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no affinity for {pid}")


def test_two_workers_each_take_a_core_of_their_own(
    bundle_root: Path, users_snapshot: Path, tmp_path: Path
) -> None:
    with two_workers(bundle_root, users_snapshot, tmp_path, REASEQ_PIN_WORKERS="true") as (
        _,
        metrics_dir,
    ):
        pids = started_workers(metrics_dir)
        assert len(pids) == 2
        cores = sorted(_main_thread_cores(pid) for pid in pids)
        assert cores == [str(core) for core in CORES[:2]]
