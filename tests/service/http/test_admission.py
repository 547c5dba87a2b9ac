"""Admission control: slots, a FIFO queue, the queue's time budget, cancellation."""

from __future__ import annotations

import asyncio

import pytest

from service.http.admission import (
    AdmissionControl,
    AdmissionLimits,
    Shed,
    ShedReason,
    default_in_flight,
    default_per_key,
)
from service.http.guards import admission_limits
from service.observability.metrics import ServiceMetrics
from service.settings import Settings

pytestmark = pytest.mark.anyio


def _control(
    in_flight: int = 1, queued: int = 1, timeout_s: float = 5.0, per_key: int | None = None
) -> tuple[AdmissionControl, ServiceMetrics]:
    metrics = ServiceMetrics()
    limits = AdmissionLimits(
        max_in_flight=in_flight,
        max_queued=queued,
        queue_timeout_s=timeout_s,
        retry_after_s=3,
        max_per_key=per_key,
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


async def test_one_key_holds_at_most_its_share_of_slots_and_queue_places() -> None:
    control, metrics = _control(in_flight=4, queued=4, per_key=2)
    await control.acquire("greedy")
    await control.acquire("greedy")
    waiting = [asyncio.create_task(control.acquire("greedy")) for _ in range(2)]
    await asyncio.sleep(0)
    assert (control.in_flight, control.queued) == (2, 2) == _gauges(metrics)
    with pytest.raises(Shed) as refused:
        await control.acquire("greedy")
    assert refused.value.reason is ShedReason.KEY_LIMIT
    assert "this API key has 2 requests in flight and 2 waiting" in refused.value.message
    # The slots the key may not take stay free for the others.
    await control.acquire("modest")
    await control.acquire(None)
    assert control.in_flight == 4
    control.release("greedy")  # its slot goes to the key's own waiter
    await waiting[0]
    assert (control.in_flight, control.queued) == (4, 1)
    waiting[1].cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting[1]
    assert control.queued == 0


async def test_a_waiter_at_its_key_limit_lets_later_callers_pass() -> None:
    control, _ = _control(in_flight=2, queued=4, per_key=1)
    await control.acquire("a")
    await control.acquire("b")
    second_of_a = asyncio.create_task(control.acquire("a"))
    await asyncio.sleep(0)
    first_of_c = asyncio.create_task(control.acquire("c"))
    await asyncio.sleep(0)
    control.release("b")  # "a" holds its one slot already: "c" goes first
    await first_of_c
    assert not second_of_a.done()
    control.release("a")
    await second_of_a
    assert (control.in_flight, control.queued) == (2, 0)


async def test_the_key_limit_is_the_reason_only_where_it_binds() -> None:
    control, _ = _control(in_flight=1, queued=0, per_key=1)
    await control.acquire("only")
    with pytest.raises(Shed) as refused:
        await control.acquire("only")
    assert refused.value.reason is ShedReason.QUEUE_FULL  # no slot for anyone
    control, _ = _control(in_flight=3, queued=0, per_key=1)
    await control.acquire("only")
    with pytest.raises(Shed) as refused:
        await control.acquire("only")
    assert refused.value.reason is ShedReason.KEY_LIMIT  # two slots free, not for this key


async def test_without_keys_every_slot_is_for_anyone() -> None:
    control, _ = _control(in_flight=3, queued=0, per_key=1)
    for _ in range(3):
        await control.acquire(None)
    assert control.in_flight == 3


@pytest.mark.parametrize(
    ("threads", "workers", "cores", "in_flight"),
    [(1, 1, 2, 3), (1, 1, 64, 3), (4, 1, 2, 6), (4, 1, 16, 12), (2, 4, 4, 3), (2, 2, 8, 6)],
)
def test_default_in_flight_follows_the_scoring_threads_the_cores_run(
    threads: int, workers: int, cores: int, in_flight: int
) -> None:
    assert default_in_flight(threads, workers, cores) == in_flight


@pytest.mark.parametrize(("in_flight", "per_key"), [(1, 1), (2, 1), (3, 2), (4, 3), (12, 9)])
def test_default_per_key_leaves_a_quarter_of_the_slots(in_flight: int, per_key: int) -> None:
    assert default_per_key(in_flight) == per_key


def test_default_admission_limits() -> None:
    limits = admission_limits(Settings.model_construct(), cores=2)
    assert limits == AdmissionLimits(
        max_in_flight=3, max_queued=3, queue_timeout_s=0.025, retry_after_s=1, max_per_key=2
    )
    settings = Settings(
        rank_max_in_flight=8,
        rank_max_queued=0,
        rank_queue_timeout_ms=40,
        rank_max_in_flight_per_key=8,
        latency_objective_ms=200,
    )
    assert admission_limits(settings, cores=2) == AdmissionLimits(
        max_in_flight=8, max_queued=0, queue_timeout_s=0.04, retry_after_s=1, max_per_key=8
    )
    assert admission_limits(Settings(latency_objective_ms=200), cores=2).queue_timeout_s == 0.1
