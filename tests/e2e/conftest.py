"""End-to-end fixtures: a demo bundle built by the real ``reaseq`` command (the server process
is started by the ``start_service`` fixture of ``tests/conftest.py``)."""

from __future__ import annotations

import pytest

from tests.support.reaseq import DemoBuild, run_reaseq


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> DemoBuild:
    """``reaseq demo`` on the small preset (enough items for 500 candidates), one epoch."""
    root = tmp_path_factory.mktemp("demo")
    build = DemoBuild(bundles=root / "bundles", var=root / "var")
    run_reaseq(
        "demo", "--size", "small", "--epochs", "1",
        "--bundles", str(build.bundles), "--out", str(build.var),
    )  # fmt: skip
    return build
