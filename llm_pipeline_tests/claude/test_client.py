"""The client against the simulator: records, error mapping, retries, timeouts, the ledger (no
second payment), fallback on an open breaker, and the live-task bound through the whole stack."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from llm_pipeline.claude import (
    AuthError,
    BadRequest,
    CallRecord,
    ConnectionFailed,
    LLMError,
    Overloaded,
    RateLimited,
    Runner,
    ServerError,
    Timeout,
    open_client,
)
from llm_pipeline.claude.metrics import summarize
from llm_pipeline.claude.pricing import cost
from llm_pipeline.claude.retry import RetryEvent
from llm_pipeline.claude.state import open_state
from llm_pipeline.simulator import Latency, Limits, ScheduledFault, Simulator, fingerprint
from llm_pipeline_tests.fixtures.claude_calls import MODEL, request, settings


async def test_a_call_returns_the_message_and_one_full_record(simulator: Simulator) -> None:
    records: list[CallRecord] = []
    async with open_client(settings(simulator.base_url), on_record=records.append) as client:
        result = await client.call(request(1))
    assert result.ok
    assert result.message is not None
    record = result.record
    assert records == [record]
    usage = result.message.usage
    assert (record.key, record.model, record.outcome, record.attempts) == ("doc-1", MODEL, "ok", 1)
    assert (record.input_tokens, record.output_tokens) == (usage.input_tokens, usage.output_tokens)
    assert record.cost_usd == pytest.approx(cost(MODEL, usage))
    assert record.request_id is not None
    assert record.request_id.startswith("req_")
    assert record.stop_reason == result.message.stop_reason
    assert not record.cached
    assert not record.fallback


@pytest.mark.parametrize(
    ("kind", "error_type", "status"),
    [
        ("429", RateLimited, 429),
        ("500", ServerError, 500),
        ("529", Overloaded, 529),
        ("drop", ConnectionFailed, None),
    ],
)
async def test_sdk_errors_become_typed_errors(
    simulator: Simulator, kind: str, error_type: type[LLMError], status: int | None
) -> None:
    simulator.control.set_faults(schedule=[ScheduledFault(kind, count=1, retry_after_s=2)])
    async with open_client(settings(simulator.base_url, max_attempts=1)) as client:
        result = await client.call(request(1))
    assert isinstance(result.error, error_type)
    assert result.error.status_code == status
    assert result.record.error_type == error_type.__name__
    if status is not None:
        assert result.error.request_id is not None
    if kind == "429":
        assert result.error.retry_after == 2.0
        assert result.record.rate_limited == 1


async def test_retries_until_success_and_counts_attempts(simulator: Simulator) -> None:
    simulator.control.set_faults(
        schedule=[ScheduledFault("500", count=2), ScheduledFault("529", after=2, count=1)]
    )
    async with open_client(settings(simulator.base_url)) as client:
        result = await client.call(request(1))
    assert result.ok
    assert result.record.attempts == 4
    assert simulator.control.stats()["attempts"] == 4


async def test_a_hung_request_times_out_and_is_retried(simulator: Simulator) -> None:
    simulator.control.set_faults(schedule=[ScheduledFault("hang", count=1)], hang_s=30)
    async with open_client(settings(simulator.base_url, timeout_s=0.5)) as client:
        result = await client.call(request(1))
    assert result.ok
    assert result.record.attempts == 2


async def test_a_timeout_that_never_ends_is_a_timeout_error(simulator: Simulator) -> None:
    simulator.control.set_faults(p_hang=1.0, hang_s=30)
    async with open_client(settings(simulator.base_url, timeout_s=0.3, max_attempts=2)) as client:
        result = await client.call(request(1))
    assert isinstance(result.error, Timeout)
    assert result.record.attempts == 2


async def test_bad_key_is_systemic_and_never_retried(simulator: Simulator) -> None:
    simulator.control.configure(api_key="sk-right")
    async with open_client(settings(simulator.base_url, api_key="sk-wrong")) as client:
        result = await client.call(request(1))
    assert isinstance(result.error, AuthError)
    assert result.error.systemic
    assert result.record.attempts == 1
    assert "sk-wrong" not in str(result.error)
    assert "sk-wrong" not in repr(client.settings)


async def test_a_bad_request_is_not_retried_and_does_not_trip_the_breaker(simulator: Simulator) -> None:
    async with open_client(settings(simulator.base_url, breaker_threshold=2)) as client:
        results = [await client.call(request(i, model="claude-nonexistent-1")) for i in range(4)]
        assert all(isinstance(r.error, BadRequest) and r.error.status_code == 404 for r in results)
        assert [r.record.attempts for r in results] == [1, 1, 1, 1]
        assert (await client.call(request(9))).ok


async def test_a_stored_answer_is_never_paid_twice(simulator: Simulator, tmp_path) -> None:
    state = str(tmp_path / "state")
    requests = [request(i) for i in range(50)]
    async with open_client(settings(simulator.base_url, state=state)) as client:
        first = await Runner(8).run(client.call, requests)
    assert simulator.control.stats()["successes"] == 50
    records: list[CallRecord] = []
    async with open_client(settings(simulator.base_url, state=state), on_record=records.append) as client:
        again = await Runner(8).run(client.call, requests)
    stats = simulator.control.stats()
    assert stats["attempts"] == 50, "the second run made no API call"
    assert stats["max_successes_per_request"] == 1
    assert [r.message for r in again] == [r.message for r in first]
    assert all(r.cached and r.cost_usd == 0.0 and r.attempts == 0 for r in records)
    summary = summarize(records)
    assert (summary.cached, summary.input_tokens, summary.cost_usd) == (50, 0, 0.0)


async def test_refresh_skips_the_ledger_but_rewrites_it(simulator: Simulator, tmp_path) -> None:
    state = str(tmp_path / "state")
    async with open_client(settings(simulator.base_url, state=state)) as client:
        await client.call(request(1))
    async with open_client(settings(simulator.base_url, state=state, refresh=True)) as client:
        refreshed = await client.call(request(1))
    assert not refreshed.record.cached
    assert simulator.control.stats()["attempts"] == 2


async def test_open_breaker_sends_calls_to_the_fallback_and_rows_say_so(
    simulator: Simulator, tmp_path
) -> None:
    """The primary's breaker (shared through the state dir) is open; the fallback answers."""
    state = str(tmp_path / "state")
    simulator.control.set_faults(outage=500)
    trip = settings(simulator.base_url, state=state, breaker_threshold=3, breaker_open_s=120, max_attempts=1)
    async with open_client(trip) as client:
        tripped = [await client.call(request(i, prefix="trip")) for i in range(5)]
    assert [type(r.error).__name__ for r in tripped] == ["ServerError"] * 3 + ["CircuitOpen"] * 2
    simulator.control.clear_faults()
    before = simulator.control.stats()["attempts"]
    routed = settings(simulator.base_url, state=state, fallback_model="claude-sonnet-5-5", breaker_open_s=120)
    async with open_client(routed) as client:
        results = await Runner(4).run(client.call, [request(i) for i in range(20)])
    assert all(r.ok for r in results)
    assert {(r.record.model, r.record.fallback) for r in results} == {("claude-sonnet-5-5", True)}
    assert {r.request.model for r in results} == {"claude-sonnet-5-5"}
    stats = simulator.control.stats()
    assert stats["attempts"] - before == 20, "no call went to the broken primary"
    answered = {fingerprint(dict(r.request.params)) for r in results}
    assert all(stats["per_request"].get(f) == 1 for f in answered)


