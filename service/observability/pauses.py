"""Process-wide clocks of what stalls every request at once: garbage collection pauses (from
``gc.callbacks``) and event-loop lag (how late a short periodic sleep wakes up), each a running
total in milliseconds. A request's share is the difference of a total over its life."""

from __future__ import annotations

import asyncio
import gc
import time

#: How often the lag probe wakes up; its lateness beyond this is the loop's lag.
PROBE_INTERVAL_S = 0.01


class PauseClock:
    def __init__(self) -> None:
        self.gc_ms = 0.0
        self.loop_lag_ms = 0.0
        self._gc_started: float | None = None
        self._probes: dict[int, asyncio.Task[None]] = {}
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        del info
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started is not None:
            self.gc_ms += 1000.0 * (time.perf_counter() - self._gc_started)
            self._gc_started = None

    def watch_loop(self) -> None:
        """Start the lag probe on the running event loop (once per loop; the service's lifespan
        starts it, so no request pays for the check)."""
        loop = asyncio.get_running_loop()
        key = id(loop)
        probe = self._probes.get(key)
        if probe is None or probe.done():
            self._probes[key] = loop.create_task(self._probe(), name="loop-lag-probe")

    async def _probe(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(PROBE_INTERVAL_S)
            late = time.perf_counter() - before - PROBE_INTERVAL_S
            if late > 0:
                self.loop_lag_ms += 1000.0 * late


PAUSES = PauseClock()
