"""reaseq publish on Redis: a version's keys before the pointer, old versions' keys expiring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import redis

from offline.publish.sequences import UserSequences
from offline.publish.stores import publish_redis
from service.contracts import keys
from service.contracts.keys import key_bundle_version as key_version
from service.stores.config import RedisStoreConfig
from tests.support.bundles import build_bundle

GRACE_S = 600


def _sequences() -> UserSequences:
    return UserSequences(
        user_ids=np.asarray(["u1", "u2"]),
        offsets=np.asarray([0, 2, 3], np.int64),
        item_ids=np.asarray(["i1", "i2", "i3"]),
        events=np.asarray([0, 1, 0], np.uint8),
        ts=np.asarray([10, 20, 30], np.int64),
    )


def test_key_versions_are_parsed_from_the_layout() -> None:
    assert key_version(keys.item_vector_key("v1", "i:7")) == "v1"
    assert key_version(keys.user_sequence_vectors_key("u:1", "v2")) == "v2"
    assert key_version(keys.user_sequence_key("u1")) is None
    assert key_version(keys.ACTIVE_BUNDLE) is None


def test_publish_keeps_the_new_and_previous_versions(redis_url: str, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_url)
    for n in (1, 2, 3):
        bundle_dir = build_bundle(tmp_path, version=f"v{n}")
        counts = publish_redis(
            _sequences(), bundle_dir, RedisStoreConfig(url=redis_url), gc_grace_s=GRACE_S
        )
        assert client.get(keys.ACTIVE_BUNDLE) == f"v{n}".encode()
    # v1's 16 item vectors and 2 sequence-vector copies expire; v2 (the rollback target) stays.
    assert counts["expiring_keys"] == 18
    assert 0 < client.ttl(keys.item_vector_key("v1", "i0")) <= GRACE_S
    assert 0 < client.ttl(keys.user_sequence_vectors_key("u1", "v1")) <= GRACE_S
    for version in ("v2", "v3"):
        assert client.ttl(keys.item_vector_key(version, "i0")) == -1
        assert client.ttl(keys.user_sequence_vectors_key("u1", version)) == -1
    assert client.ttl(keys.user_sequence_key("u1")) == -1, "sequences belong to no version"
    client.expire(keys.item_vector_key("v1", "i1"), 5)
    publish_redis(
        _sequences(), tmp_path / "v3", RedisStoreConfig(url=redis_url), gc_grace_s=GRACE_S
    )
    assert client.ttl(keys.item_vector_key("v1", "i1")) <= 5, "an expiry is never pushed back"
    client.close()


def test_a_staged_version_leaves_the_pointer(redis_url: str, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_url)
    publish_redis(
        _sequences(), build_bundle(tmp_path, version="v1"), RedisStoreConfig(url=redis_url)
    )
    publish_redis(
        _sequences(),
        build_bundle(tmp_path, version="v2"),
        RedisStoreConfig(url=redis_url),
        activate=False,
    )
    assert client.get(keys.ACTIVE_BUNDLE) == b"v1"
    assert client.exists(keys.item_vector_key("v2", "i0"))
    client.close()


def test_publishing_a_new_version_keeps_live_sequences(redis_url: str, tmp_path: Path) -> None:
    """Events appended online since the dataset was cut survive the next publish; the new
    version's vector copy is written from the live sequence."""
    from service.stores.base import UserSequence
    from service.stores.redis_writer import RedisWriter, decode_sequence

    publish_redis(
        _sequences(), build_bundle(tmp_path, version="v1"), RedisStoreConfig(url=redis_url)
    )
    writer = RedisWriter.from_url(redis_url)
    live = UserSequence.of(["i1", "i2", "i5"], [0, 1, 2], [10, 20, 40])  # i5 appended online
    writer.write_user_sequences("v1", [("u1", live, np.zeros((3, 8), np.float32))])
    writer.close()
    counts = publish_redis(
        _sequences(), build_bundle(tmp_path, version="v2"), RedisStoreConfig(url=redis_url)
    )
    client = redis.Redis.from_url(redis_url)
    stored = decode_sequence(client.hmget(keys.user_sequence_key("u1"), ["items", "events", "ts"]))
    assert stored is not None and stored.item_ids == ["i1", "i2", "i5"]
    copy = client.get(keys.user_sequence_vectors_key("u1", "v2"))
    assert copy is not None
    vectors = keys.decode_sequence_vectors(copy, ["i1", "i2", "i5"], 8)
    assert vectors is not None and vectors.shape == (3, 8)
    assert counts["kept_live_sequences"] == 2  # u1 and u2 were both already there
    replaced = publish_redis(
        _sequences(),
        build_bundle(tmp_path, version="v3"),
        RedisStoreConfig(url=redis_url),
        replace_sequences=True,
    )
    stored = decode_sequence(client.hmget(keys.user_sequence_key("u1"), ["items", "events", "ts"]))
    assert stored is not None and stored.item_ids == ["i1", "i2"]
    assert replaced["kept_live_sequences"] == 0