async def test_answers_from_the_fallback_are_not_paid_again_on_the_primary(
    simulator: Simulator, tmp_path
) -> None:
    state = str(tmp_path / "state")
    routed = settings(simulator.base_url, state=state, fallback_model="claude-sonnet-5-5")
    async with open_client(settings(simulator.base_url, state=state)) as client:
        await client.call(request(1, model="claude-sonnet-5-5"))
    async with open_client(routed) as client:
        result = await client.call(request(1))
    assert result.record.cached
    assert result.record.model == "claude-sonnet-5-5"
    assert result.record.fallback
    assert simulator.control.stats()["attempts"] == 1


async def test_live_tasks_stay_bounded_through_the_whole_stack(simulator: Simulator) -> None:
    """N workers plus, with the aiohttp transport, one body-writer task per in-flight request
    (`ClientRequest.write_bytes`): bounded by the concurrency, never by the number of items."""
    concurrency, peak = 32, 0

    async with open_client(settings(simulator.base_url, max_concurrency=concurrency)) as client:

        async def call(i: int):
            nonlocal peak
            peak = max(peak, len(asyncio.all_tasks()))
            return await client.call(request(i))

        ok = 0
        async for result in Runner(client.settings.max_concurrency).map(call, range(2_000), ordered=False):
            ok += result.ok
    assert ok == 2_000
    assert peak <= 2 * concurrency + 3, f"{peak} live tasks"


