"""Admission control: slots, a FIFO queue, the queue's time budget, cancellation."""

from __future__ import annotations

import asyncio

import pytest

from service.http.admission import AdmissionControl, AdmissionLimits, Shed, ShedReason
from service.observability.metrics import ServiceMetrics

pytestmark = pytest.mark.anyio


def _control(
    in_flight: int = 1, queued: int = 1, timeout_s: float = 5.0
) -> tuple[AdmissionControl, ServiceMetrics]:
    metrics = ServiceMetrics()
    limits = AdmissionLimits(
        max_in_flight=in_flight, max_queued=queued, queue_timeout_s=timeout_s, retry_after_s=3
    )
    control = AdmissionControl(limits, metrics.rank_in_flight, metrics.rank_queued)
    return control, metrics


def _gauges(metrics: ServiceMetrics) -> tuple[float | None, float | None]:
    read = metrics.registry.get_sample_value
    return read("reaseq_rank_in_flight"), read("reaseq_rank_queued")


async def test_a_full_queue_sheds_at_once() -> None:
    control, metrics = _control(in_flight=2, queued=1)
    await control.acquire()
    await control.acquire()
    waiting = asyncio.create_task(control.acquire())
    await asyncio.sleep(0)
    assert (control.in_flight, control.queued) == (2, 1) == _gauges(metrics)
    with pytest.raises(Shed) as refused:
        await control.acquire()
    assert refused.value.reason is ShedReason.QUEUE_FULL
    assert refused.value.retry_after_s == 3
    assert "2 requests in flight and the queue is full" in refused.value.message
    control.release()
    await waiting
    assert (control.in_flight, control.queued) == (2, 0) == _gauges(metrics)


async def test_waiters_are_admitted_first_come_first_served() -> None:
    control, _ = _control(in_flight=1, queued=3)
    await control.acquire()
    order: list[int] = []

    async def wait(n: int) -> None:
        await control.acquire()
        order.append(n)

    tasks = [asyncio.create_task(wait(n)) for n in range(3)]
    await asyncio.sleep(0)
    for _ in range(3):
        control.release()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]
    control.release()
    assert control.in_flight == 0


async def test_a_newcomer_does_not_overtake_the_queue() -> None:
    control, _ = _control(in_flight=1, queued=1)
    await control.acquire()
    waiting = asyncio.create_task(control.acquire())
    await asyncio.sleep(0)
    control.release()  # hands the slot to the waiter, not to whoever comes next
    newcomer = asyncio.create_task(control.acquire())
    await waiting
    assert (control.in_flight, control.queued) == (1, 1)
    newcomer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await newcomer
    assert (control.in_flight, control.queued) == (1, 0)


async def test_a_long_wait_is_shed() -> None:
    control, metrics = _control(in_flight=1, queued=4, timeout_s=0.02)
    await control.acquire()
    with pytest.raises(Shed) as refused:
        await control.acquire()
    assert refused.value.reason is ShedReason.QUEUE_TIMEOUT
    assert "waited 20 ms in the queue" in refused.value.message
    assert (control.in_flight, control.queued) == (1, 0) == _gauges(metrics)


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    control, _ = _control(in_flight=1, queued=1)
    await control.acquire()
    waiting = asyncio.create_task(control.acquire())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert control.queued == 0
    control.release()
    assert control.in_flight == 0
    await control.acquire()  # the slot is free again


async def test_a_slot_handed_to_a_cancelled_waiter_is_passed_on() -> None:
    control, _ = _control(in_flight=1, queued=2)
    await control.acquire()
    first = asyncio.create_task(control.acquire())
    second = asyncio.create_task(control.acquire())
    await asyncio.sleep(0)
    control.release()  # the slot goes to ``first`` ...
    first.cancel()  # ... which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert (control.in_flight, control.queued) == (1, 0)
