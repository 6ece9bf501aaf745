"""Per-call records and their summary.

The call stack reports what happened through frozen records handed to a sink (a plain callable),
so it imports no logging or metrics backend: the Dagster layer turns records into run-log lines
and materialization metadata, the benchmarks read the very same records.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = ["CallRecord", "RecordSink", "Summary", "percentile", "summarize"]


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


def summarize(records: Iterable[CallRecord]) -> Summary:
    """Aggregate records into what this run paid for.

    Ledger hits (`cached`) count as calls but add no tokens, cost or latency: they were paid for
    by an earlier run, and counting them again would overstate the bill.
    """
    rows = list(records)
    billed = [r for r in rows if not r.cached]
    live = [r.latency_ms for r in billed if r.attempts > 0]
    priced = [r.cost_usd for r in billed if r.cost_usd is not None]
    unpriced = any(r.cost_usd is None and r.attempts > 0 for r in billed)
    return Summary(
        calls=len(rows),
        ok=sum(r.outcome == "ok" for r in rows),
        errors=sum(r.outcome == "error" for r in rows),
        cached=sum(r.cached for r in rows),
        fallback=sum(r.fallback for r in rows),
        input_tokens=sum(r.input_tokens for r in billed),
        output_tokens=sum(r.output_tokens for r in billed),
        cost_usd=None if unpriced and not priced else round(sum(priced), 6),
        latency_p50_ms=percentile(live, 50),
        latency_p95_ms=percentile(live, 95),
        attempts=sum(r.attempts for r in rows),
        retries=sum(max(r.attempts - 1, 0) for r in rows),
        rate_limited=sum(r.rate_limited for r in rows),
    )
