"""The machine's measured matrix-multiply peak: float32 GEMM through NumPy's BLAS on every core."""

from __future__ import annotations

import json
import os
import subprocess
import sys

_PROBE = """
import json, time, numpy as np
n = 2048
a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
b = a.T.copy()
a @ b
best = 0.0
for _ in range(7):
    started = time.perf_counter()
    a @ b
    best = max(best, 2 * n**3 / (time.perf_counter() - started))
print(json.dumps(best))
"""


def matmul_peak_flops(threads: int | None = None) -> float:
    """Best of several 2048^3 float32 GEMMs, in FLOP/s, in a fresh process with ``threads``
    BLAS threads (default: one per core)."""
    threads = threads or os.cpu_count() or 1
    env = os.environ | {
        "OPENBLAS_NUM_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True
    )
    return float(json.loads(done.stdout))
