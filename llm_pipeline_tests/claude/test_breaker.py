"""The breaker's state machine through `Breaker` (memory state, virtual clock): what counts,
when it opens, fail-fast errors, exactly one half-open probe under concurrency, and events."""

from __future__ import annotations

import asyncio

import pytest

from llm_pipeline.claude.breaker import PROBE_LEASE_S, PROBE_POLL_S, Breaker, BreakerEvent, Pass
from llm_pipeline.claude.errors import (
    AuthError,
    BadRequest,
    CircuitOpen,
    ConnectionFailed,
    LLMError,
    Overloaded,
    RateLimited,
    ServerError,
    Timeout,
)
from llm_pipeline.claude.state.memory import MemoryBackend
from llm_pipeline_tests.fixtures.fake_clock import FakeClock

T0 = 1_000_000.0


def make_breaker(clock: FakeClock, events: list | None = None, **overrides: float) -> Breaker:
    settings = {"threshold": 3, "window_s": 10.0, "open_s": 5.0, "probe_ttl_s": 30.0} | overrides
    return Breaker(
        "claude-m",
        MemoryBackend(clock.now).breaker,
        on_event=None if events is None else events.append,
        clock=clock,
        **settings,
    )


async def trip(breaker: Breaker, n: int = 3, error: LLMError | None = None) -> None:
    for i in range(n):
        granted = await breaker.admit()
        await breaker.record(granted, error or ServerError(f"500 api_error: boom {i}", status_code=500))


@pytest.mark.parametrize(
    ("error", "counts"),
    [
        (ServerError("x"), True),
        (Overloaded("x"), True),
        (Timeout("x"), True),
        (ConnectionFailed("x"), True),
        (RateLimited("x"), False),  # the limiter's business
        (BadRequest("x"), False),  # the request's fault
        (AuthError("x"), False),
    ],
)
def test_which_errors_count(error: LLMError, counts: bool) -> None:
    assert Breaker.counts(error) is counts


async def test_opens_after_threshold_and_fails_fast_naming_breaker_and_last_error() -> None:
    clock, events = FakeClock(T0), []
    breaker = make_breaker(clock, events)
    await trip(breaker)
    with pytest.raises(CircuitOpen) as caught:
        await breaker.check()
    assert caught.value.model == "claude-m"
    assert "'claude-m' is open" in str(caught.value)
    assert "last upstream error: ServerError: 500 api_error: boom 2 status=500" in str(caught.value)
    assert caught.value.last_error == "ServerError: 500 api_error: boom 2 status=500"
    assert [e.transition for e in events] == ["opened"]


async def test_429s_and_permanent_errors_never_open_it() -> None:
    clock = FakeClock(T0)
    breaker = make_breaker(clock)
    await trip(breaker, 5, RateLimited("429", status_code=429))
    await trip(breaker, 5, BadRequest("400", status_code=400))
    await breaker.check()
    assert not (await breaker.admit()).probe


async def test_a_success_clears_the_count_so_scattered_5xx_never_open_it() -> None:
    clock = FakeClock(T0)
    breaker = make_breaker(clock, threshold=3)
    for _ in range(10):
        await trip(breaker, 2)
        await breaker.record(await breaker.admit(), None)
    await breaker.check()
    await trip(breaker, 3)
    with pytest.raises(CircuitOpen):
        await breaker.check()


async def test_failures_spread_beyond_the_window_do_not_open_it() -> None:
    clock = FakeClock(T0)
    breaker = make_breaker(clock, window_s=10.0)
    for _ in range(4):
        await trip(breaker, 1)
        await clock.advance(6.0)
    await breaker.check()


