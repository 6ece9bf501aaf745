"""Issue 4's acceptance list, against the simulator (no mocks of our own code):

1. injected 429/500/529/drops: every request succeeds, each answered exactly once
2. RPM, then ITPM, as the binding limit: the simulator's limiter 429s stay under 1% of attempts
3. several OS processes sharing SQLite (and Redis) state stay within one shared limit
4. a total outage opens the breaker: the rest fails fast, naming the breaker and the last error;
   with a fallback model configured, the fallback answers and the rows say so
5. a 429 with retry-after: 3 pauses every concurrent caller once; nothing is sent meanwhile
(6, the 100,000-item task bound, is in test_claude_runner.py; 7 in the unit-test modules.)
"""

from __future__ import annotations

import itertools
import time

import pytest

from llm_pipeline.claude import CallRecord, CircuitOpen, Runner, open_client
from llm_pipeline.claude.retry import RetryEvent
from llm_pipeline.simulator import Limits, ScheduledFault, Simulator
from llm_pipeline_tests.fixtures.claude_calls import FALLBACK, MODEL, request, run_workers, settings


def limiter_429_share(stats: dict) -> float:
    return stats["limiter_429"] / max(1, stats["attempts"])


@pytest.mark.slow
async def test_1_faults_everything_succeeds_and_nothing_is_paid_twice(simulator: Simulator) -> None:
    simulator.control.set_faults(p429=0.02, retry_after_s=0, p500=0.02, p529=0.01, p_drop=0.005)
    records: list[CallRecord] = []
    async with open_client(settings(simulator.base_url), on_record=records.append) as client:
        results = await Runner(32).run(client.call, [request(i) for i in range(1_000)], ordered=False)
    assert [r.record.error for r in results if not r.ok] == []
    stats = simulator.control.stats()
    assert stats["successes"] == stats["distinct_requests"] == 1_000
    assert stats["max_successes_per_request"] == 1
    assert stats["duplicate_successes"] == 0
    injected = stats["injected"]
    assert min(injected.get(k, 0) for k in ("429", "500", "529", "drop")) > 0, injected
    assert sum(r.attempts for r in records) == stats["attempts"], "every attempt is in the records"


@pytest.mark.slow
async def test_2a_rpm_binding_keeps_limiter_429s_under_one_percent(simulator: Simulator) -> None:
    rpm, burst, n = 2_400, 2.0, 300
    simulator.control.configure(limits=Limits(rpm=rpm, burst_seconds=burst))
    async with open_client(settings(simulator.base_url, rpm=rpm, burst_seconds=burst)) as client:
        results = await Runner(32).run(client.call, [request(i) for i in range(n)], ordered=False)
    assert all(r.ok for r in results)
    stats = simulator.control.stats(times=True)
    assert limiter_429_share(stats) < 0.01, stats["status_counts"]
    times = sorted(stats["success_times"])
    at_limit = (n - rpm / 60 * burst) / (rpm / 60)
    assert times[-1] - times[0] < 1.5 * at_limit + 1.0, "paced near the limit, not far below it"


@pytest.mark.slow
async def test_2b_itpm_binding_keeps_limiter_429s_under_one_percent(simulator: Simulator) -> None:
    itpm, burst, n = 1_200_000, 2.0, 200
    simulator.control.configure(limits=Limits(itpm=itpm, burst_seconds=burst))
    config = settings(simulator.base_url, itpm=itpm, burst_seconds=burst)
    async with open_client(config) as client:
        results = await Runner(32).run(
            client.call, [request(i, chars=2_000) for i in range(n)], ordered=False
        )
    assert all(r.ok for r in results)
    stats = simulator.control.stats(times=True)
    assert limiter_429_share(stats) < 0.01, stats["status_counts"]
    tokens, per_s = stats["input_tokens"], itpm / 60
    times = sorted(stats["success_times"])
    assert times[-1] - times[0] < 1.5 * (tokens - per_s * burst) / per_s + 1.0


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_3_processes_sharing_state_stay_within_one_limit(
    simulator: Simulator, backend: str, tmp_path, request: pytest.FixtureRequest
) -> None:
    rpm, burst, processes, count = 2_400, 2.0, 3, 100
    state = str(tmp_path / "state") if backend == "sqlite" else request.getfixturevalue("redis_url")
    simulator.control.configure(limits=Limits(rpm=rpm, burst_seconds=burst))
    summaries = run_workers(
        simulator.base_url, state, processes, count, "--rpm", str(rpm), "--burst", str(burst)
    )
    assert [s["ok"] for s in summaries] == [count] * processes, summaries
    stats = simulator.control.stats(times=True)
    assert stats["successes"] == processes * count
    assert limiter_429_share(stats) < 0.01, stats["status_counts"]
    times = sorted(stats["success_times"])
    at_limit = (processes * count - rpm / 60 * burst) / (rpm / 60)
    assert times[-1] - times[0] > 0.6 * at_limit, "together they were held to ONE limit"


