"""Waiting, in tests, for something a background task or thread does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def wait_for(condition: Callable[[], object], what: str, polls: int = 2000) -> None:
    """Poll ``condition`` every 10 ms on the event loop; fail (never pass) when it stays false."""
    for _ in range(polls):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")
