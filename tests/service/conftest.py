"""Fixtures of the service tests: a tiny bundle, demo users, stores and a served app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from service.app import create_app
from service.bundles.loaded import LoadedBundle
from service.settings import Settings
from service.stores.base import RankingStore
from service.stores.config import EmbeddedStoreConfig, RedisStoreConfig
from service.stores.embedded import EmbeddedStore
from service.stores.redis import RedisStore
from tests.support.bundles import build_bundle
from tests.support.serving import ADMIN_KEY, STORES, Serving
from tests.support.users import DemoUsers, demo_users, write_embedded, write_redis


@pytest.fixture(scope="session")
def bundle_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bundles")
    build_bundle(root)
    return root


@pytest.fixture(scope="session")
def bundle(bundle_root: Path) -> LoadedBundle:
    return LoadedBundle.load(bundle_root / "test-1")


@pytest.fixture(scope="session")
def users(bundle: LoadedBundle) -> DemoUsers:
    return demo_users(bundle)


@pytest.fixture(scope="session")
def users_snapshot(tmp_path_factory: pytest.TempPathFactory, users: DemoUsers) -> Path:
    return write_embedded(tmp_path_factory.mktemp("users") / "users.npz", users)


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_config(
    store_kind: str,
    users_snapshot: Path,
    request: pytest.FixtureRequest,
    bundle: LoadedBundle,
    users: DemoUsers,
) -> EmbeddedStoreConfig | RedisStoreConfig:
    if store_kind == "embedded":
        return EmbeddedStoreConfig(users_path=users_snapshot)
    if store_kind == "embedded_journal":
        journal = request.getfixturevalue("tmp_path") / "events.jsonl"
        return EmbeddedStoreConfig(users_path=users_snapshot, journal_path=journal)
    cluster = store_kind == "redis_cluster"
    url = request.getfixturevalue("redis_cluster_url" if cluster else "redis_url")
    write_redis(url, bundle, users, cluster=cluster)
    return RedisStoreConfig(url=url, timeout_ms=1000, cluster=cluster)


@pytest.fixture
async def store(
    store_config: EmbeddedStoreConfig | RedisStoreConfig, bundle: LoadedBundle
) -> AsyncIterator[RankingStore]:
    opened: RankingStore
    if isinstance(store_config, RedisStoreConfig):
        opened = RedisStore.open(store_config, bundle)
    else:
        opened = EmbeddedStore.open(store_config, bundle)
    yield opened
    await opened.close()


@pytest.fixture
def make_settings(bundle_root: Path, users_snapshot: Path) -> Callable[..., Settings]:
    def settings(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "bundle_root": bundle_root,
            "embedded_users_path": users_snapshot,
            "admin_api_key": ADMIN_KEY,
            "redis_timeout_ms": 1000,
            "prediction_log_dir": bundle_root.parent / "predictions",
        }
        return Settings(**(values | overrides))

    return settings


@pytest.fixture
def serving(make_settings: Callable[..., Settings]) -> Serving:
    """``async with serving(**settings) as client``: the app, started, behind an ASGI client."""

    @asynccontextmanager
    async def serve(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(make_settings(**overrides))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://rank") as client:
                yield client

    return serve


@pytest.fixture
async def client(
    serving: Serving, store_config: EmbeddedStoreConfig | RedisStoreConfig
) -> AsyncIterator[httpx.AsyncClient]:
    """The app over each store backend."""
    overrides: dict[str, Any] = {"store": store_config.type}
    if isinstance(store_config, RedisStoreConfig):
        overrides["redis_url"] = store_config.url
        overrides["redis_cluster"] = store_config.cluster
    async with serving(**overrides) as http:
        yield http


@pytest.fixture(scope="session")
def exporter() -> InMemorySpanExporter:
    """Spans kept in memory, for every test that reads them; the process's provider can be set
    only once, so reuse it."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    exporter.clear()
    yield exporter
    exporter.clear()
