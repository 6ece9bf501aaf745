"""The in-flight bound by Little's law: a table of limits, latencies and call sizes."""

from __future__ import annotations

import pytest

from llm_pipeline.claude.in_flight import ALPHA, InFlightSizer
from llm_pipeline.claude.limits import LimitsInEffect

NO_ROOM = (0.0, 0.0, 0.0)


def limits(rpm: float | None, itpm: float | None = None, otpm: float | None = None) -> LimitsInEffect:
    sources = ("headers", "headers", "headers")
    return LimitsInEffect("m", "api.example", (rpm, itpm, otpm), 60.0, sources, "headers")


@pytest.mark.parametrize(
    ("ceiling", "rates", "hold_s", "tokens", "expected"),
    [
        (256, (3_000, None, None), 0.6, (734, 120), 60),  # 50/s x 0.6 s x 2 (the benchmark's case)
        (32, (3_000, None, None), 0.6, (734, 120), 32),  # LLM_PIPELINE_MAX_CONCURRENCY caps it
        (256, (3_000, 1_500_000, None), 0.6, (734, 120), 41),  # ITPM binds: 34 calls/s x 0.6 x 2
        (256, (3_000, None, 400_000), 0.6, (734, 1_000), 8),  # OTPM binds: 6.7 calls/s x 0.6 x 2
        (256, (50, 50_000, 10_000), 0.5, (734, 120), 1),  # a Tier-1 account needs one call at a time
        (256, (4_000, None, None), 30.0, (734, 120), 256),  # long answers: as many as allowed
        (256, (None, None, None), 0.1, (734, 120), 256),  # nothing limits: the ceiling
    ],
)
def test_the_bound_is_twice_lambda_times_w(
    ceiling: int, rates: tuple, hold_s: float, tokens: tuple, expected: int
) -> None:
    sizer = InFlightSizer(ceiling)
    sizer.record(hold_s, *tokens)
    assert sizer.target([(limits(*rates), (0.0, 0.0, 0.0))]) == expected


def test_the_bound_follows_the_latency_as_it_changes() -> None:
    sizer = InFlightSizer(256)
    sizer.record(0.5, 700, 100)
    assert sizer.target([(limits(3_000), NO_ROOM)]) == 50
    for _ in range(200):  # the latency doubles and stays there
        sizer.record(1.0, 700, 100)
    assert sizer.target([(limits(3_000), NO_ROOM)]) == 100
    sizer.record(11.0, 700, 100)  # one slow call moves the mean by ALPHA of the difference
    assert sizer.target([(limits(3_000), NO_ROOM)]) == round(2 * 50 * (1.0 + ALPHA * 10.0))


def test_several_models_take_the_busiest_and_unanswered_calls_count_their_time() -> None:
    sizer = InFlightSizer(256)
    sizer.record(0.5)  # a call that failed: its time counts, it used no tokens
    assert sizer.target([(limits(600), NO_ROOM), (limits(3_000), NO_ROOM)]) == 50
    assert sizer.target([]) == 256


def test_what_the_buckets_hold_now_is_added_so_a_deep_bucket_is_used_at_once() -> None:
    sizer = InFlightSizer(256)
    sizer.record(0.5, 700, 100)
    full = (3_000.0, 1_000_000.0, 1_000.0)  # 3,000 requests, but output room for only 10 calls
    assert sizer.target([(limits(3_000), full)]) == 50 + 10
    assert sizer.target([(limits(3_000), (3_000.0, 1e9, 1e9))]) == 256
