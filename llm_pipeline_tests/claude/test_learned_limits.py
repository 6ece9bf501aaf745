"""Issue 15's acceptance list, against the simulator: nothing about the limits configured, the
stack learns them from the `anthropic-ratelimit-*` headers and runs at them.

Throughput is measured from the simulator's own success times, over the busy period (first to
last success): successes / (bucket + rate x busy period), 1.0 = every request the server's limit
and bucket allowed. Servers vary: limits, bucket depth (1 s, a few s, 60 s), latency, rounded
token counts, no headers at all, limits changed mid-run, several processes.

The simulator runs in a process of its own, as the API does: in this one, the client's fan-out of
a few hundred calls would hold its thread off the interpreter and delay when it counts them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from llm_pipeline.claude.limits import LimitsChanged, NoRateLimitHeaders
from llm_pipeline.simulator import (
    Latency,
    Limits,
    Simulator,
    SimulatorConfig,
    SimulatorProcess,
    max_in_window,
)
from llm_pipeline_tests.fixtures.claude_calls import learning_settings, request, run_learning, run_workers

pytestmark = pytest.mark.serial


@pytest.fixture
def simulator() -> Iterator[SimulatorProcess]:
    """A fresh simulator in its own process (no limits until a test configures them)."""
    with Simulator.spawn(SimulatorConfig(exit_after_s=600)) as sim:
        yield sim


def assert_few_limiter_429s(stats: dict, share: float = 0.01) -> None:
    """At most `share` of the attempts refused by the server's limiter; when more, says when they came."""
    refused = stats["limiter_429"] / max(1, stats["attempts"])
    first = min(stats["success_times"], default=0.0)
    when = [round(t - first, 3) for t in stats["limiter_429_times"][:40]]
    assert refused <= share, f"{stats['status_counts']}; limiter 429s at (s after the first answer) {when}"


def busy_ratio(times: list[float], rpm: float, burst_s: float) -> float:
    """Successes over the busy period / what the limit and its bucket allow over it."""
    times = sorted(times)
    rate = rpm / 60.0
    return len(times) / (rate * burst_s + rate * (times[-1] - times[0]))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rpm", "burst_s", "n", "rounded"),
    [
        (2_400, 1.0, 400, True),  # a bucket one second deep, token counts rounded as the API does
        (300, 60.0, 340, False),  # a whole minute deep: the burst is there to be used at once
    ],
)
async def test_nothing_configured_runs_at_the_servers_limit(
    simulator: SimulatorProcess, rpm: float, burst_s: float, n: int, rounded: bool
) -> None:
    simulator.control.configure(
        limits=Limits(rpm=rpm, itpm=100 * rpm * 1_000, otpm=20 * rpm * 1_000, burst_seconds=burst_s),
        latency=Latency(median_s=0.1, sigma=0.3),
        round_token_remaining=rounded,
    )
    events: list[object] = []
    results = await run_learning(
        learning_settings(simulator.base_url), [request(i) for i in range(n)], events
    )
    assert [r.record.error for r in results if not r.ok] == []
    stats = simulator.control.stats(times=True)
    assert_few_limiter_429s(stats)
    assert busy_ratio(stats["success_times"], rpm, burst_s) >= 0.9
    learned = [e.limits for e in events if isinstance(e, LimitsChanged) and e.reason == "headers"]
    assert learned[-1].rates[0] == rpm
    assert learned[-1].sources == ("headers", "headers", "headers")
    assert learned[-1].burst_s == pytest.approx(burst_s, rel=0.02)


@pytest.mark.slow
async def test_the_first_request_goes_alone_then_the_fan_out_starts(simulator: SimulatorProcess) -> None:
    """Nothing known yet: the first request's headers set the limits before anything else is sent
    (its answer comes a full latency before any other), then the fan-out is sized by Little's law:
    at 100/s and 1 s per call, far more than the 32 calls a fixed pool used to allow."""
    simulator.control.configure(
        limits=Limits(rpm=6_000, burst_seconds=1.0), latency=Latency(median_s=1.0, sigma=0.0)
    )
    results = await run_learning(learning_settings(simulator.base_url), [request(i) for i in range(300)])
    assert all(r.ok for r in results)
    stats = simulator.control.stats(times=True)
    times = sorted(stats["success_times"])
    assert times[1] - times[0] >= 0.9, "nothing else was sent before the first answer"
    assert 64 <= stats["max_in_flight"] <= 256
    assert_few_limiter_429s(stats)


@pytest.mark.slow
async def test_configured_too_high_learns_down(simulator: SimulatorProcess) -> None:
    rpm, burst_s = 1_200, 2.0
    simulator.control.configure(limits=Limits(rpm=rpm, burst_seconds=burst_s), latency=Latency(0.05, 0.3))
    events: list[object] = []
    config = learning_settings(simulator.base_url, rpm=10 * rpm, burst_seconds=30.0)
    results = await run_learning(config, [request(i) for i in range(200)], events)
    assert all(r.ok for r in results)
    stats = simulator.control.stats(times=True)
    assert_few_limiter_429s(stats)
    assert busy_ratio(stats["success_times"], rpm, burst_s) >= 0.9
    last = [e for e in events if isinstance(e, LimitsChanged)][-1].limits
    assert (last.rates[0], last.sources[0], last.burst_source) == (rpm, "headers", "headers")


