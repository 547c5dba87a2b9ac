"""Admission control: slots, weighed by request body, a FIFO queue, the queue's time budget,
cancellation, and a standing queue served newest first with a short wait."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from service.http.admission import (
    AdmissionControl,
    AdmissionLimits,
    AdmissionMiddleware,
    Shed,
    ShedReason,
    default_congested_in_flight,
    default_in_flight,
    default_per_key,
)
from service.http.body_limit import RequestBodyLimit
from service.http.guards import admission_limits
from service.observability.metrics import ServiceMetrics
from service.settings import Settings

pytestmark = pytest.mark.anyio


def _control(
    in_flight: int = 1,
    queued: int = 1,
    timeout_s: float = 5.0,
    per_key: int | None = None,
    congested_timeout_s: float | None = None,
    clock: Clock | None = None,
    congested_in_flight: int | None = None,
    slot_body_bytes: int | None = None,
) -> tuple[AdmissionControl, ServiceMetrics]:
    metrics = ServiceMetrics()
    limits = AdmissionLimits(
        max_in_flight=in_flight,
        max_queued=queued,
        queue_timeout_s=timeout_s,
        retry_after_s=3,
        max_per_key=per_key,
        congested_timeout_s=congested_timeout_s,
        congestion_interval_s=1.0,
        slot_body_bytes=slot_body_bytes,
        congested_in_flight=congested_in_flight,
    )
    control = AdmissionControl(
        limits, metrics.rank_in_flight, metrics.rank_queued, clock=clock or Clock()
    )
    return control, metrics


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


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
    assert "2 of 2 slots in flight and the queue is full" in refused.value.message
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


async def _stand(control: AdmissionControl, clock: Clock) -> list[asyncio.Task[None]]:
    """Overload ``control`` (one slot, two queue places): four arrivals and no completion,
    more than the slot and the queue hold, so the queue stands at once, before its window
    ends, and the fourth pushes out the oldest waiter. Returns the two waiters left in the
    queue, the older first."""
    await control.acquire()
    waiters = [asyncio.create_task(control.acquire()) for _ in range(2)]
    await asyncio.sleep(0)
    assert not control.congested()  # three: what the slot and the queue hold
    fourth = asyncio.create_task(control.acquire())
    await asyncio.sleep(0)
    assert control.congested()
    with pytest.raises(Shed) as refused:
        await waiters[0]
    assert refused.value.reason is ShedReason.QUEUE_STANDING
    return [waiters[1], fourth]


async def test_a_standing_queue_admits_only_its_share_of_the_slots() -> None:
    clock = Clock()
    control, _ = _control(
        in_flight=3, queued=1, congested_timeout_s=5.0, clock=clock, congested_in_flight=1
    )
    for _ in range(3):  # below capacity every slot is taken
        await control.acquire()
    waiting = asyncio.create_task(control.acquire())
    await asyncio.sleep(0)
    newest = asyncio.create_task(control.acquire())  # five arrivals, none done: it stands
    await asyncio.sleep(0)
    assert control.congested()
    with pytest.raises(Shed):
        await waiting
    control.release()
    control.release()
    await asyncio.sleep(0)
    assert not newest.done()  # one slot held, all a standing queue admits
    control.release()
    await newest
    assert (control.in_flight, control.queued) == (1, 0)
    clock.now += 1.0  # the window ends five arrivals to three completions: it no longer stands
    assert not control.congested()
    await control.acquire()
    await control.acquire()
    assert control.in_flight == 3


async def test_a_standing_queue_serves_the_newest_first() -> None:
    clock = Clock()
    control, _ = _control(in_flight=1, queued=2, congested_timeout_s=5.0, clock=clock)
    older, newer = await _stand(control, clock)
    control.release()
    await newer
    assert not older.done() and (control.in_flight, control.queued) == (1, 1)
    control.release()
    await older  # still within the standing queue's wait
    control.release()
    assert control.in_flight == 0


async def test_a_standing_queue_lets_go_of_waiters_past_its_short_wait() -> None:
    clock = Clock()
    control, metrics = _control(in_flight=1, queued=3, congested_timeout_s=0.5, clock=clock)
    await control.acquire()
    waiters = [asyncio.create_task(control.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    with pytest.raises(Shed):
        await control.acquire()
    clock.now += 1.0  # the window ends with 5 arrivals, no completion: the queue stands
    fresh = asyncio.create_task(control.acquire())
    await asyncio.sleep(0)
    # The three waited a whole second, past the 0.5 s a standing queue allows: the newcomer
    # let them go before it joined.
    for stale in waiters:
        with pytest.raises(Shed) as refused:
            await stale
        assert refused.value.reason is ShedReason.QUEUE_STANDING
        assert "newest requests go first" in refused.value.message
    assert (control.in_flight, control.queued) == (1, 1) == _gauges(metrics)
    control.release()
    await fresh


async def test_a_full_standing_queue_pushes_out_its_oldest_waiter() -> None:
    clock = Clock()
    control, _ = _control(in_flight=1, queued=2, congested_timeout_s=5.0, clock=clock)
    older, newer = await _stand(control, clock)
    newcomer = asyncio.create_task(control.acquire())
    await asyncio.sleep(0)
    with pytest.raises(Shed) as refused:
        await older
    assert refused.value.reason is ShedReason.QUEUE_STANDING
    assert control.queued == 2
    control.release()
    await newcomer  # the newest first
    assert not newer.done()
    control.release()
    await newer


async def test_a_burst_the_queue_holds_does_not_make_it_stand() -> None:
    clock = Clock()
    control, _ = _control(in_flight=1, queued=2, congested_timeout_s=0.5, clock=clock)
    await control.acquire()
    first, second = (asyncio.create_task(control.acquire()) for _ in range(2))
    await asyncio.sleep(0)
    clock.now += 1.0  # three arrivals, no completion: what the slot and the queue hold
    assert not control.congested()
    control.release()
    await first  # first come, first served
    assert not second.done()
    control.release()
    await second
    control.release()


async def test_without_the_controlled_delay_the_queue_never_stands() -> None:
    clock = Clock()
    control, _ = _control(in_flight=1, queued=1, clock=clock)
    await control.acquire()
    waiting = asyncio.create_task(control.acquire())
    await asyncio.sleep(0)
    for _ in range(5):
        with pytest.raises(Shed) as refused:
            await control.acquire()
        assert refused.value.reason is ShedReason.QUEUE_FULL
    clock.now += 1.0
    assert not control.congested()
    control.release()
    await waiting
    control.release()


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
    assert "this API key holds 2 slots and has 2 requests waiting" in refused.value.message
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


async def test_in_a_standing_queue_a_key_past_its_share_is_refused_for_its_key() -> None:
    control, _ = _control(
        in_flight=6,
        queued=0,
        per_key=4,
        congested_timeout_s=5.0,
        clock=Clock(),
        congested_in_flight=2,
    )
    for key in ("a", "b"):
        for _ in range(3):
            await control.acquire(key)
    with pytest.raises(Shed) as refused:
        await control.acquire("c")  # seven arrivals, more than 6 + 0: the queue stands
    assert refused.value.reason is ShedReason.QUEUE_FULL  # no slot for anyone
    assert control.congested()
    for _ in range(3):
        control.release("b")
    # Three of six slots are free. "a" holds three, past its share of the two slots a
    # standing queue admits: the key's share refuses it. "c" holds none, and only the
    # standing queue's slots, all held, keep it out.
    with pytest.raises(Shed) as refused:
        await control.acquire("a")
    assert refused.value.reason is ShedReason.KEY_LIMIT
    with pytest.raises(Shed) as refused:
        await control.acquire("c")
    assert refused.value.reason is ShedReason.QUEUE_FULL


async def test_without_keys_every_slot_is_for_anyone() -> None:
    control, _ = _control(in_flight=3, queued=0, per_key=1)
    for _ in range(3):
        await control.acquire(None)
    assert control.in_flight == 3


@pytest.mark.parametrize(
    ("threads", "workers", "cores", "in_flight"),
    [(1, 1, 2, 9), (1, 1, 64, 9), (4, 1, 2, 18), (4, 1, 16, 36), (2, 4, 4, 9), (2, 2, 8, 18)],
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
        max_in_flight=9,
        max_queued=36,
        queue_timeout_s=0.025,
        retry_after_s=1,
        max_per_key=7,
        congested_timeout_s=0.005,
        congestion_interval_s=0.25,
        slot_body_bytes=6144,
        congested_in_flight=3,
    )
    settings = Settings(
        rank_max_in_flight=8,
        rank_max_queued=0,
        rank_queue_timeout_ms=40,
        rank_queue_congested_timeout_ms=0,
        rank_max_in_flight_per_key=8,
        rank_slot_body_bytes=0,
        latency_objective_ms=200,
    )
    assert admission_limits(settings, cores=2) == AdmissionLimits(
        max_in_flight=8,
        max_queued=0,
        queue_timeout_s=0.04,
        retry_after_s=1,
        max_per_key=8,
        congested_timeout_s=None,  # 0: first come, first served throughout
        congestion_interval_s=1.0,
        slot_body_bytes=None,  # 0: one slot per request
        congested_in_flight=3,
    )
    slow = admission_limits(Settings(latency_objective_ms=200), cores=2)
    assert (slow.queue_timeout_s, slow.congested_timeout_s) == (0.1, 0.02)


@pytest.mark.parametrize(
    ("body_bytes", "slots"),
    [
        (None, 1),
        (0, 1),
        (1000, 1),
        (3071, 1),
        (3072, 1),
        (9215, 1),
        (9216, 2),
        (18000, 3),
        (10**6, 163),  # AdmissionControl.clamp cuts it to what can be held
    ],
)
def test_a_request_asks_for_a_slot_per_slot_body_bytes_of_its_body(
    body_bytes: int | None, slots: int
) -> None:
    limits = AdmissionLimits(9, 36, 0.025, 1, slot_body_bytes=6144)
    assert limits.slots_for(body_bytes) == slots
    # Without a size per slot every request asks for one.
    assert AdmissionLimits(9, 36, 0.025, 1).slots_for(body_bytes) == 1


async def test_light_requests_share_the_slots_a_heavy_one_would_take() -> None:
    control, metrics = _control(in_flight=4, queued=4)
    await control.acquire(slots=3)
    await control.acquire(slots=1)
    assert (control.in_flight, control.queued) == (4, 0) == _gauges(metrics)
    control.release(slots=3)
    for _ in range(3):  # three light ones where the heavy one was
        await control.acquire(slots=1)
    assert control.in_flight == 4


async def test_a_heavy_waiter_is_not_overtaken_and_takes_its_slots_together() -> None:
    control, metrics = _control(in_flight=4, queued=4)
    for _ in range(3):
        await control.acquire(slots=1)
    heavy = asyncio.create_task(control.acquire(slots=3))
    await asyncio.sleep(0)
    light = asyncio.create_task(control.acquire(slots=1))  # one slot is free, yet it waits
    await asyncio.sleep(0)
    assert (control.in_flight, control.queued) == (3, 2) == _gauges(metrics)
    control.release(slots=1)
    await asyncio.sleep(0)
    assert not heavy.done() and not light.done()  # two free: not enough for the heavy one
    control.release(slots=1)
    await heavy
    assert not light.done()
    assert (control.in_flight, control.queued) == (4, 1)
    control.release(slots=3)  # one release admits the light one too
    await light
    assert (control.in_flight, control.queued) == (2, 0) == _gauges(metrics)


async def test_one_release_admits_every_waiter_it_makes_room_for() -> None:
    control, _ = _control(in_flight=3, queued=4)
    await control.acquire(slots=3)
    waiters = [asyncio.create_task(control.acquire(slots=1)) for _ in range(3)]
    await asyncio.sleep(0)
    assert control.queued == 3
    control.release(slots=3)
    await asyncio.gather(*waiters)
    assert (control.in_flight, control.queued) == (3, 0)


async def test_a_request_heavier_than_every_slot_is_admitted_alone() -> None:
    control, _ = _control(in_flight=2, queued=2, per_key=1)
    assert control.clamp(None, 5) == 2
    assert control.clamp("a-key", 5) == 1  # never more than its key may hold
    await control.acquire(slots=5)
    assert control.in_flight == 2
    waiting = asyncio.create_task(control.acquire(slots=1))
    await asyncio.sleep(0)
    assert not waiting.done()
    control.release(slots=5)
    await waiting
    assert (control.in_flight, control.queued) == (1, 0)


async def test_a_key_is_held_to_its_share_in_slots() -> None:
    control, _ = _control(in_flight=6, queued=4, per_key=4)
    await control.acquire("greedy", slots=3)
    waiting = asyncio.create_task(control.acquire("greedy", slots=2))  # 5 of its 4
    await asyncio.sleep(0)
    assert (control.in_flight, control.queued) == (3, 1)
    await control.acquire("modest", slots=2)  # passes the held-back waiter
    assert control.in_flight == 5
    control.release("greedy", slots=3)
    await waiting
    assert (control.in_flight, control.queued) == (4, 0)


async def test_the_body_size_decides_the_slots_through_the_http_stack() -> None:
    control, _ = _control(in_flight=4, queued=0, slot_body_bytes=1000)
    held: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        held.append(control.in_flight)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    admitted = AdmissionMiddleware(app, control, frozenset({"/v1/rank"}))
    stack = RequestBodyLimit(admitted, max_bytes=1 << 20, read_timeout_s=5.0)
    transport = httpx.ASGITransport(app=stack)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for size in (100, 2400, 3600, 50_000):
            response = await client.post("/v1/rank", content=b"x" * size)
            assert response.status_code == 200
    assert held == [1, 2, 4, 4]  # 0.1 and 2.4 and 3.6 slots, rounded; 50 cut to all four
    assert control.in_flight == 0


async def test_in_a_standing_queue_one_key_holds_only_its_share_of_the_slots_admitted() -> None:
    clock = Clock()
    congested = default_congested_in_flight(4)
    assert congested == 2
    control, _ = _control(
        in_flight=4,
        queued=2,
        per_key=3,
        congested_timeout_s=5.0,
        clock=clock,
        congested_in_flight=congested,
    )
    for _ in range(3):  # its share of all four slots
        await control.acquire("greedy")
    waiters = [asyncio.create_task(control.acquire("greedy")) for _ in range(4)]
    await asyncio.sleep(0)  # two wait, two are refused: seven arrivals, more than 4 + 2
    assert control.congested()
    control.release("greedy")
    control.release("greedy")
    await asyncio.sleep(0)
    # One slot of the two a standing queue admits is free, but the greedy key holds its share
    # of them (one): its waiters stay, and another key takes the slot at once.
    assert (control.in_flight, control.queued) == (1, 2)
    await control.acquire("modest")
    assert control.in_flight == 2
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
