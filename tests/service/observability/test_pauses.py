"""The process-wide pause clocks behind the Server-Timing header's ``gc`` and ``lag``."""

from __future__ import annotations

import asyncio
import gc
import time

from service.observability.pauses import PAUSES, PauseClock


def test_a_collection_adds_its_pause() -> None:
    clock = PauseClock()
    try:
        before = clock.gc_ms
        cycles = []
        for _ in range(50_000):
            node: list[object] = []
            node.append(node)
            cycles.append(node)
        del cycles, node
        gc.collect()
        assert clock.gc_ms > before
    finally:
        gc.callbacks.remove(clock._on_gc)


def test_a_blocked_loop_adds_its_lag() -> None:
    async def scenario() -> float:
        PAUSES.watch_loop()
        await asyncio.sleep(0.03)  # the probe is sleeping now
        before = PAUSES.loop_lag_ms
        time.sleep(0.1)  # blocks the loop: the probe wakes about 100 ms late
        await asyncio.sleep(0.03)
        return PAUSES.loop_lag_ms - before

    lag = asyncio.run(scenario())
    assert 60.0 <= lag <= 1000.0
