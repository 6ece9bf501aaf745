"""What one logical call went through, as the `CallResult` and `CallRecord` the caller gets.

A ledger hit costs nothing, unless this run's batch put it there (then it is that batch call, at
the batch price); its tokens, prompt-cache reads and writes included, are those of the stored
answer, so a table row reads the same whichever run paid for it. An answered call is priced from
its usage; a failed one carries its typed error. `wait_ms` is the call's time not spent on the
wire: limiter, prompt-cache warm-up, breaker, claims and retry pauses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from anthropic.types import Message

from llm_pipeline.claude.batches import BatchAnswer
from llm_pipeline.claude.errors import LLMError
from llm_pipeline.claude.ledger import LedgerHit
from llm_pipeline.claude.metrics import CallRecord
from llm_pipeline.claude.pricing import cost
from llm_pipeline.claude.types import CallResult, Request

__all__ = ["Tally", "cached_result", "finished_result"]


@dataclass(slots=True)
class Tally:
    """What one logical call went through, across attempts (becomes the CallRecord)."""

    attempts: int = 0
    rate_limited: int = 0
    latency_s: float = 0.0
    request_id: str | None = None
    #: Seconds spent waiting for the limiter or a prompt-cache warm-up (not holding a call in flight).
    limiter_wait_s: float = 0.0
    #: Input tokens the limiter booked up front for the latest attempt.
    booked_input_tokens: int = 0


def cached_result(request: Request, hit: LedgerHit, batch: BatchAnswer | None = None) -> CallResult:
    """A ledger hit: free, or the batch call of this run that stored it."""
    answered = request.with_model(hit.model) if hit.model != request.model else request
    usage = hit.message.usage
    record = CallRecord(
        key=request.key,
        model=hit.model,
        outcome="ok",
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
        cache_read_input_tokens=usage.cache_read_input_tokens or 0,
        cost_usd=0.0,
        cached=True,
        fallback=hit.model != request.model,
        stop_reason=hit.message.stop_reason,
    )
    if batch is not None:
        record = replace(
            record,
            cached=False,
            batch=True,
            cost_usd=cost(hit.model, usage, batch=True),
            attempts=1,
            latency_ms=batch.latency_ms,
            request_id=batch.batch_id,
        )
    return CallResult(answered, record, message=hit.message)


def finished_result(
    request: Request,
    tally: Tally,
    elapsed_s: float,
    *,
    message: Message | None = None,
    error: LLMError | None = None,
    fallback: bool = False,
) -> CallResult:
    """A call that went to the API (`elapsed_s` since it began): its answer or its error."""
    latency_ms = tally.latency_s * 1000.0
    common = {
        "key": request.key,
        "model": request.model,
        "latency_ms": latency_ms,
        "wait_ms": max(0.0, elapsed_s * 1000.0 - latency_ms),
        "attempts": tally.attempts,
        "rate_limited": tally.rate_limited,
        "fallback": fallback,
        "request_id": tally.request_id,
        "booked_input_tokens": tally.booked_input_tokens,
    }
    if message is not None:
        usage = message.usage
        record = CallRecord(
            outcome="ok",
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
            cache_read_input_tokens=usage.cache_read_input_tokens or 0,
            cost_usd=cost(request.model, usage),
            stop_reason=message.stop_reason,
            **common,
        )
    else:
        assert error is not None
        record = CallRecord(outcome="error", error_type=type(error).__name__, error=str(error), **common)
    return CallResult(request, record, message=message, error=error)
