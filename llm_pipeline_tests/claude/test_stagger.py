"""A burst of calls starts a few per turn of the event loop, so the first get to their I/O at once."""

from __future__ import annotations

import asyncio

import pytest

from llm_pipeline.claude.runner import Runner
from llm_pipeline.claude.stagger import DEFAULT_STEP, Stagger


async def test_at_most_step_pass_per_turn_of_the_loop_in_order() -> None:
    stagger, turn, passed = Stagger(step=3), 0, []

    async def caller(i: int) -> None:
        await stagger.turn()
        passed.append((i, turn))

    tasks = [asyncio.create_task(caller(i)) for i in range(8)]
    while not all(task.done() for task in tasks):
        await asyncio.sleep(0)
        turn += 1
    assert [i for i, _ in passed] == list(range(8)), "in arrival order"
    per_turn = [sum(1 for _, t in passed if t == seen) for seen in sorted({t for _, t in passed})]
    assert per_turn == [3, 3, 2]


async def test_a_cancelled_waiter_gives_up_its_place() -> None:
    stagger, passed = Stagger(step=1), []

    async def caller(i: int) -> None:
        await stagger.turn()
        passed.append(i)

    tasks = [asyncio.create_task(caller(i)) for i in range(3)]
    await asyncio.sleep(0)
    tasks[1].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert passed == [0, 2]


async def test_one_at_a_time_passes_at_once() -> None:
    """Steady traffic (a call now and then) never waits for a turn."""
    stagger = Stagger(step=2)
    for _ in range(5):
        await stagger.turn()
        await asyncio.sleep(0.001)  # a turn of the loop between two calls


def test_rejects_a_step_below_one() -> None:
    with pytest.raises(ValueError, match="step"):
        Stagger(step=0)


@pytest.mark.parametrize("in_flight", [None, 200])
async def test_the_first_calls_of_a_burst_reach_their_io_before_the_last_start(in_flight: int | None) -> None:
    """200 workers started together: without the stagger, each runs up to its first await before
    any gets past it, so the first call's I/O waits for the last call's preparation."""
    events: list[tuple[str, int]] = []

    async def call(i: int) -> int:
        events.append(("start", i))
        await asyncio.sleep(0)  # the first I/O: the loop polls its sockets before resuming here
        events.append(("resumed", i))
        return i

    runner = Runner(200, in_flight=None if in_flight is None else lambda: in_flight)
    assert sorted([r async for r in runner.map(call, range(200))]) == list(range(200))
    first_resumed = events.index(("resumed", 0))
    started_before = sum(1 for kind, _ in events[:first_resumed] if kind == "start")
    assert started_before <= 2 * DEFAULT_STEP, f"{started_before} calls started before the first resumed"


async def test_the_fan_out_after_a_first_contact_is_staggered_too() -> None:
    """One call alone (first contact), then the bound jumps to 200: the waiting workers are let
    through together, and the stagger still gets the first of them to their I/O first."""
    events: list[tuple[str, int]] = []
    answered: list[int] = []

    async def call(i: int) -> int:
        events.append(("start", i))
        await asyncio.sleep(0)
        events.append(("resumed", i))
        answered.append(i)
        return i

    runner = Runner(200, in_flight=lambda: 200 if answered else 1)
    assert len([r async for r in runner.map(call, range(200))]) == 200
    assert events[:2] == [("start", 0), ("resumed", 0)], "the first call goes alone"
    burst = events[2:]
    first_resumed = burst.index(("resumed", 1))
    started_before = sum(1 for kind, _ in burst[:first_resumed] if kind == "start")
    assert started_before <= 2 * DEFAULT_STEP, f"{started_before} calls started before the first resumed"
