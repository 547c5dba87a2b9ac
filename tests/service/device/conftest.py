"""The device path's tests run on PyTorch's CPU tensors, with the Triton kernel in its
interpreter, unless a CUDA GPU is present; the ``gpu`` ones run the same checks on CUDA.

The interpreter must be chosen before Triton decorates the kernels, hence at collection time.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from service.bundles.loaded import LoadedBundle

if shutil.which("nvidia-smi") is None:
    os.environ.setdefault("TRITON_INTERPRET", "1")

MODEL_VERSION = "model-1"


@pytest.fixture(scope="session")
def model_bundle_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle of the real ranker (random weights, a causal self-attention layer, head dim 16
    as the Triton kernel needs), with its module weights."""
    pytest.importorskip("torch")
    from bench.model_bundle import RandomRanker, write_random_bundle

    root = tmp_path_factory.mktemp("model-bundles")
    write_random_bundle(root, MODEL_VERSION, RandomRanker(), exporter="torchscript")
    return root


@pytest.fixture(scope="session")
def model_bundle(model_bundle_root: Path) -> LoadedBundle:
    return LoadedBundle.load(model_bundle_root / MODEL_VERSION)