@pytest.mark.slow
async def test_a_cap_below_the_account_is_where_it_stays(simulator: SimulatorProcess) -> None:
    cap, burst_s = 1_200, 1.0
    simulator.control.configure(limits=Limits(rpm=6_000, burst_seconds=burst_s), latency=Latency(0.05, 0.3))
    events: list[object] = []
    config = learning_settings(simulator.base_url, rpm=cap)
    results = await run_learning(config, [request(i) for i in range(200)], events)
    assert all(r.ok for r in results)
    stats = simulator.control.stats(times=True)
    times = stats["success_times"]
    for window in (0.2, 0.5, 1.0, 2.0, 5.0):
        assert max_in_window(times, window) <= cap / 60 * (burst_s + window) + 1, "never above the cap"
    assert busy_ratio(times, cap, burst_s) >= 0.9, "and at the cap, not below it"
    last = [e for e in events if isinstance(e, LimitsChanged)][-1].limits
    assert (last.rates[0], last.sources[0]) == (cap, "configured cap")


@pytest.mark.slow
async def test_limits_lowered_and_raised_mid_run_are_followed_within_seconds(
    simulator: SimulatorProcess,
) -> None:
    high, low, burst_s = 2_400, 600, 1.0
    simulator.control.reset()
    started = time.monotonic()
    simulator.control.configure(limits=Limits(rpm=high, burst_seconds=burst_s), latency=Latency(0.05, 0.3))
    run = asyncio.create_task(
        run_learning(learning_settings(simulator.base_url), [request(i) for i in range(360)])
    )
    await asyncio.sleep(3.0)
    lowered = time.monotonic() - started
    await asyncio.to_thread(simulator.control.configure, limits=Limits(rpm=low, burst_seconds=burst_s))
    await asyncio.sleep(4.0)
    raised = time.monotonic() - started
    await asyncio.to_thread(simulator.control.configure, limits=Limits(rpm=high, burst_seconds=burst_s))
    results = await run
    assert all(r.ok for r in results)
    stats = simulator.control.stats(times=True)
    times = sorted(stats["success_times"])
    slow = [t for t in times if lowered + 1.0 <= t < raised]
    assert len(slow) <= low / 60 * (burst_s + raised - lowered - 1.0) + 2, "held to the lowered limit"
    fast = [t for t in times if t >= raised + 1.5]
    assert len(fast) >= 0.8 * high / 60 * (fast[-1] - fast[0]), "back at the raised limit within seconds"
    assert_few_limiter_429s(stats, 0.03)


@pytest.mark.slow
@pytest.mark.parametrize("configured", [False, True])
async def test_a_server_without_headers_is_paced_at_the_caps_else_the_defaults(
    simulator: SimulatorProcess, configured: bool
) -> None:
    simulator.control.configure(limits=Limits(rpm=600, burst_seconds=60.0), rate_limit_headers=False)
    caps = {"rpm": 600, "itpm": 600_000, "otpm": 120_000} if configured else {}
    events: list[object] = []
    results = await run_learning(
        learning_settings(simulator.base_url, **caps), [request(i) for i in range(5)], events
    )
    assert all(r.ok for r in results)
    warnings = [e for e in events if isinstance(e, NoRateLimitHeaders)]
    assert len(warnings) == 1, "said once, loudly"
    text = str(warnings[0])
    assert "sent no anthropic-ratelimit-* headers" in text
    assert "LLM_PIPELINE_RPM" in text
    assert ("rpm 600 (configured cap)" if configured else "rpm 50 (default)") in text
    assert simulator.control.stats()["limiter_429"] == 0


@pytest.mark.slow
def test_four_processes_starting_together_on_a_shallow_bucket(simulator: SimulatorProcess, tmp_path) -> None:
    """The start of a parallel backfill: four processes, one SQLite state, nothing configured, a
    server bucket three seconds deep. Each learns the depth from its first answer (or from the
    shared state), so no one bursts 30 s of the rate into it."""
    rpm, burst_s, processes, count = 2_400, 3.0, 4, 120
    simulator.control.configure(limits=Limits(rpm=rpm, burst_seconds=burst_s), latency=Latency(0.05, 0.3))
    summaries = run_workers(simulator.base_url, str(tmp_path / "state"), processes, count, "--learn")
    assert [s["ok"] for s in summaries] == [count] * processes, summaries
    stats = simulator.control.stats(times=True)
    assert_few_limiter_429s(stats)
    assert busy_ratio(stats["success_times"], rpm, burst_s) >= 0.9


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_processes_sharing_state_all_use_what_one_of_them_learned(
    simulator: SimulatorProcess, backend: str, tmp_path, request: pytest.FixtureRequest
) -> None:
    """One process learns 1,200 RPM; then the server stops sending headers (a gateway in front),
    and three more processes on the same state pace at what was learned: from the shared state,
    no warning, at the limit. Without it they would crawl at the default 50 RPM."""
    rpm, burst_s = 1_200, 2.0
    state = str(tmp_path / "state") if backend == "sqlite" else request.getfixturevalue("redis_url")
    simulator.control.configure(limits=Limits(rpm=rpm, burst_seconds=burst_s), latency=Latency(0.05, 0.3))
    (first,) = run_workers(simulator.base_url, state, 1, 10, "--learn", prefix="a")
    assert first["sources"][-1] == ["headers", "not limited", "not limited"]
    simulator.control.reset()
    simulator.control.configure(
        limits=Limits(rpm=rpm, burst_seconds=burst_s), latency=Latency(0.05, 0.3), rate_limit_headers=False
    )
    summaries = run_workers(simulator.base_url, state, 3, 80, "--learn", prefix="b")
    assert [s["ok"] for s in summaries] == [80] * 3, summaries
    for summary in summaries:
        assert summary["no_headers"] == 0
        assert "from the shared state" in summary["limits"][0]
        assert summary["sources"][0] == ["headers", "not limited", "not limited"]
    stats = simulator.control.stats(times=True)
    assert_few_limiter_429s(stats)
    assert busy_ratio(stats["success_times"], rpm, burst_s) >= 0.85
