"""Everything a Redis server holds, to compare what two publishers wrote."""

from __future__ import annotations

import redis


def redis_dump(url: str, skip_fields: tuple[bytes, ...] = ()) -> dict[bytes, object]:
    """Every key: its value (hashes less ``skip_fields``) and whether it expires."""
    client = redis.Redis.from_url(url)
    found: dict[bytes, object] = {}
    try:
        for key in client.scan_iter(count=1000):
            kind = client.type(key)
            value: object
            if kind == b"string":
                value = client.get(key)
            elif kind == b"hash":
                fields = client.hgetall(key)
                value = {f: v for f, v in fields.items() if f not in skip_fields}
            elif kind == b"zset":
                value = client.zrange(key, 0, -1, withscores=True)
            else:
                value = kind
            found[key] = (value, client.ttl(key) > 0)
    finally:
        client.close()
    return found


def flush(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.flushall()
    finally:
        client.close()
