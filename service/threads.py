"""Thread limits for serving processes; must run before NumPy is first imported.

The attention matmuls are small, and a multi-threaded BLAS next to onnxruntime's threads and the
event loop oversubscribes the cores, which slows every request down. Scale with replicas or
workers instead. An explicit setting in the environment
wins.
"""

from __future__ import annotations

import os

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def limit_blas_threads(threads: int = 1) -> None:
    for variable in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(variable, str(threads))
