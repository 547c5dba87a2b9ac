"""Fixtures of the experiment tests: a bundle root with two versions, and the app over it with
its runtime in reach."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.settings import Settings
from tests.support.bundles import build_bundle
from tests.support.experiments import VERSIONS, ServedApp, ServingApp


@pytest.fixture(scope="session")
def bundle_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``test-1`` (CURRENT, served without an experiment) and ``test-2``: the same shapes."""
    root = tmp_path_factory.mktemp("experiment-bundles")
    for version in reversed(VERSIONS):
        build_bundle(root, version=version)
    return root


@pytest.fixture
def prediction_dir(tmp_path: Path) -> Path:
    return tmp_path / "predictions"


@pytest.fixture
def serving_app(make_settings: Callable[..., Settings], prediction_dir: Path) -> ServingApp:
    """``async with serving_app(**settings) as served``: the app, started; the prediction log
    (on while an experiment runs) writes files under ``prediction_dir``."""

    @asynccontextmanager
    async def serve(**overrides: Any) -> AsyncIterator[ServedApp]:
        settings = {"prediction_log_dir": prediction_dir} | overrides
        app = create_app(make_settings(**settings))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://rank") as client:
                yield ServedApp(app, client)

    return serve
