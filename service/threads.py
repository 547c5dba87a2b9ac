"""Cores and thread limits for serving processes; :func:`limit_blas_threads` must run before
NumPy is first imported.

The attention matmuls are small, and a multi-threaded BLAS next to onnxruntime's threads and the
event loop oversubscribes the cores, which slows every request down. Scale with replicas or
workers instead. An explicit setting in the environment
wins. What the service does run in parallel (scoring threads, a large request's attention split
over threads) is sized from :func:`usable_cores`. The threads that run the model work at a lower
priority than the event loop (:func:`lower_thread_priority`). Where asked, each of several workers
keeps its event loop and scoring threads on a core of its own (:func:`pin_worker`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

#: The core this process's main thread holds, once :func:`pin_worker` has pinned it.
_PIN: CorePin | None = None


def limit_blas_threads(threads: int = 1) -> None:
    for variable in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(variable, str(threads))


_CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_core_set() -> frozenset[int]:
    """The cores this process may run on (its CPU affinity; before :func:`pin_worker` pinned
    it); where the platform does not tell, as many as it has."""
    if _PIN is not None:
        return _PIN.unpinned
    if hasattr(os, "sched_getaffinity"):
        return frozenset(os.sched_getaffinity(0))
    return frozenset(range(os.cpu_count() or 1))


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (before a worker's pin), lowered by
    a cgroup CPU quota."""
    cores = len(usable_core_set()) or 1
    try:
        quota, period = _CGROUP_CPU_MAX.read_text().split()[:2]
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, int(int(quota) / int(period))))


#: The most worker processes started by default: each holds its own bundle sessions, item table
#: and user cache, so past a few a machine is better split into replicas.
MAX_DEFAULT_WORKERS = 8


def default_workers(cores: int, single: bool = False) -> int:
    """Worker processes when none is set: one per usable core, up to
    :data:`MAX_DEFAULT_WORKERS`; one when ``single`` (the device path, whose one process owns
    the device's streams, or admin endpoints that change only the worker that answers)."""
    return 1 if single else max(1, min(cores, MAX_DEFAULT_WORKERS))


def default_attention_threads(cores: int) -> int:
    """Threads that share one large request's attention in each worker: every usable core, in
    every worker. A core that the other workers leave idle then works on the request in hand
    (with one thread per worker, two large requests that land on one worker wait in turn while
    another core idles: W2's p99 on 2 cores and 2 workers rose from about 45 to 55-70 ms); under
    full load each thread's part waits for a core, and the split costs only its hand-off."""
    return max(1, cores)


#: How far below the event loop the threads that run the model work by default: the event loop's
#: short steps (reading a request, fetching, answering) gate every request, while a model thread
#: runs for milliseconds at a time and loses little by yielding a core to them.
MODEL_THREAD_NICENESS = 5


def lower_thread_priority(niceness: int) -> None:
    """Run the calling thread ``niceness`` below the process's main thread (the event loop's),
    capped at the lowest priority, 19.

    The level is counted from the main thread, not from the caller's own: a thread starts at its
    creator's nice value, so a pool started from an already lowered thread would otherwise go
    lower again. Linux only, where the nice value is a thread's own; elsewhere ``setpriority``
    would lower the whole process, so nothing is done. Never raises: it runs as a thread pool's
    initializer, and a pool whose initializer fails refuses all work."""
    if niceness <= 0 or not sys.platform.startswith("linux"):
        return
    try:
        # On Linux the main thread's ID is the process ID.
        main = os.getpriority(os.PRIO_PROCESS, os.getpid())
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, main + niceness))
    except OSError as error:
        log.warning("could not lower a model thread's priority by %d: %s", niceness, error)


#: The file in the workers' shared folder whose lock holds a core for one worker.
CORE_LOCK_FILE = "core-{core}.lock"


@dataclass
class CorePin:
    """One core held by this worker: an exclusive lock (``flock``) on the core's file in the
    workers' shared folder, held while the worker lives (the kernel drops it when it exits, so
    a restarted worker takes the core its predecessor had); and the cores the worker could run
    on before it pinned itself."""

    core: int
    _lock: IO[bytes]
    unpinned: frozenset[int] = frozenset()

    def release(self) -> None:
        self._lock.close()


def claim_core(folder: Path, cores: Sequence[int]) -> CorePin | None:
    """The first of ``cores`` no other process in ``folder`` holds, now held by this one;
    ``None`` when all are held."""
    for core in cores:
        lock = (folder / CORE_LOCK_FILE.format(core=core)).open("ab")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        return CorePin(core, lock, frozenset(cores))
    return None


def pin_worker(folder: Path, workers: int) -> CorePin | None:
    """Pin the calling thread (a worker's main thread, the event loop's, before it starts the
    scoring threads, which inherit the pin) to a core no other worker of the service holds, for
    the rest of the process's life (pinned once: a second call returns the same pin).

    One core per worker keeps a request's steps (read on the event loop, scored on its scoring
    thread) in one core's caches, and keeps the workers from moving between cores (see
    ``REASEQ_PIN_WORKERS`` in docs/OPERATIONS.md for when it helps). Threads that share a large
    request's attention are meant to use a core the other worker leaves idle, so they undo the
    pin (:func:`free_thread`). Nothing is pinned with one worker, with more workers than usable
    cores, off Linux, or when the cores are all held; never raises (a worker that cannot pin
    serves unpinned)."""
    global _PIN
    if _PIN is not None:
        return _PIN
    if not hasattr(os, "sched_setaffinity"):
        return None
    cores = sorted(usable_core_set())
    if workers < 2 or workers > len(cores):
        return None
    try:
        pin = claim_core(folder, cores)
    except OSError as error:
        log.warning("could not claim a core for this worker: %s", error)
        return None
    if pin is None:
        log.warning("no core left to pin this worker to: all %d are held", len(cores))
        return None
    try:
        os.sched_setaffinity(0, {pin.core})
    except OSError as error:
        pin.release()
        log.warning("could not pin this worker to core %d: %s", pin.core, error)
        return None
    _PIN = pin
    log.info("worker pinned to core %d", pin.core)
    return pin


def free_thread() -> None:
    """Let the calling thread run on every core its worker could use before :func:`pin_worker`
    (nothing to do where the worker is not pinned). Never raises: it runs as a thread pool's
    initializer."""
    if _PIN is None:
        return
    try:
        os.sched_setaffinity(0, _PIN.unpinned)
    except OSError as error:
        log.warning("could not unpin a thread: %s", error)


def start_helper_thread(niceness: int) -> None:
    """The initializer of the threads that share a large request's attention: free to run on
    every core the worker could use (:func:`free_thread`), ``niceness`` below the event loop
    (:func:`lower_thread_priority`)."""
    free_thread()
    lower_thread_priority(niceness)
