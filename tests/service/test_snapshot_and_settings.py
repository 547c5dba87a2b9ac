"""The embedded store's snapshot format and the settings' bundle resolution."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from service.bundles.loaded import LoadedBundle
from service.contracts.bundle_root import record_user_snapshot
from service.contracts.manifest import BundleIntegrityError, file_digest
from service.errors import BundleNotFoundError
from service.settings import Settings
from service.stores.base import FetchQuery
from service.stores.config import DEMO_USERS_PATH, EmbeddedStoreConfig
from service.stores.embedded import EmbeddedStore, write_user_snapshot


def test_missing_snapshot_means_no_users(
    tmp_path: Path, bundle: LoadedBundle, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        store = EmbeddedStore.open(EmbeddedStoreConfig(users_path=tmp_path / "none.npz"), bundle)
    assert "not found" in caplog.text
    result = asyncio.run(store.fetch(FetchQuery("u1", ["i1"])))
    assert result.sequence is None and result.candidate_known.all()


@pytest.mark.parametrize(
    ("offsets", "message"),
    [([0, 2], "offsets must be"), ([0, 2, 1, 3], "offsets must be"), ([0, 2, 1], "decrease")],
)
def test_snapshot_writer_rejects_bad_offsets(
    tmp_path: Path, offsets: list[int], message: str
) -> None:
    users = ["a", "b"] if len(offsets) == 3 else ["a", "b", "c"][: len(offsets) - 1]
    with pytest.raises(ValueError, match=message):
        write_user_snapshot(
            tmp_path / "u.npz", users, offsets, ["i1"], np.ones(1, np.uint8), np.ones(1, np.int64)
        )


def test_snapshot_writer_rejects_duplicate_users(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unique"):
        write_user_snapshot(tmp_path / "u.npz", ["a", "a"], [0, 1, 1], ["i1"], [1], [5])


def test_bundle_version_from_current(bundle_root: Path) -> None:
    assert Settings(bundle_root=bundle_root).resolve_bundle_dir() == bundle_root / "test-1"


def test_unknown_bundle_version(bundle_root: Path) -> None:
    with pytest.raises(BundleNotFoundError, match="nope"):
        Settings(bundle_root=bundle_root, bundle_version="nope").resolve_bundle_dir()


def test_the_user_snapshot_is_the_one_set_else_the_bundles_else_the_demos(
    tmp_path: Path,
) -> None:
    bundle_dir = tmp_path / "bundles" / "v1"
    bundle_dir.mkdir(parents=True)
    assert Settings().users_snapshot(bundle_dir) == DEMO_USERS_PATH
    assert Settings().users_snapshot(None) == DEMO_USERS_PATH
    record_user_snapshot(bundle_dir, tmp_path / "build" / "users.npz")
    assert (tmp_path / "bundles" / "v1.users").read_text() == "../build/users.npz\n"
    recorded = Settings().store_config(bundle_dir)
    assert isinstance(recorded, EmbeddedStoreConfig)
    assert recorded.users_path.resolve() == (tmp_path / "build" / "users.npz").resolve()
    assert Settings().users_snapshot(tmp_path / "bundles" / "v2") == DEMO_USERS_PATH
    chosen = Settings(embedded_users_path=tmp_path / "mine.npz")
    assert chosen.users_snapshot(bundle_dir) == tmp_path / "mine.npz"


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REASEQ_STORE", "redis")
    monkeypatch.setenv("REASEQ_MAX_CANDIDATES", "17")
    monkeypatch.setenv("REASEQ_ADMIN_API_KEY", "s3cret-value")
    settings = Settings()
    assert settings.store == "redis" and settings.max_candidates == 17
    assert settings.store_config().type == "redis"
    assert "s3cret-value" not in repr(settings)


def test_graph_signature_drift_is_refused(bundle_root: Path, tmp_path: Path) -> None:
    bundle_dir = shutil.copytree(bundle_root / "test-1", tmp_path / "test-1")
    shutil.copy(bundle_dir / "candidate_encoder.onnx", bundle_dir / "scorer.onnx")
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    manifest["files"]["scorer.onnx"] = file_digest(bundle_dir / "scorer.onnx").model_dump()
    (bundle_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleIntegrityError, match="graph scorer"):
        LoadedBundle.load(bundle_dir)