async def test_half_open_admits_exactly_one_probe_among_many_callers() -> None:
    clock, events = FakeClock(T0), []
    breaker = make_breaker(clock, events)
    await trip(breaker)
    await clock.advance(5.0)
    await breaker.check()  # half-open: a look is allowed and claims nothing

    async def attempt() -> str:
        try:
            granted = await breaker.admit()
        except CircuitOpen as exc:
            return str(exc)
        return "probe" if granted.probe else "plain"

    outcomes = await asyncio.gather(*(attempt() for _ in range(50)))
    assert outcomes.count("probe") == 1
    rejected = [o for o in outcomes if o != "probe"]
    assert len(rejected) == 49
    assert all("a probe is in flight" in o for o in rejected)
    await breaker.record(Pass(probe=True), None)
    assert [e.transition for e in events] == ["opened", "closed"]
    assert not (await breaker.admit()).probe


async def test_half_open_claims_its_probe_even_after_a_fresh_check() -> None:
    """`admit(checked)` skips the second read only for a closed breaker; half-open still claims."""
    clock = FakeClock(T0)
    breaker = make_breaker(clock)
    await trip(breaker)
    await clock.advance(5.0)
    checks = [await breaker.check() for _ in range(20)]
    assert {c.state for c in checks} == {"half_open"}

    async def attempt(checked) -> str:
        try:
            return "probe" if (await breaker.admit(checked)).probe else "plain"
        except CircuitOpen:
            return "rejected"

    outcomes = await asyncio.gather(*(attempt(c) for c in checks))
    assert sorted(outcomes) == ["probe"] + ["rejected"] * 19


async def test_a_closed_check_is_reused_by_admit_without_reading_again() -> None:
    """The documented window: a breaker opening between `check` and `admit` (no limiter wait in
    between) lets that one attempt go; a plain `admit` would have read the new state."""
    clock = FakeClock(T0)
    backend = MemoryBackend(clock.now).breaker
    ours = Breaker("claude-m", backend, threshold=3, window_s=10.0, open_s=5.0, probe_ttl_s=30.0)
    theirs = Breaker("claude-m", backend, threshold=3, window_s=10.0, open_s=5.0, probe_ttl_s=30.0)
    checked = await ours.check()
    await trip(theirs)  # another caller opens it meanwhile
    granted = await ours.admit(checked)
    assert granted == Pass(probe=False, dirty=False)
    with pytest.raises(CircuitOpen):
        await ours.admit()


async def test_failed_probe_reopens_for_another_open_period() -> None:
    clock, events = FakeClock(T0), []
    breaker = make_breaker(clock, events)
    await trip(breaker)
    await clock.advance(5.0)
    probe = await breaker.admit()
    assert probe.probe
    await breaker.record(probe, Overloaded("529 overloaded_error", status_code=529))
    with pytest.raises(CircuitOpen, match="529 overloaded_error"):
        await breaker.check()
    await clock.advance(4.9)
    with pytest.raises(CircuitOpen):
        await breaker.admit()
    await clock.advance(0.1)
    assert (await breaker.admit()).probe
    assert [e.transition for e in events] == ["opened", "reopened"]


async def test_probe_meeting_a_429_counts_as_upstream_alive() -> None:
    clock = FakeClock(T0)
    breaker = make_breaker(clock)
    await trip(breaker)
    await clock.advance(5.0)
    probe = await breaker.admit()
    await breaker.record(probe, RateLimited("429", status_code=429))
    assert not (await breaker.admit()).probe


async def test_cancelled_probe_releases_slot_and_crashed_probe_expires() -> None:
    clock = FakeClock(T0)
    breaker = make_breaker(clock, probe_ttl_s=30.0)
    await trip(breaker)
    await clock.advance(5.0)
    probe = await breaker.admit()
    await breaker.release(probe)
    crashed = await breaker.admit()
    assert crashed.probe, "a released slot is free at once"
    with pytest.raises(CircuitOpen):
        await breaker.admit()
    await clock.advance(30.0)
    assert (await breaker.admit()).probe, "a prober that never reported back loses the slot after its TTL"


async def test_stragglers_succeeding_while_open_do_not_close_it() -> None:
    clock = FakeClock(T0)
    breaker = make_breaker(clock)
    await trip(breaker)
    await breaker.record(Pass(probe=False), None)
    with pytest.raises(CircuitOpen):
        await breaker.check()


