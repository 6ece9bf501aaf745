"""Draining a stopped run (issue 14): nothing new starts, calls in flight finish and keep their answers.

The runner alone (plain coroutines), then the whole stack against the simulator with one-second
answers and billing of abandoned requests switched on: the simulator's `abandoned_billed` is what a
run that cancelled its calls in flight would leave behind.
"""

from __future__ import annotations

import asyncio

import pytest

from llm_pipeline.claude import Aborted, AuthError, Drain, Interrupted, Runner, open_client
from llm_pipeline.simulator import Latency, Simulator
from llm_pipeline_tests.fixtures.claude_calls import request, settings, until, wire_full


async def test_a_requested_drain_pulls_nothing_new_and_lets_the_calls_in_flight_finish() -> None:
    drain = Drain(timeout_s=5.0)
    started: list[int] = []
    release, all_started = asyncio.Event(), asyncio.Event()

    async def fn(i: int) -> int:
        started.append(i)
        if len(started) == 4:
            all_started.set()
        await release.wait()
        return i

    results: list[int] = []

    async def consume() -> None:
        async for result in Runner(4).map(fn, range(100), drain=drain):
            results.append(result)

    task = asyncio.create_task(consume())
    await all_started.wait()
    drain.request("SIGTERM")
    release.set()
    with pytest.raises(Interrupted) as caught:
        await task
    assert sorted(started) == [0, 1, 2, 3], "no item was pulled after the request"
    assert sorted(results) == [0, 1, 2, 3], "the calls in flight finished and their results came out"
    assert (caught.value.reason, caught.value.finished, caught.value.abandoned) == ("SIGTERM", 4, 0)


async def test_calls_still_running_at_the_drain_deadline_are_cancelled_and_counted() -> None:
    drain = Drain(timeout_s=0.2)

    async def fn(i: int) -> int:
        if i == 0:
            await asyncio.sleep(60)
        return i

    runner = Runner(2)
    task = asyncio.create_task(runner.run(fn, range(2), ordered=False, drain=drain))
    await asyncio.sleep(0.05)
    drain.request("SIGINT")
    with pytest.raises(Interrupted) as caught:
        await task
    assert caught.value.abandoned == 1


async def test_a_systemic_error_drains_the_others_then_is_raised() -> None:
    drain = Drain(timeout_s=5.0)
    finished: list[int] = []

    async def fn(i: int) -> int:
        if i == 0:
            raise AuthError("401 authentication_error")
        await asyncio.sleep(0.05)
        finished.append(i)
        return i

    with pytest.raises(AuthError):
        await Runner(4).run(fn, range(100), drain=drain)
    assert drain.requested
    assert "AuthError" in drain.reason
    assert sorted(finished) == [1, 2, 3], "the other calls in flight finished instead of being cancelled"


async def test_stopping_a_run_abandons_no_billed_request_and_the_rerun_pays_nothing_twice(
    simulator: Simulator, tmp_path
) -> None:
    """Regression (issue 14): stopping a run cancelled up to max_concurrency calls the API was
    already answering (and billing); nothing drained them into the ledger."""
    simulator.control.configure(latency=Latency(median_s=1.0), bill_abandoned=True)
    config = settings(simulator.base_url, state=str(tmp_path), max_concurrency=8)
    requests = [request(i) for i in range(40)]
    drain = Drain(timeout_s=10.0)
    results = []
    async with open_client(config, drain=drain) as client:

        async def run() -> None:
            async for result in Runner(8).map(client.call, requests, ordered=False, drain=drain):
                results.append(result)

        task = asyncio.create_task(run())
        await until(lambda: wire_full(simulator))
        drain.request("SIGTERM")
        with pytest.raises(Interrupted) as caught:
            await task
    stats = simulator.control.stats()
    assert stats["abandoned"] == 0, "every request the server had accepted was waited for"
    assert caught.value.finished >= 8
    paid = [r for r in results if r.ok]
    assert len(paid) == stats["successes"], "every billed answer came back as a result"
    assert all(isinstance(r.error, Aborted) for r in results if not r.ok)
    async with open_client(config) as client:
        rerun = await Runner(8).run(client.call, requests)
    assert all(r.ok for r in rerun)
    assert sum(r.record.cached for r in rerun) == len(paid), "the drained answers were in the ledger"
    assert simulator.control.stats()["max_successes_per_request"] == 1
