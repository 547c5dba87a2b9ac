"""The service's own background tasks on the event loop: pollers started once per worker and
stopped at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


async def every(interval_s: float, action: Callable[[], Awaitable[None]]) -> None:
    """Await ``action`` every ``interval_s`` seconds, first after one interval, until cancelled."""
    while True:
        await asyncio.sleep(interval_s)
        await action()


async def stop(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` (when there is one) and wait until it has stopped."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
