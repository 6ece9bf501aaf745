"""The runner: order, the concurrency bound, bounded memory (lazy pulls, reorder window, live tasks
for 100,000 items), failures as values vs. escaping exceptions, progress, async inputs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from llm_pipeline.claude.runner import Progress, Runner
from llm_pipeline_tests.fixtures.fake_clock import FakeClock


@dataclass(frozen=True)
class Result:
    value: int
    ok: bool = True


class StepClock:
    """Each reading is `step` seconds after the previous one."""

    def __init__(self, step: float) -> None:
        self.t, self.step = 0.0, step

    def now(self) -> float:
        self.t += self.step
        return self.t

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


async def test_ordered_results_come_back_in_input_order() -> None:
    async def fn(i: int) -> int:
        await asyncio.sleep(0.001 * ((7 * i) % 5))
        return i * 10

    assert await Runner(4).run(fn, range(40)) == [i * 10 for i in range(40)]


async def test_unordered_results_come_back_as_completed() -> None:
    async def fn(i: int) -> int:
        await asyncio.sleep(0.05 if i == 0 else 0)
        return i

    got = await Runner(4).run(fn, range(8), ordered=False)
    assert sorted(got) == list(range(8))
    assert got[-1] == 0, "the slow first item does not hold back the others"


async def test_at_most_n_calls_in_flight() -> None:
    in_flight = peak = 0

    async def fn(i: int) -> int:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        return i

    await Runner(7).run(fn, range(200), ordered=False)
    assert peak == 7


async def test_items_are_pulled_lazily_and_a_slow_head_holds_back_at_most_the_window() -> None:
    pulled = 0
    head_may_finish = asyncio.Event()

    def items() -> Iterator[int]:
        nonlocal pulled
        for i in range(10_000):
            pulled += 1
            yield i

    async def fn(i: int) -> int:
        if i == 0:
            await head_may_finish.wait()
        return i

    runner = Runner(4, window=12)
    results = runner.map(fn, items())
    first = asyncio.create_task(anext(results))
    for _ in range(50):
        await asyncio.sleep(0)
    assert pulled == 12, "with the head stuck, no more than the window is pulled"
    head_may_finish.set()
    assert await first == 0
    rest = [r async for r in results]
    assert rest == list(range(1, 10_000))


async def test_failures_are_values_and_counted_in_progress() -> None:
    reports: list[Progress] = []

    async def fn(i: int) -> Result:
        return Result(i, ok=i % 3 != 0)

    got = await Runner(3, on_progress=reports.append).run(fn, range(9))
    assert [r.value for r in got] == list(range(9))
    assert reports[-1] == Progress(
        done=9,
        total=9,
        elapsed_s=reports[-1].elapsed_s,
        rate_per_s=reports[-1].rate_per_s,
        eta_s=0.0,
        failed=3,
    )


async def test_escaping_exception_cancels_in_flight_work_and_propagates() -> None:
    cancelled: list[int] = []

    async def fn(i: int) -> int:
        if i == 5:
            raise RuntimeError("systemic: bad api key")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(i)
            raise
        return i

    before = len(asyncio.all_tasks())
    with pytest.raises(RuntimeError, match="bad api key"):
        await Runner(8).run(fn, range(100))
    assert sorted(cancelled) == [0, 1, 2, 3, 4, 6, 7]
    assert len(asyncio.all_tasks()) == before, "no worker outlives the run"


async def test_breaking_out_early_cancels_the_workers() -> None:
    async def fn(i: int) -> int:
        await asyncio.sleep(0)
        return i

    before = len(asyncio.all_tasks())
    async with contextlib.aclosing(Runner(5).map(fn, range(1_000))) as results:
        async for value in results:
            if value == 3:
                break
    assert len(asyncio.all_tasks()) == before


async def test_progress_at_most_every_interval_and_once_at_the_end() -> None:
    reports: list[Progress] = []

    async def fn(i: int) -> int:
        return i

    runner = Runner(2, on_progress=reports.append, progress_every_s=5.0, clock=StepClock(1.0))
    await runner.run(fn, range(20))
    # clock readings: start=1, then one per result (2..21), then the final report (22)
    assert [p.done for p in reports] == [5, 10, 15, 20, 20]
    final = reports[-1]
    assert (final.total, final.elapsed_s, final.failed, final.eta_s) == (20, 21.0, 0, 0.0)
    assert final.rate_per_s == pytest.approx(20 / 21)
    assert reports[0].eta_s == pytest.approx((20 - 5) / (5 / 5))


async def test_async_iterable_input_and_explicit_total() -> None:
    async def numbers() -> AsyncIterator[int]:
        for i in range(30):
            await asyncio.sleep(0)
            yield i

    reports: list[Progress] = []

    async def fn(i: int) -> int:
        return -i

    got = await Runner(4, on_progress=reports.append).run(fn, numbers(), total=30)
    assert got == [-i for i in range(30)]
    assert reports[-1].total == 30


async def test_100k_items_keep_live_tasks_within_the_bound() -> None:
    """Memory stays bounded: never one task per item (issue 4 acceptance)."""
    concurrency, peak_tasks, seen = 32, 0, 0

    async def fn(i: int) -> int:
        nonlocal peak_tasks, seen
        seen += 1
        if i % 500 == 0:
            peak_tasks = max(peak_tasks, len(asyncio.all_tasks()))
        await asyncio.sleep(0)
        return i

    total = 0
    async for _ in Runner(concurrency).map(fn, range(100_000), ordered=True):
        total += 1
    assert total == seen == 100_000
    assert 0 < peak_tasks <= concurrency + 3, f"peak {peak_tasks} live tasks"


def test_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        Runner(0)
    with pytest.raises(ValueError, match="window"):
        Runner(8, window=4)


async def test_the_in_flight_bound_is_followed_as_it_changes() -> None:
    """With `in_flight`, one call goes alone while the bound says 1 (first contact), then as many as
    it says, re-read when a call finishes and every poll while workers wait; never more than N."""
    clock = FakeClock()
    bound = {"n": 1}
    running: list[int] = []
    peaks: list[int] = []
    gates: dict[int, asyncio.Event] = {}

    async def fn(i: int) -> int:
        running.append(i)
        peaks.append(len(running))
        gates[i] = asyncio.Event()
        await gates[i].wait()
        running.remove(i)
        return i

    runner = Runner(8, in_flight=lambda: bound["n"], in_flight_poll_s=0.1, clock=clock)
    task = asyncio.create_task(runner.run(fn, range(20), ordered=False))
    await clock.advance(0)
    assert running == [0], "first contact: one call alone"
    bound["n"] = 5
    await clock.advance(0.1)
    assert running == [0, 1, 2, 3, 4], "a poll lets the newly allowed ones in, in input order"
    bound["n"] = 50
    gates[0].set()
    await clock.advance(0)
    assert len(running) == 8, "never more than the runner's N workers"
    bound["n"] = 2
    for i in list(running):
        gates[i].set()
    await clock.advance(0)
    assert len(running) == 2, "a lower bound lets the calls in flight finish, then holds"
    while not task.done():
        for i in list(running):
            gates[i].set()
        await clock.advance(0.1)
    assert sorted(await task) == list(range(20))
    assert max(peaks) == 8


async def test_a_cancelled_waiter_leaves_the_in_flight_bound_as_it_was() -> None:
    clock = FakeClock()
    release = asyncio.Event()

    async def fn(i: int) -> int:
        await release.wait()
        return i

    runner = Runner(4, in_flight=lambda: 1, clock=clock)
    stream = runner.map(fn, range(10), ordered=False)
    first = asyncio.create_task(anext(stream))
    await clock.advance(0)
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    await stream.aclose()
    release.set()
    again = Runner(4, in_flight=lambda: 2, clock=clock)
    assert sorted(await again.run(fn, range(6), ordered=False)) == list(range(6))
