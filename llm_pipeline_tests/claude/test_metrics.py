"""Per-call records and their running summary: what the run log, the UI and the benchmarks count."""

from __future__ import annotations

import pytest

from llm_pipeline.claude.metrics import CallRecord, Tally, percentile, summarize


def _record(**fields) -> CallRecord:
    return CallRecord(**{"key": "k", "model": "claude-haiku-5-5", "outcome": "ok", **fields})


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([5.0], 95, 5.0), ([1.0, 2.0, 3.0, 4.0], 50, 2.5), ([1.0, 2.0, 3.0, 4.0, 5.0], 95, 4.8)],
)
def test_percentile_interpolates_linearly(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_of_nothing_is_none() -> None:
    assert percentile([], 50) is None


def test_ledger_hits_count_as_calls_but_add_nothing_to_the_bill() -> None:
    summary = summarize(
        [
            _record(
                input_tokens=100, output_tokens=10, cost_usd=0.5, latency_ms=200, attempts=3, rate_limited=1
            ),
            _record(input_tokens=900, output_tokens=90, cost_usd=0.0, latency_ms=0, attempts=0, cached=True),
            _record(outcome="error", latency_ms=400, attempts=2, error_type="ServerError"),
        ]
    )
    assert (summary.calls, summary.ok, summary.errors, summary.cached) == (3, 2, 1, 1)
    assert (summary.input_tokens, summary.output_tokens) == (100, 10)
    assert summary.cost_usd == 0.5
    assert (summary.attempts, summary.retries, summary.rate_limited) == (5, 3, 1)
    assert (summary.latency_p50_ms, summary.latency_p95_ms) == (300.0, 390.0)  # cached call excluded


def test_cost_is_none_only_when_nothing_billed_had_a_price() -> None:
    assert summarize([_record(model="mystery", cost_usd=None, attempts=1)]).cost_usd is None
    mixed = [_record(model="mystery", cost_usd=None, attempts=1), _record(cost_usd=0.25, attempts=1)]
    assert summarize(mixed).cost_usd == 0.25


def test_tally_summary_is_live_while_records_arrive() -> None:
    tally = Tally()
    assert tally.summary().calls == 0
    tally.add(_record(attempts=1, latency_ms=10))
    assert tally.summary().latency_p50_ms == 10
    tally.add(_record(attempts=2, latency_ms=30))
    assert (tally.summary().calls, tally.summary().retries) == (2, 1)


def test_usage_by_model_counts_billed_answers_only() -> None:
    tally = Tally()
    tally.add(_record(input_tokens=10, output_tokens=5, cache_read_input_tokens=7, attempts=1))
    tally.add(_record(input_tokens=99, output_tokens=99, cached=True))  # a ledger hit: not billed again
    tally.add(_record(model="claude-sonnet-5-5", input_tokens=3, cache_creation_input_tokens=4, attempts=2))
    tally.add(_record(outcome="error", attempts=6))  # nothing answered, nothing billed
    usage = tally.summary().by_model
    assert list(usage) == ["claude-haiku-5-5", "claude-sonnet-5-5"]
    haiku, sonnet = usage["claude-haiku-5-5"], usage["claude-sonnet-5-5"]
    assert (haiku.calls, haiku.input_tokens, haiku.output_tokens, haiku.cache_read_input_tokens) == (
        1,
        10,
        5,
        7,
    )
    assert (sonnet.calls, sonnet.input_tokens, sonnet.cache_creation_input_tokens) == (1, 3, 4)


def test_the_cache_saving_is_priced_against_the_same_calls_uncached() -> None:
    """Haiku 5.5 (prompts under 100K): input $0.10, 5-minute write $0.125, read $0.01 per million."""
    k = 10_000
    writer = _record(input_tokens=k, cache_creation_input_tokens=4 * k, cost_usd=0.006, attempts=1)
    reader = _record(input_tokens=k, cache_read_input_tokens=4 * k, cost_usd=0.0014, attempts=1)
    ledger_hit = _record(input_tokens=k, cache_read_input_tokens=4 * k, cost_usd=0.0, cached=True)
    summary = summarize([writer, reader, reader, ledger_hit])
    assert (summary.billed_answers, summary.cache_hits) == (3, 2)
    assert summary.cache_hit_ratio == pytest.approx(2 / 3)
    assert (summary.cache_read_input_tokens, summary.cache_creation_input_tokens) == (8 * k, 4 * k)
    assert summary.cost_usd_uncached == pytest.approx(3 * 5 * k * 0.10 / 1e6)
    assert summary.cache_saved_usd == pytest.approx(0.015 - (0.006 + 2 * 0.0014))


def test_a_write_that_is_never_read_is_a_negative_saving_and_batch_calls_stay_at_batch_price() -> None:
    k = 10_000
    summary = summarize(
        [_record(cache_creation_input_tokens=4 * k, cost_usd=0.005 / 2, batch=True, attempts=1)]
    )
    assert summary.cost_usd_uncached == pytest.approx(0.004 / 2)
    assert summary.cache_saved_usd == pytest.approx(-0.001 / 2)
    assert summarize([]).cache_hit_ratio is None
