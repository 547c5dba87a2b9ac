"""An exported bundle is complete, valid against the manifest contract, and immutable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest

from model_export.bundle import export_bundle, fused_item_table
from model_export.train import TrainedRanker
from offline.data.canonical import Dataset
from service.contracts import graphs as g
from service.contracts.features import EVENT_TYPES, TIME_GAP_BUCKETS
from service.contracts.manifest import (
    MANIFEST_FILE,
    BundleIntegrityError,
    read_manifest,
    verify_files,
)
from tests.support.learnable import TEST_ENCODER


def test_manifest_validates_and_checksums_match(bundle_dir: Path, trained: TrainedRanker) -> None:
    manifest = read_manifest(bundle_dir)
    verify_files(bundle_dir, manifest)
    assert manifest.version == bundle_dir.name
    assert manifest.version.startswith("rs-")
    listed = set(manifest.files) | {MANIFEST_FILE}
    assert listed == {p.name for p in bundle_dir.iterdir()}
    assert set(manifest.graphs) == set(g.GRAPH_NAMES)
    assert manifest.dimensions.item_dim == trained.shape.item_dim
    assert manifest.dimensions.heads == trained.shape.heads
    assert manifest.max_lengths.sequence == trained.config.max_seq_len
    assert manifest.features.event_types == list(EVENT_TYPES)
    assert manifest.features.time_gap_buckets == TIME_GAP_BUCKETS
    assert manifest.text_encoder == TEST_ENCODER
    assert {"model", "random"} <= set(manifest.metrics)


def test_graphs_carry_the_contract_names(bundle_dir: Path) -> None:
    manifest = read_manifest(bundle_dir)
    expected = {
        g.USER_ENCODER: (
            [g.SEQUENCE_VECTORS, g.SEQUENCE_EVENTS, g.SEQUENCE_GAPS, g.GENERATED_VECTORS],
            [g.REAL_KEYS, g.REAL_VALUES, g.GENERATED_KEYS, g.GENERATED_VALUES],
        ),
        g.CANDIDATE_ENCODER: ([g.CANDIDATE_VECTORS], [g.REAL_QUERIES, g.GENERATED_QUERIES]),
        g.SCORER: ([g.CANDIDATE_VECTORS, g.REAL_POOLED, g.GENERATED_POOLED], [g.SCORES]),
        g.FULL: (
            [
                g.CANDIDATE_VECTORS,
                g.SEQUENCE_VECTORS,
                g.SEQUENCE_EVENTS,
                g.SEQUENCE_GAPS,
                g.GENERATED_VECTORS,
                g.SEQUENCE_MASK,
                g.GENERATED_MASK,
            ],
            [g.SCORES],
        ),
    }
    for name, (inputs, outputs) in expected.items():
        session = ort.InferenceSession(str(bundle_dir / manifest.graphs[name]))
        assert sorted(i.name for i in session.get_inputs()) == sorted(inputs)
        assert [o.name for o in session.get_outputs()] == outputs
        for tensor in session.get_inputs():
            assert all(isinstance(axis, str) for axis in tensor.shape[:2]), tensor.shape


def test_item_table_matches_the_model(
    bundle_dir: Path, trained: TrainedRanker, learnable: tuple[Dataset, npt.NDArray[np.float32]]
) -> None:
    dataset, _ = learnable
    manifest = read_manifest(bundle_dir)
    ids = np.load(bundle_dir / manifest.item_table.ids_file, allow_pickle=False)
    vectors = np.load(bundle_dir / manifest.item_table.vectors_file, allow_pickle=False)
    assert np.array_equal(ids, dataset.catalogue.item_ids)
    assert vectors.dtype == np.float16
    assert vectors.shape == (manifest.item_table.rows, manifest.dimensions.item_dim)
    np.testing.assert_allclose(vectors, fused_item_table(trained), atol=2e-3, rtol=2e-3)
    assert len(manifest.item_table.default_vector) == manifest.dimensions.item_dim


def test_tampering_is_detected(bundle_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in bundle_dir.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    manifest = read_manifest(copy)
    with (copy / manifest.item_table.vectors_file).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(BundleIntegrityError):
        verify_files(copy, manifest)


def test_existing_version_is_never_overwritten(
    bundle_dir: Path, trained: TrainedRanker, learnable: tuple[Dataset, npt.NDArray[np.float32]]
) -> None:
    dataset, semantic = learnable
    with pytest.raises(FileExistsError):
        export_bundle(trained, dataset, semantic, None, {}, bundle_dir.parent, bundle_dir.name)
    assert not [p for p in bundle_dir.parent.iterdir() if p.name.startswith(".")]


def test_module_weights_are_listed_and_rebuild_the_serving_modules(
    bundle_dir: Path, trained: TrainedRanker
) -> None:
    import torch

    from service.device.modules import load_modules

    manifest = read_manifest(bundle_dir)
    assert manifest.module_weights is not None
    assert manifest.module_weights.file in manifest.files
    assert manifest.module_weights.hidden_dim == trained.shape.hidden_dim
    assert manifest.dimensions.user_layers == trained.shape.user_layers
    modules = load_modules(bundle_dir, manifest, torch.device("cpu"))  # strict: every parameter
    served = modules.candidate_encoder.real_queries.weight
    torch.testing.assert_close(served, trained.model.candidate_encoder.real_queries.weight)
