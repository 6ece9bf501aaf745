"""Pins retry.py: Retry-After parsing and backoff as tables, jitter bounds and mean, what is retried,
and the shared cool-down after a 429 (the retrying caller itself does not sleep)."""

from __future__ import annotations

import random

import pytest

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
from llm_pipeline.claude.retry import RetryEvent, RetryPolicy, backoff_ceiling, parse_retry_after
from llm_pipeline_tests.fixtures.fake_clock import FakeClock

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "3"}, 3.0),
        ({"Retry-After": "2.5"}, 2.5),  # nonstandard float, any case
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # ms wins, as in the SDK
        ({"retry-after-ms": "junk", "retry-after": "9"}, 9.0),
        ({"retry-after": "Tue, 14 Nov 2023 22:13:50 GMT"}, 30.0),  # HTTP date, relative to now
        ({"retry-after": "Tue, 14 Nov 2023 22:13:10 GMT"}, -10.0),  # in the past: the caller ignores it
        ({"retry-after": "soon"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_parse_retry_after(headers: dict | None, expected: float | None) -> None:
    assert parse_retry_after(headers, NOW) == expected


@pytest.mark.parametrize(
    ("attempt", "base", "cap", "expected"),
    [
        (1, 0.5, 30.0, 0.5),
        (2, 0.5, 30.0, 1.0),
        (4, 0.5, 30.0, 4.0),
        (7, 0.5, 30.0, 30.0),  # 32 capped
        (0, 0.5, 30.0, 0.5),
        (1_025, 0.5, 30.0, 30.0),  # 2.0 ** 1024 overflows a float
        (10**9, 1.0, 8.0, 8.0),  # stamina's test_backoff_no_overflow_on_high_attempt_numbers
    ],
)
def test_backoff_ceiling_caps_and_never_overflows(
    attempt: int, base: float, cap: float, expected: float
) -> None:
    assert backoff_ceiling(attempt, base, cap) == expected


@pytest.mark.parametrize("attempt", [1, 3, 6, 50])
def test_full_jitter_bounds_and_mean(attempt: int) -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=8.0, rng=random.Random(1234))
    ceiling = backoff_ceiling(attempt, 0.5, 8.0)
    draws = [policy.backoff(attempt) for _ in range(1_000)]
    assert all(0.0 <= d <= ceiling for d in draws)
    assert sum(draws) / len(draws) == pytest.approx(ceiling / 2, rel=0.1)
    assert max(draws) > 0.9 * ceiling, "full jitter spans the whole range"


def failing(errors: list[BaseException], result: str = "ok"):
    """A test double for one call: raises the given errors in turn, then returns `result`."""
    calls = {"n": 0}

    async def fn() -> str:
        calls["n"] += 1
        if errors:
            raise errors.pop(0)
        return result

    return fn, calls


@pytest.mark.parametrize("error_type", [Overloaded, ServerError, Timeout, ConnectionFailed])
async def test_retries_transient_errors_with_jittered_backoff(error_type: type[LLMError]) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    policy = RetryPolicy(max_attempts=5, base_s=1.0, cap_s=4.0, rng=random.Random(7), sleep=sleep)
    fn, calls = failing([error_type("x"), error_type("x"), error_type("x")])
    assert await policy.call(fn) == "ok"
    assert calls["n"] == 4
    assert len(slept) == 3
    assert [s <= c for s, c in zip(slept, [1.0, 2.0, 4.0], strict=True)] == [True] * 3


@pytest.mark.parametrize("error", [BadRequest("bad"), AuthError("key"), CircuitOpen("open", model="m")])
async def test_never_retries_permanent_errors_or_open_breaker(error: LLMError) -> None:
    policy = RetryPolicy(max_attempts=5, sleep=pytest.fail)
    fn, calls = failing([error])
    with pytest.raises(type(error)):
        await policy.call(fn)
    assert calls["n"] == 1


async def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    async def sleep(seconds: float) -> None:
        return None

    policy = RetryPolicy(max_attempts=3, sleep=sleep)
    fn, calls = failing([ServerError("1"), ServerError("2"), ServerError("3"), ServerError("4")])
    with pytest.raises(ServerError, match="3"):
        await policy.call(fn)
    assert calls["n"] == 3


async def test_server_retry_after_is_obeyed_and_clamped() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    policy = RetryPolicy(max_attempts=3, max_retry_after_s=60.0, sleep=sleep)
    fn, _ = failing([Overloaded("busy", retry_after=7.0), ServerError("x", retry_after=3_600.0)])
    assert await policy.call(fn) == "ok"
    assert slept == [7.0, 60.0]


async def test_429_cools_the_shared_limiter_down_instead_of_sleeping() -> None:
    clock = FakeClock(NOW)
    events: list[RetryEvent] = []
    pauses: list[float] = []

    async def cool_down(until: float) -> None:
        pauses.append(until)

    policy = RetryPolicy(max_attempts=3, clock=clock, on_event=events.append)
    fn, calls = failing([RateLimited("slow down", retry_after=3.0, status_code=429)])
    assert await policy.call(fn, key="doc-1", model="m", cool_down=cool_down) == "ok"
    assert calls["n"] == 2
    assert pauses == [NOW + 3.0], "one shared pause until now + retry-after"
    assert clock.sleeps == [0.0], "the retrying caller re-reserves at once; the limiter does the waiting"
    assert events == [
        RetryEvent(
            key="doc-1",
            model="m",
            attempt=1,
            error_type="RateLimited",
            error="RateLimited: slow down status=429",
            wait_s=0.0,
            cool_down_until=NOW + 3.0,
        )
    ]


async def test_429_without_retry_after_cools_down_for_a_backoff_draw() -> None:
    clock = FakeClock(NOW)
    pauses: list[float] = []

    async def cool_down(until: float) -> None:
        pauses.append(until)

    policy = RetryPolicy(max_attempts=2, base_s=2.0, cap_s=2.0, rng=random.Random(3), clock=clock)
    fn, _ = failing([RateLimited("slow down")])
    await policy.call(fn, cool_down=cool_down)
    assert len(pauses) == 1
    assert NOW <= pauses[0] <= NOW + 2.0


def test_retry_event_is_frozen() -> None:
    event = RetryEvent("k", "m", 1, "ServerError", "x", 0.5)
    with pytest.raises(AttributeError):
        event.attempt = 2  # type: ignore[misc]


async def test_first_attempt_runs_outside_tenacity_and_is_replayed_as_attempt_one() -> None:
    """The fast path (first attempt before tenacity) keeps tenacity's numbering, waits and events."""
    slept: list[float] = []
    events: list[RetryEvent] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    policy = RetryPolicy(
        max_attempts=3, base_s=1.0, cap_s=8.0, rng=random.Random(5), sleep=sleep, on_event=events.append
    )
    first, second = ServerError("first"), Overloaded("second")
    fn, calls = failing([first, second])
    assert await policy.call(fn, key="k", model="m") == "ok"
    assert calls["n"] == 3, "the failed first attempt is replayed, not sent again"
    assert [e.attempt for e in events] == [1, 2]
    assert [e.error for e in events] == [str(first), str(second)]
    expected = random.Random(5)
    assert slept == [expected.uniform(0.0, 1.0), expected.uniform(0.0, 2.0)]


async def test_one_attempt_policy_raises_the_first_error_itself() -> None:
    policy = RetryPolicy(max_attempts=1, sleep=pytest.fail)
    error = ServerError("once")
    fn, calls = failing([error])
    with pytest.raises(ServerError) as raised:
        await policy.call(fn)
    assert raised.value is error
    assert calls["n"] == 1


async def test_errors_outside_the_hierarchy_propagate_unretried() -> None:
    policy = RetryPolicy(max_attempts=5, sleep=pytest.fail)
    fn, calls = failing([KeyError("bug")])
    with pytest.raises(KeyError):
        await policy.call(fn)
    assert calls["n"] == 1


async def test_a_429_ruled_not_shared_is_waited_out_by_its_own_caller() -> None:
    """A stray 429 (the server keeps reporting room) must not hold the whole account still."""
    clock = FakeClock(NOW)
    events: list[RetryEvent] = []
    pauses: list[float] = []
    judged: list[RateLimited] = []

    async def cool_down(until: float) -> None:
        pauses.append(until)

    def shared(error: RateLimited) -> bool:
        judged.append(error)
        return False

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    error = RateLimited("stray", retry_after=1.5, status_code=429)
    policy = RetryPolicy(max_attempts=3, clock=clock, sleep=sleep, on_event=events.append)
    fn, calls = failing([error])
    assert await policy.call(fn, cool_down=cool_down, shared=shared) == "ok"
    assert calls["n"] == 2
    assert judged == [error]
    assert pauses == [], "nobody else pauses"
    assert slept == [1.5], "its own caller waits the retry-after"
    assert [(e.wait_s, e.cool_down_until) for e in events] == [(1.5, None)]
