"""Loading a bundle: a graph that breaks its signature is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from service.bundles.loaded import LoadedBundle
from service.contracts.manifest import BundleIntegrityError, file_digest


def test_graph_signature_drift_is_refused(bundle_root: Path, tmp_path: Path) -> None:
    bundle_dir = shutil.copytree(bundle_root / "test-1", tmp_path / "test-1")
    shutil.copy(bundle_dir / "candidate_encoder.onnx", bundle_dir / "scorer.onnx")
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    manifest["files"]["scorer.onnx"] = file_digest(bundle_dir / "scorer.onnx").model_dump()
    (bundle_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleIntegrityError, match="graph scorer"):
        LoadedBundle.load(bundle_dir)