async def test_headers_teach_the_limiter_about_traffic_it_did_not_book(
    simulator: Simulator, anthropic_client
) -> None:
    """Another client of the same account drained the bucket; `observe` catches up from the
    `anthropic-ratelimit-requests-remaining` header after one call instead of bursting into 429s."""
    rpm, burst = 600, 5.0  # 10/s, a bucket of 50
    simulator.control.configure(limits=Limits(rpm=rpm, burst_seconds=burst))
    for i in range(45):  # someone else's traffic, outside our limiter
        await anthropic_client.messages.create(**request(i, prefix="other").params)
    async with open_client(settings(simulator.base_url, rpm=rpm, burst_seconds=burst)) as client:
        assert (await client.call(request(0))).ok
        results = await Runner(16).run(client.call, [request(i) for i in range(1, 30)])
    assert all(r.ok for r in results)
    assert simulator.control.stats()["limiter_429"] <= 1


async def test_a_429_carries_the_rate_limit_headers_of_the_servers_limiter(simulator: Simulator) -> None:
    """`RateLimited.limits`: the buckets a limiter 429 reports; an injected 429 carries none."""
    simulator.control.configure(limits=Limits(rpm=60, burst_seconds=1.0))  # a bucket of 1
    async with open_client(settings(simulator.base_url, max_attempts=1)) as client:
        assert (await client.call(request(1))).ok
        limited = await client.call(request(2))
        simulator.control.configure(limits=Limits())
        simulator.control.set_faults(schedule=[ScheduledFault("429", count=1)])
        injected = await client.call(request(3))
    assert isinstance(limited.error, RateLimited)
    assert limited.error.limits["anthropic-ratelimit-requests-remaining"] == "0"
    assert isinstance(injected.error, RateLimited)
    assert injected.error.limits == {}


async def test_a_stray_429_while_the_server_reports_room_pauses_only_its_caller(
    simulator: Simulator,
) -> None:
    """Two 429s without rate-limit headers amid answers that report room: each rate-limited caller
    waits its own retry-after while everyone else carries on, so the only long gap in the
    answers comes after every other document (a shared pause would put it in the middle)."""
    simulator.control.configure(limits=Limits(rpm=600_000, burst_seconds=60.0))  # never binding
    simulator.control.set_faults(schedule=[ScheduledFault("429", after=8, count=2, retry_after_s=2)])
    events: list[object] = []
    async with open_client(
        settings(simulator.base_url, rpm=600_000, burst_seconds=60.0), on_event=events.append
    ) as client:
        results = await Runner(4).run(client.call, [request(i) for i in range(40)], ordered=False)
    assert all(r.ok for r in results)
    retries = [e for e in events if isinstance(e, RetryEvent)]
    assert [(e.error_type, e.wait_s, e.cool_down_until) for e in retries] == [("RateLimited", 2.0, None)] * 2
    stats = simulator.control.stats(times=True)
    assert stats["attempts"] == 42
    times = sorted(stats["success_times"])
    long_gaps = [i for i, (a, b) in enumerate(itertools.pairwise(times)) if b - a > 1.0]
    assert long_gaps == [37], "38 answers, then the two callers that waited out their 429"


