"""The active bundle version kept in Redis (``reaseq:active_bundle``): the fleet's source of truth
for which bundle to serve when the store is Redis; and what any such pointer offers."""

from __future__ import annotations

import asyncio
from typing import Protocol

from service.contracts import keys
from service.errors import StoreUnavailable
from service.stores.config import RedisStoreConfig
from service.stores.redis import REDIS_ERRORS, connect

_POINTER_TIMEOUT_S = 2.0


class VersionPointer(Protocol):
    """Where the bundle version to serve is kept for more than one process: Redis for a fleet
    (:class:`ActiveVersionPointer`), a file for the workers of one service
    (:class:`service.worker_state.FileVersionPointer`)."""

    async def read(self) -> str | None:
        """The version named, None when none is; raises ``StoreUnavailable`` when unreadable."""

    async def write(self, version: str) -> None:
        """Name ``version``; raises ``StoreUnavailable`` when it cannot."""

    async def close(self) -> None: ...


class ActiveVersionPointer:
    """Reads and writes the active bundle version in Redis (a server or a cluster)."""

    def __init__(self, config: RedisStoreConfig) -> None:
        self._client = connect(config)

    async def read(self) -> str | None:
        """The version the pointer names (None when unset); raises ``StoreUnavailable`` when Redis
        does not answer."""
        try:
            async with asyncio.timeout(_POINTER_TIMEOUT_S):
                raw = await self._client.get(keys.ACTIVE_BUNDLE)
        except (TimeoutError, *REDIS_ERRORS) as error:
            raise StoreUnavailable(f"cannot read the active bundle version: {error}") from error
        return None if raw is None else (raw.decode() if isinstance(raw, bytes) else str(raw))

    async def write(self, version: str) -> None:
        try:
            async with asyncio.timeout(_POINTER_TIMEOUT_S):
                await self._client.set(keys.ACTIVE_BUNDLE, version.encode())
        except (TimeoutError, *REDIS_ERRORS) as error:
            raise StoreUnavailable(f"cannot write the active bundle version: {error}") from error

    async def close(self) -> None:
        await self._client.aclose()
