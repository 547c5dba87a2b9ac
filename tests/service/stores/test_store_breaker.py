"""The circuit breaker's state machine, on a clock the tests move by hand."""

from __future__ import annotations

import asyncio

import pytest

from service.errors import StoreCircuitOpen, StoreTimeout, StoreUnavailable
from service.stores.breaker import BreakerPolicy, BreakerState, CircuitBreaker

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Store:
    """Counts calls; fails with ``failure`` while it is set."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.calls = 0
        self.failure = failure

    async def read(self) -> str:
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        return "answer"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker("redis", BreakerPolicy(failure_threshold=3, cool_down_s=5.0), clock)


async def _fail(breaker: CircuitBreaker, store: Store, times: int) -> None:
    for _ in range(times):
        with pytest.raises(StoreUnavailable):
            await breaker.call(store.read)


async def _open(breaker: CircuitBreaker) -> Store:
    """A refusing store, after the three failures that open ``breaker``."""
    store = Store(StoreUnavailable("refused"))
    await _fail(breaker, store, 3)
    return store


async def _recover(breaker: CircuitBreaker, store: Store) -> None:
    """The store answers again, and so does a call through the breaker."""
    store.failure = None
    assert await breaker.call(store.read) == "answer"


async def test_opens_after_consecutive_failures_and_fails_fast(breaker: CircuitBreaker) -> None:
    store = Store(StoreTimeout("slow"))
    with pytest.raises(StoreTimeout):
        await breaker.call(store.read)
    store.failure = StoreUnavailable("refused")
    await _fail(breaker, store, 2)
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(StoreCircuitOpen, match=r"\(last: refused\); next probe in 5\.0 s") as open_:
        await breaker.call(store.read)
    assert store.calls == 3  # the open breaker did not call the store
    assert open_.value.opened_by is store.failure  # callers report the cause, not the breaker


async def test_a_success_resets_the_count(breaker: CircuitBreaker) -> None:
    store = Store()
    for _ in range(3):
        store.failure = StoreUnavailable("refused")
        await _fail(breaker, store, 2)
        await _recover(breaker, store)
    assert breaker.state is BreakerState.CLOSED


async def test_half_open_probe_closes_or_reopens(breaker: CircuitBreaker, clock: Clock) -> None:
    store = await _open(breaker)
    clock.now += 4.9
    assert breaker.state is BreakerState.OPEN
    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN
    await _fail(breaker, store, 1)  # the probe fails: open for another cool-down
    assert breaker.state is BreakerState.OPEN
    assert store.calls == 4
    clock.now += 5.0
    await _recover(breaker, store)
    assert breaker.state is BreakerState.CLOSED


async def test_one_probe_at_a_time(breaker: CircuitBreaker, clock: Clock) -> None:
    store = await _open(breaker)
    clock.now += 5.0
    release = asyncio.Event()

    async def slow_probe() -> str:
        await release.wait()
        return "answer"

    probe = asyncio.create_task(breaker.call(slow_probe))
    await asyncio.sleep(0)
    with pytest.raises(StoreCircuitOpen):
        await breaker.call(store.read)
    release.set()
    assert await probe == "answer"
    assert breaker.state is BreakerState.CLOSED


async def test_a_cancelled_probe_gives_no_verdict(breaker: CircuitBreaker, clock: Clock) -> None:
    store = await _open(breaker)
    clock.now += 5.0
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await breaker.call(lambda: asyncio.sleep(10))
    assert breaker.state is BreakerState.HALF_OPEN
    await _recover(breaker, store)  # the next call probes


async def test_other_errors_do_not_count(breaker: CircuitBreaker) -> None:
    store = Store(ValueError("a bug, not an outage"))
    for _ in range(5):
        with pytest.raises(ValueError):
            await breaker.call(store.read)
    assert breaker.state is BreakerState.CLOSED


async def test_threshold_zero_never_opens(clock: Clock) -> None:
    breaker = CircuitBreaker("redis", BreakerPolicy(failure_threshold=0), clock)
    store = Store(StoreUnavailable("refused"))
    await _fail(breaker, store, 20)
    assert breaker.state is BreakerState.CLOSED


async def test_listeners_see_every_transition(breaker: CircuitBreaker, clock: Clock) -> None:
    seen: list[tuple[str, str]] = []
    breaker.on_transition(lambda old, new: seen.append((old.value, new.value)))
    store = await _open(breaker)
    clock.now += 5.0
    store.failure = None
    await breaker.call(store.read)
    assert seen == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