async def test_a_429_from_the_servers_limiter_pauses_every_caller(simulator: Simulator) -> None:
    simulator.control.configure(limits=Limits(rpm=6_000, burst_seconds=1.0), latency=Latency(median_s=0.2))
    events: list[object] = []
    async with open_client(settings(simulator.base_url), on_event=events.append) as client:
        assert (await client.call(request(0))).ok  # learns 6,000 RPM, 100 deep
        simulator.control.configure(limits=Limits(rpm=600, burst_seconds=1.0))  # now 10/s, 10 deep
        results = await Runner(16).run(client.call, [request(i) for i in range(1, 21)], ordered=False)
    assert all(r.ok for r in results)
    limited = [e for e in events if isinstance(e, RetryEvent) and e.error_type == "RateLimited"]
    assert limited, "the server's limiter turned some away"
    assert all(e.cool_down_until is not None for e in limited), "every one of them paused everyone"


async def test_an_attempt_the_servers_limiter_turned_away_keeps_its_booking(simulator: Simulator) -> None:
    """A 429 whose headers say the account is out of room: giving its booking back would refill what
    the server just called empty (with processes that each believe they own the limit, that fed a
    429 storm), so nothing is held back for the next booking. Seen when the retry is announced:
    after the turned-away attempt was settled, before the retry books."""
    simulator.control.configure(limits=Limits(rpm=600, burst_seconds=2.0), latency=Latency(median_s=0.2))
    held: list[float] = []
    box: dict[str, Any] = {}

    def on_event(event: object) -> None:
        if isinstance(event, RetryEvent):
            held.append(box["client"].limiter_for(MODEL).credit[0])

    async with open_client(settings(simulator.base_url), on_event=on_event) as client:
        box["client"] = client
        assert (await client.call(request(1))).ok  # learns 600 RPM, 2 s deep
        simulator.control.configure(limits=Limits(rpm=30, burst_seconds=2.0))  # one request, then one per 2 s
        both = await asyncio.gather(client.call(request(2)), client.call(request(3)))
        assert all(r.ok for r in both)
    assert simulator.control.stats()["limiter_429"] == 1
    assert held == [0.0], "no request slot given back after the server's limiter said the bucket is empty"


@pytest.mark.parametrize("kind", ["429", "500", "529"])
async def test_an_attempt_the_server_turned_away_gives_its_whole_booking_back(
    simulator: Simulator, kind: str, tmp_path
) -> None:
    """The server answered with an error status for a reason other than its rate limiter (these
    injected 429s carry no rate-limit headers): nothing was generated or counted, so the request
    slot comes back too (a dropped connection keeps its booking: the server may have worked)."""
    simulator.control.set_faults(schedule=[ScheduledFault(kind, count=1, retry_after_s=0)])
    config = settings(simulator.base_url, rpm=60.0, burst_seconds=10.0, state=str(tmp_path))
    async with open_client(config) as client:
        assert (await client.call(request(1))).ok
    other = open_state(str(tmp_path), time.monotonic)  # another process's view (the shared time base)
    try:
        seen = await other.limiter.peek(f"{config.endpoint}/{MODEL}")
    finally:
        await other.aclose()
    assert 0.5 < seen.backlogs[0] <= 1.0, "one request slot (1 s at 60 RPM) booked, not two"
