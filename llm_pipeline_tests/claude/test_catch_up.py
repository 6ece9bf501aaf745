"""Bookings the server never counted come back (issue 15): a connection dropped before the request
reached the server leaves a booking in our schedule that the server's `-remaining` later shows it
never saw. The simulator drops connections before its limiter counts them, as a proxy or load
balancer that resets a connection would.

After a run with drops, the stack's schedule (read from the shared SQLite state) leaves as much room
as the server reports, less the safety margin; without catching up it would leave one request less
for every drop since its bucket was last full.
"""

from __future__ import annotations

import time
from pathlib import Path

import anthropic

from llm_pipeline.claude import Runner, open_client
from llm_pipeline.claude.state import open_state
from llm_pipeline.simulator import Faults, Latency, Limits, Simulator, SimulatorConfig
from llm_pipeline_tests.fixtures.claude_calls import MODEL, learning_settings, request

RPM = 1_200  # 20 requests a second
BURST_S = 2.0
DOCUMENTS = 120
#: Requests' worth of disagreement allowed between the schedule and the server (the rounding of
#: `-remaining` and a request reordered on its way): far below the drops it must give back.
SLACK = 3


async def _answered(base_url: str) -> anthropic.AsyncAPIResponse[anthropic.types.Message]:
    """One request straight through the SDK, sent again while its connection is dropped (uncounted)."""
    sdk = anthropic.AsyncAnthropic(api_key="sk-sim-test", base_url=base_url, max_retries=0)
    for _ in range(20):
        try:
            return await sdk.messages.with_raw_response.create(**request(DOCUMENTS).params)
        except anthropic.APIConnectionError:
            continue
    raise AssertionError("20 connections in a row dropped")


async def test_room_the_server_never_counted_comes_back_after_dropped_connections(tmp_path: Path) -> None:
    config = SimulatorConfig(
        limits=Limits(rpm=RPM, itpm=10**9, otpm=10**9, burst_seconds=BURST_S),
        latency=Latency(median_s=0.02, sigma=0.3),
        faults=Faults(p_drop=0.15),
        exit_after_s=120,
    )
    state = str(tmp_path / "state")
    with Simulator.spawn(config) as sim:
        settings = learning_settings(sim.base_url, state=state)
        async with open_client(settings) as client:
            runner = Runner(client.max_in_flight, in_flight=client.in_flight)
            results = await runner.run(client.call, [request(i) for i in range(DOCUMENTS)], ordered=False)
            assert [r.record.error for r in results if not r.ok] == []
            limiter = client.limiter_for(MODEL)
            key = f"{settings.endpoint}/{MODEL}"
            raw = await _answered(sim.base_url)
            backend = open_state(state, time.monotonic)
            try:
                peek = await backend.limiter.peek(key)
            finally:
                await backend.aclose()
            stats = sim.control.stats()
        server_room = float(raw.headers["anthropic-ratelimit-requests-remaining"])
    interval = 60.0 / RPM
    our_room = limiter.capacities[0] - peek.backlogs[0] / interval
    margin = BURST_S / interval - limiter.capacities[0]
    assert stats["dropped"] >= 4 * SLACK, stats["status_counts"]
    assert server_room < BURST_S / interval - 4 * SLACK, "the run must end with the bucket far from full"
    assert our_room >= server_room - margin - SLACK, (our_room, server_room, margin, stats["dropped"])
