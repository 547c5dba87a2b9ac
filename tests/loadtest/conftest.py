"""Load-test fixtures: a tiny bundle with demo users (the server is started by the
``start_service`` fixture of ``tests/conftest.py``)."""

from __future__ import annotations

import pytest

from service.bundles.loaded import LoadedBundle
from tests.support.bundles import SmallBundle, build_bundle
from tests.support.users import demo_users, write_embedded


@pytest.fixture(scope="session")
def small_bundle(tmp_path_factory: pytest.TempPathFactory) -> SmallBundle:
    """16 items, three users: seconds to build, real ONNX graphs to serve."""
    root = tmp_path_factory.mktemp("loadtest")
    bundle_dir = build_bundle(root / "bundles")
    users = write_embedded(root / "users.npz", demo_users(LoadedBundle.load(bundle_dir)))
    return SmallBundle(root / "bundles", users)