@pytest.mark.slow
async def test_4_total_outage_opens_the_breaker_and_the_rest_fails_fast(simulator: Simulator) -> None:
    simulator.control.set_faults(outage=500)
    threshold, concurrency, attempts = 5, 8, 4
    config = settings(
        simulator.base_url,
        breaker_threshold=threshold,
        breaker_open_s=60,
        max_attempts=attempts,
        max_concurrency=8,
    )
    records: list[CallRecord] = []
    events: list[object] = []
    started = time.monotonic()
    async with open_client(config, on_record=records.append, on_event=events.append) as client:
        results = await Runner(concurrency).run(client.call, [request(i) for i in range(200)], ordered=False)
    elapsed = time.monotonic() - started
    assert not any(r.ok for r in results)
    upstream = simulator.control.stats()["attempts"]
    assert upstream <= threshold + concurrency * attempts, "after opening, nothing more reached the upstream"
    fast = [r for r in results if isinstance(r.error, CircuitOpen) and r.record.attempts == 0]
    assert len(fast) >= 200 - concurrency, "all but the requests in flight never reached the upstream"
    message = str(fast[-1].error)
    assert f"circuit breaker '{MODEL}' is open" in message
    assert "last upstream error: ServerError: 500 api_error" in message
    assert any(getattr(e, "transition", None) == "opened" for e in events)
    assert elapsed < 30.0, "very generous: failing fast takes well under a second per request"


@pytest.mark.slow
async def test_4b_with_a_fallback_model_the_outage_is_answered_by_the_fallback(simulator: Simulator) -> None:
    simulator.control.set_faults(outage=500, models=[MODEL])  # only the primary is down
    threshold, concurrency, attempts = 5, 8, 4
    config = settings(
        simulator.base_url,
        fallback_model=FALLBACK,
        breaker_threshold=threshold,
        breaker_open_s=60,
        max_attempts=attempts,
        max_concurrency=concurrency,
    )
    async with open_client(config) as client:
        results = await Runner(concurrency).run(client.call, [request(i) for i in range(200)], ordered=False)
    assert [r.record.error for r in results if not r.ok] == []
    assert {(r.record.model, r.record.fallback, r.request.model) for r in results} == {
        (FALLBACK, True, FALLBACK)
    }
    stats = simulator.control.stats()
    assert stats["status_counts"].get("500", 0) <= threshold + concurrency, (
        "the broken primary was left alone"
    )
    assert stats["successes"] == 200
    assert stats["max_successes_per_request"] == 1


@pytest.mark.slow
async def test_5_retry_after_pauses_every_caller_once(simulator: Simulator) -> None:
    simulator.control.set_faults(schedule=[ScheduledFault("429", count=3, retry_after_s=3)])
    events: list[object] = []
    records: list[CallRecord] = []
    async with open_client(
        settings(simulator.base_url), on_record=records.append, on_event=events.append
    ) as client:
        results = await Runner(10).run(client.call, [request(i) for i in range(60)], ordered=False)
    assert all(r.ok for r in results)
    stats = simulator.control.stats(times=True)
    assert stats["status_counts"].get("429") == 3
    assert stats["attempts"] == 63, "each rate-limited request was retried exactly once"
    assert sum(r.rate_limited for r in records) == 3
    times = sorted(stats["success_times"])
    gaps = [b - a for a, b in itertools.pairwise(times)]
    long_gaps = [g for g in gaps if g > 1.0]
    assert len(long_gaps) == 1, "one shared pause, not a staggered series of retries"
    assert long_gaps[0] >= 2.9, "nothing was sent (and answered) during the pause"
    pauses = [e.cool_down_until for e in events if isinstance(e, RetryEvent)]
    assert len(pauses) == 3
    assert max(pauses) - min(pauses) < 0.5, "the three 429s asked for the same instant"
