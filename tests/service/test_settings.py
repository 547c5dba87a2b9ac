"""The settings: the bundle to serve, the user snapshot, the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import RedisDsn, ValidationError

from service.contracts.bundle_root import record_user_snapshot
from service.errors import BundleNotFoundError
from service.settings import Settings
from service.stores.config import DEMO_USERS_PATH, EmbeddedStoreConfig


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


@pytest.mark.parametrize("wrong", ["1023", str(2**20 + 1), "16k"])
def test_the_header_size_limit_is_16_kib_unless_set_within_bounds(
    monkeypatch: pytest.MonkeyPatch, wrong: str
) -> None:
    assert Settings().max_header_bytes == 16_384
    monkeypatch.setenv("REASEQ_MAX_HEADER_BYTES", "65536")
    assert Settings().max_header_bytes == 65_536
    monkeypatch.setenv("REASEQ_MAX_HEADER_BYTES", wrong)
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert raised.value.errors()[0]["loc"] == ("max_header_bytes",)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("localhost:6379", "not a Redis URL: expected redis://"),
        ("http://cache:6379/0", "URL scheme should be 'redis' or 'rediss'"),
        ("redis://cache:99999/0", "invalid port number"),
    ],
)
def test_the_redis_url_is_a_redis_dsn(url: str, expected: str) -> None:
    with pytest.raises(ValidationError, match=expected) as raised:
        Settings(redis_url=url)
    assert raised.value.errors()[0]["loc"] == ("redis_url",)


def test_the_store_gets_the_redis_url_as_text() -> None:
    settings = Settings(store="redis", redis_url="rediss://:secret@cache")
    assert isinstance(settings.redis_url, RedisDsn)
    config = settings.store_config()
    assert config.type == "redis" and config.url == "rediss://:secret@cache:6379/0"
