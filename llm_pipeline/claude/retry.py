"""Retries: exponential backoff with full jitter, Retry-After honoured, one shared pause per 429.

The n-th retry (after n failed attempts) waits

    wait(n) = uniform(0, min(cap, base * 2 ** (n - 1)))        (AWS "full jitter")

unless the server said when to come back (`retry-after-ms`, then `retry-after` as seconds, then
as an HTTP date: the order of the SDK's `_parse_retry_after_header`), which is then obeyed,
clamped to `max_retry_after_s`. `2 ** (n - 1)` is clamped, so huge attempt numbers cannot overflow.

What is retried: `RateLimited`, `Overloaded`, `ServerError`, `Timeout`, `ConnectionFailed`. Never a
`PermanentError` (the same request fails the same way), nor `CircuitOpen` (the breaker's whole
point is not to retry). A 429 is different from the rest: the caller does not sleep on its own
but calls `cool_down(now + retry_after)` on the shared limiter, so every caller sharing the
account pauses together, once; the retrying caller then re-reserves and waits in line like
everyone else. That is for a 429 about the account's buckets, which the caller's `shared`
predicate decides (the client: the 429 carried rate-limit headers, or no response in the last
second reported room in every bucket). A 429 it rules out (say, one stray 429 while the server
keeps reporting room) is waited out by its own caller, like any other retry, so a trickle of
them cannot hold the whole account still. Keep this docstring in step with `test_claude_retry.py`.

The engine is tenacity's `AsyncRetrying` with our own wait/retry/stop callables and `sleep=`;
each retry is reported as a frozen `RetryEvent` to an optional sink (like stamina's RetryDetails).
The first attempt runs before tenacity is involved: building an `AsyncRetrying` and its per-call
state cost ~25 us and left reference cycles for the garbage collector on every call, about 3% of
a whole call at zero latency (benchmarks, scenario 4), while almost every call succeeds at once.
Only a failure worth retrying hands over to tenacity, which replays it as attempt 1, so waits,
events and attempt numbers are exactly those of a run that was in tenacity from the start.
"""

from __future__ import annotations

import email.utils
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from llm_pipeline.claude.clock import Clock, SystemClock
from llm_pipeline.claude.errors import LLMError, RateLimited, RetryableError

__all__ = ["RETRYABLE", "RetryEvent", "RetryPolicy", "backoff_ceiling", "parse_retry_after"]

T = TypeVar("T")
#: What is worth another attempt is what the error hierarchy files under `RetryableError`.
RETRYABLE: tuple[type[LLMError], ...] = (RetryableError,)


def parse_retry_after(headers: Mapping[str, str] | None, now: float) -> float | None:
    """Seconds the server asked us to wait, or None; `now` (epoch seconds) resolves HTTP dates."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        return float(lowered["retry-after-ms"]) / 1000.0
    except (KeyError, TypeError, ValueError):
        pass
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(raw)
    if parsed is None:
        return None
    return float(email.utils.mktime_tz(parsed) - now)


def backoff_ceiling(attempt: int, base_s: float, cap_s: float) -> float:
    """min(cap, base * 2 ** (attempt - 1)), safe for any attempt number."""
    try:
        raw = base_s * 2.0 ** max(0, attempt - 1)
    except OverflowError:
        return cap_s
    return min(cap_s, raw)


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """One retry about to happen: what failed, and how long this caller will wait."""

    key: str
    model: str
    #: Attempts made so far (1 = the first attempt failed).
    attempt: int
    error_type: str
    error: str
    #: This caller's own sleep before re-reserving (0 after a shared 429: the cool-down waits).
    wait_s: float
    #: For a shared 429: the instant (epoch seconds) until which every caller pauses.
    cool_down_until: float | None = None


CoolDown = Callable[[float], Awaitable[None]]
Shared = Callable[[RateLimited], bool]


class RetryPolicy:
    """How often and how long to retry; one instance serves every call of a stack."""

    def __init__(
        self,
        *,
        max_attempts: int = 6,
        base_s: float = 0.5,
        cap_s: float = 30.0,
        max_retry_after_s: float = 300.0,
        rng: random.Random | None = None,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        on_event: Callable[[RetryEvent], None] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.max_attempts = max_attempts
        self.base_s = base_s
        self.cap_s = cap_s
        self.max_retry_after_s = max_retry_after_s
        self._rng = rng or random.Random()
        self._clock = clock or SystemClock()
        self._sleep = sleep or self._clock.sleep
        self._on_event = on_event

    def backoff(self, attempt: int) -> float:
        """A full-jitter draw for the retry after `attempt` failed attempts."""
        return self._rng.uniform(0.0, backoff_ceiling(attempt, self.base_s, self.cap_s))

    @staticmethod
    def should_retry(error: BaseException) -> bool:
        return isinstance(error, RETRYABLE)

    def wait_for(self, error: BaseException, attempt: int) -> float:
        """The server's Retry-After when it gave a usable one, else a backoff draw."""
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
            return min(retry_after, self.max_retry_after_s)
        return self.backoff(attempt)

    async def call(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        key: str = "",
        model: str = "",
        cool_down: CoolDown | None = None,
        shared: Shared | None = None,
    ) -> T:
        """Run `fn` until it succeeds, fails permanently, or runs out of attempts (then re-raise).

        A 429 calls `cool_down` when `shared` is None or says the 429 concerns everyone.
        """
        try:
            return await fn()
        except LLMError as exc:
            if self.max_attempts < 2 or not self.should_retry(exc):
                raise
            first: list[BaseException] = [exc]
        pause_until: dict[int, float] = {}

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            seconds = self.wait_for(error, state.attempt_number)
            if isinstance(error, RateLimited) and cool_down is not None and (shared is None or shared(error)):
                pause_until[state.attempt_number] = self._clock.now() + seconds
                return 0.0
            return seconds

        async def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            until = pause_until.pop(state.attempt_number, None)
            if until is not None and cool_down is not None:
                await cool_down(until)
            if self._on_event is not None and error is not None:
                self._on_event(
                    RetryEvent(
                        key=key,
                        model=model,
                        attempt=state.attempt_number,
                        error_type=type(error).__name__,
                        error=str(error),
                        wait_s=state.upcoming_sleep,
                        cool_down_until=until,
                    )
                )

        async def attempt() -> T:  # tenacity awaits only what it sees is a coroutine function
            if first:
                raise first.pop()  # the failed first attempt, replayed as tenacity's attempt 1
            return await fn()

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait,
            retry=retry_if_exception(self.should_retry),
            before_sleep=before_sleep,
            sleep=self._sleep,
            reraise=True,
        )
        return await retrying(attempt)

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(max_attempts={self.max_attempts}, base_s={self.base_s}, cap_s={self.cap_s}, "
            f"max_retry_after_s={self.max_retry_after_s})"
        )
