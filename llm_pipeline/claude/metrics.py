"""Per-call records and their summary.

The call stack reports what happened through frozen records handed to a sink (a plain callable),
so it imports no logging or metrics backend: the Dagster layer turns records into run-log lines
and materialization metadata, the benchmarks read the very same records. The summary also prices
what the prompt cache saved: the same billed calls with every prompt token at the input price.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from llm_pipeline.claude.pricing import cost

__all__ = ["CallRecord", "ModelUsage", "RecordSink", "Summary", "Tally", "percentile", "summarize"]


@dataclass(frozen=True, slots=True)
class CallRecord:
    """What one logical call (all its attempts) cost and how it ended."""

    key: str
    #: The model that answered, or the last one tried when nothing answered.
    model: str | None
    outcome: Literal["ok", "error"]
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    #: Input tokens the limiter booked up front (the estimate; without the cached prefix once it is
    #: known to be read from the cache); usage settles the difference.
    booked_input_tokens: int = 0
    #: USD at list price (batch discount applied when `batch`); None when the model is unpriced.
    cost_usd: float | None = None
    #: Wall time of the attempt that produced the outcome, as seen by the client.
    latency_ms: float = 0.0
    #: Time spent waiting for the rate limiter and in backoff before the final attempt.
    wait_ms: float = 0.0
    attempts: int = 0
    #: 429s met along the way (they are retried; this counts them).
    rate_limited: int = 0
    #: Answered from the ledger: no API call was made and nothing was paid.
    cached: bool = False
    #: Answered by the fallback model because the primary's breaker was open.
    fallback: bool = False
    batch: bool = False
    stop_reason: str | None = None
    request_id: str | None = None
    error_type: str | None = None
    error: str | None = None


RecordSink = Callable[[CallRecord], None]


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in [0, 100]); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """What one model billed: answers paid for (ledger hits excluded) and their tokens by kind."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def plus(self, record: CallRecord) -> ModelUsage:
        return ModelUsage(
            self.calls + 1,
            self.input_tokens + record.input_tokens,
            self.output_tokens + record.output_tokens,
            self.cache_creation_input_tokens + record.cache_creation_input_tokens,
            self.cache_read_input_tokens + record.cache_read_input_tokens,
        )


@dataclass(frozen=True, slots=True)
class Summary:
    """Totals over many records, in the units the run log and the UI show."""

    calls: int
    ok: int
    errors: int
    cached: int
    fallback: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    attempts: int
    retries: int
    rate_limited: int
    #: Billed answers per model (the fallback's apart from the primary's).
    by_model: Mapping[str, ModelUsage] = field(default_factory=dict)
    #: Billed answers that read their prompt's prefix from the cache.
    cache_hits: int = 0
    #: What the billed calls would have cost with every prompt token at the input price (no
    #: cache); None when nothing billed had a price.
    cost_usd_uncached: float | None = None

    @property
    def billed_answers(self) -> int:
        return sum(usage.calls for usage in self.by_model.values())

    @property
    def cache_read_input_tokens(self) -> int:
        return sum(usage.cache_read_input_tokens for usage in self.by_model.values())

    @property
    def cache_creation_input_tokens(self) -> int:
        return sum(usage.cache_creation_input_tokens for usage in self.by_model.values())

    @property
    def cache_hit_ratio(self) -> float | None:
        """Share of the billed answers whose prompt prefix was read from the cache."""
        return self.cache_hits / self.billed_answers if self.billed_answers else None

    @property
    def cache_saved_usd(self) -> float | None:
        """USD the prompt cache saved against the same calls uncached (negative: writes never read)."""
        if self.cost_usd is None or self.cost_usd_uncached is None:
            return None
        return round(self.cost_usd_uncached - self.cost_usd, 6)


class Tally:
    """A running `Summary`: fed one record at a time, so a 100,000-call step keeps counters, not records.

    Ledger hits (`cached`) count as calls but add no tokens, cost or latency: they were paid for by
    an earlier run, and counting them again would overstate the bill.
    """

    __slots__ = ("_by_model", "_cache_hits", "_cost", "_cost_uncached", "_counts", "_latencies", "_unpriced")

    def __init__(self) -> None:
        self._counts = dict.fromkeys(
            (
                "calls",
                "ok",
                "errors",
                "cached",
                "fallback",
                "input_tokens",
                "output_tokens",
                "attempts",
                "retries",
                "rate_limited",
            ),
            0,
        )
        self._cost = 0.0
        self._cost_uncached = 0.0
        self._cache_hits = 0
        self._unpriced = False
        self._latencies: list[float] = []
        self._by_model: dict[str, ModelUsage] = {}

    def add(self, record: CallRecord) -> None:
        counts = self._counts
        counts["calls"] += 1
        counts["ok" if record.outcome == "ok" else "errors"] += 1
        counts["fallback"] += record.fallback
        if record.cached:
            counts["cached"] += 1
            return
        counts["input_tokens"] += record.input_tokens
        counts["output_tokens"] += record.output_tokens
        counts["attempts"] += record.attempts
        counts["retries"] += max(record.attempts - 1, 0)
        counts["rate_limited"] += record.rate_limited
        if record.attempts > 0:
            self._latencies.append(record.latency_ms)
            if record.cost_usd is None:
                self._unpriced = True
        if record.cost_usd is not None:
            self._cost += record.cost_usd
            self._cost_uncached += _uncached_cost(record)
        if record.outcome == "ok" and record.model is not None:
            self._by_model[record.model] = self._by_model.get(record.model, ModelUsage()).plus(record)
            self._cache_hits += record.cache_read_input_tokens > 0

    def summary(self) -> Summary:
        """The totals so far; `cost_usd` is None only when nothing billed had a price."""
        priced = self._cost > 0 or not self._unpriced
        return Summary(
            **self._counts,
            cost_usd=round(self._cost, 6) if priced else None,
            latency_p50_ms=percentile(self._latencies, 50),
            latency_p95_ms=percentile(self._latencies, 95),
            by_model=dict(sorted(self._by_model.items())),
            cache_hits=self._cache_hits,
            cost_usd_uncached=round(self._cost_uncached, 6) if priced else None,
        )


def _uncached_cost(record: CallRecord) -> float:
    """The record's call priced as if nothing were cached: every prompt token at the input price."""
    if record.model is None:
        return 0.0
    prompt = record.input_tokens + record.cache_creation_input_tokens + record.cache_read_input_tokens
    usage = {"input_tokens": prompt, "output_tokens": record.output_tokens}
    return cost(record.model, usage, batch=record.batch) or 0.0


def summarize(records: Iterable[CallRecord]) -> Summary:
    """Aggregate finished records (see `Tally` for what counts)."""
    tally = Tally()
    for record in records:
        tally.add(record)
    return tally.summary()
