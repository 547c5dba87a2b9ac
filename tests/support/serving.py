"""What the in-process service tests share: the admin key they configure, the store backends
they run over, and the type of the ``serving`` fixture."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx

ADMIN_KEY = "test-admin-key"
STORES = ("embedded", "redis")
#: The contract suite also runs against a Redis Cluster (slower to set up, so not every test),
#: and against the embedded store of several workers (its appends go through a journal file).
CONTRACT_STORES = (*STORES, "redis_cluster", "embedded_journal")

#: ``async with serving(**settings) as client``: the app, started, behind an ASGI client.
Serving = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
