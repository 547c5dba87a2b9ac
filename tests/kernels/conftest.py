"""Kernel tests run the Triton kernels in the interpreter unless a CUDA GPU is present.

The variable must be set before Triton decorates the kernels, hence at collection time here.
"""

from __future__ import annotations

import os
import shutil

if shutil.which("nvidia-smi") is None:
    os.environ.setdefault("TRITON_INTERPRET", "1")
