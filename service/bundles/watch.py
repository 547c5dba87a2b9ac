"""A watcher that follows the active bundle version kept in Redis (``reaseq:active_bundle``).

``reaseq publish`` writes a version's keys, then points the active version at it; an admin
activation or rollback on one worker points it too. Every worker (and replica) on the Redis
store polls the pointer and activates the version it names when that differs from the one it
serves, so one write rolls a fleet forward or back. A version the worker refused (corrupt, not
fitting the store) is not tried again until the pointer changes; one it could not find or check
(the bundle not yet copied to this machine, the store down) is tried again at the next poll.
The workers of one service on the embedded store follow the version their admin endpoints
activated last the same way, through a file (:class:`service.worker_state.FileVersionPointer`).
"""

from __future__ import annotations

import asyncio
import logging

from service import tasks
from service.bundles.active_version import VersionPointer
from service.bundles.lifecycle import ActivationTrigger, BundleLifecycle
from service.errors import BundleNotFoundError, ServiceError, StoreError

log = logging.getLogger(__name__)


class ActiveVersionWatcher:
    """Polls the pointer every ``interval_s`` and activates the version it names."""

    def __init__(
        self, pointer: VersionPointer, lifecycle: BundleLifecycle, interval_s: float
    ) -> None:
        self._pointer = pointer
        self._lifecycle = lifecycle
        self._interval_s = interval_s
        self._refused: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(
                tasks.every(self._interval_s, self.poll), name="bundle-watch"
            )

    async def poll(self) -> None:
        """Read the pointer once and follow it."""
        try:
            version = await self._pointer.read()
        except StoreError as error:
            log.debug("bundle watch: %s", error)
            return
        if version is None or version == self._lifecycle.served.version:
            return
        if version == self._refused:
            return
        try:
            await self._lifecycle.activate(version, ActivationTrigger.WATCH)
        except (BundleNotFoundError, StoreError):
            pass  # may succeed later: the bundle is being copied, the store comes back
        except ServiceError:
            self._refused = version
        except Exception:
            self._refused = version

    async def close(self) -> None:
        await tasks.stop(self._task)
        self._task = None
