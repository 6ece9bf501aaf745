"""Baseline: the usual "robust" service: semaphore + token bucket + tenacity backoff + breaker.

A token bucket at the account's requests per minute (the same rate and burst our client is
given), 64 calls in flight, tenacity retrying 429/5xx/529/connection errors up to 6 attempts
with full-jitter exponential backoff that honours `retry-after`, and a circuit breaker that
opens for 30 s after 5 consecutive failures. It paces requests only (no token limits), and every
caller retries on its own schedule.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence

import anthropic
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from llm_pipeline.claude import Request

__all__ = ["run"]

RETRYABLE = (anthropic.RateLimitError, anthropic.InternalServerError, anthropic.APIConnectionError)


class TokenBucket:
    def __init__(self, per_second: float, capacity: float) -> None:
        self.rate, self.capacity, self.tokens, self.last = per_second, capacity, capacity, time.monotonic()

    async def acquire(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)


class CircuitBreaker:
    def __init__(self, threshold: int = 5, reset_s: float = 30.0) -> None:
        self.threshold, self.reset_s, self.failures, self.opened_at = threshold, reset_s, 0, 0.0

    def check(self) -> None:
        if self.failures >= self.threshold and time.monotonic() - self.opened_at < self.reset_s:
            raise RuntimeError("circuit open")

    def record(self, ok: bool) -> None:
        self.failures = 0 if ok else self.failures + 1
        if self.failures == self.threshold:
            self.opened_at = time.monotonic()


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    backoff = random.uniform(0, min(30.0, 0.5 * 2**state.attempt_number))
    retry_after = (
        error.response.headers.get("retry-after") if isinstance(error, anthropic.APIStatusError) else None
    )
    return max(float(retry_after), backoff) if retry_after else backoff


async def run(base_url: str, requests: Sequence[Request], *, rpm: float, burst_s: float) -> int:
    client = anthropic.AsyncAnthropic(api_key="sk-sim-baseline", base_url=base_url, max_retries=0)
    bucket, breaker, semaphore = (
        TokenBucket(rpm / 60, rpm / 60 * burst_s),
        CircuitBreaker(),
        asyncio.Semaphore(64),
    )

    async def attempt(request: Request) -> object:
        await bucket.acquire()
        breaker.check()
        try:
            message = await client.messages.create(**request.params)
        except RETRYABLE:
            breaker.record(ok=False)
            raise
        breaker.record(ok=True)
        return message

    async def one(request: Request) -> bool:
        async with semaphore:
            retrying = AsyncRetrying(
                retry=retry_if_exception_type(RETRYABLE), wait=_wait, stop=stop_after_attempt(6), reraise=True
            )
            try:
                await retrying(attempt, request)
            except (*RETRYABLE, RuntimeError):
                return False
            return True

    try:
        return sum(await asyncio.gather(*(one(r) for r in requests)))
    finally:
        await client.close()
