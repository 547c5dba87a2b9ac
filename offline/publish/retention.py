"""Expiry of the Redis keys of bundle versions no longer served.

Item vectors (``reaseq:item:<version>:<item>``) and users' sequence-vector copies
(``reaseq:user:{<user>}:seqvec:<version>``) are written per bundle version. After a publish, the
keys of every version other than the ones to keep get an expiry of a grace period rather than
being deleted at once: a worker that has not yet followed the new active version (it polls the
pointer) or a replica still starting on the old one keeps its answers whole meanwhile. Keys that
already expire keep their expiry, so running it again does not push deletion back.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Iterator

import redis
from redis.cluster import RedisCluster

from service.contracts import keys

log = logging.getLogger(__name__)

_NO_EXPIRY = -1


def _versioned_keys(client: redis.Redis | RedisCluster, batch: int) -> Iterator[str]:
    for pattern in keys.VERSIONED_KEY_PATTERNS:
        for raw in client.scan_iter(match=pattern, count=batch):
            yield raw.decode() if isinstance(raw, bytes) else str(raw)


def expire_old_versions(
    client: redis.Redis | RedisCluster, keep: Collection[str], grace_s: int, batch: int = 1000
) -> dict[str, int]:
    """Give the keys of every bundle version not in ``keep`` an expiry of ``grace_s`` seconds
    (unless they already expire); returns the keys given one, per version."""
    expired: Counter[str] = Counter()
    pending: list[tuple[str, str]] = []
    for key in _versioned_keys(client, batch):
        version = keys.key_bundle_version(key)
        if version is None or version in keep:
            continue
        pending.append((key, version))
        if len(pending) >= batch:
            expired.update(_expire(client, pending, grace_s))
            pending = []
    if pending:
        expired.update(_expire(client, pending, grace_s))
    for version, count in sorted(expired.items()):
        log.info("bundle %s: %d keys expire in %d s", version, count, grace_s)
    return dict(expired)


def _expire(
    client: redis.Redis | RedisCluster, pending: list[tuple[str, str]], grace_s: int
) -> Counter[str]:
    pipe = client.pipeline(transaction=False)
    for key, _ in pending:
        pipe.ttl(key)
    ttls = pipe.execute()
    pipe = client.pipeline(transaction=False)
    chosen = [
        (key, version)
        for (key, version), ttl in zip(pending, ttls, strict=True)
        if ttl == _NO_EXPIRY
    ]
    for key, _ in chosen:
        pipe.expire(key, grace_s)
    pipe.execute()
    return Counter(version for _, version in chosen)
