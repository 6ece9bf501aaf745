"""The simulator's buckets: the math in ratelimit.py's docstring, pinned with a fake clock."""

from __future__ import annotations

import re

import pytest

from llm_pipeline.simulator.config import Limits
from llm_pipeline.simulator.ratelimit import Bucket, RateLimited, RateLimiter, rfc3339


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def limiter(limits: Limits, clock: FakeClock) -> RateLimiter:
    return RateLimiter(lambda model: limits, clock=clock, wall=lambda: 1_800_000_000.0)


@pytest.mark.parametrize(
    ("per_minute", "burst_s", "capacity", "per_second"),
    [(600, 5, 50.0, 10.0), (60, 60, 60.0, 1.0), (50, 1, 50 / 60, 50 / 60), (30_000, 60, 30_000.0, 500.0)],
)
def test_bucket_capacity_is_rate_times_burst(per_minute, burst_s, capacity, per_second):
    bucket = Bucket(per_minute, burst_s, now=0.0)
    assert bucket.capacity == pytest.approx(capacity)
    assert bucket.per_second == pytest.approx(per_second)
    assert bucket.level == pytest.approx(capacity)


def test_bucket_refills_continuously_up_to_capacity():
    bucket = Bucket(600, 5, now=0.0)
    bucket.level = 0.0
    bucket.refill(0.25)
    assert bucket.level == pytest.approx(2.5)
    bucket.refill(100.0)
    assert bucket.level == pytest.approx(50.0)


def test_burst_then_exact_refill_rate():
    clock = FakeClock()
    rl = limiter(Limits(rpm=600, burst_seconds=5), clock)
    for _ in range(50):
        rl.reserve("m", 10, 10)
    with pytest.raises(RateLimited) as info:
        rl.reserve("m", 10, 10)
    assert info.value.retry_after_s == 1
    clock.advance(0.1)  # one request's worth at 10/s
    rl.reserve("m", 10, 10)
    with pytest.raises(RateLimited):
        rl.reserve("m", 10, 10)


@pytest.mark.parametrize(
    ("limits", "input_tokens", "max_tokens", "expected_retry_after", "unit"),
    [
        # 6,000 ITPM = 100 tokens/s, burst 10 s = 1,000; 1,000 used, next 250 needs 2.5 s -> 3
        (Limits(itpm=6_000, burst_seconds=10), 250, 1, 3, "input tokens"),
        # 600 OTPM = 10/s, capacity 600; after 600 booked, 45 more needs 4.5 s -> 5
        (Limits(otpm=600, burst_seconds=60), 1, 45, 5, "output tokens"),
        # tiny deficit still waits at least one second
        (Limits(rpm=6_000, burst_seconds=1), 1, 1, 1, "requests"),
    ],
)
def test_retry_after_is_ceil_of_the_deficit(limits, input_tokens, max_tokens, expected_retry_after, unit):
    clock = FakeClock()
    rl = limiter(limits, clock)
    drained = {"itpm": (1_000, 1), "otpm": (1, 600), "rpm": (1, 1)}
    name = next(n for n in ("itpm", "otpm", "rpm") if getattr(limits, n))
    for _ in range(100 if name == "rpm" else 1):
        rl.reserve("m", *drained[name])
    with pytest.raises(RateLimited) as info:
        rl.reserve("m", input_tokens, max_tokens)
    assert info.value.retry_after_s == expected_retry_after
    assert info.value.headers["retry-after"] == str(expected_retry_after)
    assert unit in info.value.message


def test_a_rejected_request_books_nothing():
    clock = FakeClock()
    rl = limiter(Limits(rpm=60, itpm=1_000, burst_seconds=60), clock)
    with pytest.raises(RateLimited):
        rl.reserve("m", 5_000, 1)  # too many input tokens
    _, headers = rl.reserve("m", 10, 1)
    assert headers["anthropic-ratelimit-requests-remaining"] == "59"
    assert headers["anthropic-ratelimit-input-tokens-remaining"] == "990"


def test_output_is_booked_at_max_tokens_and_the_unused_part_refunded():
    clock = FakeClock()
    rl = limiter(Limits(otpm=1_000, burst_seconds=60), clock)
    booking, headers = rl.reserve("m", 1, 800)
    assert headers["anthropic-ratelimit-output-tokens-remaining"] == "200"
    with pytest.raises(RateLimited):
        rl.reserve("m", 1, 300)
    rl.settle(booking, output_tokens=100)  # 700 unused come back
    _, headers = rl.reserve("m", 1, 300)
    assert headers["anthropic-ratelimit-output-tokens-remaining"] == "600"


def test_models_have_separate_buckets():
    clock = FakeClock()
    rl = limiter(Limits(rpm=60, burst_seconds=1), clock)
    rl.reserve("a", 1, 1)
    with pytest.raises(RateLimited):
        rl.reserve("a", 1, 1)
    rl.reserve("b", 1, 1)


def test_headers_name_every_limit_with_rfc3339_resets():
    clock = FakeClock()
    rl = limiter(Limits(rpm=600, itpm=60_000, otpm=6_000, burst_seconds=60), clock)
    _, headers = rl.reserve("m", 100, 60)
    assert headers["anthropic-ratelimit-requests-limit"] == "600"
    assert headers["anthropic-ratelimit-input-tokens-limit"] == "60000"
    assert headers["anthropic-ratelimit-output-tokens-limit"] == "6000"
    assert headers["anthropic-ratelimit-tokens-limit"] == "66000"
    assert headers["anthropic-ratelimit-tokens-remaining"] == str(60_000 - 100 + 6_000 - 60)
    # output bucket refills 100/s: 60 used -> full again in 0.6 s
    assert headers["anthropic-ratelimit-output-tokens-reset"] == rfc3339(1_800_000_000.6)
    for key, value in headers.items():
        if key.endswith("-reset"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value), key


def test_unlimited_models_are_not_limited():
    rl = limiter(Limits(), FakeClock())
    assert rl.limited("m") is False
    for _ in range(1_000):
        _, headers = rl.reserve("m", 1_000_000, 100_000)
    assert headers == {}
