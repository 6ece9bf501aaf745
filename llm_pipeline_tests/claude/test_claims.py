"""One payer per request across overlapping runs (issue 14): two stacks on one state, at once.

Each stack stands for a run (its own client, limiter view and claims owner); they share the state
the way two processes do (one SQLite directory, or one Redis). The simulator's per-request count is
the ground truth of payment. A separate process holding a claim and dying shows the lease lapse.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from llm_pipeline.claude import Runner, open_client
from llm_pipeline.claude.claims import Claims
from llm_pipeline.claude.clock import SystemClock
from llm_pipeline.claude.state import open_state
from llm_pipeline.simulator import Latency, Simulator
from llm_pipeline_tests.fixtures.claude_calls import request, settings

DOCS = 40


@pytest.fixture(params=["sqlite", "redis"])
def shared_state(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "redis":
        return request.getfixturevalue("redis_url")
    return str(tmp_path / "state")


async def _run(base_url: str, state: str) -> list:
    async with open_client(settings(base_url, state=state, max_concurrency=8)) as client:
        return await Runner(8).run(client.call, [request(i) for i in range(DOCS)])


async def test_two_overlapping_runs_pay_for_every_request_once(
    simulator: Simulator, shared_state: str
) -> None:
    """Regression (issue 14): the ledger was looked up, then the call made, with no claim on the
    request in flight, so a backfill overlapping a manual run paid for every document twice."""
    simulator.control.configure(latency=Latency(median_s=0.05))
    first, second = await asyncio.gather(
        _run(simulator.base_url, shared_state), _run(simulator.base_url, shared_state)
    )
    stats = simulator.control.stats()
    assert stats["max_successes_per_request"] == 1, "a request was paid twice"
    assert stats["successes"] == DOCS
    assert all(r.ok for r in first + second)
    paid = sum(not r.record.cached for r in first + second)
    assert paid == DOCS, "each request paid by exactly one of the runs; the other took it from the ledger"
    for a, b in zip(first, second, strict=True):
        assert a.message.content == b.message.content, a.request.key


async def test_a_claim_whose_holder_died_lapses_and_the_waiter_calls(simulator: Simulator, tmp_path) -> None:
    """A holder that stopped renewing (its process died) blocks others for one lease, no longer."""
    state = str(tmp_path / "state")
    config = settings(simulator.base_url, state=state)
    dead = open_state(state, time.monotonic)
    async with open_client(config) as client:
        key = client.ledger.entry_key(request(1))
        assert await dead.claims.claim(key, "a-run-that-died", 1.0)
        result = await client.call(request(1))
    await dead.aclose()
    assert result.ok
    assert not result.record.cached
    assert simulator.control.stats()["successes"] == 1


async def test_claims_are_renewed_while_their_holder_lives(tmp_path) -> None:
    backend = open_state(str(tmp_path), time.monotonic)
    ours = Claims(backend.claims, clock=SystemClock(), lease_s=0.3)
    try:
        assert await ours.acquire("k")
        await asyncio.sleep(1.0)  # three leases: only renewal keeps it
        assert not await backend.claims.claim("k", "someone-else", 0.3)
        assert not await ours.acquire("k"), "this client holds it already: a second caller waits"
        await ours.release("k")
        assert await backend.claims.claim("k", "someone-else", 0.3)
    finally:
        await ours.aclose()
        await backend.aclose()
