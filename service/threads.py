"""Cores and thread limits for serving processes; :func:`limit_blas_threads` must run before
NumPy is first imported.

The attention matmuls are small, and a multi-threaded BLAS next to onnxruntime's threads and the
event loop oversubscribes the cores, which slows every request down. Scale with replicas or
workers instead. An explicit setting in the environment
wins. What the service does run in parallel (scoring threads, a large request's attention split
over threads) is sized from :func:`usable_cores`.
"""

from __future__ import annotations

import os
from pathlib import Path

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


def default_attention_threads(cores: int) -> int:
    """Threads that share one large request's attention in each worker: every usable core, in
    every worker. A core that the other workers leave idle then works on the request in hand
    (with one thread per worker, two large requests that land on one worker wait in turn while
    another core idles: W2's p99 on 2 cores and 2 workers rose from about 45 to 55-70 ms); under
    full load each thread's part waits for a core, and the split costs only its hand-off."""
    return max(1, cores)
