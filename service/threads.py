"""Cores and thread limits for serving processes; :func:`limit_blas_threads` must run before
NumPy is first imported.

The attention matmuls are small, and a multi-threaded BLAS next to onnxruntime's threads and the
event loop oversubscribes the cores, which slows every request down. Scale with replicas or
workers instead. An explicit setting in the environment
wins. What the service does run in parallel (scoring threads, a large request's attention split
over threads) is sized from :func:`usable_cores`. The threads that run the model work at a lower
priority than the event loop (:func:`lower_thread_priority`).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

log = logging.getLogger(__name__)

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def limit_blas_threads(threads: int = 1) -> None:
    for variable in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(variable, str(threads))


_CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, lowered by a cgroup CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
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
