"""Load-test fixtures: a tiny bundle with demo users, and the end-to-end server starter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from service.bundles.loaded import LoadedBundle
from tests.e2e.conftest import start_service  # noqa: F401
from tests.service.bundle_fixture import build_bundle
from tests.service.user_fixture import demo_users, write_embedded


@dataclass(frozen=True)
class SmallBundle:
    bundles: Path
    users: Path

    def service_env(self) -> dict[str, str]:
        return {
            "REASEQ_BUNDLE_ROOT": str(self.bundles),
            "REASEQ_EMBEDDED_USERS_PATH": str(self.users),
            "REASEQ_STORE": "embedded",
            "REASEQ_ACCESS_LOG": "false",
        }


@pytest.fixture(scope="session")
def small_bundle(tmp_path_factory: pytest.TempPathFactory) -> SmallBundle:
    """16 items, three users: seconds to build, real ONNX graphs to serve."""
    root = tmp_path_factory.mktemp("loadtest")
    bundle_dir = build_bundle(root / "bundles")
    users = write_embedded(root / "users.npz", demo_users(LoadedBundle.load(bundle_dir)))
    return SmallBundle(root / "bundles", users)
