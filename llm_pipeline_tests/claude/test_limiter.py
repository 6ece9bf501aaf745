"""Pins the limiter's arithmetic with a virtual clock (memory backend): burst, steady rate,
weights, FIFO, cancellation, settle, cool-down, catching down to `-remaining`, and retuning."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time

import pytest

from llm_pipeline.claude.clock import SystemClock
from llm_pipeline.claude.errors import BadRequest
from llm_pipeline.claude.limiter import Limiter, Reservation, default_safety_margin
from llm_pipeline.claude.state import open_state
from llm_pipeline.claude.state.memory import MemoryBackend
from llm_pipeline_tests.fixtures.fake_clock import FakeClock, assert_released_after

T0 = 1_000_000.0
HUGE = 1e12


def make_limiter(
    clock: FakeClock,
    *,
    rpm: float = HUGE,
    itpm: float = HUGE,
    otpm: float = HUGE,
    burst: float = 5.0,
    margin: float = 0.0,
    backend: MemoryBackend | None = None,
) -> Limiter:
    """A limiter on `backend` (a fresh one by default; pass one to share or inspect the state)."""
    if backend is None:
        backend = MemoryBackend(clock.now)
    return Limiter(
        "m",
        backend.limiter,
        rpm=rpm,
        itpm=itpm,
        otpm=otpm,
        burst_seconds=burst,
        clock=clock,
        safety_margin_s=margin,
    )


async def start_all(limiter: Limiter, clock: FakeClock, weights: list[tuple[int, int]]) -> tuple[list, list]:
    """Start one task per request (in order) and record (index, release time) as they pass."""
    released: list[tuple[int, float]] = []

    async def one(i: int, tokens_in: int, tokens_out: int) -> None:
        await limiter.reserve(tokens_in, tokens_out)
        released.append((i, clock.now()))

    tasks = [asyncio.create_task(one(i, a, b)) for i, (a, b) in enumerate(weights)]
    await clock.advance(0)
    return tasks, released


async def test_burst_then_steady_rate_exact_release_times() -> None:
    """50/s with a 5 s burst: 250 go at once, then one every 20 ms (aiolimiter's MockLoopTime style)."""
    clock = FakeClock(T0)
    limiter = make_limiter(clock, rpm=50 * 60, burst=5.0)
    tasks, released = await start_all(limiter, clock, [(0, 0)] * 300)
    assert len(released) == 250
    await clock.advance(0.501)
    assert len(released) == 275
    await clock.advance(0.5)
    assert len(released) == 300
    await asyncio.gather(*tasks)
    times = [t for _, t in released]
    assert times[:250] == [T0] * 250
    assert times[250:] == pytest.approx([T0 + 0.02 * k for k in range(1, 51)], abs=1e-6)
    assert [i for i, _ in released] == list(range(300)), "release order must be arrival order"


async def test_steady_rate_after_idle_refills_bucket() -> None:
    clock = FakeClock(T0)
    limiter = make_limiter(clock, rpm=60, burst=3.0)  # 1/s, bucket of 3
    _, released = await start_all(limiter, clock, [(0, 0)] * 3)
    assert len(released) == 3
    await clock.advance(2.0)  # two requests' worth refills
    _, again = await start_all(limiter, clock, [(0, 0)] * 3)
    assert len(again) == 2
    await clock.advance(1.0)
    assert len(again) == 3


@pytest.mark.parametrize(
    ("limits", "weights", "expected_offsets"),
    [
        # input tokens bind: 100 tokens/s, 10 s burst = 1,000 tokens; 300 each -> 3 now, then every 3 s
        ({"itpm": 6_000}, [(300, 1)] * 5, [0, 0, 0, 2, 5]),
        # output tokens (booked at max_tokens) bind: 10/s, 10 s burst = 100
        ({"otpm": 600}, [(1, 60), (1, 60), (1, 30)], [0, 2, 5]),
        # requests bind while tokens are plentiful: 1/s, burst 10 s
        ({"rpm": 60, "itpm": 60_000}, [(10, 1)] * 12, [0] * 10 + [1, 2]),
        # all three at once: the slowest rate decides, all are booked at the same start
        ({"rpm": 60, "itpm": 600, "otpm": 600}, [(50, 50), (50, 50), (100, 10)], [0, 0, 10]),
    ],
)
async def test_weighted_bookings(limits: dict, weights: list, expected_offsets: list) -> None:
    clock = FakeClock(T0)
    limiter = make_limiter(clock, burst=10.0, **limits)
    tasks, released = await start_all(limiter, clock, weights)
    await clock.advance(max(expected_offsets) + 1)
    await asyncio.gather(*tasks)
    assert [t - T0 for _, t in released] == pytest.approx(expected_offsets, abs=1e-9)


async def test_a_reservation_says_whether_its_caller_had_to_wait() -> None:
    clock = FakeClock(T0)
    limiter = make_limiter(clock, rpm=60, burst=1.0)  # one per second
    first = await limiter.reserve(0, 0)
    second = asyncio.create_task(limiter.reserve(0, 0))
    await clock.advance(1.0)
    assert (first.queued, (await second).queued) == (False, True)


async def test_fifo_small_request_does_not_overtake_big_one() -> None:
    clock = FakeClock(T0)
    limiter = make_limiter(clock, itpm=6_000, burst=10.0)  # 100 tokens/s, 1,000 bucket
    tasks, released = await start_all(limiter, clock, [(900, 1), (900, 1), (10, 1)])
    await clock.advance(20)
    await asyncio.gather(*tasks)
    assert [i for i, _ in released] == [0, 1, 2]
    assert [t - T0 for _, t in released] == pytest.approx([0, 8, 8.1])


async def test_task_cancelled_gives_its_booking_back() -> None:
    """A cancelled waiter's slot goes to the next caller (aiolimiter's test_task_cancelled)."""
    clock = FakeClock(T0)
    limiter = make_limiter(clock, rpm=60, burst=1.0)  # one per second, no burst beyond one
    first = asyncio.create_task(limiter.reserve(0, 0))
    waiting = asyncio.create_task(limiter.reserve(0, 0))
    await clock.advance(0)
    assert first.done()
    assert not waiting.done()
    assert "waiters=1" in repr(limiter)
    waiting.cancel()
    await clock.advance(0)
    assert waiting.cancelled()
    assert "waiters=0" in repr(limiter)
    newcomer = asyncio.create_task(limiter.reserve(0, 0))
    await clock.advance(1.0)
    assert newcomer.done(), "the newcomer takes the cancelled waiter's slot at +1 s, not +2 s"


async def test_cancelled_waiter_in_the_middle_never_double_books() -> None:
    """The third caller, not yet booked (beyond the 1 s horizon), moves up into the freed slot."""
    clock = FakeClock(T0)
    limiter = make_limiter(clock, rpm=60, burst=1.0)
    tasks, released = await start_all(limiter, clock, [(0, 0)] * 3)  # due at +0, +1, +2
    tasks[1].cancel()
    late = asyncio.create_task(limiter.reserve(0, 0))
    await clock.advance(10)
    await late
    starts = sorted(t - T0 for _, t in released)
    assert starts == pytest.approx([0, 1])  # first, then the third in the cancelled one's slot
    assert all(b - a >= 1 - 1e-9 for a, b in itertools.pairwise(starts)), "two requests shared one slot"


def test_request_bigger_than_a_bucket_raises_clearly() -> None:
    clock = FakeClock(T0)
    limiter = make_limiter(clock, otpm=600, burst=10.0)  # 100 output tokens fit
    with pytest.raises(BadRequest, match=r"output_tokens.*holds only 100"):
        asyncio.run(limiter.reserve(10, 101))


async def test_settle_gives_unused_output_back() -> None:
    clock = FakeClock(T0)
    limiter = make_limiter(clock, otpm=600, burst=10.0)  # 10 tokens/s, bucket 100
    booked = await limiter.reserve(0, 100)
    await limiter.settle(booked, 0, 20)  # 80 unused tokens = 8 s of rate back
    nxt = asyncio.create_task(limiter.reserve(0, 100))
    await clock.advance(2.0)
    assert nxt.done(), "only the 20 used tokens (2 s) should delay the next full-size request"


async def test_give_backs_reach_callers_already_queued() -> None:
    """Regression: every queued caller used to book max_tokens on arrival, minutes ahead, so the
    unused tokens given back by `settle` could never reach them and throughput followed
    max_tokens (here 50) instead of the tokens really used (5): 20 calls took ~100 s, not ~10 s."""
    clock = FakeClock(T0)
    limiter = make_limiter(clock, otpm=600, burst=10.0)  # 10 output tokens/s

    async def call() -> float:
        booked = await limiter.reserve(0, 50)
        released = clock.now()
        await limiter.settle(booked, 0, 5)
        return released - T0

    calls = [asyncio.create_task(call()) for _ in range(20)]
    for _ in range(300):  # 30 s of virtual time in 0.1 s steps
        await clock.advance(0.1)
    assert all(task.done() for task in calls), "give-backs did not reach the queued callers"
    releases = sorted(task.result() for task in calls)
    assert releases[-1] <= 15.0  # 20 x 5 tokens at 10/s is 10 s, plus the bucket's first fill
    assert releases == sorted(releases)  # and FIFO still holds


async def test_settle_charges_an_underestimate() -> None:
    clock = FakeClock(T0)
    limiter = make_limiter(clock, itpm=600, burst=10.0)  # 10 tokens/s, bucket 100
    booked = await limiter.reserve(10, 0)
    await limiter.settle(booked, 60, 0)  # 60 used: 40 left, the next 50 waits 1 s
    await assert_released_after(clock, limiter.reserve(50, 0), 0.99, 0.01)


async def test_a_give_back_is_held_until_the_next_booking_applies_it() -> None:
    """No shared-state write of its own: the next booking's transaction carries the give-back."""
    clock = FakeClock(T0)
    backend = MemoryBackend(clock.now)
    limiter = make_limiter(clock, otpm=600, burst=10.0, backend=backend)
    booked = await limiter.reserve(0, 100)
    full = (await backend.limiter.peek("m")).backlogs
    await limiter.settle(booked, 0, 20)
    assert limiter.credit == pytest.approx((0.0, 0.0, -8.0))
    assert (await backend.limiter.peek("m")).backlogs == full, "nothing written yet"
    await limiter.reserve(0, 20)
    assert limiter.credit == (0.0, 0.0, 0.0)
    assert (await backend.limiter.peek("m")).backlogs[2] == pytest.approx(4.0), "20 + 20 tokens = 4 s"


async def test_a_charge_is_booked_at_once() -> None:
    clock = FakeClock(T0)
    backend = MemoryBackend(clock.now)
    limiter = make_limiter(clock, itpm=600, otpm=600, burst=10.0, backend=backend)
    booked = await limiter.reserve(10, 50)
    await limiter.settle(booked, 60, 20)  # 50 more input tokens (a charge), 30 output back (held)
    backlogs = (await backend.limiter.peek("m")).backlogs
    assert backlogs[1] == pytest.approx(6.0), "the charge is in the shared state now"
    assert backlogs[2] == pytest.approx(5.0), "the give-back is not"
    assert limiter.credit == pytest.approx((0.0, 0.0, -3.0))


async def test_flush_hands_held_give_backs_to_every_other_user_of_the_state() -> None:
    clock = FakeClock(T0)
    backend = MemoryBackend(clock.now)

    def limiter() -> Limiter:
        return make_limiter(clock, otpm=600, burst=10.0, backend=backend)

    ours, theirs = limiter(), limiter()  # two stacks (processes) sharing one state
    booked = await ours.reserve(0, 100)
    await ours.settle(booked, 0, 0)
    late = asyncio.create_task(theirs.reserve(0, 100))
    await clock.advance(0)
    assert not late.done(), "the give-back is still held by the other stack"
    late.cancel()
    await clock.advance(0)
    await ours.flush()
    assert ours.credit == (0.0, 0.0, 0.0)
    assert (await theirs.reserve(0, 100)).waited_s == 0.0


async def test_give_back_cannot_pull_room_from_under_a_queued_caller() -> None:
    """Regression: a give-back credited 'before' a queued booking let the next caller start with it."""
    clock = FakeClock(T0)
    limiter = make_limiter(clock, otpm=6_000, burst=10.0)  # 100/s, bucket 1,000
    first = await limiter.reserve(0, 1000)
    queued = asyncio.create_task(limiter.reserve(0, 1000))  # starts at +10
    await clock.advance(1.0)
    await limiter.settle(first, 0, 100)
    third = asyncio.create_task(limiter.reserve(0, 1000))
    await clock.advance(9.0)
    assert queued.done()
    assert not third.done()
    await clock.advance(10.0)
    assert third.done()


async def test_cool_down_pauses_everyone_once_and_keeps_spacing() -> None:
    clock = FakeClock(T0)
    limiter = make_limiter(clock, rpm=600, burst=1.0)  # 10/s, bucket of 10
    tasks, released = await start_all(limiter, clock, [(0, 0)] * 12)  # 10 now, then +0.1, +0.2
    assert len(released) == 10
    await limiter.cool_down(T0 + 3.0)
    await clock.advance(2.99)
    assert len(released) == 10, "nobody may start during the cool-down"
    await clock.advance(0.22)
    assert [round(t - T0, 6) for _, t in released[10:]] == [3.1, 3.2], "queued callers keep their spacing"
    fresh = asyncio.create_task(limiter.reserve(0, 0))
    await clock.advance(0)
    assert not fresh.done(), "the bucket refills from empty during the pause, no fresh burst"
    await asyncio.gather(*tasks)


async def test_cool_down_holds_everyone_but_leaves_the_buckets_level_alone() -> None:
    """The pause itself says nothing about the buckets (a limiter 429's headers do, via observe)."""
    clock = FakeClock(T0)
    limiter = make_limiter(clock, rpm=600, burst=1.0)  # 10/s, bucket of 10
    tasks, released = await start_all(limiter, clock, [(0, 0)] * 4)
    await asyncio.gather(*tasks)
    await limiter.cool_down(T0 + 2.0)
    tasks, released = await start_all(limiter, clock, [(0, 0)] * 6)
    await clock.advance(1.99)
    assert released == []
    await clock.advance(0.01)
    assert len(released) == 6, "the 6 requests of room left before the pause are still there after it"
    await asyncio.gather(*tasks)


async def test_cool_down_after_a_report_of_an_empty_bucket_empties_all_and_pushes_back() -> None:
    """A limiter 429 (its headers say: empty) is no fresh burst when the pause ends, even with
    nothing queued: several stacks that each believe they own the limit must not all burst."""
    clock = FakeClock(T0)
    limiter = make_limiter(clock, rpm=600, burst=1.0)  # 10/s, bucket of 10
    tasks, released = await start_all(limiter, clock, [(0, 0)] * 4)
    await asyncio.gather(*tasks)
    await limiter.catch_down((0.0, None, None))  # what the 429's headers said
    await limiter.cool_down(T0 + 2.0, empty=True)
    tasks, released = await start_all(limiter, clock, [(0, 0)] * 3)
    await clock.advance(2.0)
    assert released == [], "the bucket counts as empty from the 429, and the pause refilled nothing"
    await clock.advance(0.1)
    assert len(released) == 1
    await clock.advance(0.2)
    await asyncio.gather(*tasks)


async def test_catch_down_moves_forward_when_server_has_less_room() -> None:
    clock = FakeClock(T0)
    limiter = make_limiter(clock, rpm=60, burst=10.0)  # 1/s, bucket 10
    await limiter.catch_down((10.0, None, None))
    fast = asyncio.create_task(limiter.reserve(0, 0))
    await clock.advance(0)
    assert fast.done(), "a remaining that agrees with us changes nothing"
    await limiter.catch_down((0.0, None, None))
    await assert_released_after(clock, limiter.reserve(0, 0), 0.99, 0.01)


@pytest.mark.parametrize(
    ("reported", "starts_at_once"),
    [
        (9_000.0, True),  # rounded to thousands: up to 9,499 left, so 9,400 tokens may still fit
        (8_000.0, False),  # at most 8,499 left: the 9,400-token request waits
        (9_300.0, False),  # not a multiple of 1,000, so exact: 9,300 left, the request waits
    ],
)
async def test_catch_down_reads_rounded_token_counts_as_the_most_they_can_mean(
    reported: float, starts_at_once: bool
) -> None:
    clock = FakeClock(T0)
    limiter = make_limiter(clock, itpm=60_000, burst=10.0)  # bucket 10,000 tokens
    await limiter.catch_down((None, reported, None))
    task = asyncio.create_task(limiter.reserve(9_400, 0))
    await clock.advance(0)
    assert task.done() is starts_at_once
    await clock.advance(10)
    await task


def test_default_margin_and_capacities() -> None:
    assert default_safety_margin(0.5) == pytest.approx(0.125), "a shallow bucket keeps three quarters"
    assert default_safety_margin(5.0) == 0.25
    assert default_safety_margin(60.0) == 0.25, "a delay before the server counts is time, not a share"
    clock = FakeClock(T0)
    backend = MemoryBackend(clock.now)
    limiter = Limiter("m", backend.limiter, rpm=600, itpm=60_000, otpm=6_000, burst_seconds=5.0, clock=clock)
    assert limiter.capacities == pytest.approx((47.5, 4_750.0, 475.0))


async def test_repr_shows_levels_waiters_and_next_release() -> None:
    clock = FakeClock(T0)
    limiter = make_limiter(clock, rpm=60, burst=2.0)
    tasks, _ = await start_all(limiter, clock, [(0, 0)] * 3)
    text = repr(limiter)
    assert "requests=0.0/2.0" in text
    assert "waiters=1" in text
    assert "next_release=+1.000s" in text
    await clock.advance(1)
    await asyncio.gather(*tasks)


def test_reservation_is_frozen() -> None:
    booked = Reservation(1, 2, 0.0)
    with pytest.raises(AttributeError):
        booked.input_tokens = 3  # type: ignore[misc]


async def test_release_gives_back_a_booking_that_was_never_sent() -> None:
    clock = FakeClock(T0)
    limiter = make_limiter(clock, rpm=60, burst=1.0)
    unsent = await limiter.reserve(0, 0)
    await limiter.release(unsent)
    again = asyncio.create_task(limiter.reserve(0, 0))
    await clock.advance(0)
    assert again.done(), "the released request slot is free at once"


@pytest.mark.parametrize("step_s", [-3600.0, 3600.0])
async def test_a_wall_clock_step_neither_stalls_nor_rushes_waiting_callers(step_s: float) -> None:
    """Regression (issue 14): waits and the shared state read the wall clock, so an NTP step back
    stalled every caller until the clock caught up. They now run on a clock that never steps."""
    clock = FakeClock(T0)
    limiter = make_limiter(clock, rpm=60, burst=2.0)
    tasks, released = await start_all(limiter, clock, [(0, 0)] * 4)
    assert len(released) == 2
    clock.step_wall(step_s)
    await clock.advance(1.0)
    assert len(released) == 3
    await clock.advance(1.0)
    await asyncio.gather(*tasks)
    assert [t for _, t in released] == [T0, T0, T0 + 1.0, T0 + 2.0]


async def test_the_stack_keeps_shared_state_on_the_monotonic_clock(tmp_path) -> None:
    """The SQLite rows another process reads are in `time.monotonic()` seconds (shared by every
    process of the machine), not wall-clock seconds that NTP may step."""
    clock = SystemClock()
    backend = open_state(str(tmp_path), clock.now)
    try:
        limiter = Limiter("m", backend.limiter, rpm=60, itpm=1e9, otpm=1e9, burst_seconds=2.0, clock=clock)
        await limiter.reserve(0, 0)
    finally:
        await backend.aclose()
    conn = sqlite3.connect(tmp_path / "limits.sqlite")
    (tat,) = conn.execute("SELECT tat0 FROM limiter WHERE name = 'm'").fetchone()
    conn.close()
    assert abs(tat - time.monotonic()) < 60.0, "stored on the monotonic clock"
    assert abs(clock.wall() - time.time()) < 1.0, "the wall clock is still there for timestamps"


async def test_a_raised_rate_drains_what_was_booked_faster_and_keeps_its_units() -> None:
    """1/s with a bucket of 2, full; raised to 2/s with a bucket of 2 (1 s): the 2 requests booked
    are 1 s of the new rate, so the next one starts at +0.5 s (not at +1.5 s, as unconverted
    seconds of the old rate would say, nor at once)."""
    clock = FakeClock(T0)
    limiter = make_limiter(clock, rpm=60, burst=2.0)
    await start_all(limiter, clock, [(0, 0)] * 2)
    limiter.retune((120, HUGE, HUGE), 1.0)
    await assert_released_after(clock, limiter.reserve(0, 0), 0.49, 0.01)


async def test_a_lowered_rate_keeps_what_was_booked_booked() -> None:
    """2/s with a bucket of 2 (1 s), full; lowered to 1/s with a bucket of 2 (2 s): the 2 requests
    booked are 2 s of the new rate, so the next one waits 1 s (unconverted: it would start at once,
    on top of the two the server has just counted)."""
    clock = FakeClock(T0)
    limiter = make_limiter(clock, rpm=120, burst=1.0)
    await start_all(limiter, clock, [(0, 0)] * 2)
    limiter.retune((60, HUGE, HUGE), 2.0)
    await assert_released_after(clock, limiter.reserve(0, 0), 0.99, 0.01)


async def test_processes_that_disagree_on_the_rate_never_mix_units() -> None:
    """Two stacks on one shared row, one still at 1/s (bucket of 2), one already at 2/s (bucket of 2):
    each booking first converts the row to its own intervals, so every unit booked stays booked.
    The fast one books its third request at +0.5 s; the slow one then sees three requests pending
    and starts its own when one request's room is back in its terms (two drained at 1/s): +2 s."""
    clock = FakeClock(T0)
    backend = MemoryBackend(clock.now)
    slow = make_limiter(clock, rpm=60, burst=2.0, backend=backend)
    fast = make_limiter(clock, rpm=120, burst=1.0, backend=backend)
    await start_all(slow, clock, [(0, 0)] * 2)
    fast_task = asyncio.create_task(fast.reserve(0, 0))
    slow_task = asyncio.create_task(slow.reserve(0, 0))
    await clock.advance(0.5)
    assert fast_task.done()
    assert not slow_task.done()
    await clock.advance(1.49)
    assert not slow_task.done()
    await clock.advance(0.01)
    assert slow_task.done()


async def test_held_give_backs_keep_their_units_across_a_retune() -> None:
    clock = FakeClock(T0)
    limiter = make_limiter(clock, otpm=600, burst=10.0)  # 10 output tokens/s
    booked = await limiter.reserve(0, 100)
    await limiter.settle(booked, 0, 20)  # 80 tokens back = 8 s at 10/s
    limiter.retune((HUGE, HUGE, 1_200), 5.0)  # 20/s
    assert limiter.credit == pytest.approx((0.0, 0.0, -4.0)), "80 tokens = 4 s at 20/s"
    assert limiter.limits == ((HUGE, HUGE, 1_200), 5.0)


def test_a_retune_may_accept_requests_heavier_than_the_bucket() -> None:
    """A learned bucket is a lower bound: heavier requests wait for their room instead of failing."""
    clock = FakeClock(T0)
    limiter = make_limiter(clock, otpm=600, burst=10.0)  # 100 tokens fit
    limiter.retune((HUGE, HUGE, 600), 10.0, heaviest_s=60.0)
    booked = asyncio.run(
        limiter.reserve(0, 500)
    )  # 50 s of the rate: more than the bucket, less than a minute
    assert booked.output_tokens == 500
    with pytest.raises(BadRequest, match=r"holds only 600"):
        asyncio.run(limiter.reserve(0, 601))


async def test_a_cut_rate_whose_bucket_was_empty_is_empty_not_over_empty() -> None:
    """100/s, 1 s bucket, emptied; cut to 25/s (same 1 s): the backlog of 1 s would be 4 s in units,
    but a bucket is never more than empty: capped at the tolerance plus the 1 s horizon (2 s), the
    next request starts at +1.04 s, not at +3.04 s."""
    clock = FakeClock(T0)
    limiter = make_limiter(clock, rpm=6_000, burst=1.0)
    await start_all(limiter, clock, [(0, 0)] * 100)
    limiter.retune((1_500, HUGE, HUGE), 1.0)
    await assert_released_after(clock, limiter.reserve(0, 0), 1.04 - 0.001, 0.002)