def test_breaker_event_is_frozen_and_repr_is_readable() -> None:
    event = BreakerEvent("m", "opened", "boom")
    with pytest.raises(AttributeError):
        event.name = "x"  # type: ignore[misc]
    assert "threshold=3/10.0s" in repr(make_breaker(FakeClock(T0)))


async def test_waiting_callers_follow_the_probe_instead_of_failing() -> None:
    """Regression (issue 14): in half-open every caller but the prober got CircuitOpen (systemic),
    the run cancelled everything, the probe with it, and the breaker never closed. Callers with
    nowhere else to go now wait for the probe's verdict; one probe closes the breaker for all."""
    clock, events = FakeClock(T0), []
    breaker = make_breaker(clock, events)
    await trip(breaker)
    await clock.advance(5.0)
    probe = await breaker.admit(wait=True)
    assert probe.probe
    waiters = [asyncio.create_task(breaker.admit(wait=True)) for _ in range(20)]
    await clock.advance(3 * PROBE_POLL_S)
    assert not any(w.done() for w in waiters), "they wait while the probe is in flight"
    await breaker.record(probe, None)
    await clock.advance(PROBE_POLL_S)
    passes = await asyncio.gather(*waiters)
    assert passes == [Pass(probe=False, dirty=False)] * 20
    assert [e.transition for e in events] == ["opened", "closed"]


async def test_waiting_callers_fail_fast_when_the_probe_fails() -> None:
    clock = FakeClock(T0)
    breaker = make_breaker(clock)
    await trip(breaker)
    await clock.advance(5.0)
    probe = await breaker.admit(wait=True)
    waiters = [asyncio.create_task(breaker.check(wait=True)) for _ in range(5)]
    await clock.advance(PROBE_POLL_S)
    await breaker.record(probe, ServerError("500 api_error: still down", status_code=500))
    await clock.advance(PROBE_POLL_S)
    outcomes = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(o, CircuitOpen) and "still down" in str(o) for o in outcomes)
    with pytest.raises(CircuitOpen, match="is open"):
        await breaker.check(wait=True)  # open (not half-open): waiting is not for an open breaker


async def test_a_cancelled_probe_hands_its_slot_to_a_waiting_caller_at_once() -> None:
    clock = FakeClock(T0)
    breaker = make_breaker(clock)
    await trip(breaker)
    await clock.advance(5.0)
    probe = await breaker.admit(wait=True)
    waiter = asyncio.create_task(breaker.admit(wait=True))
    await clock.advance(PROBE_POLL_S)
    await breaker.release(probe)  # the prober was cancelled
    await clock.advance(PROBE_POLL_S)
    assert (await waiter).probe, "the waiter became the prober after one poll"


async def test_a_dead_probers_slot_lapses_within_one_lease_while_a_live_one_is_renewed() -> None:
    clock = FakeClock(T0)
    breaker = make_breaker(clock, probe_ttl_s=PROBE_LEASE_S)
    await trip(breaker)
    await clock.advance(5.0)
    live = await breaker.admit(wait=True)
    keeper = breaker.keep_probe(live)
    assert keeper is not None
    waiter = asyncio.create_task(breaker.admit(wait=True))
    await clock.advance(3 * PROBE_LEASE_S)
    assert not waiter.done(), "a renewed probe keeps its slot however long its call takes"
    keeper.cancel()  # its process dies: nobody renews
    await clock.advance(PROBE_LEASE_S + PROBE_POLL_S)
    assert (await waiter).probe, "the dead prober's slot lapsed within one lease"


async def test_a_caller_with_a_fallback_does_not_wait() -> None:
    clock = FakeClock(T0)
    breaker = make_breaker(clock)
    await trip(breaker)
    await clock.advance(5.0)
    await breaker.admit(wait=True)
    with pytest.raises(CircuitOpen, match="a probe is in flight"):
        await breaker.admit(wait=False)
    assert breaker.keep_probe(Pass(probe=False)) is None, "only a probe renews anything"
